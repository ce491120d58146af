/// <reference lib="dom" />
// The web dashboard in real headless Chromium (Debian's, from scripts/bootstrap.mjs --browser)
// against the server on the embedded stack's real PostgreSQL and Temporal, holding a sweep that a
// real Python worker ran: every page loads without console errors, the Pareto chart marks exactly
// the report's frontier, drill-down reaches an example, a planted <script> prediction stays text,
// cancel and re-run act on Temporal. Screenshots go to test-artifacts/ (gitignored).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { readToolchain, repoRoot } from '../../workers/lib/paths';
import { loadSweepReport, writeReport } from '../../workers/lib/report/index';
import { startSweep, workflowIdOf } from '../../workers/lib/sweeps';
import { CONTENT_SECURITY_POLICY, startWebServer, type WebServer } from '../../workers/lib/web/server';
import { testStack } from '../helpers/fixtures';

const ARTIFACTS = join(repoRoot, 'test-artifacts', 'browser');
const PLANTED = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';

const spec = (name: string, examples: number) => `
name: ${name}
models: [zoo-based-tiny, zoo-attn-tiny]
tasks:
  - name: mqar
    params: { numExamples: ${examples}, numKvPairs: 4, seed: 11 }
strategies: [default, { name: jrt_prompt, params: { repeats: 2 } }]
generation: { maxNewTokens: 2, batchSize: 4 }
execution: { shardSize: 4, window: 2, device: cpu }
`;

