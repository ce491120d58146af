// Which paper number a cell is compared with, and the report's "beside the paper" block.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { comparePaper, loadPaperNumbers, paperNumberFor, paperRows, type ComparableCell } from '../../workers/lib/paper-numbers';
import { renderMarkdown, renderTerminal, type CellResult, type SweepReport } from '../../workers/lib/report';
import { wilsonInterval } from '../../workflows/stats';

const paper = loadPaperNumbers();
const cell = (over: Partial<ComparableCell>): ComparableCell => ({
  model: 'mamba2-2.7b',
  family: 'mamba2',
  task: 'fda',
  taskLabel: 'fda',
  strategy: 'default',
  status: 'done',
  accuracy: 0.7,
  taskParams: { contextTokens: 950 },
  strategyParams: {},
  ...over,
});

describe('paperNumberFor', () => {
  it('Table 1: 950-token windows, NQ from the 1024 set, default and JRT-Prompt x2', () => {
    assert.deepEqual(paperNumberFor(cell({}), paper), { value: 68.7, source: 'Table 1' });
    assert.deepEqual(paperNumberFor(cell({ strategy: 'jrt_prompt', strategyParams: { repeats: 2 } }), paper), { value: 81.6, source: 'Table 1' });
    assert.equal(paperNumberFor(cell({ strategy: 'jrt_prompt', strategyParams: { repeats: 3 } }), paper), null);
    assert.deepEqual(paperNumberFor(cell({ task: 'nq', taskParams: { variant: 1024, contextTokens: 950 } }), paper), { value: 34.4, source: 'Table 1' });
    assert.equal(paperNumberFor(cell({ task: 'nq', taskParams: { variant: 512, contextTokens: 950 } }), paper), null);
    assert.equal(paperNumberFor(cell({ taskParams: { contextTokens: 200 } }), paper), null);
  });

  it('Tables 2-4: lengths from context budgets, JRT-RNN only with the released padding', () => {
    const base = { model: 'based-1b-50b', family: 'based' };
    assert.deepEqual(paperNumberFor(cell({ ...base, taskParams: { contextTokens: 462 } }), paper), { value: 69.3, source: 'Table 2' });
    assert.deepEqual(paperNumberFor(cell({ ...base, task: 'drop', taskParams: { contextTokens: 1998 } }), paper), { value: 20.8, source: 'Table 2' });
    assert.deepEqual(paperNumberFor(cell({ ...base, taskParams: { contextTokens: 1998 } }), paper), { value: 36.1, source: 'Table 3' });
    const jrt = { model: 'jrt-1b-50b', family: 'jrt_rnn', taskParams: { contextTokens: 974 } };
    const released = { padding: 'released-v1' };
    assert.deepEqual(paperNumberFor(cell({ ...jrt, strategy: 'jrt_rnn_left_pad', strategyParams: released }), paper), { value: 67.7, source: 'Table 2' });
    assert.equal(paperNumberFor(cell({ ...jrt, strategy: 'jrt_rnn_left_pad', strategyParams: {} }), paper), null);
    assert.equal(paperNumberFor(cell({ ...jrt, strategy: 'default' }), paper), null);
    const at512 = { ...jrt, taskParams: { contextTokens: 462 } };
    assert.deepEqual(paperNumberFor(cell({ ...at512, strategy: 'jrt_rnn_read2x', strategyParams: released }), paper), { value: 86.7, source: 'Table 4' });
    assert.deepEqual(paperNumberFor(cell({ ...at512, strategy: 'jrt_rnn_left_pad', strategyParams: released }), paper), { value: 75.8, source: 'Table 4' });
    assert.deepEqual(paperNumberFor(cell({ ...at512, strategy: 'jrt_rnn_iterate' }), paper), { value: 80.2, source: 'Table 4' });
  });
});

describe('the report beside the paper', () => {
  it('prints ours, the paper and the difference for matching done cells only', () => {
    const rows = comparePaper([cell({ accuracy: 0.7 }), cell({ status: 'failed' }), cell({ model: 'zoo-attn-tiny' })], paper);
    assert.equal(rows.length, 1);
    assert.deepEqual(paperRows(rows)[0], ['mamba2-2.7b', 'fda', 'default', '70.0', '68.7', '+1.3', 'Table 1']);
    const result: CellResult = {
      ...cell({}),
      key: 'k',
      reused: false,
      examples: 10,
      correct: 7,
      ci95: wilsonInterval(7, 10),
      perplexity: {},
      prefillTokensPerSecond: null,
      promptsPerSecond: null,
      parameters: null,
      stateBytes: null,
      error: null,
      accuracy: 0.7,
    } as CellResult;
    const report: SweepReport = {
      sweepId: 's',
      name: 'paper-table1',
      status: 'completed',
      createdAt: 'now',
      finishedAt: null,
      gitSha: null,
      cells: [result],
      benchmarks: [],
      perplexity: [],
      jrtMargins: [],
      paretoAxis: 'eval',
      paretoInterval: 'none',
      pareto: [],
      analytic: { seqLen: 1024, points: [] },
      paper: rows,
      execution: { shards: 0, workers: 0, modelLoads: 0, workerModelPairs: 0 },
    };
    assert.match(renderTerminal(report), /Beside the paper[\s\S]*68\.7[\s\S]*\+1\.3/);
    assert.match(renderMarkdown(report), /## Beside the paper[\s\S]*\| mamba2-2\.7b \| fda \| default \| 70\.0 \| 68\.7 \| \+1\.3 \| Table 1 \|/);
    assert.doesNotMatch(renderMarkdown({ ...report, paper: [] }), /Beside the paper/);
  });
});
