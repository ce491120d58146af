// Every malformed spec is refused by readSpec, before anything starts: the error names the file,
// the field path and the offending value (the CLI exits 2 on it). Pure parsing: no services.
// test/integration/malformed-specs.test.ts shows end to end that nothing is written.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadModelCatalog } from '../../activities/catalog';
import { SpecError, parseSweepSpec } from '../../workflows/sweep-spec';
import { repoRoot } from '../../workers/lib/paths';
import { MAX_SPEC_BYTES, readSpec } from '../../workers/lib/sweeps';

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
  [
    'unknown task, with a suggestion and the known names',
    spec([GOOD.models, 'tasks: [mqra]']),
    ['tasks[0]: unknown task "mqra" (did you mean "mqar"?)', 'known: mqar, synthetic_doc_qa'],
  ],
  ['unknown task in the long form', spec([GOOD.models, 'tasks: [{ name: squadd, params: {} }]']), ['tasks[0]: unknown task "squadd" (did you mean "squad"?)']],
  [
    'unknown strategy, with the known names',
    spec([GOOD.models, GOOD.tasks, 'strategies: [default, jrt]']),
    ['strategies[1]: unknown strategy "jrt"', 'known: default, jrt_prompt'],
  ],
  ['duplicate model', spec(['models: [mamba-130m, mamba-130m]', GOOD.tasks]), ['models[1]: duplicate entry "mamba-130m"']],
  ['duplicate task with the same params', spec([GOOD.models, 'tasks: [mqar, { name: mqar, params: {} }]']), ['tasks[1]: duplicate entry "mqar"']],
  ['negative example count', spec([GOOD.models, 'tasks: [{ name: mqar, params: { numExamples: -5 } }]']), ['tasks[0].params.numExamples', 'got -5']],
  ['zero shard size', spec([GOOD.models, GOOD.tasks, 'execution: { shardSize: 0 }']), ['execution.shardSize', 'got 0']],
  ['string where a number belongs', spec([GOOD.models, GOOD.tasks, 'generation: { maxNewTokens: many }']), ['generation.maxNewTokens', 'got "many"']],
  [
    'strategy parameter out of range',
    spec([GOOD.models, GOOD.tasks, 'strategies: [{ name: jrt_prompt, params: { repeats: 1 } }]']),
    ['strategies[0].params.repeats', 'got 1'],
  ],
  ['misspelt task parameter', spec([GOOD.models, 'tasks: [{ name: mqar, params: { numKVPairs: 4 } }]']), ['tasks[0].params: unknown key "numKVPairs"']],
  [
    'set sizes must be positive',
    spec([GOOD.models, 'tasks: [{ name: set_disjointness, params: { sizes: [[4, 0]] } }]']),
    ['tasks[0].params.sizes[0][1]', 'got 0'],
  ],
  [
    'bin edges must increase',
    spec([GOOD.models, GOOD.tasks, 'slices: { distanceBinEdges: [1, 64, 16] }']),
    ['slices.distanceBinEdges: bin edges must increase strictly', '[1,64,16]'],
  ],
  ['name with spaces', 'name: My Sweep\n' + [GOOD.models, GOOD.tasks].join('\n'), ['name: use lowercase letters', 'got "My Sweep"']],
  [
    'no strategy applies to any model',
    spec([GOOD.models, GOOD.tasks, 'strategies: [jrt_rnn_left_pad]']),
    ['no cell to run', 'jrt_rnn_left_pad applies to jrt_rnn models only'],
  ],
  ['YAML syntax error', spec([GOOD.models, 'tasks: [mqar']), ['YAML:']],
  ['duplicate YAML key', spec([GOOD.models, GOOD.tasks, GOOD.tasks]), ['YAML: tasks: duplicate key "tasks"']],
  ['duplicate nested YAML key', spec([GOOD.models, GOOD.tasks, 'execution: { window: 2, window: 3 }']), ['YAML: execution.window: duplicate key "window"']],
  ['a list instead of a mapping', '- mqar\n- fda\n', ['(top level): expected a mapping of keys']],
  ['unknown execution device', spec([GOOD.models, GOOD.tasks, 'execution: { device: tpu }']), ['execution.device', 'got "tpu"']],
  // issue 11 item 8: every parameter has an upper bound, the same one the worker enforces
  ['a trillion examples', spec([GOOD.models, 'tasks: [{ name: mqar, params: { numExamples: 1e12 } }]']), ['tasks[0].params.numExamples', 'got 1000000000000']],
  [
    'a trillion repeats',
    spec([GOOD.models, GOOD.tasks, 'strategies: [{ name: jrt_prompt, params: { repeats: 1e12 } }]']),
    ['strategies[0].params.repeats', 'got 1000000000000'],
  ],
  [
    'more key-value pairs than MQAR has keys',
    spec([GOOD.models, 'tasks: [{ name: mqar, params: { numKvPairs: 100000 } }]']),
    ['tasks[0].params.numKvPairs', 'got 100000'],
  ],
  [
    'more facts than a document has attributes',
    spec([GOOD.models, 'tasks: [{ name: synthetic_doc_qa, params: { numFacts: 1000 } }]']),
    ['tasks[0].params.numFacts', 'got 1000'],
  ],
  [
    'sets larger than half the elements',
    spec([GOOD.models, 'tasks: [{ name: set_disjointness, params: { sizes: [[100000, 1]] } }]']),
    ['tasks[0].params.sizes[0][0]', 'got 100000'],
  ],
  [
    'a set pair of three',
    spec([GOOD.models, 'tasks: [{ name: set_disjointness, params: { sizes: [[1, 2, 3]] } }]']),
    ['tasks[0].params.sizes[0]', 'got [1,2,3]'],
  ],
  [
    'a prefill of a billion tokens',
    spec([GOOD.models, 'tasks: [{ name: prefill_throughput, params: { lengths: [1e9] } }]']),
    ['tasks[0].params.lengths[0]', 'got 1000000000'],
  ],
  ['a billion timing runs', spec([GOOD.models, 'tasks: [{ name: prefill_throughput, params: { runs: 1e9 } }]']), ['tasks[0].params.runs', 'got 1000000000']],
  [
    'a grid too large to expand',
    spec([GOOD.models, 'tasks: [{ name: mqar, params: { numExamples: 100000 } }]', 'execution: { shardSize: 1 }']),
    ['execution.shardSize: the grid cuts into 200000 shards, more than 100000'],
  ],
  // issue 11 item 10: the valid choices are named, not "Invalid input"
  ['slices: true', spec([GOOD.models, GOOD.tasks, 'slices: true']), ['slices: use false to turn slices off, or a mapping of slice settings', 'got true']],
  [
    'unknown NQ variant',
    spec([GOOD.models, 'tasks: [{ name: nq, params: { variant: 4096 } }]']),
    ['tasks[0].params.variant: one of 512, 1024, 2048', 'got 4096'],
  ],
  [
    'an operator model with a recall task',
    spec(['models: [op-sdpa-flash]', GOOD.tasks]),
    ['no cell to run', 'op-sdpa-flash is a kernel-level operator, timed by prefill_throughput only'],
  ],
  // issue 11 item 11: a data path may not climb out of the worker's data root
  [
    'bigramCounts outside the data root',
    spec([GOOD.models, GOOD.tasks, 'slices: { bigramCounts: ../../../../etc/passwd }']),
    ['slices.bigramCounts: a path under the data root, without ".."', 'got "../../../../etc/passwd"'],
  ],
  // issue 11 item 9: YAML abuse gets a clear error naming the file
  [
    'an alias bomb',
    [
      'name: bad',
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]',
    ].join('\n'),
    ['YAML: Excessive alias count'],
  ],
  ['an undefined alias', spec([GOOD.models, 'tasks: *nowhere']), ['YAML:', 'nowhere']],
];

