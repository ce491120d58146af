// A value parsed from files, parsed again only when one of the files changed: a long-running
// server (twice serve) reads the model catalog and the paper's numbers on every report, and
// parsing and validating them each time cost more than the report's SQL. The files are looked
// at (stat) at most once per `recheckMs`, so a busy server does not stat them per request
// either; an edited file is picked up within that time.
import { statSync } from 'node:fs';

const stamp = (file: string | URL) => {
  try {
    const s = statSync(file);
    return `${s.mtimeMs}:${s.size}`;
  } catch {
    return 'missing';
  }
};

export function cachedFromFiles<T>(files: () => Array<string | URL>, load: () => T, recheckMs = 1000): () => T {
  let last: { key: string; value: T; checkedAt: number } | null = null;
  return () => {
    const now = Date.now();
    if (last && now - last.checkedAt < recheckMs) return last.value;
    const key = files().map(stamp).join('|');
    if (last?.key !== key) last = { key, value: load(), checkedAt: now };
    else last.checkedAt = now;
    return last.value;
  };
}
