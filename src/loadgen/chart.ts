// The latency chart as SVG, written by hand: two small line plots need no charting library (and no
// browser to render them). Top: p50, p99 and max latency for every second of the run, with the seconds
// that had failures shaded red. Bottom: latency by percentile (HdrHistogram's classic plot, the x axis
// stretched towards the tail: 90%, 99%, 99.9% … are equally spaced).
import type { LoadResult } from './index.js';

const W = 800;
const H = 620;
const LEFT = 70;
const RIGHT = W - 45;
const COLORS = { p50: '#2b6cb0', p99: '#dd6b20', max: '#718096', fail: '#e53e3e' };

interface Panel {
  top: number;
  bottom: number;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (v: number): string => (Math.round(v * 10) / 10).toString();

/** About five round tick values from 0 to at least `max`. */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const pow = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= rough)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
  return ticks;
}

function yAxis(panel: Panel, ticks: number[], label: string): string[] {
  const top = ticks[ticks.length - 1]!;
  const y = (v: number): number => panel.bottom - (v / top) * (panel.bottom - panel.top);
  const out = ticks.map(
    (t) =>
      `<line x1="${LEFT}" x2="${RIGHT}" y1="${num(y(t))}" y2="${num(y(t))}" stroke="#e2e8f0"/>` +
      `<text x="${LEFT - 6}" y="${num(y(t) + 4)}" text-anchor="end">${t}</text>`,
  );
  out.push(
    `<text x="16" y="${(panel.top + panel.bottom) / 2}" transform="rotate(-90 16 ${(panel.top + panel.bottom) / 2})" text-anchor="middle">${esc(label)}</text>`,
  );
  return out;
}

function polyline(points: [number, number][], color: string, dashed = false): string {
  if (points.length === 0) return '';
  const d = points.map(([x, y]) => `${num(x)},${num(y)}`).join(' ');
  return `<polyline points="${d}" fill="none" stroke="${color}" stroke-width="1.8"${dashed ? ' stroke-dasharray="4 3"' : ''}/>`;
}

function legend(x: number, y: number, items: [string, string][]): string {
  return items
    .map(
      ([name, color], i) =>
        `<rect x="${x + i * 90}" y="${y - 9}" width="12" height="10" fill="${color}"/><text x="${x + i * 90 + 16}" y="${y}">${esc(name)}</text>`,
    )
    .join('');
}

function overTime(r: LoadResult, panel: Panel): string[] {
  const secs = r.timeline;
  const n = Math.max(1, secs.length);
  const ticks = niceTicks(Math.max(...secs.map((s) => s.max), 0));
  const top = ticks[ticks.length - 1]!;
  const slot = (RIGHT - LEFT) / n;
  const x = (second: number): number => LEFT + (second + 0.5) * slot;
  const y = (v: number): number => panel.bottom - (v / top) * (panel.bottom - panel.top);
  const answered = secs.filter((s) => s.ok + s.failed > 0);
  const out = [
    `<text x="${LEFT}" y="${panel.top - 12}" class="title">Latency over time (ms, per second of the run)</text>`,
    ...yAxis(panel, ticks, 'ms'),
    ...secs
      .filter((s) => s.failed > 0)
      .map(
        (s) =>
          `<rect x="${num(LEFT + s.second * slot)}" y="${panel.top}" width="${num(slot)}" height="${panel.bottom - panel.top}" fill="${COLORS.fail}" fill-opacity="0.18"><title>second ${s.second}: ${s.failed} failed</title></rect>`,
      ),
    polyline(
      answered.map((s) => [x(s.second), y(s.max)]),
      COLORS.max,
      true,
    ),
    polyline(
      answered.map((s) => [x(s.second), y(s.p99)]),
      COLORS.p99,
    ),
    polyline(
      answered.map((s) => [x(s.second), y(s.p50)]),
      COLORS.p50,
    ),
  ];
  const every = Math.max(1, Math.ceil(n / 10));
  for (let s = 0; s < n; s += every)
    out.push(`<text x="${num(x(s))}" y="${panel.bottom + 16}" text-anchor="middle">${s}s</text>`);
  out.push(
    legend(RIGHT - 380, panel.top - 12, [
      ['p50', COLORS.p50],
      ['p99', COLORS.p99],
      ['max', COLORS.max],
      ['failures', COLORS.fail],
    ]),
  );
  return out;
}

/** x position of a percentile: log10(1 / (1 - p)), so 90, 99, 99.9 … are one step apart. */
const stretch = (percentile: number): number => Math.log10(100 / Math.max(100 - percentile, 0.001));

function byPercentile(r: LoadResult, panel: Panel): string[] {
  const points = r.percentiles;
  const ticks = niceTicks(Math.max(...points.map((p) => p.ms), 0));
  const top = ticks[ticks.length - 1]!;
  const maxX = 5; // 99.999%
  const x = (p: number): number => LEFT + (Math.min(stretch(p), maxX) / maxX) * (RIGHT - LEFT);
  const y = (v: number): number => panel.bottom - (v / top) * (panel.bottom - panel.top);
  const out = [
    `<text x="${LEFT}" y="${panel.top - 12}" class="title">Latency by percentile (ms, ${r.latency.count} answers)</text>`,
    ...yAxis(panel, ticks, 'ms'),
    polyline(
      points.map((p) => [x(p.percentile), y(p.ms)]),
      COLORS.p99,
    ),
    ...points.map(
      (p) =>
        `<circle cx="${num(x(p.percentile))}" cy="${num(y(p.ms))}" r="2.5" fill="${COLORS.p99}"><title>p${p.percentile}: ${p.ms} ms</title></circle>`,
    ),
  ];
  for (const [p, label] of [
    [0, '0%'],
    [90, '90%'],
    [99, '99%'],
    [99.9, '99.9%'],
    [99.99, '99.99%'],
    [99.999, '99.999%'],
  ] as const)
    out.push(`<text x="${num(x(p))}" y="${panel.bottom + 16}" text-anchor="middle">${label}</text>`);
  return out;
}

export function latencyChart(r: LoadResult): string {
  const subtitle =
    `${r.url}  ${r.rate}/s for ${r.durationMs / 1000} s  ` +
    `sent ${r.sent}  ok ${r.ok}  failed ${r.failed}  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms  max ${r.latency.max} ms`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    '<style>.title{font-size:13px;font-weight:bold}</style>',
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${LEFT}" y="22" class="title">scaleout load: latency from the scheduled send time</text>`,
    `<text x="${LEFT}" y="40">${esc(subtitle)}</text>`,
    ...overTime(r, { top: 80, bottom: 320 }),
    ...byPercentile(r, { top: 380, bottom: 590 }),
    '</svg>',
    '',
  ].join('\n');
}
