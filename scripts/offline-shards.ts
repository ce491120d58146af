// A sweep's recall shards without the stack, for a machine that has a GPU but no Temporal or
// PostgreSQL (the lent GPU machines):
//   payloads <spec> <out.json>     the run_shard inputs the sweep workflow would send for the spec:
//                                  the same cells, keys and shards (expandCells, shardsOf)
//   margins <spec> <results.jsonl> [--json out.json]
//                                  reads what `python -m twice_inference.offline` wrote (one
//                                  {request, output} per shard, the worker's own run_shard output)
//                                  and prints each JRT layout's margin over default per model,
//                                  pooled over tasks as the sweep report does, and per task, with
//                                  the report's paired (Newcombe) interval
// Only generated tasks: a dataset's size and digest come from a worker's describe_task.
import { readFileSync, writeFileSync } from 'node:fs';
import { createCatalogActivities } from '../activities/catalog';
import { RunShardOutput, type RunShardInput } from '../workflows/contract';
import { pairedDifferenceInterval, type Interval, type PairedCounts } from '../workflows/stats';
import {
  digestOf,
  expandCells,
  resolveGeneratedTask,
  roundMajor,
  shardRequest,
  shardWidth,
  shardsOf,
  type Cell,
  type ResolvedSweep,
} from '../workflows/sweep-spec';
import { readSpec } from '../workers/lib/sweeps';
import { repoRoot } from '../workers/lib/paths';

/** The cells of a spec of generated tasks, resolved as the sweep workflow resolves them. */
export async function cellsOf(specFile: string): Promise<Cell[]> {
  const { spec } = readSpec(specFile);
  const models = await createCatalogActivities(repoRoot).resolveModels({
    names: spec.models,
    dtype: spec.execution.dtype ?? null,
    checkpoints: spec.checkpoints,
  });
  const resolved: ResolvedSweep = { spec, specDigest: digestOf(spec), models, tasks: spec.tasks.map((t) => resolveGeneratedTask(t)) };
  return expandCells(resolved);
}

/** The run_shard inputs of the cells, cut and ordered as the sweep workflow dispatches them. */
export function shardInputs(cells: Cell[], shardSize: number, device: RunShardInput['device']): RunShardInput[] {
  const jobs = cells.flatMap((cell) => shardsOf(cell, shardWidth(cell, shardSize)).map((shard) => ({ cell, shard })));
  return roundMajor(jobs).map(({ cell, shard }) => shardRequest(cell, shard, device));
}

/** Every example's outcome per cell key; a cell with a missing or doubled example is an error. */
export function outcomesByCell(cells: Cell[], lines: string[]): Map<string, boolean[]> {
  const byKey = new Map(cells.map((c) => [c.key, c]));
  const seen = new Map<string, Array<boolean | undefined>>();
  lines.forEach((line, i) => {
    const parsed = JSON.parse(line) as { output?: unknown };
    const result = RunShardOutput.safeParse(parsed.output);
    if (!result.success) throw new Error(`results line ${i + 1}: not a run_shard output: ${result.error.issues[0]?.message}`);
    const cell = byKey.get(result.data.cellKey);
    if (!cell) throw new Error(`results line ${i + 1}: cell ${result.data.cellKey} is not in the spec (another spec, or retrained models?)`);
    const outcomes = seen.get(cell.key) ?? new Array<boolean | undefined>(cell.numExamples);
    for (const e of result.data.examples) {
      if (outcomes[e.exampleId] !== undefined) throw new Error(`cell ${cell.key}: example ${e.exampleId} recorded twice`);
      // the database's score_is_correct: score >= 0.5
      outcomes[e.exampleId] = e.score >= 0.5;
    }
    seen.set(cell.key, outcomes);
  });
  const out = new Map<string, boolean[]>();
  for (const cell of cells) {
    const outcomes = seen.get(cell.key);
    const missing = outcomes ? outcomes.findIndex((o) => o === undefined) : 0;
    if (!outcomes || missing >= 0 || outcomes.length !== cell.numExamples) {
      throw new Error(`cell ${cell.model.name} x ${cell.task.name} x ${cell.strategy.name}: example ${missing} has no result`);
    }
    out.set(cell.key, outcomes as boolean[]);
  }
  return out;
}

