// Small-sample statistics for accuracies measured on example sets: intervals that stay inside
// [0, 1] at 0% and 100% (a normal approximation prints "100.0 ± 0.0" there), an exact paired test
// for two runs on the same examples, and a multiple-comparison correction for a grid of cells.
// Pure and deterministic, so it lives beside the workflows: a workflow, an activity, the report,
// the web dashboard and the Slack app all use the same numbers.

/** The normal quantile of a two-sided 95% interval. */
export const Z95 = 1.959963984540054;

export interface Interval {
  estimate: number;
  lo: number;
  hi: number;
}

/** Wilson score interval for a binomial proportion (successes out of n). */
export function wilsonInterval(successes: number, n: number, z = Z95): Interval {
  checkCounts({ successes, n });
  if (successes > n) throw new RangeError(`successes (${successes}) exceed n (${n})`);
  if (n === 0) return { estimate: NaN, lo: 0, hi: 1 };
  const p = successes / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // at the edges the exact bound is 0 or 1; floating point can land a hair inside
  return {
    estimate: p,
    lo: successes === 0 ? 0 : Math.max(0, centre - half),
    hi: successes === n ? 1 : Math.min(1, centre + half),
  };
}

/**
 * Outcomes of two runs on the same examples: `both` correct in both, `onlyA` correct only in A,
 * `onlyB` correct only in B, `neither` in neither.
 */
export type PairedCounts = {
  both: number;
  onlyA: number;
  onlyB: number;
  neither: number;
};

/**
 * Interval for accuracy(B) - accuracy(A) on the same examples: Newcombe's hybrid score method for
 * paired proportions (his method 10), built from the two Wilson intervals and the correlation of
 * the paired outcomes, so it stays inside [-1, 1] and is not degenerate at 0% or 100%.
 */
export function pairedDifferenceInterval(c: PairedCounts, z = Z95): Interval {
  checkCounts(c);
  const n = c.both + c.onlyA + c.onlyB + c.neither;
  if (n === 0) return { estimate: NaN, lo: -1, hi: 1 };
  const a = wilsonInterval(c.both + c.onlyA, n, z);
  const b = wilsonInterval(c.both + c.onlyB, n, z);
  const margins = (c.both + c.onlyA) * (c.onlyB + c.neither) * (c.both + c.onlyB) * (c.onlyA + c.neither);
  const phi = margins === 0 ? 0 : (c.both * c.neither - c.onlyA * c.onlyB) / Math.sqrt(margins);
  const d = b.estimate - a.estimate;
  const dl = Math.sqrt(Math.max(0, (b.estimate - b.lo) ** 2 - 2 * phi * (b.estimate - b.lo) * (a.hi - a.estimate) + (a.hi - a.estimate) ** 2));
  const du = Math.sqrt(Math.max(0, (b.hi - b.estimate) ** 2 - 2 * phi * (b.hi - b.estimate) * (a.estimate - a.lo) + (a.estimate - a.lo) ** 2));
  return { estimate: d, lo: Math.max(-1, d - dl), hi: Math.min(1, d + du) };
}

/**
 * Interval for accuracy(B) - accuracy(A) on independent example sets: Newcombe's hybrid score
 * method for unpaired proportions (his method 10 with no correlation term).
 */
export function differenceInterval(a: { successes: number; n: number }, b: { successes: number; n: number }, z = Z95): Interval {
  const ia = wilsonInterval(a.successes, a.n, z);
  const ib = wilsonInterval(b.successes, b.n, z);
  const d = ib.estimate - ia.estimate;
  return {
    estimate: d,
    lo: Math.max(-1, d - Math.hypot(ib.estimate - ib.lo, ia.hi - ia.estimate)),
    hi: Math.min(1, d + Math.hypot(ib.hi - ib.estimate, ia.estimate - ia.lo)),
  };
}

