// The dashboard's browser script, served as is (no build step): draws the Vega-Lite charts,
// keeps the sweeps list live over server-sent events, and sends cancel / re-run requests.
// An ES module, loaded after the chart library's classic scripts.
/* global vegaEmbed, document, EventSource, fetch, localStorage, prompt */
import { expressionInterpreter } from '/assets/vega-interpreter.js';

// ast + expr: vega interprets chart expressions instead of compiling them with Function,
// which the Content-Security-Policy (no 'unsafe-eval') would refuse
const draw = (target, spec) =>
  vegaEmbed(target, spec, { renderer: 'svg', actions: false, ast: true, expr: expressionInterpreter }).catch((err) => {
    target.textContent = `chart failed: ${err.message}`;
  });

for (const el of document.querySelectorAll('[data-chart]:not([data-axes])')) {
  draw(el, JSON.parse(el.querySelector('script').textContent));
}

// a chart with an axis selector carries one spec per axis and redraws from the chosen one
for (const el of document.querySelectorAll('[data-chart][data-axes]')) {
  const select = el.querySelector('select.axis');
  const view = el.querySelector('.view');
  const redraw = () => {
    view.replaceChildren();
    draw(view, JSON.parse(el.querySelector(`script[data-axis="${select.value}"]`).textContent));
  };
  select.addEventListener('change', redraw);
  redraw();
}

const table = document.querySelector('#sweeps tbody');
const live = document.getElementById('live');
if (live) {
  const events = new EventSource('/api/events');
  events.addEventListener('sweeps', (ev) => {
    const { rows } = JSON.parse(ev.data);
    // the rows arrive rendered (and escaped) by the server
    if (table) table.innerHTML = rows;
    live.textContent = `live updates: ${new Date().toLocaleTimeString()}`;
  });
  events.onerror = () => {
    live.textContent = 'live updates: reconnecting…';
  };
}

document.addEventListener('click', async (ev) => {
  const button = ev.target.closest('button[data-action]');
  if (!button) return;
  const { action, sweep } = button.dataset;
  const headers = { 'x-twice-request': '1' };
  const token = localStorage.getItem('twice-token');
  if (token) headers.authorization = `Bearer ${token}`;
  let res = await fetch(`/api/sweeps/${encodeURIComponent(sweep)}/${action}`, { method: 'POST', headers });
  if (res.status === 401) {
    const entered = prompt('This server needs its token (TWICE_SERVE_TOKEN) to start or cancel work:');
    if (!entered) return;
    localStorage.setItem('twice-token', entered);
    headers.authorization = `Bearer ${entered}`;
    res = await fetch(`/api/sweeps/${encodeURIComponent(sweep)}/${action}`, { method: 'POST', headers });
  }
  const body = await res.json();
  document.getElementById('action-result').textContent = res.ok ? body.message : `failed: ${body.error}`;
});
