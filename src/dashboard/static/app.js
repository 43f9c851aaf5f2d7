// The dashboard page: live state by server-sent events (read with fetch, so the token can go in a
// header), one chart with selectable series, a keyed targets table, the timeline, DNS and database.
/* global uPlot, document, window, location, history, sessionStorage, fetch, TextDecoderStream */
import { renderTopology } from './topology.js';

const $ = (id) => document.getElementById(id);
const MAX_POINTS = 600;
const MAX_SERIES = 8;
const PALETTE = ['#1e6fb8', '#e08a00', '#2e7d32', '#c62828', '#7b1fa2', '#00838f', '#6d4c41', '#455a64'];
const SEVERITY = ['unhealthy', 'draining', 'unused', 'initial', 'healthy'];

let token = readToken();
let state = null;
const selected = [];
let chart = null;
let chartData = { times: [], series: {} };
let dbChart = null;
let dbData = { times: [], primary: [], replica: [], ryw: [] };
let lastTimelineKey = '';
let lastComponentsKey = '';

// ---- token, API, live stream -------------------------------------------------------------------

function readToken() {
  // A URL such as http://host:9090/#token=… hands the token over without it reaching any server log.
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('scaleout-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname);
  }
  return sessionStorage.getItem('scaleout-token') ?? undefined;
}

function headers(extra = {}) {
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

function askToken() {
  $('token-form').hidden = false;
  $('token-input').focus();
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token-input').value.trim();
  sessionStorage.setItem('scaleout-token', token);
  $('token-form').hidden = true;
  connect();
});

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: headers(method === 'POST' ? { 'content-type': 'application/json' } : {}),
    body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) askToken();
  if (!res.ok) throw new Error(data.error?.message ?? `HTTP ${res.status}`);
  return data;
}

let connecting = false;
async function connect() {
  if (connecting) return;
  connecting = true;
  try {
    const res = await fetch('/api/events', { headers: headers(), cache: 'no-store' });
    if (res.status === 401) {
      setLive(false, 'token needed');
      askToken();
      return;
    }
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    setLive(true);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        onMessage(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
    setLive(false);
  } catch (err) {
    setLive(false, err.message);
  } finally {
    connecting = false;
  }
  setTimeout(connect, 2000);
}

function onMessage(block) {
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
  }
  if (event === 'state' && data) onState(JSON.parse(data));
}

function setLive(ok, why) {
  const live = $('live');
  live.className = `live ${ok ? 'ok' : 'down'}`;
  live.textContent = ok ? 'live' : `disconnected${why ? ` (${why})` : ''}`;
}

function say(text, isError = false) {
  const m = $('message');
  m.textContent = text;
  m.className = isError ? 'error' : '';
}

// ---- state -------------------------------------------------------------------------------------

function onState(s) {
  const first = state === null;
  state = s;
  $('title').textContent = s.name;
  document.title = `scaleout: ${s.name}`;
  if (first) {
    for (const g of s.lb.groups.slice(0, MAX_SERIES)) selected.push(`group:${g.name}`);
    void loadHistory();
    void loadDbHistory();
  }
  // Without a load balancer there is no traffic to chart and no target to list.
  const hasLb = s.components.some((c) => c.kind === 'lb');
  $('chart-panel').hidden = !hasLb;
  $('targets-panel').hidden = !hasLb;
  appendPoint(s);
  renderTopology($('topology'), s);
  renderTargets(s);
  renderTimeline(s);
  renderComponents(s);
  renderDns(s);
  renderDb(s);
  renderScale(s);
  const t = new Date(s.at).toLocaleTimeString();
  $('live').textContent = `live · ${t}`;
}

/** The latest rates of a chart series, from the state. */
function ratesOf(s, key) {
  const [kind, rest] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
  if (kind === 'group') return s.lb.groups.find((g) => g.name === rest);
  const slash = rest.indexOf('/');
  const group = s.lb.groups.find((g) => g.name === rest.slice(0, slash));
  return group?.targets.find((t) => t.id === rest.slice(slash + 1));
}

// ---- the chart -------------------------------------------------------------------------------------

