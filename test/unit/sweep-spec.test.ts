// Spec parsing and the pure expansion into cells: defaults, keys, what changes a key.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  canonicalJson,
  coveredExamples,
  digestOf,
  expandCells,
  parseSweepSpec,
  resolveGeneratedTask,
  roundMajor,
  shardWidth,
  shardsOf,
  skippedPairs,
  type ResolvedSweep,
  type SweepSpec,
} from '../../workflows/sweep-spec';
import { TASKS, generatedExampleCount, type TaskName } from '../../workflows/catalog';

const catalog = { families: { 'm-attn': 'transformer', 'm-based': 'based', 'm-jrt': 'jrt_rnn' } };

const YAML = `
name: demo
models: [m-attn, m-based, m-jrt]
tasks:
  - name: mqar
    params: { numExamples: 10, numKvPairs: 4 }
  - synthetic_doc_qa
strategies: [default, jrt_prompt, jrt_rnn_left_pad]
`;

function resolve(spec: SweepSpec): ResolvedSweep {
  return {
    spec,
    specDigest: digestOf(spec),
    models: spec.models.map((name) => ({ name, revision: `rev-${name}`, family: catalog.families[name as keyof typeof catalog.families], dtype: 'float32' })),
    tasks: spec.tasks.map((t) => {
      const ref = { name: t.name, version: TASKS[t.name as TaskName].version, params: t.params };
      return { ...ref, numExamples: t.params.numExamples as number, dataDigest: digestOf(ref) };
    }),
  };
}

describe('parseSweepSpec', () => {
  it('fills every default in, so the stored spec states each value', () => {
    const spec = parseSweepSpec(YAML, 'demo.yaml', catalog);
    assert.deepEqual(spec.tasks[0], { name: 'mqar', params: { numExamples: 10, seed: 0, numKvPairs: 4 } });
    assert.deepEqual(spec.tasks[1], { name: 'synthetic_doc_qa', params: { numExamples: 200, seed: 0, numFacts: 8 } });
    assert.deepEqual(spec.strategies[1], { name: 'jrt_prompt', params: { repeats: 2 } });
    assert.equal(spec.generation.maxNewTokens, 48);
    assert.equal(spec.execution.shardSize, 32);
    assert.equal(spec.scorer, undefined);
  });
});

describe('expandCells', () => {
  const spec = parseSweepSpec(YAML, 'demo.yaml', catalog);
  const cells = expandCells(resolve(spec));

  it('crosses models x tasks x strategies, leaving JRT-RNN modes to JRT-RNN models', () => {
    // 3 models x 2 tasks x 2 general strategies + 1 jrt model x 2 tasks x 1 jrt-only mode
    assert.equal(cells.length, 3 * 2 * 2 + 2);
    assert.ok(cells.every((c) => c.strategy.name !== 'jrt_rnn_left_pad' || c.model.family === 'jrt_rnn'));
    assert.deepEqual(skippedPairs(resolve(spec)), [
      'm-attn x jrt_rnn_left_pad: jrt_rnn_left_pad applies to jrt_rnn models only',
      'm-based x jrt_rnn_left_pad: jrt_rnn_left_pad applies to jrt_rnn models only',
    ]);
  });

  it('orders cells model-major so each model loads once', () => {
    const order = cells.map((c) => c.model.name);
    assert.deepEqual(
      order,
      [...order].sort((a, b) => spec.models.indexOf(a) - spec.models.indexOf(b)),
    );
  });

  it('gives every cell a distinct, stable 64-hex key', () => {
    assert.equal(new Set(cells.map((c) => c.key)).size, cells.length);
    assert.ok(cells.every((c) => /^[0-9a-f]{64}$/.test(c.key)));
    assert.deepEqual(
      expandCells(resolve(spec)).map((c) => c.key),
      cells.map((c) => c.key),
    );
  });

  it("uses each task's own scorer unless the spec names one", () => {
    assert.ok(cells.every((c) => c.scorer.name === 'exact'));
    const forced = parseSweepSpec(`${YAML}\nscorer: contains\n`, 'x.yaml', catalog);
    assert.ok(expandCells(resolve(forced)).every((c) => c.scorer.name === 'contains'));
  });

  it('changes exactly the affected keys when one field changes', () => {
    const changed = parseSweepSpec(YAML.replace('numKvPairs: 4', 'numKvPairs: 8'), 'demo.yaml', catalog);
    const after = expandCells(resolve(changed));
    const before = new Set(cells.map((c) => c.key));
    const fresh = after.filter((c) => !before.has(c.key));
    assert.equal(fresh.length, after.filter((c) => c.task.name === 'mqar').length);
    assert.ok(fresh.every((c) => c.task.name === 'mqar'));
  });

  it('leaves keys alone when only the way work is cut changes', () => {
    const recut = parseSweepSpec(`${YAML}\nexecution: { shardSize: 3, window: 2 }\ngeneration: { batchSize: 4 }\n`, 'demo.yaml', catalog);
    assert.deepEqual(
      expandCells(resolve(recut)).map((c) => c.key),
      cells.map((c) => c.key),
    );
  });
});

