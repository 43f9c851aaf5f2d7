// The topology as an SVG picture: clients → DNS → load balancers → app instances → db-proxy →
// PostgreSQL (primary and replicas per shard), each box coloured by its state.
/* global document */
const SVG = 'http://www.w3.org/2000/svg';
const COLUMN = 150;
const BOX = { w: 118, h: 26 };
/** Beyond this many app instances they are drawn as small squares without labels. */
const LABELLED_APPS = 12;

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

const COLORS = {
  healthy: '#2e7d32',
  running: '#2e7d32',
  initial: '#1e6fb8',
  starting: '#1e6fb8',
  draining: '#e08a00',
  lagging: '#e08a00',
  stopping: '#e08a00',
  unused: '#8a8f98',
  stopped: '#8a8f98',
  unhealthy: '#c62828',
  crashed: '#c62828',
  unreachable: '#c62828',
};
const color = (state) => COLORS[state] ?? '#8a8f98';

/** The state that matters most for a component: a dead process, then an unreachable admin, then health. */
function componentState(c, health) {
  if (c.status !== 'running') return c.status;
  if (c.admin && !c.admin.ok) return 'unreachable';
  return health ?? 'running';
}

/** The nodes of each column, from the ControlPlane's components and what the admin endpoints say. */
export function layoutNodes(state) {
  const comps = state.components;
  const targets = state.lb.groups.flatMap((g) => g.targets);
  const byAddress = new Map(targets.map((t) => [t.address, t]));
  const columns = [];
  columns.push({ title: 'clients', nodes: [{ id: 'clients', label: 'clients', state: 'running' }] });
  const dns = comps.filter((c) => c.kind === 'dns');
  if (dns.length) columns.push({ title: 'DNS', nodes: dns.map((c) => node(c, componentState(c))) });
  const lbs = comps.filter((c) => c.kind === 'lb');
  if (lbs.length)
    columns.push({ title: 'load balancers', nodes: lbs.map((c) => node(c, componentState(c))) });
  // App instances: the supervisor's app components, else the LB's targets (remote dashboards).
  const apps = comps.filter((c) => c.kind === 'app');
  const appNodes = apps.length
    ? apps.map((c) => {
        const t = c.address ? byAddress.get(c.address) : undefined;
        const n = node(c, componentState(c, t?.state));
        n.title = `${c.name} ${c.address ?? ''}: ${c.status}${t ? `, target ${t.state} (${t.reason})` : ''}`;
        return n;
      })
    : targets.map((t) => ({
        id: `target:${t.group}/${t.id}`,
        label: t.id,
        state: t.state,
        title: `${t.group}/${t.id}: ${t.state} (${t.reason})`,
      }));
  if (appNodes.length)
    columns.push({
      title: `app (${appNodes.length})`,
      nodes: appNodes,
      compact: appNodes.length > LABELLED_APPS,
    });
  const proxies = comps.filter((c) => c.kind === 'db-proxy');
  if (proxies.length)
    columns.push({ title: 'db-proxy', nodes: proxies.map((c) => node(c, componentState(c))) });
  // PostgreSQL: the supervisor's servers, else the db-proxy's view of them; grouped by shard.
  const pg = comps.filter((c) => c.kind === 'postgres');
  const dbServers = state.db.flatMap((d) => d.servers);
  const serverState = (address) => {
    const s = dbServers.find((x) => x.server === address);
    return s ? (s.lagging ? 'lagging' : s.state) : undefined;
  };
  const pgNodes = pg.length
    ? pg.map((c) => ({
        ...node(c, componentState(c, serverState(c.address))),
        shard: c.shard ?? 0,
        role: c.role,
      }))
    : dbServers.map((s) => ({
        id: `db:${s.server}`,
        label: `${s.shard !== undefined ? `${s.shard} ` : ''}${s.role} ${s.server}`,
        state: s.lagging ? 'lagging' : s.state,
        shard: s.shard ?? 0,
        role: s.role,
        title: `${s.role} ${s.server}: ${s.state} (${s.reason})`,
      }));
  pgNodes.sort(
    (a, b) =>
      String(a.shard).localeCompare(String(b.shard), undefined, { numeric: true }) ||
      (a.role === 'primary' ? -1 : 1),
  );
  if (pgNodes.length) columns.push({ title: 'PostgreSQL', nodes: pgNodes, shards: true });
  return columns;
}