/**
 * Exact two-sided McNemar test: of the examples whose outcome differs between two runs
 * (`onlyA` + `onlyB`), is the split compatible with a fair coin? Returns the p-value (1 when
 * nothing flipped).
 */
export function mcnemarExact(onlyA: number, onlyB: number): number {
  checkCounts({ onlyA, onlyB });
  const n = onlyA + onlyB;
  if (n === 0) return 1;
  const k = Math.min(onlyA, onlyB);
  // P(X <= k) for X ~ Binomial(n, 1/2) = 2^-n * sum of C(n, i) for i <= k. The binomial
  // coefficients come from their ratio, one multiply per term; the running sum is rescaled before
  // it overflows and the scale kept as a logarithm, so thousands of flips stay finite (the
  // dashboard compares hundreds of cells per request, and a log and an exp per term cost more)
  let term = 1;
  let sum = 1;
  let logScale = 0;
  for (let i = 1; i <= k; i++) {
    term *= (n - i + 1) / i;
    sum += term;
    if (sum > 1e280) {
      logScale += Math.log(sum);
      term /= sum;
      sum = 1;
    }
  }
  return Math.min(1, 2 * Math.exp(Math.log(sum) + logScale - n * Math.LN2));
}

/**
 * Holm's step-down adjustment of p-values for m simultaneous tests: controls the family-wise
 * error rate like Bonferroni and rejects at least as often. Returns adjusted p-values in the
 * input order; compare them with the unadjusted threshold.
 */
export function holmAdjust(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => ({ p, i })).sort((x, y) => x.p - y.p || x.i - y.i);
  const adjusted = new Array<number>(m);
  let running = 0;
  order.forEach(({ p, i }, rank) => {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`p-value ${p} at position ${i} is not in [0, 1]`);
    running = Math.max(running, Math.min(1, (m - rank) * p));
    adjusted[i] = running;
  });
  return adjusted;
}

/** An interval of a population median and the probability it covers it. */
export interface MedianInterval extends Interval {
  /** the exact coverage of [lo, hi]; below the asked confidence when there are too few samples */
  coverage: number;
}

/**
 * A distribution-free interval of the median from order statistics: [x(k), x(n+1-k)] of the
 * sorted samples, with k the largest rank whose exact coverage 1 - 2 P(B <= k-1), B ~
 * Binomial(n, 1/2), still reaches `confidence`. It assumes only independent draws from one
 * continuous distribution, not a normal one: run times are skewed (a descheduled run is slow, no
 * run is much faster than the machine allows). Ten runs give [x(2), x(9)] at 97.9%; with five or
 * fewer no pair of ranks reaches 95% and the full range is returned with its lower coverage.
 */
export function medianInterval(samples: readonly number[], confidence = 0.95): MedianInterval {
  const n = samples.length;
  if (n === 0) throw new RangeError('medianInterval needs at least one sample');
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must lie in (0, 1), got ${confidence}`);
  samples.forEach((x, i) => {
    if (!Number.isFinite(x)) throw new RangeError(`sample ${i} is not a finite number: ${x}`);
  });
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(n / 2);
  const estimate = n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  // cdf[j] = P(B <= j); log terms keep 2^-n representable up to the contract's 1,000 runs
  let logTerm = -n * Math.LN2;
  let cdf = Math.exp(logTerm);
  let k = 0;
  let coverage = 0;
  for (let j = 0; j < mid && 1 - 2 * cdf >= confidence; j++) {
    k = j + 1;
    coverage = 1 - 2 * cdf;
    logTerm += Math.log((n - j) / (j + 1));
    cdf += Math.exp(logTerm);
  }
  if (k === 0) return { estimate, lo: sorted[0]!, hi: sorted[n - 1]!, coverage: Math.max(0, 1 - 2 ** (1 - n)) };
  return { estimate, lo: sorted[k - 1]!, hi: sorted[n - k]!, coverage };
}

function checkCounts(counts: object) {
  for (const [name, v] of Object.entries(counts)) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
  }
}
