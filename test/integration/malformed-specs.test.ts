// End to end: a malformed spec fails before anything starts, against the real embedded stack
// (PostgreSQL + Temporal dev server): no workflow is started and the database stays empty. The
// parsing cases themselves (messages, paths, values) are unit tests: test/unit/malformed-specs.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SpecError } from '../../workflows/sweep-spec';
import { startSweep } from '../../workers/lib/sweeps';
import { tableCounts, testStack } from '../helpers/fixtures';

const GOOD = {
  models: 'models: [mamba-130m, based-1b]',
  tasks: 'tasks: [{ name: mqar, params: { numExamples: 8 } }]',
};
const spec = (lines: string[]) => ['name: bad', ...lines].join('\n');

// one case per stage of checking: YAML, the schema, the catalog, task params, expansion
const CASES: Array<[string, string, string[]]> = [
  ['YAML syntax error', spec([GOOD.models, 'tasks: [mqar']), ['YAML:']],
  ['unknown top-level key', spec([GOOD.models, GOOD.tasks, 'modles: [x]']), ['(top level): unknown key "modles"']],
  ['unknown model, with a suggestion', spec(['models: [mamba-13m]', GOOD.tasks]), ['did you mean "mamba-130m"']],
  ['unbounded example count', spec([GOOD.models, 'tasks: [{ name: mqar, params: { numExamples: 1e12 } }]']), ['tasks[0].params.numExamples']],
  ['no strategy applies to any model', spec([GOOD.models, GOOD.tasks, 'strategies: [jrt_rnn_left_pad]']), ['no cell to run']],
];

describe('malformed sweep specs', () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  const dir = mkdtempSync(join(tmpdir(), 'twice-specs-'));
  before(async () => {
    stack = await testStack();
  });
  after(async () => {
    await stack.stop();
  });

  for (const [name, text, expected] of CASES) {
    it(`rejects: ${name}`, async () => {
      const file = join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(file, text);
      await assert.rejects(startSweep(stack.client, file), (err: unknown) => {
        assert.ok(err instanceof SpecError, `expected a SpecError, got ${String(err)}`);
        assert.ok(err.message.startsWith(`${file}: invalid sweep spec`), err.message);
        for (const part of expected) assert.ok(err.message.includes(part), `"${part}" not in:\n${err.message}`);
        return true;
      });
    });
  }

  it('rejects a file that does not exist', async () => {
    await assert.rejects(startSweep(stack.client, join(dir, 'nope.yaml')), /cannot read the file/);
  });

  it('left the database and Temporal untouched', async () => {
    assert.deepEqual(await tableCounts(stack.db), { sweeps: 0, cells: 0, sweepCells: 0, shards: 0, examples: 0, slices: 0, throughput: 0 });
    const started = await stack.client.workflow.count('WorkflowType = "sweepWorkflow"');
    assert.equal(started.count, 0);
  });
});
