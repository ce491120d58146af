// Issue 11 item 13: the progress line's ETA never prints a non-number ("NFs"), never "12m60s",
// and does not jump by orders of magnitude when polls arrive unevenly on one model.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EtaEstimator, formatEta } from '../../workers/lib/eta';

describe('formatEta', () => {
  it('prints a duration or "-", with no 60 in a seconds or minutes place', () => {
    assert.equal(formatEta(null), '-');
    assert.equal(formatEta(NaN), '-');
    assert.equal(formatEta(Infinity), '-');
    assert.equal(formatEta(-3), '-');
    assert.equal(formatEta(42.4), '42s');
    assert.equal(formatEta(779.6), '13m00s');
    assert.equal(formatEta(725), '12m05s');
    assert.equal(formatEta(3599.7), '1h00m');
    assert.equal(formatEta(11_220), '3h07m');
  });
});

describe('EtaEstimator', () => {
  it('says nothing until a rate is known, then a steady figure on a steady run', () => {
    const eta = new EtaEstimator();
    assert.equal(eta.update(0, 0, 1000, 'm'), null);
    assert.equal(eta.update(500, 0, 1000, 'm'), null); // no progress yet: no rate, not Infinity
    const figures: number[] = [];
    // 10 examples a second, polled every 0.5 s but recorded in bursts of a shard (30 examples)
    for (let t = 3000, done = 30; done < 600; t += 3000, done += 30) {
      eta.update(t - 2500, done - 30, 1000, 'm');
      const left = eta.update(t, done, 1000, 'm');
      if (left !== null) figures.push(left);
    }
    assert.ok(figures.length > 5);
    for (const [i, left] of figures.entries()) {
      const truth = (1000 - 30 * (i + 1)) / 10;
      assert.ok(Math.abs(left - truth) / truth < 0.6, `estimate ${left}s vs ${truth}s`);
    }
  });

  it("keeps a rate per model, so a slow model does not inherit a fast one's estimate", () => {
    const eta = new EtaEstimator();
    eta.update(0, 0, 400, 'fast');
    eta.update(1000, 100, 400, 'fast'); // 100/s
    const fast = eta.update(2000, 200, 400, 'fast');
    assert.ok(fast !== null && Math.abs(fast - 2) < 0.01);
    eta.update(3000, 200, 400, 'slow');
    assert.equal(eta.update(4000, 200, 400, 'slow'), null); // nothing known of the slow model yet
    eta.update(14_000, 210, 400, 'slow'); // 1/s
    const slow = eta.update(24_000, 220, 400, 'slow');
    assert.ok(slow !== null && Math.abs(slow - 180) < 1, `got ${slow}`);
  });
});
