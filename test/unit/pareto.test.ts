// The Pareto frontier over (model, strategy) points: which points no other dominates, how points
// are pooled from cells, and which verdicts the throughput intervals leave open.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { markFrontier, paretoFrontier, type ParetoBenchmark, type ParetoCell } from '../../workflows/pareto';

const cell = (model: string, strategy: string, accuracy: number, promptsPerSecond: number, examples = 10): ParetoCell => ({
  model,
  strategy,
  examples,
  accuracy,
  promptsPerSecond,
});
const pt = (name: string, accuracy: number, throughput: number, lo = throughput, hi = throughput) => ({
  name,
  accuracy,
  throughput,
  throughputLo: lo,
  throughputHi: hi,
});
const close = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) <= 1e-9 * expected, `${actual} is not ${expected}`);
const onFrontier = (points: Array<{ name: string; onFrontier: boolean }>) => points.filter((p) => p.onFrontier).map((p) => p.name);

describe('markFrontier', () => {
  it('a single point is the frontier', () => {
    assert.deepEqual(onFrontier(markFrontier([pt('a', 0.1, 1)])), ['a']);
    assert.equal(markFrontier([pt('a', 0.1, 1)])[0]!.settled, true);
  });

  it('keeps every point when each trades accuracy for speed', () => {
    const pts = [pt('a', 0.9, 1), pt('b', 0.6, 10), pt('c', 0.3, 100)];
    assert.deepEqual(onFrontier(markFrontier(pts)), ['a', 'b', 'c']);
  });

  it('drops a point another beats on both axes', () => {
    assert.deepEqual(onFrontier(markFrontier([pt('a', 0.5, 50), pt('b', 0.45, 40), pt('c', 0.3, 100)])), ['a', 'c']);
  });

  it('duplicates do not dominate each other: both stay on the frontier', () => {
    assert.deepEqual(onFrontier(markFrontier([pt('a', 0.5, 10), pt('a2', 0.5, 10), pt('b', 0.4, 5)])), ['a', 'a2']);
  });

  it('a tie on one axis is broken by the other', () => {
    // same speed: the more accurate wins; same accuracy: the faster wins
    assert.deepEqual(onFrontier(markFrontier([pt('a', 0.5, 10), pt('b', 0.4, 10)])), ['a']);
    assert.deepEqual(onFrontier(markFrontier([pt('a', 0.5, 10), pt('b', 0.5, 20)])), ['b']);
  });

  it('marks a verdict the throughput intervals could flip as unsettled, and leaves clear ones settled', () => {
    // b is slightly faster than a but less accurate: on the frontier only if it is really faster
    const pts = markFrontier([pt('a', 0.8, 100, 90, 110), pt('b', 0.6, 104, 95, 115), pt('c', 0.2, 1000, 990, 1010), pt('d', 0.1, 10, 9, 11)]);
    const by = Object.fromEntries(pts.map((p) => [p.name, p]));
    assert.deepEqual([by.a!.onFrontier, by.a!.settled], [true, true]);
    assert.deepEqual([by.b!.onFrontier, by.b!.settled], [true, false]);
    assert.deepEqual([by.c!.onFrontier, by.c!.settled], [true, true]);
    assert.deepEqual([by.d!.onFrontier, by.d!.settled], [false, true]);
  });
});

