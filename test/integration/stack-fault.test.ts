// Issue 11 item 4, fault injection: the stack daemon is killed with SIGKILL in the middle of a
// sweep. Its watchdog stops what it started (PostgreSQL, the Temporal dev server, the Python
// worker) and frees their ports; `stack up` starts afresh and a re-run completes with every example
// recorded once. Then the watchdog and the daemon are both killed: `stack up` finds the servers
// they left and stops them itself, and `stack down` leaves nothing behind. Before, PostgreSQL and
// the worker outlived the daemon and `stack up` failed on PostgreSQL's lock file.
// Item 5: with the embedded PostgreSQL dead, `stack up` says so and does not print "stack up".
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { postgresDataDir } from '../../workers/lib/paths';
import { alive, groupMembers, postmasterPid } from '../../workers/lib/processes';
import { StackInfo } from '../../workers/lib/session';
import { cliEnv, twice } from '../helpers/cli';

const SPEC = `
name: it-stack-fault
models: [zoo-attn-tiny, zoo-based-tiny]
tasks: [{ name: mqar, params: { numExamples: 24, numKvPairs: 4, seed: 9 } }]
strategies: [default]
generation: { maxNewTokens: 2, batchSize: 2 }
execution: { shardSize: 2, window: 1, device: cpu, heartbeatTimeoutSeconds: 10 }
`;
const SHARDS = 24; // 2 cells x 24 examples in shards of 2

async function waitUntil(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    assert.ok(Date.now() < deadline, `${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = new Socket();
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => (s.destroy(), resolve(false)));
    s.connect(port, '127.0.0.1');
  });

function portsOf(info: StackInfo): number[] {
  return [new URL(info.databaseUrl).port, info.temporalAddress.split(':')[1], info.webUrl && new URL(info.webUrl).port, info.uiUrl && new URL(info.uiUrl).port]
    .filter((p): p is string => Boolean(p))
    .map(Number);
}

async function query<T>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

describe('SIGKILL of the stack daemon mid-sweep', { timeout: 1_200_000 }, () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'twice-daemon-fault-'));
  const specFile = join(stateDir, 'fault.yaml');
  writeFileSync(specFile, SPEC);
  const env = cliEnv({ TWICE_STATE_DIR: stateDir, TWICE_PYTHON_WORKERS: '1', TWICE_DEVICE: 'cpu', TWICE_SERVE_PORT: '0' });
  const info = () => StackInfo.parse(JSON.parse(readFileSync(join(stateDir, 'stack.json'), 'utf8')));
  const up = async () => {
    const r = await twice(['stack', 'up'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^stack up: /);
    return info();
  };

  after(async () => {
    // whatever a failed assertion left running
    await twice(['stack', 'down'], env);
    rmSync(dirname(postgresDataDir(stateDir)), { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('leaves nothing behind, and stack up + re-run completes the sweep', async () => {
    const first = await up();
    const detached = await twice(['run', specFile, '--detach'], env);
    assert.equal(detached.code, 0, detached.stderr);
    const sweepId = detached.stdout.trim().split('\n').at(-1)!;
    await waitUntil(
      'two shards recorded',
      async () => Number((await query<{ n: string }>(first.databaseUrl, 'SELECT count(*) AS n FROM shard_records'))[0]!.n) >= 2,
      300_000,
    );

    const started = groupMembers(first.pid);
    assert.ok(started.length >= 3, `expected PostgreSQL, Temporal and a Python worker in the daemon's group, got ${started.join(',')}`);
    process.kill(first.pid, 'SIGKILL');
    await waitUntil(`the servers the daemon started (${started.join(', ')}) stop`, () => started.every((p) => !alive(p)));
    for (const port of portsOf(first)) assert.equal(await portOpen(port), false, `port ${port} still open`);
    assert.equal(postmasterPid(postgresDataDir(stateDir)), null, 'PostgreSQL left its lock file');

    // a fresh stack resumes the detached sweep; the re-run waits for it or takes its cells
    const second = await up();
    const rerun = await twice(['run', specFile], env);
    assert.equal(rerun.code, 0, rerun.stderr);
    const cells = await query<{ status: string; examples: string }>(
      second.databaseUrl,
      'SELECT c.status, (SELECT count(*) FROM example_results e WHERE e.cell_key = c.key) AS examples FROM cells c',
    );
    assert.deepEqual(
      cells.map((c) => [c.status, Number(c.examples)]),
      [
        ['done', 24],
        ['done', 24],
      ],
    );
    const [shards] = await query<{ n: string }>(second.databaseUrl, 'SELECT count(*) AS n FROM shard_records');
    assert.equal(Number(shards!.n), SHARDS);
    await waitUntil(
      'the detached sweep ends',
      async () => {
        const [s] = await query<{ status: string }>(second.databaseUrl, `SELECT status FROM sweeps WHERE id = '${sweepId}'`);
        return s?.status !== 'running';
      },
      300_000,
    );

    // item 5: a dead PostgreSQL is reported, not papered over with "stack up"
    process.kill(postmasterPid(postgresDataDir(stateDir))!, 'SIGKILL');
    const withDeadDb = await twice(['stack', 'up'], env);
    assert.notEqual(withDeadDb.code, 0);
    assert.doesNotMatch(withDeadDb.stdout, /stack up/);
    assert.match(withDeadDb.stderr, /PostgreSQL at .* does not answer.*stack down/);

    // the watchdog dies too: `stack up` itself stops what is left, and only that
    const orphans = groupMembers(second.pid);
    assert.ok(second.watchdogPid !== null && alive(second.watchdogPid));
    process.kill(second.watchdogPid!, 'SIGKILL');
    process.kill(second.pid, 'SIGKILL');
    await waitUntil('the daemon is gone', () => !alive(second.pid));
    assert.ok(orphans.some(alive), 'nothing was left behind to recover');
    const third = await up();
    assert.deepEqual(orphans.filter(alive), []);

    const down = await twice(['stack', 'down'], env);
    assert.equal(down.code, 0, down.stderr);
    await waitUntil('the last watchdog exits', () => !alive(third.watchdogPid!));
    assert.deepEqual(groupMembers(third.pid), []);
    for (const port of portsOf(third)) assert.equal(await portOpen(port), false, `port ${port} still open`);
    assert.equal(existsSync(join(stateDir, 'stack.json')), false);
  });
});
