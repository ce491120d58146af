// Every malformed spec fails before anything starts: the error names the file, the field path and
// the offending value, no workflow is started, and the database stays empty. Runs against the real
// embedded stack (PostgreSQL + Temporal dev server).
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

// [case, spec text, substrings the message must contain]
const CASES: Array<[string, string, string[]]> = [
  ['unknown top-level key', spec([GOOD.models, GOOD.tasks, 'modles: [x]']), ['(top level): unknown key "modles"']],
  ['wrong type for models', spec(['models: mamba-130m', GOOD.tasks]), ['models: ', 'got "mamba-130m"']],
  ['empty model list', spec(['models: []', GOOD.tasks]), ['models: list at least one model', 'got []']],
  ['empty task list', spec([GOOD.models, 'tasks: []']), ['tasks: list at least one task']],
  ['empty strategy list', spec([GOOD.models, GOOD.tasks, 'strategies: []']), ['strategies: list at least one strategy']],
  ['unknown model, with a suggestion', spec(['models: [mamba-13m]', GOOD.tasks]), ['models[0]: unknown model "mamba-13m"', 'did you mean "mamba-130m"']],
  ['unknown task', spec([GOOD.models, 'tasks: [mqra]']), ['tasks[0]', 'got "mqra"']],
  ['unknown strategy', spec([GOOD.models, GOOD.tasks, 'strategies: [default, jrt]']), ['strategies[1]', 'got "jrt"']],
  ['duplicate model', spec(['models: [mamba-130m, mamba-130m]', GOOD.tasks]), ['models[1]: duplicate entry "mamba-130m"']],
  ['duplicate task with the same params', spec([GOOD.models, 'tasks: [mqar, { name: mqar, params: {} }]']), ['tasks[1]: duplicate entry "mqar"']],
  ['negative example count', spec([GOOD.models, 'tasks: [{ name: mqar, params: { numExamples: -5 } }]']), ['tasks[0].params.numExamples', 'got -5']],
  ['zero shard size', spec([GOOD.models, GOOD.tasks, 'execution: { shardSize: 0 }']), ['execution.shardSize', 'got 0']],
  ['string where a number belongs', spec([GOOD.models, GOOD.tasks, 'generation: { maxNewTokens: many }']), ['generation.maxNewTokens', 'got "many"']],
  ['strategy parameter out of range', spec([GOOD.models, GOOD.tasks, 'strategies: [{ name: jrt_prompt, params: { repeats: 1 } }]']), ['strategies[0].params.repeats', 'got 1']],
  ['misspelt task parameter', spec([GOOD.models, 'tasks: [{ name: mqar, params: { numKVPairs: 4 } }]']), ['tasks[0].params: unknown key "numKVPairs"']],
  ['set sizes must be positive', spec([GOOD.models, 'tasks: [{ name: set_disjointness, params: { sizes: [[4, 0]] } }]']), ['tasks[0].params.sizes[0][1]', 'got 0']],
  ['bin edges must increase', spec([GOOD.models, GOOD.tasks, 'slices: { distanceBinEdges: [1, 64, 16] }']), ['slices.distanceBinEdges: bin edges must increase strictly', '[1,64,16]']],
  ['name with spaces', 'name: My Sweep\n' + [GOOD.models, GOOD.tasks].join('\n'), ['name: use lowercase letters', 'got "My Sweep"']],
  ['no strategy applies to any model', spec([GOOD.models, GOOD.tasks, 'strategies: [jrt_rnn_left_pad]']), ['no (model, strategy) pair applies']],
  ['YAML syntax error', spec([GOOD.models, 'tasks: [mqar']), ['YAML:']],
  ['duplicate YAML key', spec([GOOD.models, GOOD.tasks, GOOD.tasks]), ['YAML: Map keys must be unique']],
  ['a list instead of a mapping', '- mqar\n- fda\n', ['(top level): expected a mapping of keys']],
  ['unknown execution device', spec([GOOD.models, GOOD.tasks, 'execution: { device: tpu }']), ['execution.device', 'got "tpu"']],
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

  it(`has at least 15 cases (${CASES.length})`, () => assert.ok(CASES.length >= 15));

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
