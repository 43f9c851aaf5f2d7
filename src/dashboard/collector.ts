// Polls the admin endpoint of every component once a tick (LB admin API, DNS admin, db-proxy admin),
// turns counters and histograms into rates and percentiles, and keeps a bounded history and a
// timeline of state changes. The server sends what `state()` returns to the page.
import { EventEmitter } from 'node:events';
import { Agent, request } from 'undici';
import { silentLogger, type Logger } from '../core/log.js';
import type { ComponentInfo, ControlPlane } from './control-plane.js';
import { History } from './history.js';
import {
  addBuckets,
  bucketsDelta,
  counterDelta,
  histogramQuantile,
  parsePrometheusText,
  type Buckets,
  type Sample,
} from './prometheus.js';
import { DbScrape, type DbView } from './db-view.js';
import type { DnsStatus } from '../dns/status.js';
import { DnsScrape, type DnsView } from './dns-view.js';

export interface CollectorOptions {
  control: ControlPlane;
  /** Time between polls (default 1000 ms). */
  intervalMs?: number;
  /** How much history to keep, in ticks (default 600: ten minutes at one a second). */
  historyTicks?: number;
  /** Timeout of one admin request (default 2 s). */
  timeoutMs?: number;
  logger?: Logger;
}

/** A component as the page sees it: no admin token, plus whether its admin endpoint answered. */
export type ComponentView = Omit<ComponentInfo, 'adminToken'> & {
  admin: { ok: boolean; error?: string; at?: number } | null;
};

export interface TimelineEvent {
  /** ms since the epoch. */
  at: number;
  /** Who saw it: the LB, DNS or db-proxy component, or 'topology' for process changes. */
  source: string;
  kind: 'target' | 'component' | 'dns' | 'db' | 'admin';
  /** 'group/target', a component name, 'recordSet/address' or a database server. */
  subject: string;
  from: string | null;
  to: string;
  reason: string | null;
  detail: string | null;
}

export interface Rates {
  rps: number | null;
  /** Share of 5xx answers, 0..1; null when there were no requests. */
  errorRate: number | null;
  /** Milliseconds; null when there were no requests. */
  p50: number | null;
  p99: number | null;
}

export interface TargetView extends Rates {
  group: string;
  id: string;
  address: string;
  state: string;
  reason: string;
  detail: string | null;
  weight: number;
  configuredWeight: number;
  adminDisabled: boolean;
  draining: boolean;
  inFlight: number;
  connections: number;
  /** Each LB's own view, when there are several. */
  perLb: Array<{ lb: string; state: string; reason: string }>;
  /** Requests per second over the last 10 ticks, and this target's part of its group's. */
  recentRps: number;
  share: number | null;
  /** The share the weights ask for among targets that take traffic. */
  expectedShare: number | null;
  /** Requests per second of the last 60 ticks. */
  spark: Array<number | null>;
  /** No LB that knows this target answered the last poll. */
  stale: boolean;
}

export interface GroupView extends Rates {
  name: string;
  algorithm: string;
  failOpen: boolean;
  targets: TargetView[];
  states: Record<string, number>;
}

export interface DashboardState {
  name: string;
  at: number;
  intervalMs: number;
  canControl: boolean;
  components: ComponentView[];
  lb: { groups: GroupView[] };
  dns: DnsView[];
  db: DbView[];
  timeline: TimelineEvent[];
}

// ---- what the LB admin API gives -----------------------------------------------------------------

interface LbTargetJson {
  id: string;
  address: string;
  state: string;
  reason: string;
  detail: string | null;
  configuredWeight: number;
  weight: number;
  adminDisabled: boolean;
  draining: boolean;
  inFlight: number;
  connections: number;
  history?: Array<{ at: string; from: string; to: string; reason: string; detail: string | null }>;
}

interface LbGroupJson {
  name: string;
  algorithm: string;
  failOpen: boolean;
  targets: LbTargetJson[];
}

/** What one (group, target) did in the last tick, added up over the LBs. */
interface Delta {
  n: number;
  errors: number;
  rps: number;
  buckets: Buckets | undefined;
}

/** Cumulative request figures of one (group, target) in one LB process. */
interface Reading {
  n: number;
  errors: number;
  buckets: Buckets | undefined;
}

interface LbScrape {
  at: number;
  groups: LbGroupJson[];
  readings: Map<string, Reading>;
}

const KEY_SEP = '\u0000';
const STATE_SEVERITY = ['unhealthy', 'draining', 'unused', 'initial', 'healthy'];
const TIMELINE_MAX = 1000;
const TIMELINE_SENT = 200;
const SPARK_TICKS = 60;
const SHARE_TICKS = 10;

