// How a CLI invocation reaches the platform: real deployments when DATABASE_URL and
// TEMPORAL_ADDRESS are set, otherwise the embedded stack, which runs in a background daemon
// (workers/stack-daemon.ts) so that a sweep keeps going after the CLI detaches. The daemon's
// address book is <state dir>/stack.json.
import { Client, Connection } from '@temporalio/client';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { createDb, type Db } from './db-client';
import { loadEnv } from './env';

export const StackInfo = z
  .object({
    pid: z.number().int(),
    databaseUrl: z.string(),
    temporalAddress: z.string(),
    namespace: z.string(),
    uiUrl: z.string().nullable(),
    // the web dashboard; absent in the address book of a daemon from before it existed
    webUrl: z.string().nullable().default(null),
    startedAt: z.string(),
  })
  .strict();
export type StackInfo = z.infer<typeof StackInfo>;

export interface Session {
  client: Client;
  db: Db;
  namespace: string;
  /** this invocation started the embedded stack (and may stop it when done) */
  startedStack: boolean;
  stackInfo: StackInfo | null;
  close(): Promise<void>;
}

export const stackInfoPath = (stateDir: string) => join(stateDir, 'stack.json');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function readStackInfo(stateDir: string): StackInfo | null {
  const file = stackInfoPath(stateDir);
  if (!existsSync(file)) return null;
  const info = StackInfo.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!info.success || !alive(info.data.pid)) {
    rmSync(file, { force: true });
    return null;
  }
  return info.data;
}

async function startDaemon(stateDir: string, log: (m: string) => void): Promise<StackInfo> {
  log('starting the embedded stack (PostgreSQL, Temporal dev server, workers)...');
  const logFile = join(stateDir, 'logs', 'stack.log');
  rmSync(stackInfoPath(stateDir), { force: true });
  mkdirSync(join(stateDir, 'logs'), { recursive: true });
  const fd = openSync(logFile, 'a');
  const daemon = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../stack-daemon.ts', import.meta.url))],
    { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, TWICE_STATE_DIR: stateDir } },
  );
  closeSync(fd);
  daemon.unref();
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    const info = readStackInfo(stateDir);
    if (info && info.pid === daemon.pid) return info;
    if (daemon.exitCode !== null || !alive(daemon.pid!)) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
      throw new Error(`the embedded stack failed to start; last lines of ${logFile}:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the embedded stack did not come up within 5 minutes; see ${logFile}`);
}

export async function stopDaemon(info: StackInfo): Promise<void> {
  // the daemon's orderly shutdown (see stack-daemon.ts for why not SIGTERM)
  process.kill(info.pid, 'SIGUSR2');
  const deadline = Date.now() + 60_000;
  while (alive(info.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (alive(info.pid)) process.kill(info.pid, 'SIGKILL');
}

export async function openSession(opts: { start: boolean; log?: (m: string) => void }): Promise<Session> {
  const env = loadEnv();
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  let info: StackInfo | null = null;
  let startedStack = false;
  let databaseUrl = env.databaseUrl;
  let address = env.temporalAddress;
  let namespace = env.namespace;
  if (!env.external) {
    info = readStackInfo(env.stateDir);
    if (!info) {
      if (!opts.start) {
        throw new Error('no embedded stack is running (start one with `twice stack up` or `twice run`)');
      }
      info = await startDaemon(env.stateDir, log);
      startedStack = true;
    }
    ({ databaseUrl, temporalAddress: address, namespace } = info);
  }
  const connection = await Connection.connect({ address });
  const db = createDb(databaseUrl);
  return {
    client: new Client({ connection, namespace }),
    db,
    namespace,
    startedStack,
    stackInfo: info,
    async close() {
      await db.$disconnect();
      await connection.close();
    },
  };
}