describe('keys of dataset tasks', () => {
  it('depend on the data digest, not on the folder the data is read from', () => {
    const text = (dir: string) => `name: d\nmodels: [m-attn]\ntasks: [{ name: fda, params: { dataDir: ${dir} } }]\n`;
    const keyOf = (dir: string, dataDigest: string) => {
      const spec = parseSweepSpec(text(dir), 'd.yaml', catalog);
      const resolved = resolve(spec);
      resolved.tasks = resolved.tasks.map((t) => ({ ...t, numExamples: 3, dataDigest }));
      return expandCells(resolved)[0]!.key;
    };
    assert.equal(keyOf('/data/a', 'x'.repeat(64)), keyOf('/mnt/b', 'x'.repeat(64)));
    assert.notEqual(keyOf('/data/a', 'x'.repeat(64)), keyOf('/data/a', 'y'.repeat(64)));
  });
});

describe('expandCells for the perplexity task', () => {
  const text = (extra = '') => `name: p
models: [m-attn, m-based]
tasks:
  - { name: perplexity, params: { corpus: "synthetic:repeats-v1", numExamples: 4 } }
  - { name: mqar, params: { numExamples: 4 } }
strategies: [default, jrt_prompt, question_first]
${extra}`;

  it('reads the corpus under default only, scores nothing, and keeps the slice settings', () => {
    const resolved = resolve(parseSweepSpec(text(), 'p.yaml', catalog));
    const cells = expandCells(resolved);
    const ppl = cells.filter((c) => c.task.name === 'perplexity');
    assert.deepEqual(
      ppl.map((c) => `${c.model.name}/${c.strategy.name}`),
      ['m-attn/default', 'm-based/default'],
    );
    assert.ok(ppl.every((c) => c.scorer.name === 'none' && c.slices !== null && c.numExamples === 4));
    // the protocol's defaults are written into the cell: the paper's 2048 / 1024 / 1024 / 1000
    assert.deepEqual(ppl[0]!.task.params, {
      corpus: 'synthetic:repeats-v1',
      numExamples: 4,
      seed: 0,
      sequenceTokens: 2048,
      scoredTokens: 1024,
      recallMinDistance: 1024,
      distanceMaxCount: 1000,
    });
    assert.equal(cells.filter((c) => c.task.name === 'mqar').length, 2 * 3);
    assert.ok(skippedPairs(resolved).includes('perplexity x jrt_prompt: a perplexity task reads its corpus as it is, under default only'));
  });

  it('keys a perplexity by its slices, not by generation settings', () => {
    const key = (extra: string) => expandCells(resolve(parseSweepSpec(text(extra), 'p.yaml', catalog))).find((c) => c.task.name === 'perplexity')!.key;
    assert.equal(key('generation: { maxNewTokens: 3 }'), key('generation: { maxNewTokens: 9 }'));
    assert.notEqual(key('slices: { frequencyThreshold: 10 }'), key('slices: { frequencyThreshold: 1000 }'));
  });

  it('refuses a perplexity without slices, and parameters past their bounds, naming the field', () => {
    assert.throws(() => parseSweepSpec(text('slices: false'), 'p.yaml', catalog), /tasks\[0\]: the perplexity task needs slice settings/);
    const bad = (params: string) => () => parseSweepSpec(`name: p\nmodels: [m-attn]\ntasks:\n  - { name: perplexity, params: ${params} }\n`, 'p.yaml', catalog);
    assert.throws(bad('{ corpus: "a.jsonl", scoredTokens: 2048 }'), /tasks\[0\]\.params\.scoredTokens/);
    assert.throws(bad('{ corpus: "../a.jsonl" }'), /tasks\[0\]\.params\.corpus/);
    assert.throws(bad('{ corpus: "a.jsonl", sequenceTokens: 40000 }'), /tasks\[0\]\.params\.sequenceTokens/);
  });
});

