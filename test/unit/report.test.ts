// The report's pure parts: task labels, the sweep-id binding of dashboard queries, and escaping.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PREFILL_BENCHMARK_SQL, SLICE_PERPLEXITY_SQL } from '../../dashboards/panels';
import { escapeHtml, html, scriptJson } from '../../workers/lib/html';
import { taskLabels } from '../../workers/lib/report/load';
import { pctInterval, signedInterval } from '../../workers/lib/report/render';
import { sweepQuery } from '../../workers/lib/report/sql';
import { pairedDifferenceInterval, wilsonInterval } from '../../workflows/stats';

describe('taskLabels', () => {
  it('names the parameters that tell apart entries of one task, and nothing else', () => {
    const labels = taskLabels([
      { name: 'set_disjointness', params: { seed: 0, sizes: [[4, 16]] } },
      { name: 'set_disjointness', params: { seed: 0, sizes: [[16, 4]] } },
      { name: 'mqar', params: { seed: 0, numKvPairs: 16 } },
      { name: 'mqar', params: { seed: 0, numKvPairs: 16 } },
    ]);
    assert.deepEqual(labels, ['set_disjointness sizes=[[4,16]]', 'set_disjointness sizes=[[16,4]]', 'mqar', 'mqar']);
  });

  it('counts a parameter one entry lacks as differing, and labels only the entries that have it', () => {
    const labels = taskLabels([
      { name: 'mqar', params: { seed: 0 } },
      { name: 'mqar', params: { seed: 0, numKvPairs: 8 } },
      { name: 'mqar', params: { seed: 1, numKvPairs: 8 } },
    ]);
    assert.deepEqual(labels, ['mqar seed=0', 'mqar numKvPairs=8 seed=0', 'mqar numKvPairs=8 seed=1']);
  });
});

describe('sweepQuery', () => {
  it("binds the sweep id as a parameter wherever the dashboard query says '$sweep'", () => {
    const q = sweepQuery(PREFILL_BENCHMARK_SQL, "x'; DROP TABLE sweeps; --");
    assert.ok(!q.text.includes('$sweep') && !q.text.includes('DROP'));
    assert.match(q.text, /sc\.sweep_id = \$1/);
    assert.deepEqual(q.values, ["x'; DROP TABLE sweeps; --"]);
    assert.equal(sweepQuery(SLICE_PERPLEXITY_SQL, 's').values.length, 1);
  });

  it('refuses a query with nothing to bind or a macro only Grafana fills in', () => {
    assert.throws(() => sweepQuery('SELECT 1', 's'), /no '\$sweep' to bind/);
    assert.throws(() => sweepQuery("SELECT 1 WHERE x = '$sweep' AND $__timeFilter(t)", 's'), /Grafana macro/);
  });
});

describe('interval formatting', () => {
  it('prints Wilson bounds, which stay off 100% unless every example is right', () => {
    // 9 of 10: Wilson (0.5958, 0.9821), where a normal approximation would claim 90.0 ± 18.6
    assert.equal(pctInterval(0.9, wilsonInterval(9, 10)), '90.0 [59.6, 98.2]');
    assert.equal(pctInterval(1, wilsonInterval(10, 10)), '100.0 [72.2, 100.0]');
  });

  it('prints a signed paired difference', () => {
    // 3 examples right only under B, 1 only under A, of 20: +10 points
    assert.match(signedInterval(pairedDifferenceInterval({ both: 8, onlyA: 1, onlyB: 3, neither: 8 })), /^\+10\.0 \[-\d+\.\d, \+\d+\.\d\]$/);
  });
});

describe('html', () => {
  it('escapes every interpolated value, so model output renders as text', () => {
    const prediction = '<script>alert("x")</script> & \'y\'';
    assert.equal(html`<td>${prediction}</td>`.value, '<td>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;</td>');
    assert.equal(escapeHtml('<img src=x onerror=1>'), '&lt;img src=x onerror=1&gt;');
    assert.equal(html`<ul>${['<a>', html`<li>${'<b>'}</li>`]}</ul>`.value, '<ul>&lt;a&gt;<li>&lt;b&gt;</li></ul>');
  });

  it('keeps JSON inside a script element from closing it', () => {
    assert.equal(scriptJson({ t: '</script><script>x()</script>' }).value, '{"t":"\\u003c/script>\\u003cscript>x()\\u003c/script>"}');
  });
});
