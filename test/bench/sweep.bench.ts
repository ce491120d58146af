// Where each second of a sweep goes (issue 17, orchestration): a 100-cell sweep of small shards
// (debug models, 4 examples a cell, one CPU worker) on the embedded stack, timed end to end, with
// the worker's and the recording activity's own figures per phase; optionally the same sweep on
// another commit's code in the same run, for a before/after.
//
//   npx tsx test/bench/sweep.bench.ts [--before <git ref>] [--out docs/measurements/<file>.md]
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { startSweep } from '../../workers/lib/sweeps';
import { repoRoot } from '../../workers/lib/paths';
import { testStack } from '../helpers/fixtures';
import { activityTimeline } from '../helpers/history';

const SEEDS = 25;
const SPEC = `
name: bench-debug-100
models: [debug-based-bytes, debug-attn-bytes]
tasks:
${Array.from({ length: SEEDS }, (_, i) => `  - { name: mqar, params: { numExamples: 4, numKvPairs: 4, seed: ${1000 + i} } }`).join('\n')}
strategies: [default, jrt_prompt]
generation: { maxNewTokens: 4, batchSize: 4 }
# the slice pass was not timed before the phases were recorded; without it both sides compare
slices: false
execution: { shardSize: 4, device: cpu }
`;

export interface SweepFigures {
  label: string;
  commit: string;
  cells: number;
  shards: number;
  wallSeconds: number;
  /** seconds summed over shards, as the worker and the recording activity reported them */
  phases: Record<string, number>;
  busyPercent: number;
  /** shards that loaded their model first: the sweep's model loads */
  modelLoads: number;
  /** from the workflow's history: how the server saw the activities */
  timeline: Record<string, number>;
}

// Columns that a commit's shard_records may or may not have: the bench reads what is there, so
// the same file measures code from before the phases were recorded.
const PHASE_COLUMNS = [
  'queue_seconds',
  'data_seconds',
  'load_seconds',
  'prefill_seconds',
  'decode_seconds',
  'nll_seconds',
  'scoring_seconds',
  'record_seconds',
];
// what holds the device
const COMPUTE = ['load_seconds', 'prefill_seconds', 'decode_seconds', 'nll_seconds'];

async function measureHere(label: string): Promise<SweepFigures> {
  const stack = await testStack({ pythonWorkers: 1 });
  try {
    const dir = mkdtempSync(join(tmpdir(), 'twice-bench-'));
    const file = join(dir, 'bench.yaml');
    writeFileSync(file, SPEC);
    const started = performance.now();
    const { handle } = await startSweep(stack.client, file);
    const result = await handle.result();
    const wallSeconds = (performance.now() - started) / 1000;
    const timeline = await activityTimeline(handle);
    rmSync(dir, { recursive: true, force: true });
    if (result.status !== 'completed') throw new Error(`the bench sweep ended ${result.status}: ${JSON.stringify(result.failures)}`);
    const present = (
      await stack.db.$queryRaw<Array<{ column_name: string }>>`SELECT column_name FROM information_schema.columns WHERE table_name = 'shard_records'`
    ).map((r) => r.column_name);
    const columns = PHASE_COLUMNS.filter((c) => present.includes(c));
    const sums = await stack.db.$queryRawUnsafe<Array<Record<string, number>>>(
      `SELECT count(*)::float8 AS shards, count(*) FILTER (WHERE load_seconds > 0)::float8 AS loads, ${columns.map((c) => `sum(${c})::float8 AS ${c}`).join(', ')} FROM shard_records`,
    );
    const row = sums[0]!;
    const phases = Object.fromEntries(columns.map((c) => [c.replace(/_seconds$/, ''), row[c] ?? 0]));
    const compute = COMPUTE.reduce((s, c) => s + (row[c] ?? 0), 0);
    return {
      label,
      // a tree measured with --before is an archive, without git
      commit: process.env.TWICE_BENCH_COMMIT ?? execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim(),
      cells: result.cells.total,
      shards: row.shards ?? 0,
      wallSeconds,
      phases,
      busyPercent: (100 * compute) / wallSeconds,
      modelLoads: row.loads ?? 0,
      timeline,
    };
  } finally {
    await stack.stop();
  }
}