describe('the web dashboard in Chromium', { timeout: 900_000 }, () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  let web: WebServer;
  let browser: Browser;
  let sweepId: string;
  const dir = mkdtempSync(join(tmpdir(), 'twice-web-'));
  const specFile = (name: string, text: string) => {
    const p = join(dir, `${name}.yaml`);
    writeFileSync(p, text);
    return p;
  };

  /** Opens a page and collects what would show up red in the browser's console. */
  async function open(path: string): Promise<{ page: Page; problems: string[]; headers: Record<string, string> }> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    const res = await page.goto(`${web.url}${path}`, { waitUntil: 'load' });
    assert.equal(res?.status(), 200, `GET ${path}`);
    return { page, problems, headers: res!.headers() };
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await testStack({ pythonWorkers: 1 });
    const started = await startSweep(stack.client, specFile('a', spec('web-it', 8)));
    sweepId = started.sweepId;
    assert.equal((await started.handle.result()).status, 'completed');
    // a model output that is markup: it must render as text
    const planted = await stack.db.exampleResult.findFirstOrThrow({ where: { cell: { sweeps: { some: { sweepId } } } }, orderBy: { exampleId: 'asc' } });
    await stack.db.exampleResult.update({
      where: { cellKey_exampleId: { cellKey: planted.cellKey, exampleId: planted.exampleId } },
      data: { prediction: PLANTED, prompt: PLANTED, score: 0 },
    });
    // the real worker sent every prompt, and it reached PostgreSQL as the text of the ids its digest is over
    const recorded = await stack.db.exampleResult.findMany({ where: { cell: { sweeps: { some: { sweepId } } } } });
    assert.ok(recorded.length > 0 && recorded.every((e) => typeof e.prompt === 'string' && e.prompt.length > 0));
    // a row recorded before the prompt column existed
    const older = recorded.find((e) => e.cellKey === planted.cellKey && e.exampleId !== planted.exampleId)!;
    await stack.db.exampleResult.update({ where: { cellKey_exampleId: { cellKey: older.cellKey, exampleId: older.exampleId } }, data: { prompt: null } });
    web = await startWebServer({ db: stack.db, client: stack.client, pollMs: 300 });
    const { chromium: executablePath } = readToolchain();
    assert.ok(executablePath, 'bootstrap --browser records Chromium in .twice/toolchain.json');
    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await web?.close();
    await stack?.stop();
  });

  it('lists sweeps with live progress, and loads without console errors', async () => {
    const { page, problems } = await open('/');
    await page.waitForFunction(() => /live updates: \d/.test(document.getElementById('live')?.textContent ?? ''));
    const row = page.locator(`tr[data-sweep="${sweepId}"]`);
    assert.equal(await row.locator('.status').textContent(), 'completed');
    assert.match((await row.textContent()) ?? '', /32\/32/);
    await page.screenshot({ path: join(ARTIFACTS, 'sweeps.png'), fullPage: true });
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('draws the Pareto chart with exactly the report frontier, and the heatmap', async () => {
    const report = await loadSweepReport(stack.db, sweepId);
    const { page, problems, headers } = await open(`/sweeps/${encodeURIComponent(sweepId)}`);
    // no eval and no inline script: the charts below are drawn under this very policy (a refused
    // eval would leave no SVG and a console error)
    assert.equal(headers['content-security-policy'], CONTENT_SECURITY_POLICY);
    const scriptSrc = CONTENT_SECURITY_POLICY.split(';')
      .map((d) => d.trim())
      .find((d) => d.startsWith('script-src'));
    assert.equal(scriptSrc, "script-src 'self'");
    assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-eval/);
    await page.locator('[data-chart="pareto"] svg').waitFor();
    await page.locator('[data-chart="heatmap"] svg').waitFor();
    const labels = await page.locator('[data-chart="pareto"] svg [aria-label]').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
    const drawn = labels
      .filter((l) => /: on the frontier/.test(l))
      .map((l) => l.replace(/^.*?(\S+ · \S+): on the frontier.*$/, '$1'))
      .sort();
    const expected = report.pareto
      .filter((p) => p.onFrontier)
      .map((p) => `${p.model} · ${p.strategy}`)
      .sort();
    assert.ok(expected.length > 0);
    assert.deepEqual(drawn, expected);
    assert.equal(labels.filter((l) => /: dominated/.test(l)).length, report.pareto.length - expected.length);
    assert.match((await page.locator('[data-chart="pareto"]').textContent()) ?? '', /prompts\/s \(eval prefill\)/);
    assert.equal(await page.locator('#cells tbody tr').count(), 4);
    await page.screenshot({ path: join(ARTIFACTS, 'sweep.png'), fullPage: true });
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('redraws the Pareto chart on the axis chosen, with that axis named and the same points', async () => {
    const report = await loadSweepReport(stack.db, sweepId);
    const { page, problems } = await open(`/sweeps/${encodeURIComponent(sweepId)}`);
    const chart = page.locator('[data-chart="pareto"]');
    const points = () =>
      chart
        .locator('svg [aria-label]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? '').filter((l) => / · \S+: (on the frontier|dominated)/.test(l)));
    // the axes' titles, as the SVG draws them (not the specs riding beside it)
    const axisTitles = () => chart.locator('svg').evaluate((svg) => Array.from(svg.querySelectorAll('.role-axis-title text')).map((t) => t.textContent ?? ''));
    await chart.locator('svg').waitFor();
    assert.ok((await axisTitles()).includes('prompts/s (eval prefill)'));
    const measured = await points();
    assert.equal(measured.length, report.pareto.length);
    for (const [axis, label] of [
      ['flops', /^prefill FLOPs per prompt token at 1,024 tokens \(analytic\)$/],
      ['state', /^decoding state bytes per sequence at 1,024 tokens \(analytic\)$/],
      ['measured', /^prompts\/s \(eval prefill\)$/],
    ] as const) {
      await chart.locator('select.axis').selectOption(axis);
      await page.waitForFunction(
        (re) => Array.from(document.querySelectorAll('[data-chart="pareto"] svg .role-axis-title text')).some((t) => new RegExp(re).test(t.textContent ?? '')),
        label.source,
      );
      assert.ok(
        (await axisTitles()).some((t) => label.test(t)),
        `${axis}: axis titled ${label}`,
      );
      assert.equal((await points()).length, measured.length, `${axis}: every point drawn`);
      if (axis !== 'measured') await page.screenshot({ path: join(ARTIFACTS, `pareto-${axis}.png`), fullPage: false });
    }
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('draws the three Figure 3 panels and the perplexity table for a perplexity sweep', async () => {
    const text = `name: web-ppl
models: [zoo-lm-attn-tiny, zoo-lm-mamba-small]
tasks:
  - name: perplexity
    params: { corpus: "synthetic:repeats-v1", numExamples: 2, sequenceTokens: 512, scoredTokens: 256, recallMinDistance: 128 }
generation: { batchSize: 2 }
execution: { shardSize: 2, window: 2, device: cpu }
`;
    const started = await startSweep(stack.client, specFile('ppl', text));
    assert.equal((await started.handle.result()).status, 'completed');
    const report = await loadSweepReport(stack.db, started.sweepId);
    assert.equal(report.perplexity.length, 2);
    assert.ok(report.perplexity.every((p) => p.arHit !== null && p.other !== null && p.arHitTokens + p.otherTokens === 2 * 256));
    const { page, problems } = await open(`/sweeps/${encodeURIComponent(started.sweepId)}`);
    for (const name of ['fig3-recall-frequency', 'fig3-recall-distance', 'fig3-other-frequency']) {
      await page.locator(`[data-chart="${name}"] svg`).waitFor();
      // one point per (model, non-empty bin), each named by its model and bin
      const points = await page.locator(`[data-chart="${name}"] svg [aria-label]`).evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
      const panel = { 'fig3-recall-frequency': 'recall-freq', 'fig3-recall-distance': 'recall-dist', 'fig3-other-frequency': 'other-freq' }[name];
      const expected = report.perplexity.reduce((n, p) => n + p.panels.filter((b) => b.panel === panel).length, 0);
      assert.ok(expected > 0, name);
      assert.equal(points.filter((l) => / · \d+-(\d+|inf): /.test(l)).length, expected, name);
    }
    assert.equal(await page.locator('#perplexity tbody tr').count(), 2);
    assert.match((await page.locator('.protocol').first().textContent()) ?? '', /the last 256 scored/);
    await page.screenshot({ path: join(ARTIFACTS, 'perplexity.png'), fullPage: true });
    assert.deepEqual(problems, []);
    await page.close();
    const out = mkdtempSync(join(tmpdir(), 'twice-report-'));
    await writeReport(report, out);
    for (const name of ['fig3-recall-frequency', 'fig3-recall-distance', 'fig3-other-frequency']) {
      assert.match(readFileSync(join(out, `${name}.svg`), 'utf8'), /^<svg/);
    }
    assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /## Perplexity \(the paper's Figure 3 protocol\)/);
  });

  it('drills down from the grid to a cell and its examples, and renders a planted <script> as text', async () => {
    const { page, problems } = await open(`/sweeps/${encodeURIComponent(sweepId)}`);
    await page.locator('#cells a').first().click();
    await page.waitForURL(/\/cells\/[0-9a-f]{64}/);
    assert.equal(await page.locator('#examples tbody tr').count(), 8);
    await page.locator('#wrong-only').click();
    await page.waitForURL(/wrong=1/);
    const wrong = await page.locator('#examples tbody tr td:last-child').allTextContents();
    assert.ok(wrong.length > 0 && wrong.every((t) => t === 'no'));
    const planted = await stack.db.exampleResult.findFirstOrThrow({ where: { prediction: PLANTED } });
    await page.goto(`${web.url}/cells/${planted.cellKey}?wrong=1`);
    assert.equal(await page.locator(`tr[data-example="${planted.exampleId}"] .prediction`).textContent(), PLANTED);
    // the prompt is collapsed until asked for, then shown as text
    const prompt = page.locator(`tr[data-example="${planted.exampleId}"] .prompt details`);
    assert.equal(await prompt.getAttribute('open'), null);
    assert.equal(await prompt.locator('pre').isVisible(), false);
    await prompt.locator('summary').click();
    assert.equal(await prompt.locator('pre').textContent(), PLANTED);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    await page.goto(`${web.url}/cells/${planted.cellKey}`);
    const notStored = await stack.db.exampleResult.findFirstOrThrow({ where: { cellKey: planted.cellKey, prompt: null } });
    assert.match(
      (await page.locator(`tr[data-example="${notStored.exampleId}"] .prompt`).textContent()) ?? '',
      /prompt not stored \(recorded\s+before migration 20261129030000_example_prompts\)/,
    );
    const shown = await stack.db.exampleResult.findFirstOrThrow({ where: { cellKey: planted.cellKey, NOT: [{ prompt: null }, { prompt: PLANTED }] } });
    await page.locator(`tr[data-example="${shown.exampleId}"] .prompt summary`).click();
    assert.equal(await page.locator(`tr[data-example="${shown.exampleId}"] .prompt pre`).textContent(), shown.prompt);
    await page.screenshot({ path: join(ARTIFACTS, 'cell.png'), fullPage: true });
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('re-runs a sweep through Temporal from its button', async () => {
    const { page, problems } = await open('/');
    await page.locator(`tr[data-sweep="${sweepId}"] button[data-action="rerun"]`).click();
    await page.waitForFunction(() => /started sweep/.test(document.getElementById('action-result')?.textContent ?? ''));
    const newId = (await page.locator('#action-result').textContent())!.replace('started sweep ', '');
    const result = await stack.client.workflow.getHandle(workflowIdOf(newId)).result();
    // the same spec again: every cell reused from the first run
    assert.deepEqual([result.status, result.cells.total, result.cells.reused], ['completed', 4, 4]);
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('compares two sweeps cell by cell, most significant first', async () => {
    const rerun = (await stack.db.sweep.findFirstOrThrow({ where: { name: 'web-it', id: { not: sweepId } } })).id;
    const { page, problems } = await open(`/compare?base=${encodeURIComponent(sweepId)}&other=${encodeURIComponent(rerun)}`);
    // the re-run reused every cell: four cells matched, each the same cell, nothing flipped
    assert.equal(await page.locator('#comparison tbody tr').count(), 4);
    assert.deepEqual(new Set(await page.locator('#comparison tbody tr td:last-child').allTextContents()), new Set(['same cell']));
    await page.screenshot({ path: join(ARTIFACTS, 'compare.png'), fullPage: true });
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('cancels a running sweep through Temporal from its button', async () => {
    const { sweepId: running, handle } = await startSweep(stack.client, specFile('long', spec('web-cancel', 400)));
    const { page, problems } = await open('/');
    await page.locator(`tr[data-sweep="${running}"] button[data-action="cancel"]`).click();
    await page.waitForFunction(() => /cancellation requested/.test(document.getElementById('action-result')?.textContent ?? ''));
    await assert.rejects(handle.result());
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    // the live list catches up without a reload
    await page.waitForFunction((id) => document.querySelector(`tr[data-sweep="${id}"] .status`)?.textContent === 'cancelled', running);
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('away from loopback, refuses to start without a token and wants it for anything that starts or cancels work', async () => {
    await assert.rejects(startWebServer({ db: stack.db, client: stack.client, host: '0.0.0.0' }), /TWICE_SERVE_TOKEN/);
    const token = 'a-long-enough-test-token';
    const exposed = await startWebServer({ db: stack.db, client: stack.client, host: '0.0.0.0', token });
    try {
      const url = exposed.url.replace('0.0.0.0', '127.0.0.1');
      const post = (headers: Record<string, string>) => fetch(`${url}/api/sweeps/no-such-sweep/cancel`, { method: 'POST', headers });
      assert.equal((await post({})).status, 403);
      assert.equal((await post({ 'x-twice-request': '1' })).status, 401);
      assert.equal((await post({ 'x-twice-request': '1', authorization: 'Bearer wrong-token-of-some-sort' })).status, 401);
      // past the token, the database has the last word
      const res = await post({ 'x-twice-request': '1', authorization: `Bearer ${token}` });
      assert.equal(res.status, 404);
      assert.deepEqual(await res.json(), { error: 'no sweep "no-such-sweep"' });
      // reading needs no token
      assert.equal((await fetch(`${url}/api/sweeps`)).status, 200);
    } finally {
      await exposed.close();
    }
  });

  it('writes report.html and SVG charts with the same library', async () => {
    const out = mkdtempSync(join(tmpdir(), 'twice-report-'));
    const files = await writeReport(await loadSweepReport(stack.db, sweepId), out);
    const page = readFileSync(files.html, 'utf8');
    assert.match(readFileSync(join(out, 'pareto.svg'), 'utf8'), /^<svg/);
    assert.match(readFileSync(join(out, 'heatmap.svg'), 'utf8'), /^<svg/);
    // the heatmap and the averaged frontier on each axis: measured, FLOPs, state bytes
    assert.equal((page.match(/<svg/g) ?? []).length, 4);
    assert.ok(!page.includes('<script'), 'report.html carries no script');
    const markdown = readFileSync(files.markdown, 'utf8');
    assert.match(markdown, /!\[Pareto frontier\]\(pareto\.svg\)/);
    for (const [axis, label] of [
      ['flops', 'prefill FLOPs per prompt token at 1,024 tokens (analytic)'],
      ['state', 'decoding state bytes per sequence at 1,024 tokens (analytic)'],
    ] as const) {
      assert.ok(readFileSync(join(out, `pareto-${axis}.svg`), 'utf8').includes(label), `pareto-${axis}.svg names its axis`);
      assert.ok(markdown.includes(`Axis: ${label}.`), `report.md states the ${axis} axis`);
      assert.ok(page.includes(label), `report.html states the ${axis} axis`);
    }
  });
});