describe('expandCells for the prefill benchmark', () => {
  const text = (extra = '') => `name: t
models: [m-based, m-jrt]
tasks:
  - { name: prefill_throughput, params: { lengths: [128, 256], batchSizes: [2] } }
  - { name: mqar, params: { numExamples: 4 } }
strategies: [default, jrt_prompt, question_first]
${extra}`;
  const cellsOf = (extra = '') => {
    const resolved = resolve(parseSweepSpec(text(extra), 't.yaml', catalog));
    resolved.tasks = resolved.tasks.map((t) => (t.name === 'prefill_throughput' ? { ...t, numExamples: 2 } : t));
    return { resolved, cells: expandCells(resolved) };
  };

  it('times default and JRT-Prompt only, scores nothing and computes no slices', () => {
    const { resolved, cells } = cellsOf();
    const bench = cells.filter((c) => c.task.name === 'prefill_throughput');
    assert.deepEqual(
      bench.map((c) => `${c.model.name}/${c.strategy.name}`),
      ['m-based/default', 'm-based/jrt_prompt', 'm-jrt/default', 'm-jrt/jrt_prompt'],
    );
    assert.ok(bench.every((c) => c.scorer.name === 'none' && c.slices === null && c.numExamples === 2));
    assert.equal(cells.filter((c) => c.task.name === 'mqar').length, 2 * 3);
    assert.ok(skippedPairs(resolved).includes('prefill_throughput x question_first: a prefill benchmark times default and jrt_prompt only'));
  });

  it('gives kernel-level operators the benchmark only, and says why', () => {
    const withOp = { families: { ...catalog.families, 'op-based': 'operator' } };
    const spec = parseSweepSpec('name: o\nmodels: [op-based]\ntasks: [prefill_throughput, mqar]\n', 'o.yaml', withOp);
    const resolved: ResolvedSweep = { ...resolve(spec), models: [{ name: 'op-based', revision: 'operator:based@v1', family: 'operator', dtype: 'bfloat16' }] };
    assert.deepEqual(
      expandCells(resolved).map((c) => c.task.name),
      ['prefill_throughput'],
    );
    assert.deepEqual(skippedPairs(resolved), ['op-based x mqar: op-based is a kernel-level operator, timed by prefill_throughput only']);
  });

  it('keys timings by device, and not by generation settings or the spec scorer', () => {
    const keys = (extra: string) =>
      cellsOf(extra)
        .cells.filter((c) => c.task.name === 'prefill_throughput')
        .map((c) => c.key);
    const base = keys('');
    assert.deepEqual(keys('generation: { maxNewTokens: 3, batchSize: 2 }\nscorer: contains'), base);
    assert.ok(keys('execution: { device: cuda }').every((k, i) => k !== base[i]));
  });
});

describe('shardsOf', () => {
  it('covers every example exactly once', () => {
    assert.deepEqual(
      shardsOf({ key: 'k', numExamples: 10 }, 4).map((s) => [s.shardIndex, s.exampleStart, s.exampleEnd]),
      [
        [0, 0, 4],
        [4, 4, 8],
        [8, 8, 10],
      ],
    );
  });

  it('cuts only the examples no recorded range covers, whatever size cut those', () => {
    // issue 11 item 1: 7 shards of 6 recorded (0..41), resumed with shards of 10
    const recorded = Array.from({ length: 7 }, (_, i) => [i * 6, i * 6 + 6] as const);
    const rest = shardsOf({ key: 'k', numExamples: 48 }, 10, recorded);
    assert.deepEqual(
      rest.map((s) => [s.exampleStart, s.exampleEnd]),
      [[42, 48]],
    );
    assert.equal(coveredExamples(recorded), 42);
    // holes in the middle are found too, and nothing already covered is cut again
    const holes = shardsOf({ key: 'k', numExamples: 30 }, 4, [
      [20, 30],
      [0, 6],
    ]);
    assert.deepEqual(
      holes.map((s) => [s.shardIndex, s.exampleStart, s.exampleEnd]),
      [
        [6, 6, 10],
        [10, 10, 14],
        [14, 14, 18],
        [18, 18, 20],
      ],
    );
    assert.deepEqual(shardsOf({ key: 'k', numExamples: 30 }, 4, [[0, 30]]), []);
  });
});

