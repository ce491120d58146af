// The Grafana dashboard as code: the committed JSON is exactly what dashboards/build.ts generates,
// its provisioning files agree with it, and every SQL query it holds runs on a real migrated
// Postgres seeded with a small known grid (2 models × 2 strategies × 1 task in the selected sweep,
// with prefill benchmark cells for three of those points, plus an older sweep, an out-of-range
// sweep and a sweep of ties) and returns the hand-computed rows.
// Grafana's macros are expanded here the way its Postgres datasource expands them.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { parse } from 'yaml';
import { loadSweepReport } from '../../workers/lib/report/index';
import { paretoFrontier, type ParetoCell } from '../../workflows/pareto';
import { wilsonInterval } from '../../workflows/stats';
import { DATASOURCE, GENERATED_PATH, buildDashboard, renderDashboard } from '../../dashboards/build';
import * as panels from '../../dashboards/panels';
import { repoRoot } from '../../workers/lib/paths';
import { testPostgres } from '../helpers/fixtures';

const FROM = '2026-11-05T00:00:00.000Z';
const TO = '2026-11-21T00:00:00.000Z';
const INTERVAL_SECONDS = 3600;

/** What Grafana's Postgres datasource sends for these macros and a single-value `$sweep`. */
function expand(sql: string, sweep: string): string {
  const out = sql
    .replace(
      /\$__timeGroupAlias\(([^,()]+),\s*\$__interval\)/g,
      (_m, col: string) => `floor(extract(epoch from ${col}) / ${INTERVAL_SECONDS}) * ${INTERVAL_SECONDS} AS "time"`,
    )
    .replace(/\$__timeFilter\(([^()]+)\)/g, (_m, col: string) => `${col} BETWEEN '${FROM}' AND '${TO}'`)
    .replaceAll('$sweep', sweep.replaceAll("'", "''"));
  assert.doesNotMatch(out, /\$\w/, 'a macro or variable was left unexpanded');
  return out;
}

interface SeedShard {
  examples: number;
  prefillSeconds: number;
  prefillTokens: number;
  at: string;
  slices?: Record<string, [nll: number, tokens: number]>;
}
interface SeedCell {
  key: string;
  model: string;
  strategy: string;
  status?: 'done' | 'failed';
  scores: number[];
  shards: SeedShard[];
}

const at = (hhmm: string, day = '2026-11-20') => `${day}T${hhmm}:00.000Z`;
const one = (examples: number, prefillSeconds: number, time: string, slices?: SeedShard['slices']): SeedShard => ({
  examples,
  prefillSeconds,
  prefillTokens: examples * 100,
  at: time,
  slices,
});

// The selected sweep. Prompts/s: based·default 4/0.1 = 40, based·jrt 4/(0.05+0.15) = 20,
// tfpp·default 4/0.4 = 10, tfpp·jrt 4/0.8 = 5 (as accurate as tfpp·default but slower).
const SELECTED: SeedCell[] = [
  {
    key: 'c-based-default',
    model: 'based-360m',
    strategy: 'default',
    scores: [1, 0, 0, 0],
    shards: [one(4, 0.1, at('10:05'), { ar_hit: [20, 10], other: [5, 10], 'ar_hit/dist:0-64': [1000, 1] })],
  },
  {
    key: 'c-based-jrt',
    model: 'based-360m',
    strategy: 'jrt_prompt',
    scores: [1, 1, 0, 0],
    shards: [one(2, 0.05, at('10:20'), { ar_hit: [6, 4], other: [3, 5] }), one(2, 0.15, at('10:40'), { ar_hit: [4, 6], other: [2, 5] })],
  },
  {
    key: 'c-tfpp-default',
    model: 'tfpp-360m',
    strategy: 'default',
    scores: [1, 1, 1, 0],
    shards: [one(4, 0.4, at('11:10'), { ar_hit: [10, 10], other: [10, 20] })],
  },
  { key: 'c-tfpp-jrt', model: 'tfpp-360m', strategy: 'jrt_prompt', scores: [1, 1, 1, 0], shards: [one(4, 0.8, at('11:30'), { ar_hit: [5, 10] })] },
  { key: 'c-mamba-default', model: 'mamba-370m', strategy: 'default', status: 'failed', scores: [], shards: [] },
];
// An older sweep whose only own cell would dominate everything if the sweep filter leaked.
const OLDER: SeedCell[] = [
  {
    key: 'c-old-based',
    model: 'based-360m',
    strategy: 'default',
    scores: [1, 1, 1, 1],
    shards: [one(4, 0.01, at('09:00', '2026-11-10'), { ar_hit: [0, 10] })],
  },
];
// Ties on both axes: p1 loses to p2 at equal speed, p3 to p2 at equal accuracy; p4 and p5 are
// the same point under two names and both stay on the frontier.
const TIES: SeedCell[] = [
  { key: 't-p1', model: 'p1', strategy: 'default', scores: [1, 0], shards: [one(2, 0.2, at('08:00', '2026-10-01'))] },
  { key: 't-p2', model: 'p2', strategy: 'default', scores: [1, 1, 1, 0], shards: [one(4, 0.4, at('08:00', '2026-10-01'))] },
  { key: 't-p3', model: 'p3', strategy: 'default', scores: [1, 1, 1, 0], shards: [one(4, 0.8, at('08:00', '2026-10-01'))] },
  { key: 't-p4', model: 'p4', strategy: 'default', scores: [1, 0, 0, 0], shards: [one(4, 0.2, at('08:00', '2026-10-01'))] },
  { key: 't-p5', model: 'p5', strategy: 'default', scores: [1, 0, 0, 0], shards: [one(4, 0.2, at('08:00', '2026-10-01'))] },
];

