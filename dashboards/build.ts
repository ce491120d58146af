// The twice overview dashboard as code (@grafana/grafana-foundation-sdk, classic v1 JSON, which
// file provisioning loads). Regenerate the committed file after any change:
//   tsx dashboards/build.ts        -> dashboards/generated/twice-overview.json
// test/integration/dashboards.test.ts fails when that file is stale and runs every panel's SQL.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Builder, Dataquery } from '@grafana/grafana-foundation-sdk/cog';
import { PanelBuilder as BarChartPanel } from '@grafana/grafana-foundation-sdk/barchart';
import { VizLegendOptionsBuilder, LegendDisplayMode, LegendPlacement, VisibilityMode } from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardBuilder,
  DashboardCursorSync,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
  type Dashboard,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { PanelBuilder as XYChartPanel, SeriesMapping, XYSeriesConfigBuilder, XYShowMode } from '@grafana/grafana-foundation-sdk/xychart';
import {
  ACCURACY_SQL,
  JRT_GAIN_SQL,
  LATEST_SWEEPS_SQL,
  PARETO_BENCHMARK_FRONTIER_SQL,
  PARETO_FRONTIER_SQL,
  PREFILL_BENCHMARK_SQL,
  PREFILL_THROUGHPUT_SQL,
  QUALITY_BENCHMARK_SQL,
  QUALITY_THROUGHPUT_SQL,
  SLICE_PERPLEXITY_SQL,
  SWEEP_VARIABLE_SQL,
} from './panels';

/** Must match dashboards/provisioning/datasources/twice.yaml; dashboard JSON gets no env interpolation. */
export const DATASOURCE = { type: 'grafana-postgresql-datasource', uid: 'twice-pg' } as const;
export const DASHBOARD_UID = 'twice-overview';
export const GENERATED_PATH = fileURLToPath(new URL('./generated/twice-overview.json', import.meta.url));

interface PostgresQuery extends Dataquery {
  refId: string;
  datasource: { type: string; uid: string };
  rawSql: string;
  format: 'table' | 'time_series';
  rawQuery: true;
  editorMode: 'code';
}

/** The SDK has no SQL query type; this is the raw-SQL target the Postgres datasource stores. */
class PostgresQueryBuilder implements Builder<Dataquery> {
  private readonly query: PostgresQuery;
  constructor(refId: string, rawSql: string, format: 'table' | 'time_series' = 'table') {
    this.query = { refId, datasource: { ...DATASOURCE }, rawSql, format, rawQuery: true, editorMode: 'code', _implementsDataqueryVariant() {} };
  }
  build(): PostgresQuery {
    return this.query;
  }
}

const sql = (rawSql: string, refId = 'A') => new PostgresQueryBuilder(refId, rawSql);
const byName = (name: string) => ({ matcher: { id: 'byName', options: name } });
const legend = () => new VizLegendOptionsBuilder().showLegend(true).displayMode(LegendDisplayMode.List).placement(LegendPlacement.Bottom).calcs([]);

