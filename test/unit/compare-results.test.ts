// scripts/compare-results.ts: two runs of a sweep agree only with the same cell keys and, per
// key, the same outcome; timings may differ.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { compareReports } from '../../scripts/compare-results';

const KEY_A = 'a'.repeat(64);
const KEY_B = 'b'.repeat(64);
const KEY_P = 'c'.repeat(64);

function recallCell(key: string, strategy: string, correct: number) {
  return {
    key,
    model: 'zoo-based-tiny',
    family: 'based',
    task: 'mqar',
    taskLabel: 'mqar',
    strategy,
    status: 'completed',
    reused: false,
    examples: 200,
    correct,
    accuracy: correct / 200,
    ci95: { lo: 0.1, hi: 0.2 },
    perplexity: { all: 3.25 },
    prefillTokensPerSecond: 12345.6,
    promptsPerSecond: 98.7,
    stateBytes: 329728,
    error: null as string | null,
  };
}

function report(sweepId: string, cells: ReturnType<typeof recallCell>[]) {
  return {
    sweepId,
    name: 'default',
    status: 'completed',
    cells,
    benchmarks: [],
    perplexity: [
      {
        key: KEY_P,
        model: 'zoo-lm-based-tiny',
        taskLabel: 'perplexity',
        strategy: 'default',
        status: 'completed',
        reused: false,
        sequences: 8,
        arHit: 2.5,
        arHitTokens: 40,
        other: 7.5,
        otherTokens: 900,
        panels: [{ panel: 'recall-freq', bin: '10-100', lo: 10, perplexity: 2.5, tokens: 40 }],
        error: null,
        protocol: 'figure3-v1',
      },
    ],
    jrtMargins: [],
    pareto: [],
  };
}

describe('compare-results', () => {
  const before = report('s1', [recallCell(KEY_A, 'default', 57), recallCell(KEY_B, 'jrt_prompt', 91)]);

  it('finds two runs identical when only their timings and sweep ids differ', () => {
    const after = structuredClone(before);
    after.sweepId = 's2';
    after.cells[0]!.prefillTokensPerSecond = 999;
    after.cells[1]!.promptsPerSecond = 1;
    assert.deepEqual(compareReports(before, after), { cells: 3, identical: 3, differences: [] });
  });

  it('names the cell and field of a changed score, and of a changed perplexity panel', () => {
    const after = structuredClone(before);
    after.cells[1]!.correct = 92;
    after.cells[1]!.accuracy = 0.46;
    after.perplexity[0]!.panels[0]!.perplexity = 2.51;
    const { identical, differences } = compareReports(before, after);
    assert.equal(identical, 1);
    assert.deepEqual(differences, [
      `${KEY_B} (zoo-based-tiny x mqar x jrt_prompt): correct 91 -> 92`,
      `${KEY_B} (zoo-based-tiny x mqar x jrt_prompt): accuracy 0.455 -> 0.46`,
      `${KEY_P} (zoo-lm-based-tiny x perplexity x default): panels [{"panel":"recall-freq","bin":"10-100","lo":10,"perplexity":2.5,"tokens":40}] -> [{"panel":"recall-freq","bin":"10-100","lo":10,"perplexity":2.51,"tokens":40}]`,
    ]);
  });

  it('lists a key present in one run only', () => {
    const moved = recallCell('d'.repeat(64), 'jrt_prompt', 91);
    const after = report('s2', [recallCell(KEY_A, 'default', 57), moved]);
    const { cells, identical, differences } = compareReports(before, after);
    assert.equal(cells, 4);
    assert.equal(identical, 2);
    assert.deepEqual(differences, [
      `only before: ${KEY_B} (zoo-based-tiny x mqar x jrt_prompt)`,
      `only after: ${'d'.repeat(64)} (zoo-based-tiny x mqar x jrt_prompt)`,
    ]);
  });

  it('refuses a file that is not a report, naming it and the field', () => {
    const broken = structuredClone(before) as Record<string, unknown>;
    (broken.cells as Array<Record<string, unknown>>)[0]!.correct = 'many';
    assert.throws(() => compareReports(before, broken, ['old.json', 'new.json']), /new\.json is not a sweep report: cells\.0\.correct/);
  });

  it('exits 0 on identical files and 1 on a difference, as a command', () => {
    const dir = mkdtempSync(join(tmpdir(), 'twice-compare-'));
    const same = join(dir, 'same.json');
    const changed = join(dir, 'changed.json');
    writeFileSync(same, JSON.stringify(before));
    const other = structuredClone(before);
    other.cells[0]!.error = 'worker lost';
    writeFileSync(changed, JSON.stringify(other));
    const run = (a: string, b: string) => spawnSync(process.execPath, ['--import', 'tsx', 'scripts/compare-results.ts', a, b], { encoding: 'utf8' });
    const ok = run(same, same);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /3 cells, 3 identical, 0 differences/);
    const bad = run(same, changed);
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stdout, /error null -> "worker lost"/);
    assert.equal(run(same, join(dir, 'missing.json')).status, 2);
  });
});