describe('malformed sweep specs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'twice-specs-'));
  const refused = (file: string, expected: Array<string | RegExp>) =>
    assert.throws(
      () => readSpec(file),
      (err: unknown) => {
        assert.ok(err instanceof SpecError, `expected a SpecError, got ${String(err)}`);
        assert.ok(err.message.startsWith(`${file}: invalid sweep spec`), err.message);
        for (const part of expected) {
          if (typeof part === 'string') assert.ok(err.message.includes(part), `"${part}" not in:\n${err.message}`);
          else assert.match(err.message, part);
        }
        // a bare "Invalid input" says nothing; "Invalid input: expected number" is fine
        assert.doesNotMatch(err.message, /Invalid input(?!:)/);
        return true;
      },
    );
  const write = (name: string, content: string | Buffer) => {
    const file = join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
    writeFileSync(file, content);
    return file;
  };

  for (const [name, text, expected] of CASES) {
    it(`rejects: ${name}`, () => refused(write(name, text), expected));
  }

  it('accepts the largest values the bounds allow', () => {
    const file = write(
      'at-the-bounds',
      spec([
        GOOD.models,
        'tasks: [{ name: mqar, params: { numExamples: 100000, numKvPairs: 512, seed: 4294967295 } }, { name: set_disjointness, params: { sizes: [[768, 768]] } }]',
        'strategies: [{ name: jrt_prompt, params: { repeats: 8 } }]',
        'execution: { shardSize: 5000 }',
      ]),
    );
    assert.equal(readSpec(file).spec.tasks[0]!.params.numKvPairs, 512);
  });

  it('rejects a file that does not exist', () => refused(join(dir, 'nope.yaml'), [/cannot read the file/]));

  it('rejects an oversized file by its size, before parsing it', () => {
    const file = write('huge', `${spec([GOOD.models, GOOD.tasks])}\ndescription: ${'x'.repeat(MAX_SPEC_BYTES)}\n`);
    refused(file, [`a sweep spec may hold at most ${MAX_SPEC_BYTES}`]);
  });

  it('rejects bytes that are not UTF-8, naming where', () => {
    const good = Buffer.from(spec([GOOD.models, GOOD.tasks, 'description: caf']));
    refused(write('latin1', Buffer.concat([good, Buffer.from([0xe9, 0x0a])])), [`the file is not valid UTF-8 (byte ${good.length} is 0xe9)`]);
  });

  it('rejects UTF-16 with a hint instead of mojibake', () => {
    const text = spec([GOOD.models, GOOD.tasks]);
    refused(write('utf16', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')])), ['the file is UTF-16; save it as UTF-8']);
  });

  // the quadratic check took minutes at this size; the timeout only keeps a regression from hanging
  it('checks duplicate keys in one pass (100k keys, one repeated)', { timeout: 120_000 }, () => {
    const keys = Array.from({ length: 100_000 }, (_, i) => `  k${i}: ${i}`);
    // far over the file size cap, so the parser is called directly
    const text = [spec([GOOD.models, GOOD.tasks]), 'slices:', ...keys, '  k7: 0'].join('\n');
    assert.throws(() => parseSweepSpec(text, 'many-keys.yaml', loadModelCatalog(repoRoot)), /YAML: slices\.k7: duplicate key "k7"/);
  });
});