describe('paretoFrontier', () => {
  it('averages accuracy over tasks and pools throughput over examples', () => {
    const {
      axis,
      points: [p],
    } = paretoFrontier([cell('a', 'default', 0.2, 10), cell('a', 'default', 0.6, 30)]);
    assert.equal(axis, 'eval');
    assert.equal(p!.accuracy, 0.4);
    // 10 examples at 10/s plus 10 at 30/s: 20 examples in 1.333 s
    assert.ok(Math.abs(p!.throughput - 15) < 1e-9);
    assert.equal(p!.throughputLo, p!.throughputHi);
  });

  it('keeps exactly the points no other point dominates', () => {
    const { points } = paretoFrontier([
      cell('fast', 'default', 0.3, 100),
      cell('fast', 'jrt_prompt', 0.5, 50),
      cell('slow', 'default', 0.45, 40), // dominated by fast/jrt_prompt
      cell('best', 'default', 0.9, 5),
    ]);
    assert.deepEqual(
      points.filter((p) => p.onFrontier).map((p) => `${p.model}/${p.strategy}`),
      ['fast/default', 'fast/jrt_prompt', 'best/default'],
    );
  });

  it('skips cells without results', () => {
    assert.deepEqual(paretoFrontier([{ ...cell('a', 'default', 0, 0), accuracy: null, promptsPerSecond: null }]).points, []);
  });

  const bench = (model: string, strategy: string, seqLen: number, seconds: number, minSeconds: number | null = null): ParetoBenchmark => ({
    model,
    strategy,
    seqLen,
    batchSize: 4,
    seconds,
    minSeconds,
  });

  it('takes throughput from the prefill benchmark when every point has one; rows without per-run seconds get a range from the fastest runs', () => {
    const cells = [cell('a', 'default', 0.5, 10), cell('a', 'jrt_prompt', 0.8, 5)];
    // a/default: 4x100 + 4x300 tokens in 0.1 + 0.3 s = 4000 tok/s; fastest runs 0.08 + 0.24 s = 5000 tok/s,
    // and the same 0.08 s spread the other way: 1600 tokens in 0.48 s = 3333 tok/s
    const { axis, interval, points } = paretoFrontier(cells, [
      bench('a', 'default', 100, 0.1, 0.08),
      bench('a', 'default', 300, 0.3, 0.24),
      bench('a', 'jrt_prompt', 100, 0.2),
    ]);
    assert.equal(axis, 'benchmark');
    assert.equal(interval, 'fastest-run');
    assert.deepEqual(
      points.map((p) => [p.strategy, Math.round(p.throughput), Math.round(p.throughputLo), Math.round(p.throughputHi), p.onFrontier]),
      [
        ['default', 4000, 3333, 5000, true],
        ['jrt_prompt', 2000, 2000, 2000, true],
      ],
    );
  });

  // ten runs of 0.10, 0.11, ... 0.19 s in a scrambled order (median 0.145, x(2) 0.11, x(9) 0.18)
  const tenRuns = (base: number, step = 0.01) => [3, 7, 0, 9, 4, 1, 8, 2, 6, 5].map((i) => base + i * step);
  const timed = (model: string, strategy: string, seqLen: number, base: number, step = 0.01): ParetoBenchmark => ({
    ...bench(model, strategy, seqLen, base + 4.5 * step),
    minSeconds: base,
    runSeconds: tenRuns(base, step),
  });

  it("sums each row's order-statistic interval of its median when every run was recorded", () => {
    // 1600 tokens in 0.145 + 0.345 s = 3265 tok/s; interval 1600 / (0.18 + 0.38) to 1600 / (0.11 + 0.31)
    const { axis, interval, points } = paretoFrontier([cell('a', 'default', 0.5, 10)], [timed('a', 'default', 100, 0.1), timed('a', 'default', 300, 0.3)]);
    assert.equal(axis, 'benchmark');
    assert.equal(interval, 'median-ci');
    const [p] = points;
    assert.equal(p!.interval, 'median-ci');
    close(p!.throughput, 1600 / 0.49);
    close(p!.throughputLo, 1600 / 0.56);
    close(p!.throughputHi, 1600 / 0.42);
  });

  it('settles a verdict once the intervals stop overlapping, and says which points fell back', () => {
    const cells = [cell('a', 'default', 0.6, 10), cell('b', 'default', 0.5, 10)];
    // b is less accurate, so it is on the frontier only if it is faster than a
    const wide = paretoFrontier(cells, [timed('a', 'default', 100, 0.1, 0.01), timed('b', 'default', 100, 0.095, 0.01)]);
    const narrow = paretoFrontier(cells, [timed('a', 'default', 100, 0.1, 0.001), timed('b', 'default', 100, 0.08, 0.001)]);
    const verdict = (r: typeof wide) => r.points.map((p) => [p.model, p.onFrontier, p.settled]);
    assert.deepEqual(verdict(wide), [
      ['b', true, false],
      ['a', true, true],
    ]);
    assert.deepEqual(verdict(narrow), [
      ['b', true, true],
      ['a', true, true],
    ]);
    const mixed = paretoFrontier(cells, [timed('a', 'default', 100, 0.1), bench('b', 'default', 100, 0.1, 0.09)]);
    assert.equal(mixed.interval, 'mixed');
    assert.deepEqual(
      mixed.points.map((p) => [p.model, p.interval]),
      [
        ['b', 'fastest-run'],
        ['a', 'median-ci'],
      ],
    );
  });

  it('falls back to eval throughput rather than mix units when a point lacks a benchmark', () => {
    const cells = [cell('a', 'default', 0.5, 10), cell('b', 'default', 0.8, 5)];
    const { axis, interval, points } = paretoFrontier(cells, [bench('a', 'default', 100, 0.1)]);
    assert.equal(axis, 'eval');
    assert.equal(interval, 'none');
    assert.deepEqual(
      points.map((p) => p.throughput),
      [10, 5],
    );
  });
});
