// Hand-checked cases for the interval and test maths every surface shows.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { differenceInterval, holmAdjust, mcnemarExact, medianInterval, pairedDifferenceInterval, wilsonInterval } from '../../workflows/stats';

const close = (actual: number, expected: number, tol = 1e-4) => assert.ok(Math.abs(actual - expected) <= tol, `${actual} is not within ${tol} of ${expected}`);

describe('wilsonInterval', () => {
  it('matches the published interval for 81 of 263 (Newcombe 1998)', () => {
    const i = wilsonInterval(81, 263);
    close(i.estimate, 81 / 263, 1e-12);
    close(i.lo, 0.2553);
    close(i.hi, 0.3662);
  });

  it('is not degenerate at 0% and 100%: 48 of 48 is [0.9259, 1], 0 of 48 is [0, 0.0741]', () => {
    const all = wilsonInterval(48, 48);
    assert.equal(all.hi, 1);
    close(all.lo, 1 - 3.8415 / (48 + 3.8415));
    const none = wilsonInterval(0, 48);
    assert.equal(none.lo, 0);
    close(none.hi, 3.8415 / (48 + 3.8415));
  });

  it('says nothing is known at n = 0, and refuses impossible counts', () => {
    const i = wilsonInterval(0, 0);
    assert.ok(Number.isNaN(i.estimate));
    assert.deepEqual([i.lo, i.hi], [0, 1]);
    assert.throws(() => wilsonInterval(5, 4), /exceed n/);
    assert.throws(() => wilsonInterval(-1, 4), /successes must be a non-negative integer, got -1/);
    assert.throws(() => wilsonInterval(1.5, 4), /non-negative integer/);
  });
});

describe('difference intervals', () => {
  it('unpaired: 56/70 vs 48/80 gives the published [0.0524, 0.3339] (Newcombe 1998, method 10)', () => {
    const i = differenceInterval({ successes: 48, n: 80 }, { successes: 56, n: 70 });
    close(i.estimate, 0.2, 1e-12);
    close(i.lo, 0.0524);
    close(i.hi, 0.3339);
  });

  it('paired: narrower than unpaired when the runs agree on most examples', () => {
    // 60 examples: 30 right in both, 4 only in A, 12 only in B, 14 in neither
    const counts = { both: 30, onlyA: 4, onlyB: 12, neither: 14 };
    const paired = pairedDifferenceInterval(counts);
    close(paired.estimate, 8 / 60, 1e-12);
    // independent computation of Newcombe's method 10 with phi = (30*14 - 4*12) / sqrt(34*26*42*18)
    close(paired.lo, 0.006487);
    close(paired.hi, 0.253492);
    const unpaired = differenceInterval({ successes: 34, n: 60 }, { successes: 42, n: 60 });
    assert.ok(paired.hi - paired.lo < unpaired.hi - unpaired.lo);
  });

  it('paired: identical runs give an interval around 0 that is not a point', () => {
    const i = pairedDifferenceInterval({ both: 48, onlyA: 0, onlyB: 0, neither: 0 });
    assert.equal(i.estimate, 0);
    assert.ok(i.lo < 0 && i.hi > 0 && i.lo >= -1 && i.hi <= 1);
  });
});

describe('mcnemarExact', () => {
  it('is the two-sided binomial tail of the discordant pairs', () => {
    close(mcnemarExact(1, 9), (2 * (1 + 10)) / 1024, 1e-12);
    close(mcnemarExact(4, 12), 0.076812744140625, 1e-12);
    assert.equal(mcnemarExact(12, 4), mcnemarExact(4, 12));
  });

  it('is 1 when nothing or an even split flipped, and stays finite for thousands of flips', () => {
    assert.equal(mcnemarExact(0, 0), 1);
    assert.equal(mcnemarExact(5, 5), 1);
    const p = mcnemarExact(1400, 1600);
    assert.ok(p > 0 && p < 0.001, `p = ${p}`);
  });
});

describe('holmAdjust', () => {
  it('adjusts step-down and keeps the input order', () => {
    const adjusted = holmAdjust([0.01, 0.04, 0.03, 0.005]);
    [0.03, 0.06, 0.06, 0.02].forEach((want, i) => close(adjusted[i]!, want, 1e-12));
  });

  it('caps at 1 and refuses values that are not p-values', () => {
    assert.deepEqual(holmAdjust([0.5, 0.9]), [1, 1]);
    assert.deepEqual(holmAdjust([]), []);
    assert.throws(() => holmAdjust([0.1, 1.2]), /p-value 1.2 at position 1/);
  });
});

describe('medianInterval', () => {
  // the timed runs arrive in the order they ran, not sorted
  const shuffled = (n: number) => Array.from({ length: n }, (_, i) => ((i * 7) % n) + 1);

  it('takes x(2) and x(9) of ten runs, covering 1 - 2 x 11/1024', () => {
    const i = medianInterval(shuffled(10));
    assert.deepEqual([i.estimate, i.lo, i.hi], [5.5, 2, 9]);
    close(i.coverage, 1 - 22 / 1024, 1e-12);
  });

  it('takes x(6) and x(15) of twenty runs: P(B <= 5) = 21700 / 2^20', () => {
    const i = medianInterval(shuffled(20));
    assert.deepEqual([i.estimate, i.lo, i.hi], [10.5, 6, 15]);
    close(i.coverage, 1 - (2 * 21700) / 2 ** 20, 1e-12);
  });

  it('uses the full range once it is the only pair that reaches the confidence', () => {
    const six = medianInterval([3, 1, 2, 6, 5, 4]);
    assert.deepEqual([six.estimate, six.lo, six.hi], [3.5, 1, 6]);
    close(six.coverage, 1 - 2 / 64, 1e-12);
    const tenAt99 = medianInterval(shuffled(10), 0.99);
    assert.deepEqual([tenAt99.lo, tenAt99.hi], [1, 10]);
    close(tenAt99.coverage, 1 - 2 / 1024, 1e-12);
  });

  it('says so when too few runs reach the confidence at all', () => {
    const five = medianInterval([5, 4, 3, 2, 1]);
    assert.deepEqual([five.estimate, five.lo, five.hi], [3, 1, 5]);
    close(five.coverage, 1 - 2 / 32, 1e-12);
    assert.ok(five.coverage < 0.95);
    assert.deepEqual(medianInterval([0.25]), { estimate: 0.25, lo: 0.25, hi: 0.25, coverage: 0 });
  });

  it('stays finite and just above 95% at the contract bound of 1,000 runs', () => {
    const i = medianInterval(shuffled(1000));
    // the normal approximation puts the ranks near 500 -/+ 1.96 x sqrt(1000) / 2 = 469 and 532
    assert.ok(i.lo >= 465 && i.lo <= 472 && i.hi === 1001 - i.lo, JSON.stringify(i));
    assert.ok(i.coverage >= 0.95 && i.coverage < 0.96, String(i.coverage));
  });

  it('refuses what is not a sample', () => {
    assert.throws(() => medianInterval([]), /at least one sample/);
    assert.throws(() => medianInterval([1, Number.NaN]), /sample 1 is not a finite number/);
    assert.throws(() => medianInterval([1], 1), /confidence must lie in \(0, 1\)/);
  });
});
