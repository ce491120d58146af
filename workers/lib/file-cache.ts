// A value parsed from files, parsed again only when one of the files changed: a long-running
// server (twice serve) reads the model catalog and the paper's numbers on every report, and
// parsing and validating them each time cost more than the report's SQL.
import { statSync } from 'node:fs';

const stamp = (file: string | URL) => {
  try {
    const s = statSync(file);
    return `${s.mtimeMs}:${s.size}`;
  } catch {
    return 'missing';
  }
};

export function cachedFromFiles<T>(files: () => Array<string | URL>, load: () => T): () => T {
  let last: { key: string; value: T } | null = null;
  return () => {
    const key = files().map(stamp).join('|');
    if (last?.key !== key) last = { key, value: load() };
    return last.value;
  };
}
