// The analytic costs against hand counts for two of the zoo's configs (as in
// inference/catalog/models.json), one Transformer++ and one Based, every term written out so a
// reader can check it; and the analytic frontier, where lower cost is better.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyticCost, meanContext, readsOfPrompt, strategyCost, type CostEntry } from '../../workers/lib/analytic-cost';
import { analyticFrontier, analyticPoints } from '../../workers/lib/report/analytic';
import { paretoFrontier } from '../../workflows/pareto';
import { taskAnalyticChart } from '../../workers/lib/report/charts';
import { sweepPage } from '../../workers/lib/web/pages';
import type { CellResult, SweepReport } from '../../workers/lib/report/types';

const attnTiny: CostEntry = {
  family: 'transformer',
  dtype: 'float32',
  config: { vocab_size: 3309, d_model: 128, n_layers: 4, n_heads: 4, mlp_hidden: 256, rotary_fraction: 1.0, tie_embeddings: true },
  nominalParams: 1080064,
};
const basedTiny: CostEntry = {
  family: 'based',
  dtype: 'float32',
  config: {
    vocab_size: 3309,
    d_model: 128,
    n_layers: 4,
    linear_attn_layers: [1, 3],
    sliding_window_layers: [2],
    mlp_hidden: 256,
    la_heads: 4,
    feature_dim: 16,
    swa_heads: 4,
    window: 32,
    rotary_fraction: 1.0,
    conv_kernel: 3,
    conv_expand: 2,
    tie_embeddings: true,
  },
  nominalParams: 1031680,
};
const none = { parameters: null, stateBytes: null };

describe('analytic costs, counted by hand', () => {
  it('the mean causal context: (1 + ... + L) / L without a window, capped at the window with one', () => {
    assert.equal(meanContext(1024, null), (1024 * 1025) / 2 / 1024); // 512.5
    // tokens 1..32 see 1..32 (sum 528), the other 992 see 32 each
    assert.equal(meanContext(1024, 32), (528 + 992 * 32) / 1024); // 31.515625
    assert.equal(meanContext(8, 32), meanContext(8, null));
  });

  it('Transformer++ (zoo-attn-tiny) at 1,024 tokens: weights plus attention over the context; the KV cache grows', () => {
    const cost = analyticCost(attnTiny, { parameters: 1080064, stateBytes: 999 }, 1024);
    // weights: 2 x 1,080,064 = 2,160,128
    // attention, per layer: 4 x d_model x mean context = 4 x 128 x 512.5 = 262,400; x 4 layers = 1,049,600
    assert.equal(cost.flopsPerToken, 2_160_128 + 1_049_600); // 3,209,728
    // KV cache: per layer keys + values, 2 x 1,024 tokens x 128 x 4 bytes = 1,048,576; x 4 layers
    assert.equal(cost.stateBytes, 4_194_304);
    // the recorded state (taken at the cell's own prompt length) does not hold at 1,024: config wins
    assert.equal(cost.stateFrom, 'config');
    assert.equal(cost.parametersFrom, 'recorded');
    assert.equal(cost.mixingCounted, true);
  });

  it('Based (zoo-based-tiny) at 1,024 tokens: fixed state, so the recorded figure is preferred when present', () => {
    const cost = analyticCost(basedTiny, none, 1024);
    // weights: 2 x 1,031,680 (catalog, nothing recorded) = 2,063,360
    // layer 0, BaseConv: inner = conv_expand x d_model / 2 = 128 channels, 2 x kernel 3 x 128 = 768
    // layers 1 and 3, Taylor linear attention: features 1 + 16 + 256 = 273, value dim 128 / 4 = 32,
    //   state 4 heads x 273 x (32 + 1) = 36,036 numbers; 4 x 36,036 = 144,144 each, 288,288 both
    // layer 2, sliding window 32: 4 x 128 x 31.515625 = 16,136
    assert.equal(cost.flopsPerToken, 2_063_360 + 768 + 288_288 + 16_136); // 2,368,552
    // state: conv tail 128 x (3 - 1) x 4 bytes = 1,024; linear attention 36,036 x 4 bytes (float32)
    // = 144,144 each, 288,288 both; window keys + values 2 x 32 x 128 x 4 bytes = 32,768
    assert.equal(cost.stateBytes, 1_024 + 288_288 + 32_768); // 322,080
    assert.equal(cost.stateFrom, 'config');
    assert.equal(cost.parametersFrom, 'catalog');
    // the same at 4x the length: nothing grows
    assert.equal(analyticCost(basedTiny, none, 4096).stateBytes, 322_080);
    const recorded = analyticCost(basedTiny, { parameters: 1031680, stateBytes: 322_080 }, 1024);
    assert.equal(recorded.stateFrom, 'recorded');
    assert.equal(recorded.stateBytes, 322_080);
  });

  it('JRT-Prompt pays two passes at twice the length per prompt token', () => {
    assert.equal(readsOfPrompt('jrt_prompt', { repeats: 3 }), 3);
    assert.equal(readsOfPrompt('jrt_prompt', undefined), 2);
    assert.equal(readsOfPrompt('default', { repeats: 3 }), 1);
    const cost = strategyCost(attnTiny, none, 1024, 2);
    // at 2,048 tokens: attention 4 x 128 x 1,024.5 x 4 layers = 2,098,176, plus weights 2,160,128; twice
    assert.equal(cost.flopsPerToken, 2 * (2_160_128 + 2_098_176));
    assert.equal(cost.stateBytes, 2 * 4_194_304);
  });

  it('families the config does not spell out: weights only, the recorded state where it cannot grow, or nothing', () => {
    const mamba: CostEntry = { family: 'mamba2', dtype: 'float32', config: { d_model: 64 }, nominalParams: 1000 };
    const cost = analyticCost(mamba, { parameters: null, stateBytes: 5000 }, 1024);
    assert.deepEqual(cost, { flopsPerToken: 2000, stateBytes: 5000, parametersFrom: 'catalog', stateFrom: 'recorded', mixingCounted: false });
    // Mamba-2 with attention layers: its recorded state was taken at some other length
    const hybrid = analyticCost({ ...mamba, config: { attn_layer_idx: [3] } }, { parameters: 10, stateBytes: 5000 }, 1024);
    assert.deepEqual(hybrid, { flopsPerToken: 20, stateBytes: null, parametersFrom: 'recorded', stateFrom: null, mixingCounted: false });
    assert.equal(analyticCost({ family: 'operator', dtype: 'bfloat16' }, none, 1024).flopsPerToken, null);
    assert.throws(
      () => analyticCost({ ...attnTiny, config: { d_model: 128 } }, none, 1024),
      /model config field "n_layers" must be a positive integer, got undefined/,
    );
    assert.throws(() => analyticCost(attnTiny, none, 0), /sequence length must be a positive integer, got 0/);
  });
});

