// Benchmark (not a test): response times of the dashboard's API behind the grid, the cell
// drill-down and the compare view on a synthetic sweep of 200 cells x 3,000 examples (600,000
// example rows) in the embedded PostgreSQL, with the query plans behind them.
//   npx tsx test/bench/dashboard.bench.ts [--requests 40] [--out docs/measurements/<file>.md]
// The rows are synthetic (generate_series), the server, database and queries are the real ones.
import { Client, Connection } from '@temporalio/client';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { testPostgres } from '../helpers/fixtures';
import { Prisma } from '../../generated/prisma/client';
import { flipsQuery, slotsQuery } from '../../workers/lib/compare';
import { cellRowsQuery, jrtMarginsQuery } from '../../workers/lib/report/load';
import { examplesQuery } from '../../workers/lib/web/data';
import { startWebServer } from '../../workers/lib/web/server';

const { values: args } = parseArgs({ options: { requests: { type: 'string', default: '40' }, out: { type: 'string' } } });
const REQUESTS = Number(args.requests);
const MODELS = 10;
const TASKS = 5;
const STRATEGIES = 4;
const EXAMPLES = 3000;

const lines: string[] = [];
const say = (line = '') => {
  lines.push(line);
  process.stdout.write(`${line}\n`);
};

const pg = await testPostgres();
try {
  const started = Date.now();
  // two sweeps over the same grid (two nights of a schedule): the second with its own cells, so
  // the compare view pairs 200 cells of 3,000 examples each
  await pg.db.$executeRawUnsafe(`
    INSERT INTO sweeps (id, name, spec_file, spec_yaml, spec, spec_digest, workflow_id, status, created_at, finished_at)
    SELECT 'bench-' || n, 'bench', 'specs/bench.yaml', 'name: bench', '{}', 'd', 'sweep/bench-' || n, 'completed',
           now() - (3 - n) * interval '1 day', now() - (3 - n) * interval '1 day' + interval '1 hour'
      FROM generate_series(1, 2) n`);
  await pg.db.$executeRawUnsafe(`
    INSERT INTO cells (key, model_name, model_revision, model_family, dtype, task_name, task_version, task_params, task_data_digest,
                       strategy_name, strategy_version, strategy_params, generation, scorer, slices, num_examples, num_shards, status, provenance, finished_at)
    SELECT md5(n || '-' || m || '-' || t || '-' || s) || md5('k' || n || m || t || s), 'model-' || m, 'r', 'based', 'float32',
           'mqar', 1, jsonb_build_object('seed', 0, 'numKvPairs', 4 * t), 'd', CASE WHEN s = 0 THEN 'default' ELSE 'jrt_prompt' END, 1,
           jsonb_build_object('repeats', s + 1), '{}', '{"name":"contains","version":1}', '{}', ${EXAMPLES}, ${EXAMPLES / 100}, 'done', '{}', now()
      FROM generate_series(1, 2) n, generate_series(1, ${MODELS}) m, generate_series(1, ${TASKS}) t, generate_series(0, ${STRATEGIES - 1}) s`);
  await pg.db.$executeRawUnsafe(`
    INSERT INTO sweep_cells (sweep_id, cell_key, reused)
    SELECT 'bench-' || n, md5(n || '-' || m || '-' || t || '-' || s) || md5('k' || n || m || t || s), false
      FROM generate_series(1, 2) n, generate_series(1, ${MODELS}) m, generate_series(1, ${TASKS}) t, generate_series(0, ${STRATEGIES - 1}) s`);
  await pg.db.$executeRawUnsafe(`
    INSERT INTO shard_records (cell_key, shard_index, example_start, example_end, load_seconds, prefill_seconds, decode_seconds, prefill_tokens, batches, worker)
    SELECT c.key, i, i * 100, i * 100 + 100, 0.1, 0.5 + random(), 1, 100 * 300, 7, '{}'
      FROM cells c, generate_series(0, ${EXAMPLES / 100 - 1}) i`);
  await pg.db.$executeRawUnsafe(`
    INSERT INTO example_results (cell_key, example_id, shard_index, prompt_digest, prediction, gold, score, prompt_tokens, generated_tokens)
    SELECT c.key, i, i / 100, md5(i::text) || md5(c.key || i), 'value ' || (i % 97), to_jsonb('value ' || (i % 89)),
           CASE WHEN random() < 0.3 + 0.1 * (hashtext(c.model_name) % 5) THEN 1 ELSE 0 END, 300, 2
      FROM cells c, generate_series(0, ${EXAMPLES - 1}) i`);
  await pg.db.$executeRawUnsafe(`
    INSERT INTO slice_stats (cell_key, shard_index, slice, nll_sum, token_count)
    SELECT c.key, i, sl, 1000 * random(), 500
      FROM cells c, generate_series(0, ${EXAMPLES / 100 - 1}) i, unnest(ARRAY['ar_hit', 'other']) sl`);
  await pg.db.$executeRawUnsafe('VACUUM ANALYZE');
  const rows = await pg.db.exampleResult.count();
  say(`# Dashboard API benchmark`);
  say();
  // the machine is shared: the load average says how far the figures are from an idle machine's
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ');
  say(
    `${new Date().toISOString()}: ${rows.toLocaleString('en-US')} example rows in ${MODELS * TASKS * STRATEGIES * 2} cells of 2 sweeps, loaded in ${((Date.now() - started) / 1000).toFixed(1)} s; ${REQUESTS} requests per endpoint after 3 warm-up requests, one at a time.`,
  );
  say();

  // cancel and re-run are not benchmarked: the client needs no live Temporal for reads
  const client = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
  const web = await startWebServer({ db: pg.db, client });
  const cell = (await pg.db.sweepCell.findFirstOrThrow({ where: { sweepId: 'bench-2' }, orderBy: { cellKey: 'asc' } })).cellKey;
  const { modelName, taskName, strategyName, strategyParams } = await pg.db.cell.findUniqueOrThrow({ where: { key: cell } });
  const baseCell = (
    await pg.db.cell.findFirstOrThrow({
      where: { modelName, taskName, strategyName, strategyParams: { equals: strategyParams ?? {} }, sweeps: { some: { sweepId: 'bench-1' } } },
    })
  ).key;
  const endpoints: Array<[string, string]> = [
    ['grid (sweep report JSON)', '/api/sweeps/bench-2'],
    ['sweeps list', '/api/sweeps'],
    ['cell drill-down, page 30 of 60', `/api/cells/${cell}/examples?offset=1450&limit=50`],
    ['cell drill-down, wrong only, last page', `/api/cells/${cell}/examples?wrong=1&offset=1950&limit=50`],
    ['cell page (HTML)', `/cells/${cell}?offset=2950`],
    ['compare two sweeps (200 cells paired)', '/api/compare?base=bench-1&other=bench-2'],
    ['compare: one page of flipped examples', `/api/compare/flips?base=${baseCell}&other=${cell}&offset=200&limit=100`],
    ['JRT-Prompt margins per model', '/api/sweeps/bench-2/margins'],
    ['sweep page (HTML, charts and margins)', '/sweeps/bench-2'],
  ];
  // the views must hold the whole grid, or the figures would time empty answers: the cells are
  // recall cells (mqar, five parameter settings), which the grid and the comparison keep
  const grid = (await (await fetch(`${web.url}/api/sweeps/bench-2`)).json()) as { cells: unknown[]; pareto: unknown[] };
  const paired = (await (await fetch(`${web.url}/api/compare?base=bench-1&other=bench-2`)).json()) as { cells: unknown[] };
  const cellsPerSweep = MODELS * TASKS * STRATEGIES;
  if (grid.cells.length !== cellsPerSweep || paired.cells.length !== cellsPerSweep) {
    throw new Error(`the grid shows ${grid.cells.length} cells and the comparison pairs ${paired.cells.length}, expected ${cellsPerSweep} each`);
  }
  say(`The grid answers with ${grid.cells.length} cells and ${grid.pareto.length} Pareto points; the comparison pairs ${paired.cells.length} cells.`);
  say();
  say(`Load average (1 / 5 / 15 min) before the requests: ${load()}.`);
  say();
  // CPU ms per request (this process: the server and the client's fetch): what the requests cost
  // the machine, which a busy machine stretches far less than their wall time
  say('| endpoint | p50 ms | p95 ms | max ms | CPU ms per request |');
  say('| --- | --- | --- | --- | --- |');
  for (const [name, path] of endpoints) {
    const times: number[] = [];
    let cpu = process.cpuUsage();
    for (let i = 0; i < REQUESTS + 3; i++) {
      if (i === 3) cpu = process.cpuUsage();
      const t0 = performance.now();
      const res = await fetch(`${web.url}${path}`);
      await res.text();
      if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
      if (i >= 3) times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const q = (p: number) => times[Math.min(times.length - 1, Math.ceil(p * times.length) - 1)]!.toFixed(1);
    const used = process.cpuUsage(cpu);
    say(`| ${name} | ${q(0.5)} | ${q(0.95)} | ${q(1)} | ${((used.user + used.system) / 1000 / REQUESTS).toFixed(1)} |`);
  }
  say();
  say(`Load average (1 / 5 / 15 min) at the end of the requests: ${load()}.`);
  await web.close();

  say();
  say('## Query plans');
  const explain = async (title: string, query: Prisma.Sql) => {
    const plan = await pg.db.$queryRaw<Array<{ 'QUERY PLAN': string }>>(Prisma.sql`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${query}`);
    say();
    say(`### ${title}`);
    say();
    say('```');
    for (const r of plan) say(r['QUERY PLAN']);
    say('```');
  };
  await explain('grid: per-cell totals, accuracy and prefill totals', cellRowsQuery('bench-2'));
  await explain('compare: 200 cells paired by slot, counts from their bitmaps', slotsQuery('bench-1', 'bench-2'));
  await explain('compare: one page of flipped examples', flipsQuery(baseCell, cell, { offset: 200, limit: 100 }));
  await explain('drill-down: one page of examples', examplesQuery(cell, { wrongOnly: false, offset: 1450, limit: 50 }));
  await explain('drill-down: the last page of wrong examples', examplesQuery(cell, { wrongOnly: true, offset: 1950, limit: 50 }));
  await explain('JRT-Prompt margins per model', jrtMarginsQuery('bench-2'));
} finally {
  await pg.stop();
}
if (args.out) {
  writeFileSync(args.out, `${lines.join('\n')}\n`);
  process.stdout.write(`written to ${args.out}\n`);
}
