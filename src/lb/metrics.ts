// Prometheus metrics of the load balancer, in a registry of our own (not prom-client's global one).
//
// The request path only bumps plain numbers in a cell found through a few Map lookups keyed by strings
// the LB already holds (listener, rule, target group and target names), so no label string is built per
// request. prom-client reads the cells when /metrics is scraped: its own labelled inc()/observe() hash
// the labels on every call, which measured at about 100 times the cost of these increments.
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type MetricObjectWithValues,
  type MetricType,
  type MetricValueWithName,
} from 'prom-client';
import type { TargetState } from '../core/types.js';
import type { Target } from '../registry/target.js';
import type { TargetGroup } from '../registry/target-group.js';
import type { RequestRecord } from './http/session.js';
import type { LbRuntime } from './runtime.js';

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const TARGET_STATES: TargetState[] = ['initial', 'healthy', 'unhealthy', 'draining', 'unused'];
/** Latency bucket bounds in ms (exported in seconds): 0.5 ms to 10 s. */
const BUCKETS_MS = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];
const GROUP_SYNC_MS = 500;

type Labels = Record<string, string>;

/**
 * A worker's figures (`scaleout lb --workers N`), sent to the primary, which serves /metrics for all:
 * plain data, safe to send over IPC. Counters are totals since the worker started.
 */
export interface MetricsSnapshot {
  requests: Array<{ labels: Labels; byClass: number[] }>;
  durations: Array<{ labels: Labels; counts: number[]; sum: number; count: number }>;
  upstream: Array<{ labels: Labels; counts: number[]; sum: number; count: number }>;
  listeners: Record<
    string,
    { retries: number; rejected: number; upstreamErrors: number; active: number; idle: number }
  >;
  /** group → target id → open connections. */
  connections: Record<string, Record<string, number>>;
  retryBudget: { remaining: number; exhausted: number } | undefined;
}

/** Bucket counts (not cumulative; the last slot is above every bound), sum and count, in ms. */
class HistogramCell {
  readonly counts = new Float64Array(BUCKETS_MS.length + 1);
  sum = 0;
  count = 0;
  constructor(readonly labels: Labels) {}

  observe(ms: number): void {
    let i = 0;
    while (i < BUCKETS_MS.length && ms > BUCKETS_MS[i]!) i++;
    this.counts[i]!++;
    this.sum += ms;
    this.count++;
  }
}

/** Requests of one listener × rule × target group × target. */
class RequestCell {
  readonly byClass = new Float64Array(STATUS_CLASSES.length);
  constructor(
    readonly labels: Labels,
    readonly duration: HistogramCell,
    readonly upstream: HistogramCell,
  ) {}
}

/** A Map of Maps: cells found by a path of keys without building a joined key string. */
class Tree<T> {
  private readonly root = new Map<string, unknown>();
  get(keys: string[], make: () => T): T {
    let node = this.root;
    for (let i = 0; i < keys.length - 1; i++) {
      let next = node.get(keys[i]!) as Map<string, unknown> | undefined;
      if (!next) node.set(keys[i]!, (next = new Map()));
      node = next;
    }
    const last = keys[keys.length - 1]!;
    let leaf = node.get(last) as T | undefined;
    if (leaf === undefined) node.set(last, (leaf = make()));
    return leaf;
  }
}

/**
 * A histogram whose data lives in HistogramCells. prom-client's Histogram has no way to set bucket
 * counts, so this subclass overrides the two methods the registry reads (get, and getForPromString
 * which the text exposition prefers) to report the cells.
 */
class CellHistogram extends Histogram<string> {
  constructor(
    private readonly metricName: string,
    private readonly helpText: string,
    labelNames: string[],
    registry: Registry,
    private readonly cells: () => Iterable<HistogramCell>,
  ) {
    super({
      name: metricName,
      help: helpText,
      labelNames,
      buckets: BUCKETS_MS.map((b) => b / 1000),
      registers: [registry],
    });
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const name = this.metricName;
    const values: Array<MetricValueWithName<string>> = [];
    for (const cell of this.cells()) {
      let cumulative = 0;
      BUCKETS_MS.forEach((bound, i) => {
        cumulative += cell.counts[i]!;
        values.push({
          metricName: `${name}_bucket`,
          labels: { ...cell.labels, le: bound / 1000 },
          value: cumulative,
        });
      });
      values.push({
        metricName: `${name}_bucket`,
        labels: { ...cell.labels, le: '+Inf' },
        value: cell.count,
      });
      values.push({ metricName: `${name}_sum`, labels: cell.labels, value: cell.sum / 1000 });
      values.push({ metricName: `${name}_count`, labels: cell.labels, value: cell.count });
    }
    return {
      name,
      help: this.helpText,
      type: 'histogram' as unknown as MetricType,
      values,
      aggregator: 'sum',
      collect: () => {},
    };
  }

