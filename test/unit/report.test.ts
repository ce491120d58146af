// The Pareto frontier over (model, strategy) points.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { paretoFrontier, type CellResult } from '../../activities/report';

const cell = (model: string, strategy: string, task: string, accuracy: number, promptsPerSecond: number, examples = 10): CellResult => ({
  key: `${model}-${strategy}-${task}`, model, family: 'x', task, strategy, status: 'done', reused: false, examples,
  accuracy, ci95: 0, perplexity: {}, prefillTokensPerSecond: 1, promptsPerSecond, stateBytes: null, error: null,
});

describe('paretoFrontier', () => {
  it('averages accuracy over tasks and pools throughput over examples', () => {
    const [p] = paretoFrontier([cell('a', 'default', 't1', 0.2, 10), cell('a', 'default', 't2', 0.6, 30)]);
    assert.equal(p!.accuracy, 0.4);
    // 10 examples at 10/s plus 10 at 30/s: 20 examples in 1.333 s
    assert.ok(Math.abs(p!.promptsPerSecond - 15) < 1e-9);
  });

  it('keeps exactly the points no other point dominates', () => {
    const points = paretoFrontier([
      cell('fast', 'default', 't', 0.3, 100),
      cell('fast', 'jrt_prompt', 't', 0.5, 50),
      cell('slow', 'default', 't', 0.45, 40), // dominated by fast/jrt_prompt
      cell('best', 'default', 't', 0.9, 5),
    ]);
    const frontier = points.filter((p) => p.onFrontier).map((p) => `${p.model}/${p.strategy}`);
    assert.deepEqual(frontier, ['fast/default', 'fast/jrt_prompt', 'best/default']);
  });

  it('skips cells without results', () => {
    assert.deepEqual(paretoFrontier([{ ...cell('a', 'default', 't', 0, 0), accuracy: null, promptsPerSecond: null }]), []);
  });
});