export class Collector extends EventEmitter {
  readonly history: History;
  readonly intervalMs: number;
  private readonly control: ControlPlane;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly agent = new Agent({ connections: 4, keepAliveTimeout: 10_000 });
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private latest: DashboardState | undefined;
  private readonly timeline: TimelineEvent[] = [];

  // Per component, the last successful scrape (for deltas) and the last result of a poll.
  private readonly lbScrapes = new Map<string, LbScrape>();
  private readonly dnsScrapes = new Map<string, DnsScrape>();
  private readonly dbScrapes = new Map<string, DbScrape>();
  private readonly adminHealth = new Map<string, { ok: boolean; error?: string; at: number }>();
  // For the timeline: what was seen last time.
  private readonly lastStatus = new Map<string, string>();
  private readonly importedUntil = new Map<string, number>();
  private readonly lbTargetSets = new Map<string, Set<string>>();
  private readonly dnsStates = new Map<string, string>();
  private readonly dbStates = new Map<string, string>();

  constructor(options: CollectorOptions) {
    super();
    this.control = options.control;
    this.intervalMs = options.intervalMs ?? 1000;
    // Generous: ticks never overlap, so a slow admin endpoint only makes that tick late.
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.history = new History(options.historyTicks ?? 600);
    this.log = options.logger ?? silentLogger;
  }