  getForPromString() {
    return this.get();
  }
}

/** Sums histogram cells with equal labels: this process's and every worker's. */
function mergeHistograms(
  local: HistogramCell[],
  fromWorkers: Array<MetricsSnapshot['durations']>,
): HistogramCell[] {
  if (fromWorkers.length === 0) return local;
  const merged = new Map<string, HistogramCell>();
  const add = (c: { labels: Labels; counts: ArrayLike<number>; sum: number; count: number }) => {
    const key = JSON.stringify(c.labels);
    let m = merged.get(key);
    if (!m) merged.set(key, (m = new HistogramCell(c.labels)));
    for (let i = 0; i < m.counts.length; i++) m.counts[i]! += c.counts[i] ?? 0;
    m.sum += c.sum;
    m.count += c.count;
  };
  local.forEach(add);
  for (const cells of fromWorkers) cells.forEach(add);
  return [...merged.values()];
}

export interface LbMetricsOptions {
  /** Process metrics (CPU, memory, event-loop lag), prefixed scaleout_lb_. Default true. */
  processMetrics?: boolean;
}

export class LbMetrics {
  readonly registry = new Registry();
  private readonly requests = new Tree<RequestCell>();
  private readonly requestCells: RequestCell[] = [];
  private readonly durationCells = new Tree<HistogramCell>();
  private readonly durationList: HistogramCell[] = [];
  private readonly upstreamCells = new Tree<HistogramCell>();
  private readonly upstreamList: HistogramCell[] = [];
  private readonly transitions = new Map<string, { labels: Labels; n: number }>();
  private readonly watchedGroups = new WeakSet<TargetGroup>();
  /** Last snapshot of each worker; kept after a worker dies, so counters never go back. */
  private readonly workers = new Map<string | number, MetricsSnapshot>();
  private runtime: LbRuntime | undefined;
  private syncTimer: NodeJS.Timeout | undefined;