async function loadHistory() {
  if (!selected.length) return drawChart();
  try {
    const h = await api('GET', `/api/history?series=${selected.map(encodeURIComponent).join(',')}`);
    chartData = { times: h.times, series: {} };
    for (const key of selected) chartData.series[key] = h.series[key] ?? emptyFields(h.times.length);
  } catch (err) {
    say(`history: ${err.message}`, true);
  }
  drawChart();
}

function emptyFields(n) {
  const nulls = () => new Array(n).fill(null);
  return { rps: nulls(), err: nulls(), p50: nulls(), p99: nulls() };
}

function appendPoint(s) {
  const t = s.at / 1000;
  const times = chartData.times;
  if (times.length && t <= times[times.length - 1]) return;
  times.push(t);
  for (const key of selected) {
    const fields = (chartData.series[key] ??= emptyFields(times.length - 1));
    const r = ratesOf(s, key);
    fields.rps.push(r?.rps ?? null);
    fields.err.push(r?.errorRate ?? null);
    fields.p50.push(r?.p50 ?? null);
    fields.p99.push(r?.p99 ?? null);
  }
  if (times.length > MAX_POINTS) {
    const drop = times.length - MAX_POINTS;
    times.splice(0, drop);
    for (const f of Object.values(chartData.series)) for (const v of Object.values(f)) v.splice(0, drop);
  }
  if (chart) chart.setData(chartArrays());
  else drawChart();
}

function chartArrays() {
  const metric = $('metric').value;
  const scale = metric === 'err' ? 100 : 1;
  return [
    chartData.times,
    ...selected.map((key) =>
      (chartData.series[key]?.[metric] ?? []).map((v) => (v === null ? null : v * scale)),
    ),
  ];
}

function drawChart() {
  chart?.destroy();
  chart = null;
  const box = $('chart');
  box.replaceChildren();
  renderChips();
  if (!chartData.times.length) return;
  const metric = $('metric').value;
  const unit = { rps: 'req/s', err: '% 5xx', p50: 'ms', p99: 'ms' }[metric];
  chart = new uPlot(
    {
      width: Math.max(300, box.clientWidth || 900),
      height: 260,
      scales: { x: { time: true } },
      axes: [{}, { label: unit, size: 60 }],
      series: [
        {},
        ...selected.map((key, i) => ({
          label: key.replace(/^group:/, 'group ').replace(/^target:/, ''),
          stroke: PALETTE[i % PALETTE.length],
          width: 1.5,
          spanGaps: false,
        })),
      ],
    },
    chartArrays(),
    box,
  );
}

function renderChips() {
  $('series-list').replaceChildren(
    ...selected.map((key, i) => {
      const chip = document.createElement('span');
      chip.style.borderColor = PALETTE[i % PALETTE.length];
      chip.textContent = key;
      return chip;
    }),
  );
}

$('metric').addEventListener('change', drawChart);
window.addEventListener('resize', () => chart?.setSize({ width: $('chart').clientWidth, height: 260 }));

function toggleSeries(key, on) {
  const i = selected.indexOf(key);
  if (on && i < 0) {
    if (selected.length >= MAX_SERIES) {
      say(`the chart shows up to ${MAX_SERIES} series`, true);
      return false;
    }
    selected.push(key);
  } else if (!on && i >= 0) selected.splice(i, 1);
  void loadHistory();
  return true;
}

// ---- targets -----------------------------------------------------------------------------------

const rows = new Map();

function fmt(v, digits = 1) {
  return v === null || v === undefined ? '–' : Number(v).toFixed(digits);
}

function sparkline(values) {
  const present = values.filter((v) => v !== null);
  const max = Math.max(1, ...present);
  const n = values.length;
  const points = values
    .map((v, i) =>
      v === null ? null : `${((i / Math.max(1, n - 1)) * 90).toFixed(1)},${(17 - (v / max) * 16).toFixed(1)}`,
    )
    .filter(Boolean)
    .join(' ');
  return `<svg class="spark" viewBox="0 0 90 18"><polyline points="${points}"/></svg>`;
}

