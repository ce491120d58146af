// The sweep report: loading (load.ts), tables (render.ts), charts (charts.ts), files (write.ts),
// re-run explanations (explain.ts). Importers take what they need from here.
export { explainNewCells } from './explain';
export { loadJrtMargins, loadSweepReport, taskLabels } from './load';
export { renderMarkdown, renderTerminal, sweepStatusText, textTable } from './render';
export { writeReport } from './write';
export type { BenchmarkResult, CellResult, JrtMargin, SweepReport } from './types';