export function buildDashboard(): Dashboard {
  const sweep = new QueryVariableBuilder('sweep')
    .label('Sweep')
    .description('The sweep the per-sweep panels show; newest first')
    .datasource(DATASOURCE)
    .query(SWEEP_VARIABLE_SQL)
    .definition(SWEEP_VARIABLE_SQL)
    .refresh(VariableRefresh.OnDashboardLoad)
    .allowCustomValue(false)
    .sort(VariableSort.Disabled);

  const latestSweeps = new TablePanel()
    .title('Latest sweeps')
    .description('Sweeps started in the time range, newest first, with how many cells finished, failed or were reused.')
    .datasource(DATASOURCE)
    .span(24)
    .height(8)
    .withTarget(sql(LATEST_SWEEPS_SQL));

  const accuracy = new TablePanel()
    .title('Accuracy: model × task × strategy ($sweep)')
    .description('Mean score per cell of the selected sweep, with the half-width of its 95% interval.')
    .datasource(DATASOURCE)
    .span(12)
    .height(10)
    .unit('percentunit')
    .decimals(1)
    .overrideByName('examples', [
      { id: 'unit', value: 'none' },
      { id: 'decimals', value: 0 },
    ])
    .withTarget(sql(ACCURACY_SQL));

  const jrtGain = new TablePanel()
    .title('JRT-Prompt gain per model and task ($sweep)')
    .description('accuracy(jrt_prompt) − accuracy(default), both from the selected sweep.')
    .datasource(DATASOURCE)
    .span(12)
    .height(10)
    .unit('percentunit')
    .decimals(1)
    .withTarget(sql(JRT_GAIN_SQL));

  // One point per model × strategy against mean accuracy, and the frontier computed in SQL.
  const qualityPanel = (title: string, description: string, x: string, unit: string, points: string, frontier: string) =>
    new XYChartPanel()
      .title(title)
      .description(description)
      .datasource(DATASOURCE)
      .span(12)
      .height(10)
      .mapping(SeriesMapping.Manual)
      .show(XYShowMode.Points)
      .series([
        new XYSeriesConfigBuilder()
          .name({ fixed: 'model · strategy' })
          .frame({ matcher: { id: 'byIndex', options: 0 } })
          .x(byName(x))
          .y(byName('accuracy')),
        new XYSeriesConfigBuilder()
          .name({ fixed: 'Pareto frontier' })
          .frame({ matcher: { id: 'byIndex', options: 1 } })
          .x(byName(`frontier_${x}`))
          .y(byName('frontier_accuracy')),
      ])
      .overrideByRegexp(`${x}$`, [{ id: 'unit', value: `suffix: ${unit}` }])
      .overrideByName('accuracy', [{ id: 'unit', value: 'percentunit' }])
      .overrideByName('frontier_accuracy', [
        { id: 'unit', value: 'percentunit' },
        { id: 'custom.show', value: XYShowMode.PointsAndLines },
      ])
      .legend(legend())
      .withTarget(sql(points, 'A'))
      .withTarget(sql(frontier, 'B'));

  const qualityThroughput = qualityPanel(
    'Quality vs throughput, with the Pareto frontier ($sweep)',
    'One point per model × strategy: prompts prefilled per second against mean accuracy over tasks. ' +
      'The line joins the points nothing beats on both axes (computed in SQL).',
    'prompts_per_second',
    'prompts/s',
    QUALITY_THROUGHPUT_SQL,
    PARETO_FRONTIER_SQL,
  );

  const qualityBenchmark = qualityPanel(
    'Quality vs benchmark prefill tokens/s, with the Pareto frontier ($sweep)',
    "The same points on the prefill benchmark's axis (prefill_throughput cells of the sweep: prompt tokens per second at fixed lengths), " +
      'the axis the sweep report uses when every point has one.',
    'tokens_per_second',
    'tok/s',
    QUALITY_BENCHMARK_SQL,
    PARETO_BENCHMARK_FRONTIER_SQL,
  );

  const slicePerplexity = new BarChartPanel()
    .title('Perplexity on AR hits vs other tokens ($sweep)')
    .description('exp(total NLL / total tokens) over the prompt tokens of each model × strategy; AR hits are the tokens recall has to get right.')
    .datasource(DATASOURCE)
    .span(12)
    .height(10)
    .xField('model')
    .showValue(VisibilityMode.Auto)
    .decimals(2)
    .legend(legend())
    .withTarget(sql(SLICE_PERPLEXITY_SQL));

  const prefillBenchmark = new TablePanel()
    .title('Prefill benchmark vs attention baseline ($sweep)')
    .description(
      'prefill_throughput points of the selected sweep: median seconds of the timed runs, prompt tokens/s, and the speed-up over SDPA attention ' +
        'at the same batch and length, timed in the same process.',
    )
    .datasource(DATASOURCE)
    .span(24)
    .height(10)
    .overrideByRegexp('seconds$', [{ id: 'unit', value: 's' }])
    .overrideByName('tokens_per_second', [{ id: 'unit', value: 'short' }])
    .overrideByName('speedup', [
      { id: 'unit', value: 'suffix: x' },
      { id: 'decimals', value: 2 },
    ])
    .withTarget(sql(PREFILL_BENCHMARK_SQL));

  const prefillThroughput = new TimeseriesPanel()
    .title('Prefill tokens/s per model')
    .description('Tokens over seconds per time bucket, from every throughput measurement (shard prefill timings and benchmarks).')
    .datasource(DATASOURCE)
    .span(24)
    .height(8)
    .unit('short')
    .legend(legend())
    .withTarget(new PostgresQueryBuilder('A', PREFILL_THROUGHPUT_SQL, 'time_series'));

  return new DashboardBuilder('twice: recall vs throughput')
    .uid(DASHBOARD_UID)
    .description('Sweeps of recurrent LMs × tasks × prompt strategies: accuracy, JRT-Prompt gains, slice perplexity and prefill throughput.')
    .tags(['twice', 'evaluation'])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .time({ from: 'now-30d', to: 'now' })
    .refresh('5m')
    .annotations([])
    .withVariable(sweep)
    .withRow(new RowBuilder('Sweeps'))
    .withPanel(latestSweeps)
    .withRow(new RowBuilder('Selected sweep'))
    .withPanel(accuracy)
    .withPanel(jrtGain)
    .withPanel(qualityThroughput)
    .withPanel(slicePerplexity)
    .withPanel(qualityBenchmark)
    .withPanel(prefillBenchmark)
    .withRow(new RowBuilder('Throughput over time'))
    .withPanel(prefillThroughput)
    .build();
}

/** The file's exact text: stable key order from the builders, two-space indent, final newline. */
export function renderDashboard(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(GENERATED_PATH, renderDashboard());
  console.log(`wrote ${GENERATED_PATH}`);
}