describe('the analytic frontier', () => {
  const cell = (model: string, strategy: string, accuracy: number, task = 'mqar'): CellResult => ({
    key: `${model}-${strategy}-${task}`,
    model,
    family: '',
    task,
    taskLabel: task,
    strategy,
    status: 'done',
    reused: false,
    examples: 10,
    correct: accuracy * 10,
    accuracy,
    ci95: null,
    perplexity: {},
    prefillTokensPerSecond: null,
    promptsPerSecond: 1,
    parameters: null,
    stateBytes: null,
    error: null,
    strategyParams: strategy === 'jrt_prompt' ? { repeats: 2 } : {},
  });

  it('marks the points no cheaper and at least as accurate point dominates, cheapest first', () => {
    const cells = [cell('attn', 'default', 0.9), cell('attn', 'jrt_prompt', 0.9), cell('based', 'default', 0.5), cell('based', 'jrt_prompt', 0.7)];
    const entries: Record<string, CostEntry> = { attn: attnTiny, based: basedTiny };
    const report = { cells, analytic: { seqLen: 1024, points: analyticPoints(cells, (m) => entries[m]) } };
    const flops = analyticFrontier(report, 'flops');
    // based default 2,368,552 < attn default 3,209,728 < based jrt 2 x (2,063,360 + 768 + 288,288 + 4 x 128 x 31.7578125)
    assert.deepEqual(
      flops.map((p) => [p.model, p.strategy, p.throughput, p.onFrontier]),
      [
        ['based', 'default', 2_368_552, true],
        ['attn', 'default', 3_209_728, true],
        ['based', 'jrt_prompt', 2 * (2_063_360 + 768 + 288_288 + 4 * 128 * ((528 + 2016 * 32) / 2048)), false],
        ['attn', 'jrt_prompt', 2 * (2_160_128 + 2_098_176), false],
      ],
    );
    assert.ok(flops.every((p) => p.settled && p.throughputLo === p.throughput && p.throughputHi === p.throughput));
    // a model the catalog does not know has no cost and drops out
    const unknown = { cells, analytic: { seqLen: 1024, points: analyticPoints(cells, (m) => (m === 'attn' ? attnTiny : undefined)) } };
    assert.deepEqual(
      analyticFrontier(unknown, 'state').map((p) => p.model),
      ['attn', 'attn'],
    );
  });

  it("draws one task's frontier on an analytic axis from that task's cells alone, naming the axis", () => {
    const cells = [cell('attn', 'default', 0.9), cell('based', 'default', 0.5), cell('attn', 'default', 0.2, 'doc'), cell('based', 'default', 0.6, 'doc')];
    const entries: Record<string, CostEntry> = { attn: attnTiny, based: basedTiny };
    const report = { cells, analytic: { seqLen: 1024, points: analyticPoints(cells, (m) => entries[m]) } } as unknown as SweepReport;
    const chart = taskAnalyticChart(report, 'doc', 'flops')!;
    assert.equal(chart.task, 'doc');
    const values = (chart.spec as unknown as { data: { values: Array<{ model: string; accuracy: number; onFrontier: boolean }> } }).data.values;
    // on doc, based is both cheaper and more accurate: attn is dominated there (on mqar it is not)
    assert.deepEqual(
      values.map((v) => [v.model, v.accuracy, v.onFrontier]),
      [
        ['based', 0.6, true],
        ['attn', 0.2, false],
      ],
    );
    assert.match(JSON.stringify(chart.spec), /prefill FLOPs per prompt token at 1,024 tokens \(analytic\)/);
    assert.equal(taskAnalyticChart(report, 'no such task', 'state'), undefined);
  });

  it('the sweep page offers every Pareto chart on each axis, and the measured ones carry the benchmark interval', () => {
    const cells = [cell('attn', 'default', 0.9), cell('based', 'default', 0.5), cell('attn', 'default', 0.2, 'doc'), cell('based', 'default', 0.6, 'doc')];
    const entries: Record<string, CostEntry> = { attn: attnTiny, based: basedTiny };
    const runs = (base: number) => [3, 7, 0, 9, 4, 1, 8, 2, 6, 5].map((i) => base + i * 0.001);
    const bench = (model: string, base: number) => ({
      model,
      strategy: 'default',
      seqLen: 256,
      batchSize: 4,
      processedLen: 256,
      implementation: model,
      seconds: base + 0.0045,
      minSeconds: base,
      runSeconds: runs(base),
      tokensPerSecond: 1024 / (base + 0.0045),
      baselineImplementation: 'sdpa',
      baselineSeconds: 0.01,
      gpuName: null,
    });
    const benchmarks = [bench('attn', 0.1), bench('based', 0.05)];
    const { axis, interval, points } = paretoFrontier(cells, benchmarks);
    const report: SweepReport = {
      sweepId: 's',
      name: 'two-tasks',
      status: 'completed',
      createdAt: 'now',
      finishedAt: null,
      gitSha: null,
      cells,
      benchmarks,
      perplexity: [],
      jrtMargins: [],
      paretoAxis: axis,
      paretoInterval: interval,
      pareto: points,
      analytic: { seqLen: 1024, points: analyticPoints(cells, (m) => entries[m]) },
      execution: null,
    };
    const page = sweepPage(report, new Map());
    const specsOf = (chart: string) =>
      Object.fromEntries(
        [...page.matchAll(new RegExp(`<div class="chart" data-chart="${chart}" data-axes>([\\s\\S]*?)<div class="view">`, 'g'))].flatMap(([, body]) =>
          [...body!.matchAll(/data-axis="(\w+)">([^<]*)<\/script>/g)].map(([, name, json]) => [
            name!,
            JSON.parse(json!) as { title: { subtitle: string | string[] }; data: { values: Array<Record<string, number>> } },
          ]),
        ),
      );
    for (const chart of ['pareto', 'pareto-task-1', 'pareto-task-2']) {
      const specs = specsOf(chart);
      assert.deepEqual(Object.keys(specs), ['measured', 'flops', 'state'], chart);
      assert.match(String(specs.measured!.title.subtitle), /bars: 95% interval of the median run \(order statistics of the timed runs\)/, chart);
      // tokens over x(9) and x(2) of the ten runs: 1024 / 0.108 to 1024 / 0.101 for attn
      const attn = specs.measured!.data.values.find((v) => (v as unknown as { model: string }).model === 'attn')!;
      assert.ok(Math.abs(attn.throughputLo! - 1024 / 0.108) < 1e-6 && Math.abs(attn.throughputHi! - 1024 / 0.101) < 1e-6, JSON.stringify(attn));
    }
    assert.match(page, /Interval: 95% interval of the median run/);
    // the benchmark table: attn's x(2) and x(9) of its runs, in ms
    assert.match(page, /<td class="num">104\.50<\/td>\n<td class="num">101\.00-108\.00<\/td>/);
  });
});
