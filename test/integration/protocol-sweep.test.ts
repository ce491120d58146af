// The paper's protocol on the embedded stack: every task (the six recall datasets from fixtures in
// their real schema, and the synthetic tasks) x {default, JRT-Prompt} on debug models with random
// weights and a byte tokenizer. The worker counts each dataset's examples (describe_task), and every
// cell stores per-example scores and per-slice perplexity sums.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSweepReport } from '../../workers/lib/report/index';
import { repoRoot } from '../../workers/lib/paths';
import { startSweep } from '../../workers/lib/sweeps';
import { testStack } from '../helpers/fixtures';

const REAL = ['fda', 'swde', 'squad', 'triviaqa', 'drop', 'nq'];
const SPEC = `
name: it-protocol
models: [debug-attn-bytes, debug-mamba2-bytes]
tasks:
${REAL.map((t) => `  - { name: ${t}, params: { contextTokens: 300 } }`).join('\n')}
  - { name: mqar, params: { numExamples: 3, numKvPairs: 4 } }
  - { name: synthetic_doc_qa, params: { numExamples: 3, numFacts: 3 } }
  - { name: set_disjointness, params: { numExamples: 3 } }
strategies: [default, jrt_prompt]
generation: { maxNewTokens: 6, batchSize: 4 }
execution: { shardSize: 8, window: 4, device: cpu }
`;

describe('the protocol over every task', { timeout: 600_000 }, () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  const previous = process.env.TWICE_DATA_DIR;
  before(async () => {
    // the Python worker inherits this: datasets are found as <dir>/<hf dataset id>/validation.jsonl
    process.env.TWICE_DATA_DIR = join(repoRoot, 'inference', 'tests', 'fixtures', 'recall');
    stack = await testStack({ pythonWorkers: 1 });
  });
  after(async () => {
    await stack?.stop();
    if (previous === undefined) delete process.env.TWICE_DATA_DIR;
    else process.env.TWICE_DATA_DIR = previous;
  });

  it('stores accuracy and slice perplexity for every cell', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'twice-protocol-'));
    const file = join(dir, 'protocol.yaml');
    writeFileSync(file, SPEC);
    const { sweepId, handle } = await startSweep(stack.client, file);
    const result = await handle.result();
    assert.equal(result.status, 'completed', JSON.stringify(result.failures));
    assert.equal(result.cells.total, 2 * 9 * 2);

    const cells = await stack.db.cell.findMany({ include: { _count: { select: { examples: true, sliceStats: true } } } });
    assert.equal(cells.length, 36);
    for (const c of cells) {
      assert.equal(c.status, 'done');
      assert.ok(c.numExamples > 0, `${c.taskName} has no examples`);
      assert.equal(c._count.examples, c.numExamples, `${c.taskName}/${c.strategyName}`);
      assert.ok(c._count.sliceStats > 0, `${c.taskName}/${c.strategyName} has no slice sums`);
      // real datasets are identified by their bytes, synthetic ones by their parameters
      assert.match(c.taskDataDigest, /^[0-9a-f]{64}$/);
    }
    // the fixtures' sizes as the worker counted them, after the paper's skip rule: one fda row has a
    // one-character value and one nq row has no answer, so both are left out (nq reads its 1024 variant)
    const counts = Object.fromEntries(
      cells.filter((c) => c.strategyName === 'default' && c.modelName === 'debug-attn-bytes').map((c) => [c.taskName, c.numExamples]),
    );
    assert.deepEqual(
      { fda: counts.fda, swde: counts.swde, squad: counts.squad, triviaqa: counts.triviaqa, drop: counts.drop, nq: counts.nq },
      { fda: 3, swde: 2, squad: 2, triviaqa: 2, drop: 2, nq: 2 },
    );
    // JRT-Prompt reads the context twice: its prompts are longer than the default ones
    const report = await loadSweepReport(stack.db, sweepId);
    assert.ok(report.cells.every((c) => c.accuracy !== null && c.perplexity.other !== undefined));
    const tokens = await stack.db.$queryRaw<Array<{ strategy_name: string; mean: number }>>`
      SELECT c.strategy_name, avg(e.prompt_tokens)::float AS mean
        FROM example_results e JOIN cells c ON c.key = e.cell_key
       WHERE c.task_name = 'fda' GROUP BY c.strategy_name`;
    const mean = Object.fromEntries(tokens.map((t) => [t.strategy_name, t.mean]));
    assert.ok(mean.jrt_prompt! > 1.8 * mean.default!, JSON.stringify(mean));
  });
});
