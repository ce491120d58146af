// Writes a sweep's report files: report.md (tables, with the charts beside it as SVG),
// report.json, and report.html, one self-contained page with every chart inline.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { html, trusted } from '../html';
import { sweepCharts, renderSvg } from './charts';
import { renderMarkdown, renderTerminal, sweepStatusText } from './render';
import type { SweepReport } from './types';

export async function writeReport(report: SweepReport, dir: string): Promise<{ markdown: string; json: string; html: string }> {
  mkdirSync(dir, { recursive: true });
  const files = { markdown: join(dir, 'report.md'), json: join(dir, 'report.json'), html: join(dir, 'report.html') };
  const charts = await Promise.all(sweepCharts(report).map(async (c) => ({ ...c, svg: await renderSvg(c.spec) })));
  for (const c of charts) writeFileSync(join(dir, `${c.name}.svg`), c.svg);
  writeFileSync(files.markdown, renderMarkdown(report));
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  const page = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sweep ${report.sweepId}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}pre{background:#f6f8fa;padding:1em;overflow:auto}figure{margin:1.5em 0}</style>
</head><body>
<h1>Sweep ${report.sweepId}</h1>
<p>Spec <code>${report.name}</code>, status <b>${sweepStatusText(report.status, report.completedBy)}</b>, started ${report.createdAt}${report.finishedAt ? `, finished ${report.finishedAt}` : ''}.</p>
${charts.map((c) => html`<figure><figcaption>${c.title}</figcaption>${trusted(c.svg)}</figure>`)}
<h2>Tables</h2>
<pre>${renderTerminal(report)}</pre>
</body></html>
`;
  writeFileSync(files.html, page.value);
  return files;
}