  /** Polls now and then every interval; ticks never overlap (a slow poll delays the next one). */
  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      const started = Date.now();
      this.running = this.tick().catch((err: unknown) => this.log.error({ err }, 'dashboard poll failed'));
      await this.running;
      if (this.stopped) return;
      this.timer = setTimeout(() => void loop(), Math.max(0, this.intervalMs - (Date.now() - started)));
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.agent.close();
  }

  /** The newest state (polling once first if there is none yet). */
  async current(): Promise<DashboardState> {
    if (!this.latest) await (this.running ?? this.tick());
    return this.latest ?? this.build(Date.now());
  }

  state(): DashboardState | undefined {
    return this.latest;
  }

  /** One poll of every component, then a new state and an 'update' event. */
  async tick(): Promise<void> {
    const now = Date.now();
    const topology = this.control.snapshot();
    this.componentEvents(topology.components, now);
    const deltas = new Map<string, Delta>();
    await Promise.all(
      topology.components.map(async (c) => {
        if (!c.adminUrl) return;
        try {
          if (c.kind === 'lb') await this.pollLb(c, deltas);
          else if (c.kind === 'dns') await this.pollDns(c);
          else if (c.kind === 'db-proxy') await this.pollDb(c);
          else return;
          this.adminResult(c.name, true, undefined, now);
        } catch (err) {
          this.adminResult(c.name, false, (err as Error).message, now);
        }
      }),
    );
    this.recordLbRates(deltas);
    for (const [name, s] of this.dnsScrapes)
      this.history.record(`dns:${name}`, { qps: s.qps === null ? null : round(s.qps, 2) });
    for (const [name, s] of this.dbScrapes) this.history.record(`db:${name}`, s.historyPoint());
    this.history.commit(now);
    this.latest = this.build(now, topology);
    this.emit('update', this.latest);
  }

  // ---- polling -----------------------------------------------------------------------------------

  private async get(c: ComponentInfo, path: string): Promise<string> {
    const url = new URL(path, c.adminUrl!.endsWith('/') ? c.adminUrl : `${c.adminUrl}/`);
    const res = await request(url, {
      dispatcher: this.agent,
      headers: c.adminToken ? { authorization: `Bearer ${c.adminToken}` } : {},
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200)
      throw new Error(`${path}: HTTP ${res.statusCode} ${text.slice(0, 200).trim()}`);
    return text;
  }

  private async pollLb(c: ComponentInfo, deltas: Map<string, Delta>): Promise<void> {
    const [groupsText, metricsText] = await Promise.all([
      this.get(c, 'api/v1/target-groups'),
      this.get(c, 'metrics'),
    ]);
    const at = Date.now();
    const groups = (JSON.parse(groupsText) as { targetGroups: LbGroupJson[] }).targetGroups;
    const readings = lbReadings(parsePrometheusText(metricsText));
    const previous = this.lbScrapes.get(c.name);
    this.lbScrapes.set(c.name, { at, groups, readings });
    this.lbTargetEvents(c.name, groups, at);
    if (!previous) return;
    const dt = Math.max(0.001, (at - previous.at) / 1000);
    for (const [key, r] of readings) {
      const before = previous.readings.get(key);
      const n = counterDelta(before?.n ?? 0, r.n);
      const errors = counterDelta(before?.errors ?? 0, r.errors);
      const buckets = r.buckets ? bucketsDelta(before?.buckets, r.buckets) : undefined;
      addDelta(deltas, key, { n, errors, rps: n / dt, buckets });
    }
  }

  private async pollDns(c: ComponentInfo): Promise<void> {
    const [statusText, metricsText] = await Promise.all([this.get(c, 'status'), this.get(c, 'metrics')]);
    const at = Date.now();
    const status = JSON.parse(statusText) as DnsStatus;
    const scrape = new DnsScrape(status, parsePrometheusText(metricsText), at, this.dnsScrapes.get(c.name));
    this.dnsScrapes.set(c.name, scrape);
    for (const a of scrape.addresses())
      this.stateEvent(this.dnsStates, c.name, 'dns', a.subject, a.state, a.reason, a.detail, at);
  }

  private async pollDb(c: ComponentInfo): Promise<void> {
    const [statusText, metricsText] = await Promise.all([this.get(c, 'status'), this.get(c, 'metrics')]);
    const at = Date.now();
    const status = JSON.parse(statusText) as unknown;
    const scrape = new DbScrape(status, parsePrometheusText(metricsText), at, this.dbScrapes.get(c.name));
    this.dbScrapes.set(c.name, scrape);
    for (const s of scrape.serverStates())
      this.stateEvent(this.dbStates, c.name, 'db', s.subject, s.state, s.reason, null, at);
  }

  // ---- rates -------------------------------------------------------------------------------------

  private recordLbRates(deltas: Map<string, Delta>): void {
    const groups = new Map<string, Delta>();
    for (const [key, d] of deltas) {
      const [group, target] = key.split(KEY_SEP) as [string, string];
      if (group === '') continue;
      if (target !== '') this.history.record(`target:${group}/${target}`, ratesPoint(d));
      addDelta(groups, group, d);
    }
    for (const [group, g] of groups) this.history.record(`group:${group}`, ratesPoint(g));
  }

  // ---- timeline ----------------------------------------------------------------------------------

  /** Adds an event seen elsewhere (an action's result) to the timeline. */
  note(e: TimelineEvent): void {
    this.pushEvent(e);
  }

  /** Whether a dashboard action already put this change in the timeline (its answer came first). */
  private alreadyNoted(source: string, subject: string, from: string, to: string, at: number): boolean {
    for (let i = this.timeline.length - 1; i >= 0 && i >= this.timeline.length - 50; i--) {
      const e = this.timeline[i]!;
      if (
        e.source === source &&
        e.subject === subject &&
        e.from === from &&
        e.to === to &&
        Math.abs(e.at - at) < 5000
      )
        return true;
    }
    return false;
  }

  private pushEvent(e: TimelineEvent): void {
    this.timeline.push(e);
    if (this.timeline.length > TIMELINE_MAX) this.timeline.splice(0, this.timeline.length - TIMELINE_MAX);
  }

  private componentEvents(components: ComponentInfo[], now: number): void {
    const seen = new Set<string>();
    for (const c of components) {
      seen.add(c.name);
      const before = this.lastStatus.get(c.name);
      if (before !== c.status) {
        this.lastStatus.set(c.name, c.status);
        this.pushEvent({
          at: before === undefined ? Math.min(c.since, now) : c.since || now,
          source: 'topology',
          kind: 'component',
          subject: c.name,
          from: before ?? null,
          to: c.status,
          reason: c.restarts ? `restarts: ${c.restarts}` : null,
          detail: c.pid ? `pid ${c.pid}` : null,
        });
      }
    }
    for (const name of [...this.lastStatus.keys()]) {
      if (seen.has(name)) continue;
      this.pushEvent({
        at: now,
        source: 'topology',
        kind: 'component',
        subject: name,
        from: this.lastStatus.get(name)!,
        to: 'removed',
        reason: null,
        detail: null,
      });
      this.lastStatus.delete(name);
      this.forget(name);
    }
  }

  /** Drops what was kept about a component that left the topology. */
  private forget(name: string): void {
    this.lbScrapes.delete(name);
    this.dnsScrapes.delete(name);
    this.dbScrapes.delete(name);
    this.adminHealth.delete(name);
    this.lbTargetSets.delete(name);
  }

  private adminResult(name: string, ok: boolean, error: string | undefined, at: number): void {
    const before = this.adminHealth.get(name);
    this.adminHealth.set(name, { ok, error, at });
    if (before && before.ok !== ok)
      this.pushEvent({
        at,
        source: name,
        kind: 'admin',
        subject: name,
        from: before.ok ? 'reachable' : 'unreachable',
        to: ok ? 'reachable' : 'unreachable',
        reason: ok ? null : 'Admin.PollFailed',
        detail: error ?? null,
      });
  }

  /** Imports each target's own state history from the LB (exact times and reasons), and notes removals. */
  private lbTargetEvents(lb: string, groups: LbGroupJson[], at: number): void {
    const ids = new Set<string>();
    for (const g of groups) {
      for (const t of g.targets) {
        const subject = `${g.name}/${t.id}`;
        ids.add(subject);
        const key = `${lb}${KEY_SEP}${subject}`;
        const until = this.importedUntil.get(key) ?? 0;
        let newest = until;
        for (const h of t.history ?? []) {
          const when = Date.parse(h.at);
          if (!(when > until)) continue;
          newest = Math.max(newest, when);
          if (this.alreadyNoted(lb, subject, h.from, h.to, when)) continue;
          this.pushEvent({
            at: when,
            source: lb,
            kind: 'target',
            subject,
            from: h.from,
            to: h.to,
            reason: h.reason,
            detail: h.detail,
          });
        }
        this.importedUntil.set(key, newest);
      }
    }
    const before = this.lbTargetSets.get(lb);
    if (before)
      for (const subject of before)
        if (!ids.has(subject)) {
          this.pushEvent({
            at,
            source: lb,
            kind: 'target',
            subject,
            from: null,
            to: 'removed',
            reason: 'Target.Deregistered',
            detail: null,
          });
          this.importedUntil.delete(`${lb}${KEY_SEP}${subject}`);
        }
    this.lbTargetSets.set(lb, ids);
    this.timeline.sort((a, b) => a.at - b.at);
  }

  private stateEvent(
    memory: Map<string, string>,
    source: string,
    kind: 'dns' | 'db',
    subject: string,
    state: string,
    reason: string | null,
    detail: string | null,
    at: number,
  ): void {
    const key = `${source}${KEY_SEP}${subject}`;
    const before = memory.get(key);
    if (before === state) return;
    memory.set(key, state);
    this.pushEvent({ at, source, kind, subject, from: before ?? null, to: state, reason, detail });
  }

  // ---- the state the page gets -------------------------------------------------------------------

  private build(now: number, topology = this.control.snapshot()): DashboardState {
    const { name, components } = topology;
    return {
      name,
      at: now,
      intervalMs: this.intervalMs,
      canControl: this.control.canControl,
      components: components.map(({ adminToken: _token, ...c }) => ({
        ...c,
        admin: c.adminUrl ? (this.adminHealth.get(c.name) ?? null) : null,
      })),
      lb: { groups: this.buildGroups() },
      dns: [...this.dnsScrapes].map(([name, s]) => s.view(name, this.adminHealth.get(name)?.ok ?? false)),
      db: [...this.dbScrapes].map(([name, s]) => s.view(name, this.adminHealth.get(name)?.ok ?? false)),
      timeline: this.timeline.slice(-TIMELINE_SENT),
    };
  }

  private buildGroups(): GroupView[] {
    const groups = new Map<string, GroupView>();
    const rows = new Map<string, TargetView>();
    for (const [lb, scrape] of this.lbScrapes) {
      const fresh = this.adminHealth.get(lb)?.ok ?? false;
      for (const g of scrape.groups) {
        let group = groups.get(g.name);
        if (!group) {
          group = {
            name: g.name,
            algorithm: g.algorithm,
            failOpen: g.failOpen,
            targets: [],
            states: {},
            ...this.rates(`group:${g.name}`),
          };
          groups.set(g.name, group);
        }
        group.failOpen ||= g.failOpen;
        for (const t of g.targets) {
          const key = `${g.name}${KEY_SEP}${t.id}`;
          const row = rows.get(key);
          if (!row) {
            const series = `target:${g.name}/${t.id}`;
            const created: TargetView = {
              group: g.name,
              id: t.id,
              address: t.address,
              state: t.state,
              reason: t.reason,
              detail: t.detail,
              weight: t.weight,
              configuredWeight: t.configuredWeight,
              adminDisabled: t.adminDisabled,
              draining: t.draining,
              inFlight: t.inFlight,
              connections: t.connections,
              perLb: [{ lb, state: t.state, reason: t.reason }],
              ...this.rates(series),
              recentRps: mean(this.history.tail(series, 'rps', SHARE_TICKS)),
              share: null,
              expectedShare: null,
              spark: this.history
                .tail(series, 'rps', SPARK_TICKS)
                .map((v) => (v === null ? null : round(v, 1))),
              stale: !fresh,
            };
            rows.set(key, created);
            group.targets.push(created);
            continue;
          }
          row.perLb.push({ lb, state: t.state, reason: t.reason });
          row.inFlight += t.inFlight;
          row.connections += t.connections;
          row.stale &&= !fresh;
          // When LBs disagree, show the most severe state (an LB that sees it unhealthy matters).
          if (STATE_SEVERITY.indexOf(t.state) < STATE_SEVERITY.indexOf(row.state)) {
            Object.assign(row, { state: t.state, reason: t.reason, detail: t.detail, weight: t.weight });
          }
          row.adminDisabled ||= t.adminDisabled;
          row.draining ||= t.draining;
        }
      }
    }
    for (const group of groups.values()) {
      const total = group.targets.reduce((s, t) => s + t.recentRps, 0);
      const serving = group.targets.filter(
        (t) => t.state === 'healthy' || (group.failOpen && t.state === 'unhealthy'),
      );
      const weights = serving.reduce((s, t) => s + t.configuredWeight, 0);
      for (const t of group.targets) {
        t.share = total > 0 ? round(t.recentRps / total, 4) : null;
        t.expectedShare =
          weights > 0 ? round(serving.includes(t) ? t.configuredWeight / weights : 0, 4) : null;
        t.recentRps = round(t.recentRps, 2);
        group.states[t.state] = (group.states[t.state] ?? 0) + 1;
      }
    }
    return [...groups.values()];
  }

  private rates(series: string): Rates {
    const last = (field: string) => this.history.tail(series, field, 1)[0] ?? null;
    return { rps: last('rps'), errorRate: last('err'), p50: last('p50'), p99: last('p99') };
  }
}

