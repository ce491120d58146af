// scripts/offline-shards.ts: the shard inputs it writes are the sweep's own cells cut the sweep's
// way, and the margins it prints pair the same examples under default and each JRT layout.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RunShardInput } from '../../workflows/contract';
import { pairedDifferenceInterval } from '../../workflows/stats';
import { cellsOf, margins, marginTable, outcomesByCell, shardInputs } from '../../scripts/offline-shards';

const spec = 'specs/jrt-layout.yaml';

function line(cellKey: string, scores: Array<[number, number]>) {
  return JSON.stringify({
    output: {
      cellKey,
      shardIndex: scores[0]![0],
      examples: scores.map(([exampleId, score]) => ({
        exampleId,
        promptDigest: 'a'.repeat(64),
        prediction: 'x',
        gold: ['x'],
        score,
        promptTokens: 3,
        generatedTokens: 1,
      })),
      measurements: [],
      slices: [],
      timing: { loadSeconds: 0, prefillSeconds: 0, decodeSeconds: 0, prefillTokens: 3, batches: 1 },
      worker: { workerVersion: '0.1.0', python: '3.12.3', torch: '2.11.0', device: 'cpu', gpuName: null, driver: null, cuda: null, hostname: 'h', pid: 1 },
      model: { family: 'transformer', parameters: 1, stateBytes: 1, dtype: 'float32' },
    },
  });
}

describe('offline shards', () => {
  it('writes the jrt-layout grid as the sweep would: 36 cells, 108 valid shard inputs of at most 100 examples', async () => {
    const cells = await cellsOf(spec);
    assert.equal(cells.length, 6 * 2 * 3);
    const inputs = shardInputs(cells, 100, 'auto');
    assert.equal(inputs.length, 108);
    for (const input of inputs) {
      RunShardInput.parse(input);
      assert.ok(input.exampleEnd - input.exampleStart <= 100);
    }
    assert.deepEqual(new Set(inputs.map((i) => i.strategy.name)), new Set(['default', 'jrt_prompt', 'jrt_question_first']));
  });

  it('pairs examples by id, per task and pooled, with the paired Newcombe interval', async () => {
    const all = await cellsOf(spec);
    const cells = all.filter((c) => c.model.name === 'zoo-attn-tiny').map((c) => ({ ...c, numExamples: 4 }));
    const outcome: Record<string, number[]> = { default: [1, 1, 0, 0], jrt_prompt: [1, 0, 1, 1], jrt_question_first: [1, 1, 0, 0] };
    // shards land out of order and split in two: pairing is by example id
    const lines = cells.flatMap((c) => {
      const s = outcome[c.strategy.name]!;
      return [
        line(c.key, [
          [2, s[2]!],
          [3, s[3]!],
        ]),
        line(c.key, [
          [0, s[0]!],
          [1, s[1]!],
        ]),
      ];
    });
    const rows = margins(cells, outcomesByCell(cells, lines));
    const mqar = rows.find((r) => r.task === 'mqar' && r.strategy === 'jrt_prompt')!;
    assert.deepEqual(mqar.counts, { both: 1, onlyA: 1, onlyB: 2, neither: 0 });
    assert.deepEqual(mqar.margin, pairedDifferenceInterval(mqar.counts));
    assert.equal(mqar.margin.estimate, 0.25);
    const pooled = rows.find((r) => r.task === 'all' && r.strategy === 'jrt_prompt')!;
    assert.deepEqual(pooled.counts, { both: 2, onlyA: 2, onlyB: 4, neither: 0 });
    assert.equal(rows.find((r) => r.task === 'all' && r.strategy === 'jrt_question_first')!.margin.estimate, 0);
    assert.match(marginTable(rows), /\| zoo-attn-tiny \| all \| jrt_prompt \| 50\.0 \| 75\.0 \| \+25\.0 \|/);
  });

  it('refuses results with a missing example, a doubled one, or a cell from another grid', async () => {
    const cells = (await cellsOf(spec)).filter((c) => c.model.name === 'zoo-attn-tiny').map((c) => ({ ...c, numExamples: 2 }));
    const full = cells.map((c) =>
      line(c.key, [
        [0, 1],
        [1, 0],
      ]),
    );
    assert.throws(() => outcomesByCell(cells, full.slice(1)), /example 0 has no result/);
    assert.throws(() => outcomesByCell(cells, [...full, line(cells[0]!.key, [[1, 1]])]), /example 1 recorded twice/);
    assert.throws(() => outcomesByCell(cells, [...full, line('f'.repeat(64), [[0, 1]])]), /is not in the spec/);
    assert.throws(() => outcomesByCell(cells, ['{"output": {"cellKey": 3}}']), /line 1: not a run_shard output/);
  });
});