function esc(text) {
  return String(text ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function makeRow(t) {
  const tr = document.createElement('tr');
  tr.dataset.key = `${t.group}/${t.id}`;
  tr.innerHTML = `<td><input type="checkbox" data-series="target:${esc(t.group)}/${esc(t.id)}" title="show in the chart"></td>
    <td>${esc(t.group)}</td><td class="target-id">${esc(t.id)}</td><td class="state"></td><td class="reason"></td>
    <td class="num weight"></td><td class="spread"></td><td class="num rps"></td><td class="spark-cell"></td>
    <td class="num err"></td><td class="num p50"></td><td class="num p99"></td><td class="num inflight"></td>
    <td class="actions"><button data-action="drain"></button> <button data-action="disable"></button></td>`;
  return tr;
}

function updateRow(tr, t) {
  const cell = (cls) => tr.querySelector(`.${cls}`);
  const badge = `<span class="badge s-${esc(t.state)}">${esc(t.state)}</span>${t.stale ? ' <span class="hint">(stale)</span>' : ''}`;
  setHtml(cell('state'), badge);
  const reason = cell('reason');
  reason.textContent = t.reason;
  reason.title = [t.detail, t.perLb.length > 1 ? t.perLb.map((p) => `${p.lb}: ${p.state}`).join(', ') : '']
    .filter(Boolean)
    .join(' · ');
  cell('weight').textContent =
    t.weight === t.configuredWeight ? String(t.weight) : `${t.weight} / ${t.configuredWeight}`;
  const actual = t.share === null ? 0 : t.share * 100;
  const expected = t.expectedShare === null ? null : t.expectedShare * 100;
  setHtml(
    cell('spread'),
    `<div class="bars" title="got ${fmt(actual)}% of the group's requests, weight asks for ${fmt(expected)}%">` +
      `<div class="actual" style="width:${Math.min(100, actual).toFixed(1)}%"></div>` +
      (expected === null
        ? ''
        : `<div class="expected" style="left:${Math.min(99, expected).toFixed(1)}%"></div>`) +
      `</div>`,
  );
  cell('rps').textContent = fmt(t.rps);
  setHtml(cell('spark-cell'), sparkline(t.spark));
  cell('err').textContent = t.errorRate === null ? '–' : `${(t.errorRate * 100).toFixed(1)}%`;
  cell('p50').textContent = fmt(t.p50, 2);
  cell('p99').textContent = fmt(t.p99, 2);
  cell('inflight').textContent = String(t.inFlight);
  const [drain, disable] = tr.querySelectorAll('button');
  drain.dataset.action = t.draining ? 'undrain' : 'drain';
  drain.textContent = t.draining ? 'undrain' : 'drain';
  disable.dataset.action = t.adminDisabled ? 'enable' : 'disable';
  disable.textContent = t.adminDisabled ? 'enable' : 'disable';
  tr.dataset.state = t.state;
}

function setHtml(node, html) {
  if (node.innerHTML !== html) node.innerHTML = html;
}

function renderTargets(s) {
  const tbody = document.querySelector('#targets tbody');
  const all = s.lb.groups.flatMap((g) => g.targets);
  const filter = $('target-filter').value.trim().toLowerCase();
  const visible = all.filter((t) =>
    !filter ? true : `${t.group} ${t.id} ${t.address} ${t.state} ${t.reason}`.toLowerCase().includes(filter),
  );
  const sort = $('target-sort').value;
  const by = {
    state: (a, b) => SEVERITY.indexOf(a.state) - SEVERITY.indexOf(b.state) || a.id.localeCompare(b.id),
    rps: (a, b) => (b.rps ?? 0) - (a.rps ?? 0),
    p99: (a, b) => (b.p99 ?? 0) - (a.p99 ?? 0),
    err: (a, b) => (b.errorRate ?? 0) - (a.errorRate ?? 0),
    id: (a, b) => a.group.localeCompare(b.group) || a.id.localeCompare(b.id),
  }[sort];
  visible.sort(by);
  const keep = new Set();
  for (const t of visible) {
    const key = `${t.group}/${t.id}`;
    keep.add(key);
    let tr = rows.get(key);
    if (!tr) rows.set(key, (tr = makeRow(t)));
    updateRow(tr, t);
    tr.querySelector('input').checked = selected.includes(`target:${key}`);
    tbody.appendChild(tr);
  }
  for (const [key, tr] of rows)
    if (!keep.has(key)) {
      tr.remove();
      if (!all.some((t) => `${t.group}/${t.id}` === key)) rows.delete(key);
    }
  const counts = {};
  for (const t of all) counts[t.state] = (counts[t.state] ?? 0) + 1;
  $('target-counts').textContent = `${all.length} targets: ${Object.entries(counts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ')}${visible.length !== all.length ? ` (${visible.length} shown)` : ''}`;
}

$('target-filter').addEventListener('input', () => state && renderTargets(state));
$('target-sort').addEventListener('change', () => state && renderTargets(state));

document.querySelector('#targets tbody').addEventListener('click', async (e) => {
  const box = e.target.closest('input[data-series]');
  if (box) {
    if (!toggleSeries(box.dataset.series, box.checked)) box.checked = false;
    return;
  }
  const button = e.target.closest('button[data-action]');
  if (!button) return;
  const [group, ...idParts] = button.closest('tr').dataset.key.split('/');
  const id = idParts.join('/');
  const action = button.dataset.action;
  button.disabled = true;
  try {
    await api('POST', `/api/targets/${encodeURIComponent(group)}/${encodeURIComponent(id)}/${action}`);
    say(`${action}: ${group}/${id} done on every load balancer`);
  } catch (err) {
    say(`${action} ${id}: ${err.message}`, true);
  } finally {
    button.disabled = false;
  }
});

// ---- timeline ----------------------------------------------------------------------------------

function renderTimeline(s) {
  const filter = $('timeline-filter').value.trim().toLowerCase();
  const last = s.timeline[s.timeline.length - 1];
  const key = `${s.timeline.length}|${last?.at}|${last?.subject}|${filter}`;
  if (key === lastTimelineKey) return;
  lastTimelineKey = key;
  const events = s.timeline
    .filter((e) => !filter || `${e.subject} ${e.source}`.toLowerCase().includes(filter))
    .reverse();
  $('timeline').innerHTML =
    events
      .map(
        (e) =>
          `<li><time>${esc(new Date(e.at).toLocaleTimeString())}</time><b>${esc(e.subject)}</b> ` +
          `${e.from ? `${esc(e.from)} → ` : ''}<span class="badge s-${esc(e.to)}">${esc(e.to)}</span> ` +
          `<span class="hint">${esc(e.reason ?? '')}${e.detail ? ` · ${esc(e.detail)}` : ''} · ${esc(e.source)}</span></li>`,
      )
      .join('') || '<li class="empty">no changes yet</li>';
}

$('timeline-filter').addEventListener('input', () => state && renderTimeline(state));

// ---- components, scaling, chaos ---------------------------------------------------------------------

function renderComponents(s) {
  const key = JSON.stringify([
    s.canControl,
    s.components.map((c) => [c.name, c.status, c.pid, c.restarts, c.admin?.ok]),
  ]);
  if (key === lastComponentsKey) return;
  lastComponentsKey = key;
  const off = s.canControl ? '' : ' disabled title="this dashboard cannot control processes"';
  document.querySelector('#components tbody').innerHTML = s.components
    .map(
      (
        c,
      ) => `<tr data-name="${esc(c.name)}"><td>${esc(c.name)}</td><td>${esc(c.kind)}${c.role ? ` (${esc(c.role)})` : ''}</td>
        <td><span class="badge s-${esc(c.status)}">${esc(c.status)}</span></td><td>${esc(c.address ?? '')}</td>
        <td class="num">${esc(c.pid ?? '')}</td><td class="num">${c.restarts}</td>
        <td>${c.admin === null ? '' : c.admin.ok ? 'ok' : `<span class="badge s-unreachable" title="${esc(c.admin.error)}">unreachable</span>`}</td>
        <td><button data-action="kill"${off}>kill</button> <button data-action="restart"${off}>restart</button></td></tr>`,
    )
    .join('');
}

document.querySelector('#components tbody').addEventListener('click', async (e) => {
  const button = e.target.closest('button[data-action]');
  if (!button) return;
  const name = button.closest('tr').dataset.name;
  const action = button.dataset.action;
  button.disabled = true;
  try {
    await api('POST', `/api/components/${encodeURIComponent(name)}/${action}`);
    say(`${action} ${name}: done`);
  } catch (err) {
    say(`${action} ${name}: ${err.message}`, true);
    button.disabled = false;
  }
});

function renderScale(s) {
  const apps = s.components.filter((c) => c.kind === 'app' && c.status !== 'stopped').length;
  const input = $('scale-count');
  if (document.activeElement !== input) input.value = String(apps);
  input.disabled = !s.canControl;
  $('scale-button').disabled = !s.canControl;
  $('scale-form').title = s.canControl
    ? ''
    : 'this dashboard watches remote components and cannot scale them';
}

$('scale-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const count = Number($('scale-count').value);
  try {
    await api('POST', '/api/scale', { tier: 'app', count });
    say(`scaling the app tier to ${count}`);
  } catch (err) {
    say(`scale: ${err.message}`, true);
  }
});

// ---- DNS ---------------------------------------------------------------------------------------

function renderDns(s) {
  if (!s.dns.length) return;
  $('dns').innerHTML = s.dns
    .map(
      (d) =>
        `<p><b>${esc(d.component)}</b> ${d.ok ? '' : '<span class="badge s-unreachable">unreachable</span>'} ` +
        `${fmt(d.qps)} queries/s</p>` +
        d.recordSets
          .map((set) =>
            set.pools
              .map(
                (p) =>
                  `<table><thead><tr><th colspan="2">${esc(set.name)} (${esc(set.policy)}${p.pool && p.pool !== 'default' ? `, ${esc(p.pool)}` : ''})${p.failOpen ? ' <span class="badge s-draining">fail-open</span>' : ''}</th>` +
                  `<th>weight</th><th title="last minute's share of first answers vs the share the weights ask for">answers vs weight</th><th>answers/s</th></tr></thead><tbody>` +
                  p.addresses
                    .map((a) => {
                      const st = a.draining ? 'draining' : a.state;
                      return `<tr><td>${esc(a.address)}</td><td><span class="badge s-${esc(st)}" title="${esc(a.reason)}">${esc(st)}</span></td>
                        <td class="num">${a.weight}</td>
                        <td><div class="bars" title="got ${fmt(a.share * 100)}%, weights ask for ${fmt(a.expectedShare * 100)}%"><div class="actual" style="width:${(a.share * 100).toFixed(1)}%"></div><div class="expected" style="left:${Math.min(99, a.expectedShare * 100).toFixed(1)}%"></div></div></td>
                        <td class="num">${fmt(a.answersPerSec)}</td></tr>`;
                    })
                    .join('') +
                  `</tbody></table>`,
              )
              .join(''),
          )
          .join(''),
    )
    .join('');
}

// ---- database ----------------------------------------------------------------------------------

function renderDb(s) {
  if (!s.db.length) return;
  $('db').innerHTML = s.db.map(dbHtml).join('');
  appendDbPoint(s);
}

function dbHtml(d) {
  const reasons = Object.entries(d.reasons)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${esc(k)} ${fmt(v)}`)
    .join(', ');
  const servers = d.servers
    .map(
      (
        sv,
      ) => `<tr>${'shard' in sv ? `<td>${esc(sv.shard)}</td>` : ''}<td>${esc(sv.role)}</td><td>${esc(sv.server)}</td>
      <td><span class="badge s-${esc(sv.lagging ? 'lagging' : sv.state)}" title="${esc(sv.reason)}">${esc(sv.lagging ? 'lagging' : sv.state)}</span></td>
      <td class="num">${sv.role === 'replica' ? fmt(sv.lagSeconds, 3) : ''}</td><td class="num">${sv.role === 'replica' ? esc(sv.lagBytes ?? '') : ''}</td>
      <td class="num">${sv.pool ? `${sv.pool.inUse} / ${sv.pool.idle} / ${sv.pool.waiting}` : ''}</td></tr>`,
    )
    .join('');
  const hasShardColumn = d.servers.some((sv) => 'shard' in sv);
  let shards = '';
  if (d.shards?.length) {
    shards =
      `<h3>Shards</h3><table><thead><tr><th>shard</th><th>statements/s</th>` +
      `<th title="since the proxy started: single-shard / scatter parts / all-shard writes">single / scatter / all</th>` +
      `<th>primary</th><th>replicas</th><th>not healthy</th></tr></thead><tbody>` +
      d.shards
        .map(
          (x) =>
            `<tr><td>${esc(x.name)}</td><td class="num">${fmt(x.rate)}</td>` +
            `<td class="num">${x.statements.single ?? 0} / ${x.statements.scatter ?? 0} / ${x.statements.all ?? 0}</td>` +
            `<td>${esc(x.primary ?? '')}</td><td class="num">${x.replicas}</td>` +
            `<td class="num">${x.unhealthy ? `<span class="badge s-unhealthy">${x.unhealthy}</span>` : '0'}</td></tr>`,
        )
        .join('') +
      `</tbody></table>`;
    if (d.scatterQueries !== null || d.refusedStatements !== null)
      shards += `<p class="hint">scatter queries ${esc(d.scatterQueries ?? 0)}, refused statements ${esc(d.refusedStatements ?? 0)} (since start)</p>`;
  }
  return (
    `<p><b>${esc(d.component)}</b> ${d.ok ? '' : '<span class="badge s-unreachable">unreachable</span>'} statements/s: ` +
    `primary <b>${fmt(d.routes.primary ?? 0)}</b>, replicas <b>${fmt(d.routes.replica ?? 0)}</b>; ` +
    `read-your-writes fallbacks <b>${fmt(d.readYourWritesPerSec)}</b>/s</p>` +
    (reasons ? `<p class="hint">by reason: ${reasons}</p>` : '') +
    `<table><thead><tr>${hasShardColumn ? '<th>shard</th>' : ''}<th>role</th><th>server</th><th>state</th><th>lag s</th><th>lag bytes</th><th title="server connections in use / idle / clients waiting">pool</th></tr></thead><tbody>${servers}</tbody></table>` +
    shards
  );
}

async function loadDbHistory() {
  const name = state?.db[0]?.component;
  if (!name) return;
  try {
    const h = await api('GET', `/api/history?series=${encodeURIComponent(`db:${name}`)}`);
    const f = h.series[`db:${name}`] ?? {};
    const n = h.times.length;
    const or = (v) => v ?? new Array(n).fill(null);
    dbData = { times: h.times, primary: or(f.primary), replica: or(f.replica), ryw: or(f.ryw) };
  } catch {
    // The live points will fill the chart.
  }
  dbChart?.destroy();
  dbChart = null;
}

function appendDbPoint(s) {
  const d = s.db[0];
  const t = s.at / 1000;
  if (dbData.times.length && t <= dbData.times[dbData.times.length - 1]) return;
  dbData.times.push(t);
  dbData.primary.push(d.routes.primary ?? 0);
  dbData.replica.push(d.routes.replica ?? 0);
  dbData.ryw.push(d.readYourWritesPerSec);
  for (const v of Object.values(dbData)) if (v.length > MAX_POINTS) v.splice(0, v.length - MAX_POINTS);
  const arrays = [dbData.times, dbData.primary, dbData.replica, dbData.ryw];
  if (dbChart) return dbChart.setData(arrays);
  const box = $('db-chart');
  dbChart = new uPlot(
    {
      width: Math.max(300, box.clientWidth || 500),
      height: 160,
      scales: { x: { time: true } },
      axes: [{}, { label: 'statements/s', size: 60 }],
      series: [
        {},
        { label: 'primary', stroke: PALETTE[0] },
        { label: 'replicas', stroke: PALETTE[2] },
        { label: 'read-your-writes → primary', stroke: PALETTE[1] },
      ],
    },
    arrays,
    box,
  );
}

// For tests and the curious: the live state and the chart's data.
window.scaleoutDashboard = {
  get state() {
    return state;
  },
  get chartData() {
    return chartData;
  },
  get chart() {
    return chart;
  },
  selected,
};

connect();