export interface MarginRow {
  model: string;
  task: string;
  strategy: string;
  defaultAccuracy: number;
  accuracy: number;
  counts: PairedCounts;
  margin: Interval;
}

const taskLabel = (c: Cell) => `${c.task.name} ${JSON.stringify(c.task.params)}`;

/** Each non-default layout against default on the same examples: per task, then pooled ('all'). */
export function margins(cells: Cell[], outcomes: Map<string, boolean[]>): MarginRow[] {
  const rows: MarginRow[] = [];
  const pooled = new Map<string, MarginRow>();
  for (const cell of cells) {
    if (cell.strategy.name === 'default') continue;
    const base = cells.find((c) => c.strategy.name === 'default' && c.model.name === cell.model.name && taskLabel(c) === taskLabel(cell));
    if (!base) continue;
    const a = outcomes.get(base.key)!;
    const b = outcomes.get(cell.key)!;
    const counts: PairedCounts = { both: 0, onlyA: 0, onlyB: 0, neither: 0 };
    a.forEach((x, i) => {
      const y = b[i];
      if (x && y) counts.both++;
      else if (x) counts.onlyA++;
      else if (y) counts.onlyB++;
      else counts.neither++;
    });
    rows.push(row(cell.model.name, cell.task.name, cell.strategy.name, counts));
    const id = `${cell.model.name}\u0000${cell.strategy.name}`;
    const sum = pooled.get(id)?.counts ?? { both: 0, onlyA: 0, onlyB: 0, neither: 0 };
    pooled.set(
      id,
      row(cell.model.name, 'all', cell.strategy.name, {
        both: sum.both + counts.both,
        onlyA: sum.onlyA + counts.onlyA,
        onlyB: sum.onlyB + counts.onlyB,
        neither: sum.neither + counts.neither,
      }),
    );
  }
  return [...rows, ...pooled.values()];
}

function row(model: string, task: string, strategy: string, counts: PairedCounts): MarginRow {
  const n = counts.both + counts.onlyA + counts.onlyB + counts.neither;
  return {
    model,
    task,
    strategy,
    defaultAccuracy: (counts.both + counts.onlyA) / n,
    accuracy: (counts.both + counts.onlyB) / n,
    counts,
    margin: pairedDifferenceInterval(counts),
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}`;
const signed = (x: number) => `${x >= 0 ? '+' : ''}${pct(x)}`;

export function marginTable(rows: MarginRow[]): string {
  const lines = [
    '| model | task | layout | default % | layout % | margin (pp) | 95% interval (pp) | only default / only layout |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.model} | ${r.task} | ${r.strategy} | ${pct(r.defaultAccuracy)} | ${pct(r.accuracy)} | ${signed(r.margin.estimate)} | ` +
        `[${signed(r.margin.lo)}, ${signed(r.margin.hi)}] | ${r.counts.onlyA} / ${r.counts.onlyB} |`,
    );
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [command, specFile, file, ...rest] = argv;
  if (command === 'payloads' && specFile && file) {
    const cells = await cellsOf(specFile);
    const { spec } = readSpec(specFile);
    const inputs = shardInputs(cells, spec.execution.shardSize, spec.execution.device);
    writeFileSync(file, JSON.stringify(inputs) + '\n');
    console.log(`${inputs.length} shards of ${cells.length} cells written to ${file}`);
    return 0;
  }
  if (command === 'margins' && specFile && file) {
    const cells = await cellsOf(specFile);
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim());
    const rows = margins(cells, outcomesByCell(cells, lines));
    console.log(marginTable(rows));
    const jsonAt = rest.indexOf('--json');
    if (jsonAt >= 0 && rest[jsonAt + 1]) writeFileSync(rest[jsonAt + 1]!, JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  console.error('usage: npx tsx scripts/offline-shards.ts payloads <spec> <out.json> | margins <spec> <results.jsonl> [--json out.json]');
  return 2;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  process.exit(await main(process.argv.slice(2)));
}
