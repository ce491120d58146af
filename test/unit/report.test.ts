// The Pareto frontier over (model, strategy) points.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { paretoFrontier, taskLabels, type BenchmarkResult, type CellResult } from '../../workers/lib/report';

const cell = (model: string, strategy: string, task: string, accuracy: number, promptsPerSecond: number, examples = 10): CellResult => ({
  key: `${model}-${strategy}-${task}`, model, family: 'x', task, taskLabel: task, strategy, status: 'done', reused: false, examples,
  accuracy, ci95: 0, perplexity: {}, prefillTokensPerSecond: 1, promptsPerSecond, stateBytes: null, error: null,
});

describe('paretoFrontier', () => {
  it('averages accuracy over tasks and pools throughput over examples', () => {
    const { axis, points: [p] } = paretoFrontier([cell('a', 'default', 't1', 0.2, 10), cell('a', 'default', 't2', 0.6, 30)]);
    assert.equal(axis, 'eval');
    assert.equal(p!.accuracy, 0.4);
    // 10 examples at 10/s plus 10 at 30/s: 20 examples in 1.333 s
    assert.ok(Math.abs(p!.throughput - 15) < 1e-9);
  });

  it('keeps exactly the points no other point dominates', () => {
    const { points } = paretoFrontier([
      cell('fast', 'default', 't', 0.3, 100),
      cell('fast', 'jrt_prompt', 't', 0.5, 50),
      cell('slow', 'default', 't', 0.45, 40), // dominated by fast/jrt_prompt
      cell('best', 'default', 't', 0.9, 5),
    ]);
    const frontier = points.filter((p) => p.onFrontier).map((p) => `${p.model}/${p.strategy}`);
    assert.deepEqual(frontier, ['fast/default', 'fast/jrt_prompt', 'best/default']);
  });

  it('skips cells without results', () => {
    assert.deepEqual(paretoFrontier([{ ...cell('a', 'default', 't', 0, 0), accuracy: null, promptsPerSecond: null }]).points, []);
  });

  const bench = (model: string, strategy: string, seqLen: number, seconds: number): BenchmarkResult => ({
    model, strategy, seqLen, batchSize: 4, processedLen: seqLen, implementation: model, seconds,
    tokensPerSecond: (4 * seqLen) / seconds, baselineImplementation: 'sdpa-flash', baselineSeconds: 1, gpuName: null,
  });

  it('takes throughput from the prefill benchmark when every point has one', () => {
    const cells = [cell('a', 'default', 't', 0.5, 10), cell('a', 'jrt_prompt', 't', 0.8, 5)];
    // a/default: 4x100 + 4x300 tokens in 0.1 + 0.3 s = 4000 tok/s; a/jrt_prompt: 400 tokens in 0.2 s
    const { axis, points } = paretoFrontier(cells, [
      bench('a', 'default', 100, 0.1), bench('a', 'default', 300, 0.3), bench('a', 'jrt_prompt', 100, 0.2),
    ]);
    assert.equal(axis, 'benchmark');
    assert.deepEqual(points.map((p) => [p.strategy, Math.round(p.throughput), p.onFrontier]), [
      ['default', 4000, true],
      ['jrt_prompt', 2000, true],
    ]);
  });

  it('falls back to eval throughput rather than mix units when a point lacks a benchmark', () => {
    const cells = [cell('a', 'default', 't', 0.5, 10), cell('b', 'default', 't', 0.8, 5)];
    const { axis, points } = paretoFrontier(cells, [bench('a', 'default', 100, 0.1)]);
    assert.equal(axis, 'eval');
    assert.deepEqual(points.map((p) => p.throughput), [10, 5]);
  });
});

describe('taskLabels', () => {
  it('names the parameters that tell apart entries of one task, and nothing else', () => {
    const labels = taskLabels([
      { name: 'set_disjointness', params: { seed: 0, sizes: [[4, 16]] } },
      { name: 'set_disjointness', params: { seed: 0, sizes: [[16, 4]] } },
      { name: 'mqar', params: { seed: 0, numKvPairs: 16 } },
      { name: 'mqar', params: { seed: 0, numKvPairs: 16 } },
    ]);
    assert.deepEqual(labels, ['set_disjointness sizes=[[4,16]]', 'set_disjointness sizes=[[16,4]]', 'mqar', 'mqar']);
  });
});