/** A finished prefill_throughput cell of `numExamples` points x rounds, cut into `numShards`. */
const benchCell = (key: string, model: string, strategy: string, numExamples: number, numShards: number) => ({
  key,
  modelName: model,
  modelRevision: 'r1',
  modelFamily: model.split('-')[0]!,
  dtype: 'bfloat16',
  taskName: 'prefill_throughput',
  taskVersion: 1,
  taskParams: {},
  taskDataDigest: 'dd',
  strategyName: strategy,
  strategyVersion: 1,
  strategyParams: {},
  generation: {},
  scorer: {},
  numExamples,
  numShards,
  status: 'done' as const,
});

async function seed(db: Awaited<ReturnType<typeof testPostgres>>['db']) {
  const sweeps = [
    { id: 'sw-selected', name: 'recall-grid', createdAt: '2026-11-20T09:00:00.000Z', status: 'completed' },
    { id: 'sw-older', name: 'nightly', createdAt: '2026-11-10T08:00:00.000Z', status: 'completed' },
    { id: 'sw-ties', name: 'ties', createdAt: '2026-10-01T07:00:00.000Z', status: 'completed' },
  ];
  for (const s of sweeps) {
    await db.sweep.create({
      data: {
        id: s.id,
        name: s.name,
        specFile: 'specs/x.yaml',
        specYaml: 'x: 1',
        spec: {},
        specDigest: 'd',
        workflowId: `wf-${s.id}`,
        status: s.status,
        createdAt: new Date(s.createdAt),
        finishedAt: new Date(s.createdAt),
      },
    });
  }
  for (const c of [...SELECTED, ...OLDER, ...TIES]) {
    await db.cell.create({
      data: {
        key: c.key,
        modelName: c.model,
        modelRevision: 'r1',
        modelFamily: c.model.split('-')[0]!,
        dtype: 'bfloat16',
        taskName: 'squad',
        taskVersion: 1,
        taskParams: {},
        taskDataDigest: 'dd',
        strategyName: c.strategy,
        strategyVersion: 1,
        strategyParams: {},
        generation: {},
        scorer: {},
        numExamples: c.scores.length,
        numShards: c.shards.length,
        status: c.status ?? 'done',
      },
    });
    let start = 0;
    for (const [index, s] of c.shards.entries()) {
      await db.exampleResult.createMany({
        data: c.scores.slice(start, start + s.examples).map((score, i) => ({
          cellKey: c.key,
          exampleId: start + i,
          shardIndex: index,
          promptDigest: 'p',
          prediction: 'x',
          gold: ['y'],
          score,
          promptTokens: 100,
          generatedTokens: 1,
        })),
      });
      await db.shardRecord.create({
        data: {
          cellKey: c.key,
          shardIndex: index,
          exampleStart: start,
          exampleEnd: start + s.examples,
          loadSeconds: 1,
          prefillSeconds: s.prefillSeconds,
          decodeSeconds: 0.5,
          prefillTokens: s.prefillTokens,
          batches: 1,
          worker: {},
        },
      });
      await db.sliceStat.createMany({
        data: Object.entries(s.slices ?? {}).map(([slice, [nllSum, tokenCount]]) => ({ cellKey: c.key, shardIndex: index, slice, nllSum, tokenCount })),
      });
      await db.throughputMeasurement.create({
        data: {
          cellKey: c.key,
          shardIndex: index,
          source: 'shard-prefill',
          implementation: c.model,
          tokens: s.prefillTokens,
          seconds: s.prefillSeconds,
          tokensPerSecond: s.prefillTokens / s.prefillSeconds,
          device: 'cuda',
          versions: {},
          createdAt: new Date(s.at),
        },
      });
      start += s.examples;
    }
  }
  const link = (sweepId: string, cells: SeedCell[], reused = false) =>
    db.sweepCell.createMany({ data: cells.map((c) => ({ sweepId, cellKey: c.key, reused })) });
  await link('sw-selected', SELECTED);
  await link('sw-older', OLDER);
  await link(
    'sw-older',
    SELECTED.filter((c) => c.key === 'c-tfpp-default'),
    true,
  );
  await link('sw-ties', TIES);
  // prefill_throughput cells of the selected sweep, each point beside its baseline (dated after
  // the time range, so the time series leaves them out). Benchmark axis: based·jrt_prompt
  // 16 x (2048 + 4096) tokens in 0.03 s = 3,276,800 tok/s at accuracy 0.5; based·default
  // 16 x 2048 in 0.05 s = 655,360 at 0.25 (dominated); tfpp·default 16 x 2048 in 0.1 s =
  // 327,680 at 0.75.
  const benchCells: Array<[key: string, model: string, strategy: string, points: Array<[id: number, n: number, s: number, baseline: number]>]> = [
    [
      'c-bench',
      'based-360m',
      'jrt_prompt',
      [
        [1, 4096, 0.02, 0.1],
        [0, 2048, 0.01, 0.03],
      ],
    ],
    ['c-bench-based-default', 'based-360m', 'default', [[0, 2048, 0.05, 0.03]]],
    ['c-bench-tfpp', 'tfpp-360m', 'default', [[0, 2048, 0.1, 0.03]]],
  ];
  for (const [key, model, strategy, points] of benchCells) {
    await db.cell.create({ data: benchCell(key, model, strategy, points.length, 1) });
    await link('sw-selected', [{ key } as SeedCell]);
    for (const [exampleId, n, measured, baseline] of points) {
      const repeats = strategy === 'jrt_prompt' ? 2 : 1;
      for (const [source, implementation, seconds, processedLen] of [
        ['benchmark', model, measured, repeats * n],
        ['benchmark-baseline', 'sdpa-flash', baseline, n],
      ] as const) {
        await db.throughputMeasurement.create({
          data: {
            cellKey: key,
            shardIndex: 0,
            source,
            exampleId,
            implementation,
            seqLen: n,
            batchSize: 16,
            processedLen,
            tokens: 16 * n,
            seconds,
            minSeconds: seconds,
            runs: 10,
            tokensPerSecond: (16 * n) / seconds,
            device: 'cuda',
            gpuName: 'H200',
            versions: {},
            createdAt: new Date('2026-12-01T00:00:00.000Z'),
          },
        });
      }
    }
  }
  // a kernel benchmark not tied to any cell, in the same hour as based·jrt's shards
  await db.throughputMeasurement.create({
    data: {
      source: 'benchmark',
      implementation: 'based-fla-chunk',
      seqLen: 2048,
      batchSize: 8,
      tokens: 1_000_000,
      seconds: 2,
      tokensPerSecond: 500_000,
      device: 'cuda',
      gpuName: 'H100',
      versions: {},
      createdAt: new Date(at('10:30')),
    },
  });
}

