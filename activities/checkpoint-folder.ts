// A checkpoint folder a training job writes into, named in a spec's `checkpoints`: its revision is
// the digest of what the folder holds, taken when a sweep resolves its models, so new weights
// change every cell key of that model and unchanged ones keep them. The Python worker computes the
// same digest over the bytes it loads (twice_inference/models/folder.py) and refuses weights that
// moved since. The digest, and the rule for a folder still being written, are documented in
// docs/protocol.md (Checkpoint folders); keep both languages in step.
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, posix } from 'node:path';
import { z } from 'zod';

/** A file modified this recently may still be written: wait until the folder has been quiet this long. */
export const QUIET_MS = 2000;
/** How many times a folder that changed while it was read is read again before giving up. */
const ATTEMPTS = 5;

/** Names a writer uses while a file is incomplete: hidden files and the usual temporary suffixes. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || /\.(tmp|partial|incomplete|lock)$/.test(name);
}

interface FileStat {
  rel: string;
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
}

const isFileTarget = (path: string) => {
  try {
    return statSync(path).isFile();
  } catch {
    return false; // a dangling link
  }
};

/** Every file the digest covers, sorted by the UTF-8 bytes of its path relative to the folder. */
export function listFolder(folder: string): FileStat[] {
  const out: FileStat[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (isIgnoredName(entry.name)) continue;
      const path = join(dir, entry.name);
      const rel = prefix ? posix.join(prefix, entry.name) : entry.name;
      // a linked folder is not followed (no cycles); a linked file is read through
      if (entry.isDirectory()) walk(path, rel);
      else if (entry.isFile() || (entry.isSymbolicLink() && isFileTarget(path))) {
        const s = statSync(path, { bigint: true });
        out.push({ rel, size: Number(s.size), mtimeNs: String(s.mtimeNs), ctimeNs: String(s.ctimeNs), ino: String(s.ino) });
      }
    }
  };
  walk(folder, '');
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.rel), Buffer.from(b.rel)));
}

/** The folder digest from each file's path, size and content digest (the manifest both sides hash). */
export function manifestDigest(files: Array<{ rel: string; size: number; sha256: string }>): string {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.sha256} ${f.size} ${f.rel}\n`, 'utf8');
  return h.digest('hex');
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const CachedFile = z
  .object({ size: z.number().int().nonnegative(), mtimeNs: z.string(), ctimeNs: z.string(), ino: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })
  .strict();
const CacheFile = z.object({ folder: z.string(), files: z.record(z.string(), CachedFile) }).strict();

function cachePath(folder: string, env: NodeJS.ProcessEnv): string {
  const root = env.TWICE_CACHE || join(homedir(), '.cache', 'twice');
  return join(root, 'checkpoint-digests', `${createHash('sha256').update(folder).digest('hex').slice(0, 32)}.json`);
}

function readCache(path: string, folder: string): Map<string, z.infer<typeof CachedFile>> {
  try {
    const parsed = CacheFile.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (parsed.success && parsed.data.folder === folder) return new Map(Object.entries(parsed.data.files));
  } catch {
    // no cache yet, or an unreadable one: every file is hashed
  }
  return new Map();
}

function writeCache(path: string, folder: string, files: Array<FileStat & { sha256: string }>): void {
  mkdirSync(join(path, '..'), { recursive: true });
  const body = { folder, files: Object.fromEntries(files.map(({ rel, ...rest }) => [rel, rest])) };
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, JSON.stringify(body));
  renameSync(partial, path);
}

const sameStat = (a: FileStat, b: { size: number; mtimeNs: string; ctimeNs: string; ino: string }) =>
  a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

/** The first file added, removed or rewritten between two listings, or null. */
function firstDifference(before: FileStat[], after: FileStat[]): string | null {
  const was = new Map(before.map((f) => [f.rel, f]));
  for (const f of after) {
    const b = was.get(f.rel);
    if (!b || !sameStat(f, b)) return f.rel;
    was.delete(f.rel);
  }
  const [gone] = was.keys();
  return gone ?? null;
}

export class FolderUnstable extends Error {
  override name = 'FolderUnstable';
}

export interface FolderDigest {
  digest: string;
  files: number;
  bytes: number;
  /** files whose bytes were read this time (the others matched the cache's size and times) */
  hashed: number;
}

/**
 * The content digest of a checkpoint folder. A file whose size, modification and change times and
 * inode all match the cache is not read again; any difference re-reads it, and an unchanged
 * content then gives the same digest (a touched file changes nothing). A folder written less than
 * QUIET_MS ago, or changing while it is read, is read again after a pause, and refused
 * (FolderUnstable) if it never settles: no digest of a half-written checkpoint is returned.
 */
export async function digestFolder(
  folder: string,
  env: NodeJS.ProcessEnv = process.env,
  opts: { quietMs?: number; attempts?: number; now?: () => number } = {},
): Promise<FolderDigest> {
  const quietMs = opts.quietMs ?? QUIET_MS;
  const now = opts.now ?? Date.now;
  let why = '';
  for (let attempt = 0; attempt < (opts.attempts ?? ATTEMPTS); attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, quietMs));
    const before = listFolder(folder);
    if (before.length === 0) throw new Error(`checkpoint folder ${folder} holds no files`);
    const recent = before.find((f) => Number(BigInt(f.mtimeNs) / 1_000_000n) > now() - quietMs);
    if (recent) {
      why = `${recent.rel} was modified less than ${quietMs} ms ago`;
      continue;
    }
    const cacheFile = cachePath(folder, env);
    const cache = readCache(cacheFile, folder);
    let hashed = 0;
    const files: Array<FileStat & { sha256: string }> = [];
    for (const f of before) {
      const known = cache.get(f.rel);
      if (known && sameStat(f, known)) files.push({ ...f, sha256: known.sha256 });
      else {
        files.push({ ...f, sha256: await sha256File(join(folder, f.rel)) });
        hashed += 1;
      }
    }
    const changed = firstDifference(before, listFolder(folder));
    if (changed) {
      why = `${changed} changed while it was read`;
      continue;
    }
    writeCache(cacheFile, folder, files);
    return { digest: manifestDigest(files), files: files.length, bytes: files.reduce((n, f) => n + f.size, 0), hashed };
  }
  throw new FolderUnstable(
    `checkpoint folder ${folder} is still being written (${why}); a sweep reads a checkpoint only once it has been quiet for ${quietMs} ms`,
  );
}

/** Why `folder` cannot hold a checkpoint yet (missing, not a folder, no weights), or null. */
export function folderProblem(folder: string): string | null {
  let names: string[];
  try {
    if (!statSync(folder).isDirectory()) return `${folder} is not a folder`;
    names = readdirSync(folder);
  } catch {
    return `checkpoint folder ${folder} does not exist`;
  }
  if (!names.some((n) => !isIgnoredName(n) && (n.endsWith('.safetensors') || n === 'pytorch_model.bin'))) {
    return `checkpoint folder ${folder} holds no weights yet (*.safetensors or pytorch_model.bin)`;
  }
  return null;
}