  constructor(options: LbMetricsOptions = {}) {
    if (options.processMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: 'scaleout_lb_' });
    this.defineRequestMetrics();
    this.defineRuntimeMetrics();
  }

  /** The per-request hook (LbRuntimeOptions.onRequest). An arrow function, so it can be passed as is. */
  readonly onRequest = (listener: string, r: RequestRecord): void => {
    const group = r.targetGroup ?? '';
    const target = r.upstream ?? '';
    const cell = this.requests.get([listener, r.rule, group, target], () =>
      this.newRequestCell(listener, r.rule, group, target),
    );
    let cls = ((r.status / 100) | 0) - 1;
    if (cls < 0) cls = 0;
    else if (cls > 4) cls = 4;
    cell.byClass[cls]!++;
    cell.duration.observe(r.durationMs);
    if (r.upstreamMs >= 0) cell.upstream.observe(r.upstreamMs);
  };

  /** Reads gauges from this runtime at scrape time and counts its health transitions. */
  attach(runtime: LbRuntime): void {
    this.runtime = runtime;
    this.syncGroups();
    // Groups can appear on any reload (SIGHUP, file change, admin API); look for new ones often.
    this.syncTimer ??= setInterval(() => this.syncGroups(), GROUP_SYNC_MS);
    this.syncTimer.unref();
  }

  /** Subscribes to the transitions of groups not seen yet; what they did before is taken from history. */
  syncGroups(): void {
    for (const rt of this.runtime?.groups.values() ?? []) {
      const group = rt.group;
      if (this.watchedGroups.has(group)) continue;
      this.watchedGroups.add(group);
      for (const t of group.list()) for (const h of t.history) this.countTransition(rt.name, t.id, h.to);
      group.on('transition', (target, t) => this.countTransition(rt.name, target.id, t.to));
    }
  }

  /** This process's figures, for a cluster primary (see MetricsSnapshot). */
  snapshot(): MetricsSnapshot {
    const hist = (c: HistogramCell) => ({
      labels: c.labels,
      counts: [...c.counts],
      sum: c.sum,
      count: c.count,
    });
    const listeners: MetricsSnapshot['listeners'] = {};
    for (const [name, l] of this.runtime?.listeners ?? []) {
      listeners[name] = {
        retries: l.stats.retries,
        rejected: l.stats.rejected,
        upstreamErrors: l.stats.upstreamErrors,
        active: l.activeConnections,
        idle: l.idleUpstreamConnections(),
      };
    }
    const connections: MetricsSnapshot['connections'] = {};
    for (const rt of this.runtime?.groups.values() ?? []) {
      const g: Record<string, number> = (connections[rt.name] = {});
      for (const t of rt.group.list()) g[t.id] = t.connections;
    }
    const budget = this.retryBudget();
    return {
      requests: this.requestCells.map((c) => ({ labels: c.labels, byClass: [...c.byClass] })),
      durations: this.durationList.map(hist),
      upstream: this.upstreamList.map(hist),
      listeners,
      connections,
      retryBudget: budget
        ? { remaining: budget.remaining(Date.now()), exhausted: budget.exhausted }
        : undefined,
    };
  }

  /** A cluster primary: the latest snapshot from worker `id`, added to what /metrics reports. */
  mergeWorker(id: string | number, snapshot: MetricsSnapshot): void {
    this.workers.set(id, snapshot);
  }

  /** Per listener, the workers' counters summed (cluster primary; empty otherwise). */
  workerListenerTotals(): MetricsSnapshot['listeners'] {
    const totals: MetricsSnapshot['listeners'] = {};
    for (const w of this.workers.values()) {
      for (const [name, row] of Object.entries(w.listeners)) {
        const t = (totals[name] ??= { retries: 0, rejected: 0, upstreamErrors: 0, active: 0, idle: 0 });
        t.retries += row.retries;
        t.rejected += row.rejected;
        t.upstreamErrors += row.upstreamErrors;
        t.active += row.active;
        t.idle += row.idle;
      }
    }
    return totals;
  }

  private retryBudget() {
    for (const l of this.runtime?.listeners.values() ?? []) return l.options.retryBudget;
    return undefined;
  }

  close(): void {
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.syncTimer = undefined;
  }

  private countTransition(group: string, target: string, to: string): void {
    const key = `${group}\u0000${target}\u0000${to}`;
    let cell = this.transitions.get(key);
    if (!cell) this.transitions.set(key, (cell = { labels: { target_group: group, target, to }, n: 0 }));
    cell.n++;
  }

  private newRequestCell(listener: string, rule: string, group: string, target: string): RequestCell {
    const duration = this.durationCells.get([listener, group, target], () => {
      const c = new HistogramCell({ listener, target_group: group, target });
      this.durationList.push(c);
      return c;
    });
    const upstream = this.upstreamCells.get([group, target], () => {
      const c = new HistogramCell({ target_group: group, target });
      this.upstreamList.push(c);
      return c;
    });
    const cell = new RequestCell({ listener, rule, target_group: group, target }, duration, upstream);
    this.requestCells.push(cell);
    return cell;
  }

  private defineRequestMetrics(): void {
    const cells = this.requestCells;
    const workers = this.workers;
    new Counter({
      name: 'scaleout_lb_requests_total',
      help: 'Requests answered, by listener, rule, target group, target and status class',
      labelNames: ['listener', 'rule', 'target_group', 'target', 'status_class'],
      registers: [this.registry],
      collect() {
        this.reset();
        // inc() adds up equal label sets, so the workers' rows sum with ours.
        const rows = [...cells, ...[...workers.values()].flatMap((w) => w.requests)];
        for (const row of rows)
          row.byClass.forEach((n, i) => {
            if (n > 0) this.inc({ ...row.labels, status_class: STATUS_CLASSES[i]! }, n);
          });
      },
    });
    new CellHistogram(
      'scaleout_lb_request_duration_seconds',
      'Time from a complete request head to the end of the response, by listener, target group and target',
      ['listener', 'target_group', 'target'],
      this.registry,
      () =>
        mergeHistograms(
          this.durationList,
          [...this.workers.values()].map((w) => w.durations),
        ),
    );
    new CellHistogram(
      'scaleout_lb_upstream_response_seconds',
      'Time from sending a request to a target to its response head, by target group and target',
      ['target_group', 'target'],
      this.registry,
      () =>
        mergeHistograms(
          this.upstreamList,
          [...this.workers.values()].map((w) => w.upstream),
        ).filter((c) => c.count > 0),
    );
  }

  private defineRuntimeMetrics(): void {
    // collect() callbacks get the metric as `this`; these arrows reach the LbMetrics.
    const runtime = () => this.runtime;
    const syncGroups = () => this.syncGroups();
    const workers = () => [...this.workers.values()];
    type ListenerRow = MetricsSnapshot['listeners'][string];
    /** This process's listeners and every worker's: equal names add up (inc after reset). */
    const listenerRows = (): Array<[string, ListenerRow]> => [
      ...[...(runtime()?.listeners ?? [])].map(([name, l]): [string, ListenerRow] => [
        name,
        {
          retries: l.stats.retries,
          rejected: l.stats.rejected,
          upstreamErrors: l.stats.upstreamErrors,
          active: l.activeConnections,
          idle: l.idleUpstreamConnections(),
        },
      ]),
      ...workers().flatMap((w) => Object.entries(w.listeners)),
    ];
    const targets = function* () {
      for (const rt of runtime()?.groups.values() ?? [])
        for (const t of rt.group.list()) yield { group: rt.name, t };
    };
    const perListener = (kind: 'counter' | 'gauge', name: string, help: string, key: keyof ListenerRow) => {
      const config = {
        name,
        help,
        labelNames: ['listener'],
        registers: [this.registry],
        collect(this: Counter<string> | Gauge<string>) {
          this.reset();
          for (const [n, row] of listenerRows()) this.inc({ listener: n }, row[key]);
        },
      };
      return kind === 'counter' ? new Counter(config) : new Gauge(config);
    };
    perListener(
      'counter',
      'scaleout_lb_retries_total',
      'Requests retried on another target, by listener',
      'retries',
    );
    perListener(
      'counter',
      'scaleout_lb_rejected_requests_total',
      'Requests refused before routing (malformed, too large, timed out), by listener',
      'rejected',
    );
    perListener(
      'counter',
      'scaleout_lb_upstream_errors_total',
      'Failed attempts to a target (connect errors, resets, timeouts), by listener',
      'upstreamErrors',
    );
    perListener(
      'gauge',
      'scaleout_lb_downstream_connections_active',
      'Open client connections, by listener',
      'active',
    );
    perListener(
      'gauge',
      'scaleout_lb_upstream_connections_idle',
      'Idle keep-alive connections to targets, by listener',
      'idle',
    );
    const targetGauge = (name: string, help: string, read: (t: Target, group: string) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['target_group', 'target'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const { group, t } of targets())
            this.set({ target_group: group, target: t.id }, read(t, group));
        },
      });
    targetGauge('scaleout_lb_target_in_flight', 'Requests in flight to a target', (t) => t.outstanding);
    targetGauge(
      'scaleout_lb_target_connections',
      'Open connections to a target (busy and idle)',
      (t, group) => workers().reduce((n, w) => n + (w.connections[group]?.[t.id] ?? 0), t.connections),
    );
    targetGauge(
      'scaleout_lb_target_weight',
      'Effective weight (configured × slow start × gray factor)',
      (t) => t.weight,
    );
    new Gauge({
      name: 'scaleout_lb_target_state',
      help: 'Target state: 1 for the current state, 0 for the others',
      labelNames: ['target_group', 'target', 'state'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { group, t } of targets())
          for (const state of TARGET_STATES)
            this.set({ target_group: group, target: t.id, state }, t.state === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'scaleout_lb_target_group_fail_open',
      help: '1 when every in-service target of the group is unhealthy and it routes to all of them',
      labelNames: ['target_group'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const rt of runtime()?.groups.values() ?? [])
          this.set({ target_group: rt.name }, rt.group.failOpen ? 1 : 0);
      },
    });
    const transitions = this.transitions;
    new Counter({
      name: 'scaleout_lb_health_transitions_total',
      help: 'Target state changes (health, ejection, admin), by target group, target and new state',
      labelNames: ['target_group', 'target', 'to'],
      registers: [this.registry],
      collect() {
        syncGroups();
        this.reset();
        for (const cell of transitions.values()) this.inc(cell.labels, cell.n);
      },
    });
    /** Each process has its own retry budget: this one's and the workers', summed. */
    const budgets = () => {
      const local = this.retryBudget();
      return [
        ...(local ? [{ remaining: local.remaining(Date.now()), exhausted: local.exhausted }] : []),
        ...workers().flatMap((w) => (w.retryBudget ? [w.retryBudget] : [])),
      ];
    };
    new Gauge({
      name: 'scaleout_lb_retry_budget_remaining',
      help: 'Retries the retry budget allows right now (summed over worker processes)',
      registers: [this.registry],
      collect() {
        this.set(budgets().reduce((n, b) => n + b.remaining, 0));
      },
    });
    new Counter({
      name: 'scaleout_lb_retry_budget_exhausted_total',
      help: 'Retries refused because the retry budget was spent',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(budgets().reduce((n, b) => n + b.exhausted, 0));
      },
    });
    new Gauge({
      name: 'scaleout_lb_state_file_error',
      help: '1 when runtime changes could not be written to the state file (see the admin status)',
      registers: [this.registry],
      collect() {
        this.set(runtime()?.state.lastError ? 1 : 0);
      },
    });
  }
}