// ---- helpers -------------------------------------------------------------------------------------

/** Per (target group, target): requests, 5xx answers and the duration histogram, summed over listeners. */
export function lbReadings(samples: Sample[]): Map<string, Reading> {
  const readings = new Map<string, Reading>();
  const buckets = new Map<string, Map<number, number>>();
  const reading = (labels: Record<string, string>) => {
    const key = `${labels.target_group ?? ''}${KEY_SEP}${labels.target ?? ''}`;
    let r = readings.get(key);
    if (!r) readings.set(key, (r = { n: 0, errors: 0, buckets: undefined }));
    return { key, r };
  };
  for (const s of samples) {
    if (s.name === 'scaleout_lb_requests_total') {
      const { r } = reading(s.labels);
      r.n += s.value;
      if (s.labels.status_class === '5xx') r.errors += s.value;
    } else if (s.name === 'scaleout_lb_request_duration_seconds_bucket') {
      const { key } = reading(s.labels);
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      let byLe = buckets.get(key);
      if (!byLe) buckets.set(key, (byLe = new Map()));
      byLe.set(le, (byLe.get(le) ?? 0) + s.value);
    }
  }
  for (const [key, byLe] of buckets) {
    const le = [...byLe.keys()].sort((a, b) => a - b);
    readings.get(key)!.buckets = { le, counts: le.map((b) => byLe.get(b)!) };
  }
  return readings;
}