describe('the prefill benchmark in rounds', () => {
  const spec = parseSweepSpec(
    `name: r
models: [m-based, m-jrt]
tasks:
  - { name: prefill_throughput, params: { lengths: [128, 256, 512], batchSizes: [2], runs: 10 } }
  - { name: mqar, params: { numExamples: 4 } }
strategies: [default, jrt_prompt]
`,
    'r.yaml',
    catalog,
  );
  const benchParams = spec.tasks[0]!.params;
  const cells = expandCells({ ...resolve(spec), tasks: spec.tasks.map((t) => resolveGeneratedTask(t)) });
  const bench = cells.filter((c) => c.task.name === 'prefill_throughput');

  it('holds one example per (point, round): 3 points x 10 rounds; before rounds, one per point', () => {
    assert.equal(generatedExampleCount('prefill_throughput', benchParams), 30);
    assert.equal(generatedExampleCount('prefill_throughput', benchParams, { rounds: false }), 3);
    assert.equal(resolveGeneratedTask(spec.tasks[0]!, { rounds: false }).numExamples, 3);
    assert.ok(bench.length === 4 && bench.every((c) => c.numExamples === 30));
  });

  it('cuts a benchmark cell into one shard per round whatever the shard size; other cells by shard size', () => {
    for (const shardSize of [1, 7, 100]) {
      assert.deepEqual(
        shardsOf(bench[0]!, shardWidth(bench[0]!, shardSize)).map((s) => [s.exampleStart, s.exampleEnd]),
        Array.from({ length: 10 }, (_, r) => [3 * r, 3 * r + 3]),
      );
    }
    const mqar = cells.find((c) => c.task.name === 'mqar')!;
    assert.equal(shardWidth(mqar, 3), 3);
    // a cell resolved before rounds (one example per point) is cut as it was then
    assert.equal(shardWidth({ ...bench[0]!, numExamples: 3 }, 2), 2);
    // a round recorded already is not cut again
    assert.deepEqual(
      shardsOf(bench[0]!, 3, [[0, 6]]).map((s) => s.exampleStart),
      [6, 9, 12, 15, 18, 21, 24, 27],
    );
  });

  it('dispatches every other shard first in grid order, then the benchmark round-major across its cells', () => {
    const jobs = cells.flatMap((cell) => shardsOf(cell, shardWidth(cell, 2)).map((shard) => ({ cell, shard })));
    const order = roundMajor(jobs).map(({ cell, shard }) => `${cell.model.name}/${cell.task.name}/${cell.strategy.name}@${shard.exampleStart}`);
    assert.equal(order.length, jobs.length);
    // mqar: 4 examples in shards of 2, per model and strategy, in the grid's model-major order
    assert.deepEqual(order.slice(0, 8), [
      'm-based/mqar/default@0',
      'm-based/mqar/default@2',
      'm-based/mqar/jrt_prompt@0',
      'm-based/mqar/jrt_prompt@2',
      'm-jrt/mqar/default@0',
      'm-jrt/mqar/default@2',
      'm-jrt/mqar/jrt_prompt@0',
      'm-jrt/mqar/jrt_prompt@2',
    ]);
    const round = (r: number) =>
      ['m-based/default', 'm-based/jrt_prompt', 'm-jrt/default', 'm-jrt/jrt_prompt'].map((p) => p.replace('/', '/prefill_throughput/') + `@${3 * r}`);
    assert.deepEqual(order.slice(8), Array.from({ length: 10 }, (_, r) => round(r)).flat());
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 0 }], c: undefined } }), '{"a":{"d":[2,{"y":0,"z":1}]},"b":1}');
  });
});