const close = (actual: unknown, expected: number, what: string) =>
  assert.ok(Math.abs(Number(actual) - expected) < 1e-9, `${what}: ${String(actual)} != ${expected}`);

describe('dashboards', () => {
  let fx: Awaited<ReturnType<typeof testPostgres>>;
  let client: pg.Client;
  const ran = new Set<string>();
  const query = async (name: keyof typeof panels, sweep = 'sw-selected') => {
    ran.add(name);
    return (await client.query(expand(panels[name], sweep))).rows as Array<Record<string, unknown>>;
  };

  before(async () => {
    fx = await testPostgres();
    await seed(fx.db);
    client = new pg.Client({ connectionString: fx.url });
    await client.connect();
  });
  after(async () => {
    await client?.end();
    await fx?.stop();
  });

  it('the committed JSON is what dashboards/build.ts generates (run `tsx dashboards/build.ts` if not)', () => {
    assert.ok(existsSync(GENERATED_PATH), `${GENERATED_PATH} is missing (is it committed, not git-ignored?)`);
    assert.equal(readFileSync(GENERATED_PATH, 'utf8'), renderDashboard());
  });

  it('puts every query of panels.ts on the dashboard, each against the provisioned datasource', () => {
    const dash = buildDashboard();
    const variable = dash.templating?.list?.find((v) => v.name === 'sweep');
    assert.equal(variable?.query, panels.SWEEP_VARIABLE_SQL);
    assert.deepEqual(variable?.datasource, DATASOURCE);
    const targets = (dash.panels ?? []).flatMap((p) => ('targets' in p ? (p.targets ?? []) : [])) as unknown as Array<{
      rawSql: string;
      datasource: unknown;
      refId: string;
    }>;
    for (const t of targets) assert.deepEqual(t.datasource, DATASOURCE);
    const onDashboard = new Set([...targets.map((t) => t.rawSql), String(variable?.query)]);
    assert.deepEqual(new Set(Object.values(panels)), onDashboard);
    const xy = (dash.panels ?? []).find((p) => p.type === 'xychart') as unknown as { targets: Array<{ rawSql: string; refId: string }> };
    assert.deepEqual(
      xy.targets.map((t) => [t.refId, t.rawSql]),
      [
        ['A', panels.QUALITY_THROUGHPUT_SQL],
        ['B', panels.PARETO_FRONTIER_SQL],
      ],
    );
  });

  it('provisions the datasource uid and type the panels use, and loads dashboards from files', () => {
    const ds = parse(readFileSync(join(repoRoot, 'dashboards/provisioning/datasources/twice.yaml'), 'utf8'));
    assert.deepEqual({ uid: ds.datasources[0].uid, type: ds.datasources[0].type }, DATASOURCE);
    assert.equal(ds.datasources[0].secureJsonData.password, '$TWICE_PG_PASSWORD');
    const dashboards = parse(readFileSync(join(repoRoot, 'dashboards/provisioning/dashboards/twice.yaml'), 'utf8'));
    assert.equal(dashboards.providers[0].type, 'file');
    assert.equal(dashboards.providers[0].allowUiUpdates, false);
  });

  it('$sweep offers every sweep, newest first, valued by id', async () => {
    const rows = await query('SWEEP_VARIABLE_SQL');
    assert.deepEqual(
      rows.map((r) => r.__value),
      ['sw-selected', 'sw-older', 'sw-ties'],
    );
    assert.equal(rows[0]!.__text, 'recall-grid · 2026-11-20 09:00 · sw-selected');
  });

  it('latest sweeps: those in the time range, newest first, with their cell counts', async () => {
    const rows = await query('LATEST_SWEEPS_SQL');
    assert.deepEqual(
      rows.map((r) => [r.sweep, r.cells, r.cells_done, r.cells_failed, r.cells_reused]),
      [
        ['sw-selected', 8, 7, 1, 0],
        ['sw-older', 2, 2, 0, 1],
      ],
    );
  });

  it('accuracy per model × task × strategy of the selected sweep, with its 95% interval', async () => {
    const rows = await query('ACCURACY_SQL');
    const expected: Array<[string, string, number]> = [
      ['based-360m', 'default', 0.25],
      ['based-360m', 'jrt_prompt', 0.5],
      ['tfpp-360m', 'default', 0.75],
      ['tfpp-360m', 'jrt_prompt', 0.75],
    ];
    assert.deepEqual(
      rows.map((r) => [r.model, r.task, r.strategy, r.examples]),
      expected.map(([m, s]) => [m, 'squad', s, 4]),
    );
    rows.forEach((r, i) => {
      const p = expected[i]![2];
      close(r.accuracy, p, `accuracy ${i}`);
      const wilson = wilsonInterval(Math.round(p * 4), 4);
      close(r.ci95_lo, wilson.lo, `ci95_lo ${i}`);
      close(r.ci95_hi, wilson.hi, `ci95_hi ${i}`);
    });
  });

  it('JRT-Prompt gain is accuracy(jrt_prompt) − accuracy(default) per model and task', async () => {
    const rows = await query('JRT_GAIN_SQL');
    assert.deepEqual(
      rows.map((r) => [r.model, r.task]),
      [
        ['based-360m', 'squad'],
        ['tfpp-360m', 'squad'],
      ],
    );
    close(rows[0]!.jrt_gain, 0.5 - 0.25, 'based gain');
    close(rows[1]!.jrt_gain, 0.75 - 0.75, 'tfpp gain');
    close(rows[0]!.default_accuracy, 0.25, 'based default');
    close(rows[0]!.jrt_prompt_accuracy, 0.5, 'based jrt');
  });

  it('quality vs throughput: one point per model × strategy, prompts/s from prefill time', async () => {
    const rows = await query('QUALITY_THROUGHPUT_SQL');
    const expected: Array<[string, number, number]> = [
      ['tfpp-360m · jrt_prompt', 5, 0.75],
      ['tfpp-360m · default', 10, 0.75],
      ['based-360m · jrt_prompt', 20, 0.5],
      ['based-360m · default', 40, 0.25],
    ];
    assert.deepEqual(
      rows.map((r) => r.point),
      expected.map((e) => e[0]),
    );
    rows.forEach((r, i) => {
      close(r.prompts_per_second, expected[i]![1], `${r.point} prompts/s`);
      close(r.accuracy, expected[i]![2], `${r.point} accuracy`);
    });
  });

  it('the Pareto frontier returns exactly the non-dominated points, ties included', async () => {
    const selected = await query('PARETO_FRONTIER_SQL');
    assert.deepEqual(
      selected.map((r) => r.frontier_point),
      ['tfpp-360m · default', 'based-360m · jrt_prompt', 'based-360m · default'],
    );
    const ties = await query('PARETO_FRONTIER_SQL', 'sw-ties');
    assert.deepEqual(
      ties.map((r) => r.frontier_point),
      ['p2 · default', 'p4 · default', 'p5 · default'],
    );
    const older = await query('PARETO_FRONTIER_SQL', 'sw-older');
    assert.deepEqual(
      older.map((r) => r.frontier_point),
      ['based-360m · default'],
    );
    close(older[0]!.frontier_prompts_per_second, 400, 'older sweep point');

    // and it agrees with the sweep report's frontier (workflows/pareto.ts) on every sweep
    for (const sweep of ['sw-selected', 'sw-ties', 'sw-older']) {
      const points = await query('QUALITY_THROUGHPUT_SQL', sweep);
      const frontier = await query('PARETO_FRONTIER_SQL', sweep);
      const reference = paretoFrontier(
        points.map(
          (p) =>
            ({
              model: String(p.point),
              strategy: '',
              accuracy: Number(p.accuracy),
              promptsPerSecond: Number(p.prompts_per_second),
              examples: 1,
            }) as ParetoCell,
        ),
      )
        .points.filter((p) => p.onFrontier)
        .map((p) => p.model)
        .sort();
      assert.deepEqual(frontier.map((r) => String(r.frontier_point)).sort(), reference, sweep);
    }
  });

  it('slice perplexity: exp(Σnll / Σtokens) on AR hits and other tokens, bins left out', async () => {
    const rows = await query('SLICE_PERPLEXITY_SQL');
    assert.deepEqual(
      rows.map((r) => r.model),
      ['based-360m · default', 'based-360m · jrt_prompt', 'tfpp-360m · default', 'tfpp-360m · jrt_prompt'],
    );
    const expected: Array<[number, number | null]> = [
      [Math.exp(20 / 10), Math.exp(5 / 10)],
      [Math.exp((6 + 4) / (4 + 6)), Math.exp((3 + 2) / (5 + 5))],
      [Math.exp(10 / 10), Math.exp(10 / 20)],
      [Math.exp(5 / 10), null],
    ];
    rows.forEach((r, i) => {
      close(r.ar_hit, expected[i]![0], `${r.model} ar_hit`);
      if (expected[i]![1] === null) assert.equal(r.other, null);
      else close(r.other, expected[i]![1]!, `${r.model} other`);
    });
  });

  it('prefill tokens/s per model over time: tokens over seconds per bucket, inside the time range', async () => {
    const rows = await query('PREFILL_THROUGHPUT_SQL');
    const hour = (iso: string) => Math.floor(Date.parse(iso) / 1000 / INTERVAL_SECONDS) * INTERVAL_SECONDS;
    assert.deepEqual(
      rows.map((r) => [Number(r.time), r.metric]),
      [
        [hour(at('09:00', '2026-11-10')), 'based-360m · shard-prefill'],
        [hour(at('10:00')), 'based-360m · shard-prefill'],
        [hour(at('10:00')), 'based-fla-chunk · benchmark'],
        [hour(at('11:00')), 'tfpp-360m · shard-prefill'],
      ],
    );
    // 10:00 bucket for based: shards of 400, 200 and 200 tokens over 0.1 + 0.05 + 0.15 s
    close(rows[1]!.prefill_tokens_per_second, (400 + 200 + 200) / (0.1 + 0.05 + 0.15), 'based 10:00');
    close(rows[2]!.prefill_tokens_per_second, 500_000, 'benchmark');
    close(rows[3]!.prefill_tokens_per_second, (400 + 400) / (0.4 + 0.8), 'tfpp 11:00');
    close(rows[0]!.prefill_tokens_per_second, 400 / 0.01, 'older sweep');
  });

  it('prefill benchmark: each point beside its baseline, speed-up = baseline / measured; the report reads the same rows', async () => {
    const rows = await query('PREFILL_BENCHMARK_SQL');
    assert.deepEqual(
      rows.map((r) => [r.model, r.strategy, r.n, r.tokens_per_sequence, r.baseline]),
      [
        ['based-360m', 'default', 2048, 2048, 'sdpa-flash'],
        ['based-360m', 'jrt_prompt', 2048, 4096, 'sdpa-flash'],
        ['based-360m', 'jrt_prompt', 4096, 8192, 'sdpa-flash'],
        ['tfpp-360m', 'default', 2048, 2048, 'sdpa-flash'],
      ],
    );
    close(rows[1]!.speedup, 3, 'speed-up at 2048');
    close(rows[2]!.speedup, 5, 'speed-up at 4096');
    assert.equal((await query('PREFILL_BENCHMARK_SQL', 'sw-older')).length, 0);
    const report = await loadSweepReport(fx.db, 'sw-selected');
    assert.deepEqual(
      report.benchmarks.filter((b) => b.strategy === 'jrt_prompt').map((b) => [b.seqLen, b.seconds, b.baselineSeconds]),
      [
        [2048, 0.01, 0.03],
        [4096, 0.02, 0.1],
      ],
    );
    assert.ok(report.cells.every((c) => c.task !== 'prefill_throughput'));
  });

  it('quality vs benchmark throughput: only points with both, and their frontier agrees with the report', async () => {
    const points = await query('QUALITY_BENCHMARK_SQL');
    assert.deepEqual(
      points.map((r) => r.point),
      ['tfpp-360m · default', 'based-360m · default', 'based-360m · jrt_prompt'],
    );
    close(points[0]!.tokens_per_second, 327_680, 'tfpp default');
    close(points[1]!.tokens_per_second, 655_360, 'based default');
    close(points[2]!.tokens_per_second, 3_276_800, 'based jrt');
    const frontier = await query('PARETO_BENCHMARK_FRONTIER_SQL');
    assert.deepEqual(
      frontier.map((r) => r.frontier_point),
      ['tfpp-360m · default', 'based-360m · jrt_prompt'],
    );
    // the report's frontier on the same axis (its points also need benchmark rows for every point,
    // so only the three benchmarked points are given here)
    const report = await loadSweepReport(fx.db, 'sw-selected');
    const benchmarked = report.cells.filter((c) => c.model !== 'tfpp-360m' || c.strategy === 'default');
    const { axis, points: reportPoints } = paretoFrontier(benchmarked, report.benchmarks);
    assert.equal(axis, 'benchmark');
    assert.deepEqual(
      reportPoints
        .filter((p) => p.onFrontier)
        .map((p) => `${p.model} · ${p.strategy}`)
        .sort(),
      frontier.map((r) => String(r.frontier_point)).sort(),
    );
  });

  it('prefill benchmark over rounds: a point timed in several shards is one row, its median over every run', async () => {
    // one cell, two points (2048 and 4096 tokens), timed over three rounds: round r is the shard
    // holding examples [2r, 2r + 2), one timed run per point and one of its baseline
    const sweepId = 'sw-rounds';
    const key = 'c-rounds';
    const measured: Record<number, number[]> = { 2048: [0.04, 0.01, 0.02], 4096: [0.2, 0.1, 0.3] };
    const baseline: Record<number, number[]> = { 2048: [0.03, 0.05, 0.04], 4096: [0.09, 0.07, 0.08] };
    await fx.db.sweep.create({
      data: {
        id: sweepId,
        name: 'rounds',
        specFile: 'specs/x.yaml',
        specYaml: 'x: 1',
        spec: {},
        specDigest: 'd',
        workflowId: `wf-${sweepId}`,
        status: 'completed',
      },
    });
    await fx.db.cell.create({ data: benchCell(key, 'based-360m', 'default', 6, 3) });
    await fx.db.sweepCell.create({ data: { sweepId, cellKey: key, reused: false } });
    try {
      for (let round = 0; round < 3; round++) {
        for (const [point, n] of [2048, 4096].entries()) {
          for (const [source, implementation, seconds] of [
            ['benchmark', 'based-360m', measured[n]![round]!],
            ['benchmark-baseline', 'sdpa-flash', baseline[n]![round]!],
          ] as const) {
            await fx.db.throughputMeasurement.create({
              data: {
                cellKey: key,
                shardIndex: 2 * round,
                source,
                exampleId: 2 * round + point,
                implementation,
                seqLen: n,
                batchSize: 16,
                processedLen: n,
                tokens: 16 * n,
                seconds,
                minSeconds: seconds,
                runs: 1,
                runSeconds: [seconds],
                tokensPerSecond: (16 * n) / seconds,
                device: 'cpu',
                versions: {},
              },
            });
          }
        }
      }
      const rows = await query('PREFILL_BENCHMARK_SQL', sweepId);
      assert.deepEqual(
        rows.map((r) => [r.n, r.run_seconds, r.min_seconds]),
        [
          [2048, [0.04, 0.01, 0.02], 0.01],
          [4096, [0.2, 0.1, 0.3], 0.1],
        ],
      );
      close(rows[0]!.seconds, 0.02, 'median at 2048');
      close(rows[0]!.baseline_seconds, 0.04, 'baseline median at 2048');
      close(rows[0]!.tokens_per_second, (16 * 2048) / 0.02, 'tok/s at 2048');
      close(rows[1]!.speedup, 0.08 / 0.2, 'speed-up at 4096');
      // the report and the benchmark axis read the same medians
      const report = await loadSweepReport(fx.db, sweepId);
      assert.deepEqual(
        report.benchmarks.map((b) => [b.seqLen, b.seconds, b.runSeconds, b.baselineSeconds]),
        [
          [2048, 0.02, [0.04, 0.01, 0.02], 0.04],
          [4096, 0.2, [0.2, 0.1, 0.3], 0.08],
        ],
      );
      // the selected sweep's based·default recall cell gives the point its accuracy
      await fx.db.sweepCell.create({ data: { sweepId, cellKey: 'c-based-default', reused: true } });
      const [point] = await query('QUALITY_BENCHMARK_SQL', sweepId);
      close(point!.tokens_per_second, (16 * (2048 + 4096)) / (0.02 + 0.2), 'benchmark axis');
    } finally {
      await fx.db.sweep.delete({ where: { id: sweepId } });
      await fx.db.cell.delete({ where: { key } });
    }
  });

  it('ran every query in panels.ts', () => {
    assert.deepEqual([...ran].sort(), Object.keys(panels).sort());
  });
});