function node(c, state) {
  return {
    id: `component:${c.name}`,
    label: c.name,
    state,
    title: `${c.name} (${c.kind}) ${c.address ?? ''}: ${state}`,
  };
}

export function renderTopology(container, state) {
  const columns = layoutNodes(state);
  const positions = new Map();
  let height = 60;
  columns.forEach((col, i) => {
    const x = 10 + i * COLUMN;
    if (col.compact) {
      // A grid of squares, 12 per row.
      const size = 10;
      col.nodes.forEach((n, j) => {
        positions.set(n.id, {
          x: x + (j % 12) * (size + 2),
          y: 30 + Math.floor(j / 12) * (size + 2),
          w: size,
          h: size,
          n,
        });
      });
      height = Math.max(height, 30 + Math.ceil(col.nodes.length / 12) * (size + 2) + 20);
      col.anchor = { x, y: 30, w: 12 * (size + 2), h: Math.ceil(col.nodes.length / 12) * (size + 2) };
      return;
    }
    let y = 30;
    let lastShard;
    for (const n of col.nodes) {
      if (col.shards && lastShard !== undefined && n.shard !== lastShard) y += 14;
      lastShard = n.shard;
      positions.set(n.id, { x, y, w: BOX.w, h: BOX.h, n });
      y += BOX.h + 8;
    }
    height = Math.max(height, y + 10);
  });
  const width = 20 + columns.length * COLUMN;
  const svg = el('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-label': 'topology',
  });
  // Edges between consecutive columns (every node to every node, or to the block of compact apps).
  const edges = el('g', {}, svg);
  const anchorOf = (col, n) => (col.compact ? col.anchor : positions.get(n.id));
  for (let i = 0; i + 1 < columns.length; i++) {
    const from = columns[i];
    const to = columns[i + 1];
    const fromNodes = from.compact ? [from.nodes[0]] : from.nodes;
    const toNodes = to.compact ? [to.nodes[0]] : to.nodes;
    for (const a of fromNodes)
      for (const b of toNodes) {
        const pa = anchorOf(from, a);
        const pb = anchorOf(to, b);
        el(
          'path',
          {
            class: 'edge',
            d: `M${pa.x + pa.w},${pa.y + pa.h / 2} C${pa.x + pa.w + 20},${pa.y + pa.h / 2} ${pb.x - 20},${pb.y + pb.h / 2} ${pb.x},${pb.y + pb.h / 2}`,
          },
          edges,
        );
      }
  }
  // Column titles and nodes.
  columns.forEach((col, i) => {
    const t = el('text', { x: 10 + i * COLUMN, y: 16, 'font-weight': 600 }, svg);
    t.textContent = col.title;
  });
  for (const { x, y, w, h, n } of positions.values()) {
    const g = el('g', { class: 'node', 'data-id': n.id, 'data-state': n.state }, svg);
    el('title', {}, g).textContent = n.title ?? `${n.label}: ${n.state}`;
    el('rect', { x, y, width: w, height: h, rx: 4, fill: color(n.state) }, g);
    if (h >= BOX.h) {
      const label = el('text', { x: x + 6, y: y + h / 2 + 4, fill: '#fff', style: 'fill:#fff' }, g);
      label.textContent = n.label.length > 18 ? `${n.label.slice(0, 17)}…` : n.label;
    }
  }
  container.replaceChildren(svg);
}