/** The same measurement on another commit's code: its tree, this clone's installed packages. */
function measureAt(ref: string): SweepFigures {
  const dir = mkdtempSync(join(tmpdir(), 'twice-bench-tree-'));
  try {
    execFileSync('sh', ['-c', `git archive ${JSON.stringify(ref)} | tar -x -C ${JSON.stringify(dir)}`], { cwd: repoRoot });
    symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
    // the toolchain this clone installed (Python, Temporal CLI), and that commit's Prisma client
    mkdirSync(join(dir, '.twice'));
    copyFileSync(join(repoRoot, '.twice', 'toolchain.json'), join(dir, '.twice', 'toolchain.json'));
    execFileSync(join(repoRoot, 'node_modules', '.bin', 'prisma'), ['generate'], {
      cwd: dir,
      stdio: 'ignore',
      env: {
        ...process.env,
        PRISMA_SCHEMA_ENGINE_BINARY: join(dir, 'scripts', 'prisma-engine-stub', 'README'),
        DATABASE_URL: 'postgresql://unused@127.0.0.1:1/unused',
      },
    });
    // this bench and the helper it reads histories with, as they are here
    const self = relative(repoRoot, new URL(import.meta.url).pathname);
    for (const file of [self, join('test', 'helpers', 'history.ts')]) writeFileSync(join(dir, file), readFileSync(join(repoRoot, file)));
    const out = join(dir, 'figures.json');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, self), '--json', out, '--label', `before (${ref})`], {
      cwd: dir,
      stdio: 'inherit',
      env: { ...process.env, TWICE_BENCH_COMMIT: execFileSync('git', ['rev-parse', '--short', ref], { cwd: repoRoot, encoding: 'utf8' }).trim() },
    });
    if (r.status !== 0) throw new Error(`the bench on ${ref} failed (exit ${r.status})`);
    return JSON.parse(readFileSync(out, 'utf8')) as SweepFigures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** From the first shard's start to the last one's end: the worker never waits on an empty window here. */
const shardSpan = (r: SweepFigures) => (r.timeline['run_shard last ended at (s)'] ?? NaN) - (r.timeline['run_shard first started at (s)'] ?? NaN);
const fixed = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(2));

function table(runs: SweepFigures[]): string {
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.phases)))];
  const rows = [
    ['', ...runs.map((r) => r.label)],
    ['commit', ...runs.map((r) => r.commit)],
    ['cells / shards', ...runs.map((r) => `${r.cells} / ${r.shards}`)],
    ['sweep wall (s)', ...runs.map((r) => r.wallSeconds.toFixed(1))],
    ...names.map((n) => [`${n} (s, summed)`, ...runs.map((r) => (n in r.phases ? r.phases[n]!.toFixed(2) : 'n/a'))]),
    // the denominators, said once: "wall" runs from the client's start request to its result;
    // the workflow's own span from its first history event to its last
    ['workflow span, first to last history event (s)', ...runs.map((r) => fixed(r.timeline.historySeconds))],
    // the wall, split: the client's start request and result outside the workflow, the head, the
    // shards, the tail (the rows below); their sum is the wall
    ['client to workflow and back (s, wall minus the workflow span)', ...runs.map((r) => fixed(r.wallSeconds - r.timeline.historySeconds!))],
    ['before the first shard started (s, from the first history event)', ...runs.map((r) => fixed(r.timeline['run_shard first started at (s)']))],
    [
      'after the last shard ended (s, to the last history event)',
      ...runs.map((r) => fixed(r.timeline.historySeconds! - r.timeline['run_shard last ended at (s)']!)),
    ],
    ['worker busy (load+prefill+decode / wall)', ...runs.map((r) => `${r.busyPercent.toFixed(1)}%`)],
    // the sweep's fixed costs (resolving, registering, closing) left out: the share of the time
    // from the first shard's start to the last one's end that the worker computed
    [
      'worker busy while shards ran (/ first shard start to last shard end)',
      ...runs.map((r) => {
        const span = shardSpan(r);
        return span ? `${((r.busyPercent * r.wallSeconds) / span).toFixed(1)}%` : 'n/a';
      }),
    ],
    // the same from the first shard's start to the last one's end, as seconds: what is left
    ['worker idle while shards ran (s)', ...runs.map((r) => fixed(shardSpan(r) - (r.busyPercent * r.wallSeconds) / 100))],
    ['worker idle while shards ran, per shard (ms)', ...runs.map((r) => fixed((1000 * (shardSpan(r) - (r.busyPercent * r.wallSeconds) / 100)) / r.shards))],
    // busy >= 95% of the wall leaves, at this much compute, compute / 0.95 - compute of idle
    ['idle the goal of 95% busy allows at this compute (s)', ...runs.map((r) => fixed(((r.busyPercent * r.wallSeconds) / 100) * (1 / 0.95 - 1)))],
    ['idle (s, wall minus load+prefill+decode)', ...runs.map((r) => fixed(r.wallSeconds * (1 - r.busyPercent / 100)))],
    ['model loads (models in the grid: 2)', ...runs.map((r) => String(r.modelLoads))],
    ...[...new Set(runs.flatMap((r) => Object.keys(r.timeline)))].map((n) => [
      `history: ${n}`,
      ...runs.map((r) => (n in r.timeline ? String(+r.timeline[n]!.toFixed(2)) : 'n/a')),
    ]),
  ];
  return rows
    .map((r) => `| ${r.join(' | ')} |`)
    .join('\n')
    .replace(/\n/, `\n|${rows[0]!.map(() => ' --- |').join('')}\n`);
}

const { values } = parseArgs({
  options: { before: { type: 'string' }, out: { type: 'string' }, json: { type: 'string' }, label: { type: 'string' } },
});
const runs: SweepFigures[] = [];
if (values.before) runs.push(measureAt(values.before));
const here = await measureHere(values.label ?? 'after (this tree)');
runs.push(here);
if (values.json) writeFileSync(values.json, JSON.stringify(here));
const text = table(runs);
console.log(text);
if (values.out) writeFileSync(values.out, text + '\n');