function ratesPoint(d: Delta) {
  const p50 = d.buckets ? histogramQuantile(0.5, d.buckets) : undefined;
  const p99 = d.buckets ? histogramQuantile(0.99, d.buckets) : undefined;
  return {
    rps: round(d.rps, 3),
    err: d.n > 0 ? round(d.errors / d.n, 4) : null,
    p50: p50 === undefined ? null : round(p50 * 1000, 3),
    p99: p99 === undefined ? null : round(p99 * 1000, 3),
  };
}

/** Adds d into the sum kept under key (copying, so the sum never aliases a reading). */
function addDelta(sums: Map<string, Delta>, key: string, d: Delta): void {
  const sum = sums.get(key);
  if (!sum) {
    sums.set(key, { ...d, buckets: d.buckets && copyBuckets(d.buckets) });
    return;
  }
  sum.n += d.n;
  sum.errors += d.errors;
  sum.rps += d.rps;
  if (d.buckets && sum.buckets && sum.buckets.le.length === d.buckets.le.length)
    addBuckets(sum.buckets, d.buckets);
  else if (d.buckets && !sum.buckets) sum.buckets = copyBuckets(d.buckets);
}

function copyBuckets(b: Buckets): Buckets {
  return { le: [...b.le], counts: [...b.counts] };
}

function mean(values: Array<number | null>): number {
  const present = values.filter((v): v is number => v !== null);
  return present.length ? present.reduce((s, v) => s + v, 0) / present.length : 0;
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
