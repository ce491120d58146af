// Pool planning (workflows/pool.ts): model-major grouping, sizing to the pending work under
// maxPods, the spec's pool settings, and the orchestrator's pool environment.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allocatePods, POOL_DEFAULTS, PoolSettings, poolGroups, poolProgressLine } from '../../workflows/pool';
import { poolFromEnv } from '../../workers/lib/pool-config';

const settings = (s: Partial<PoolSettings>) => ({ ...POOL_DEFAULTS, ...s });

describe('pool planning', () => {
  it('groups models in model-major order, one queue per group and sweep', () => {
    const groups = poolGroups('s1', ['a', 'b', 'c'], settings({ modelsPerPod: 2 }));
    assert.deepEqual(groups, [
      { id: 'g0', models: ['a', 'b'], queue: 'twice-gpu.s1.g0' },
      { id: 'g1', models: ['c'], queue: 'twice-gpu.s1.g1' },
    ]);
    assert.deepEqual(
      poolGroups('s2', ['a', 'b'], POOL_DEFAULTS).map((g) => g.queue),
      ['twice-gpu.s2.g0', 'twice-gpu.s2.g1'],
    );
  });

  it('sizes groups to pending shards, fills earlier groups first, and never exceeds maxPods', () => {
    const groups = poolGroups('s', ['a', 'b', 'c'], POOL_DEFAULTS);
    const s = settings({ maxPods: 4, shardsPerPod: 8 });
    assert.deepEqual(allocatePods(groups, { a: 17, b: 8, c: 30 }, s), { g0: 3, g1: 1, g2: 0 });
    // a finishes: its pods go to the models still waiting
    assert.deepEqual(allocatePods(groups, { a: 0, b: 8, c: 30 }, s), { g0: 0, g1: 1, g2: 3 });
    assert.deepEqual(allocatePods(groups, {}, s), { g0: 0, g1: 0, g2: 0 });
    for (const pending of [
      { a: 1000, b: 1000, c: 1000 },
      { a: 1, b: 1, c: 1 },
    ]) {
      const total = Object.values(allocatePods(groups, pending, s)).reduce((x, y) => x + y, 0);
      assert.ok(total <= 4);
    }
  });

  it('prints one progress line', () => {
    assert.equal(
      poolProgressLine({ provider: 'kubernetes', desired: { g0: 2, g1: 2, g2: 0 }, ready: { g0: 2, g1: 1 }, shrunkBy: 'gpu-budget' }),
      'pool (kubernetes): 3/4 pods ready (g0 2/2, g1 1/2); shrunk to fit gpu-budget',
    );
  });

  it('validates pool settings strictly, naming the field', () => {
    assert.equal(PoolSettings.safeParse({ maxPods: 0 }).error?.issues[0]?.path.join('.'), 'maxPods');
    assert.equal(PoolSettings.safeParse({ gpus: 1 }).success, false, 'unknown fields are refused');
    assert.deepEqual(PoolSettings.parse({ gpuType: 'NVIDIA-H200' }).nodeSelector, {});
  });

  it('reads the pool provider from the environment, with errors that name the variable', () => {
    const temporal = { address: '127.0.0.1:7233', namespace: 'default' };
    assert.equal(poolFromEnv({}, temporal).provider.name, 'local');
    assert.throws(() => poolFromEnv({ TWICE_POOL_PROVIDER: 'k8s' }, temporal), /TWICE_POOL_PROVIDER: .*\(got "k8s"\)/);
    assert.throws(() => poolFromEnv({ TWICE_POOL_PROVIDER: 'kubernetes' }, temporal), /needs TWICE_POOL_IMAGE/);
    assert.throws(() => poolFromEnv({ TWICE_POOL_RECONCILE_MINUTES: '0' }, temporal), /TWICE_POOL_RECONCILE_MINUTES/);
  });
});
