// The database part of the dashboard: the db-proxy admin /status (servers, roles, lag, and `shards`
// when the proxy shards) plus statement rates per route, per reason and per shard from /metrics.
import { counterDelta, type Sample } from './prometheus.js';

/** A server as db-proxy /status lists it; only the fields the page uses are named. */
export interface DbServer {
  server: string;
  role: string;
  state: string;
  reason: string;
  eligible?: boolean;
  shard?: number | string;
  lagBytes?: number;
  lagSeconds?: number;
  lagging?: boolean;
  [field: string]: unknown;
}

export interface DbView {
  component: string;
  ok: boolean;
  /** Statements per second by route ('primary', 'replica'). */
  routes: Record<string, number>;
  /** Statements per second by routing reason ('read-only', 'write', 'read-your-writes', …). */
  reasons: Record<string, number>;
  /** Reads sent to the primary because the replicas had not replayed the client's last write. */
  readYourWritesPerSec: number;
  servers: DbServer[];
  /** What /status says under `shards` (absent on a proxy without sharding). */
  shards: Array<Record<string, unknown>> | null;
  /** Statements per second per shard, when the metrics carry a `shard` label. */
  shardRates: Record<string, number> | null;
}

type Counts = Map<string, number>;

/** One poll of a db-proxy admin endpoint, with rates against the poll before. */
export class DbScrape {
  readonly servers: DbServer[];
  readonly shards: Array<Record<string, unknown>> | null;
  private readonly byLabels = {
    route: new Map() as Counts,
    reason: new Map() as Counts,
    shard: new Map() as Counts,
  };
  private readonly rates = {
    route: new Map() as Counts,
    reason: new Map() as Counts,
    shard: new Map() as Counts,
  };
  private sawShardLabel = false;

  constructor(
    status: unknown,
    samples: Sample[],
    readonly at: number,
    previous: DbScrape | undefined,
  ) {
    const s = (status ?? {}) as { servers?: unknown; shards?: unknown };
    this.servers = Array.isArray(s.servers) ? (s.servers as DbServer[]) : [];
    this.shards = Array.isArray(s.shards) ? (s.shards as Array<Record<string, unknown>>) : null;
    for (const sample of samples) {
      if (sample.name !== 'scaleout_db_statements_total') continue;
      for (const label of ['route', 'reason', 'shard'] as const) {
        const value = sample.labels[label];
        if (value === undefined) continue;
        if (label === 'shard') this.sawShardLabel = true;
        const counts = this.byLabels[label];
        counts.set(value, (counts.get(value) ?? 0) + sample.value);
      }
    }
    const dt = previous ? (at - previous.at) / 1000 : 0;
    if (previous && dt > 0)
      for (const label of ['route', 'reason', 'shard'] as const)
        for (const [value, n] of this.byLabels[label])
          this.rates[label].set(value, counterDelta(previous.byLabels[label].get(value) ?? 0, n) / dt);
  }

  /** Every server with its state, for the timeline. */
  serverStates(): Array<{ subject: string; state: string; reason: string | null }> {
    return this.servers.map((s) => ({
      subject: s.shard !== undefined ? `shard ${s.shard} ${s.role} ${s.server}` : `${s.role} ${s.server}`,
      state: s.lagging ? 'lagging' : s.state,
      reason: s.reason ?? null,
    }));
  }

  /** The figures kept over time: statements per route, read-your-writes fallbacks, each replica's lag. */
  historyPoint(): Record<string, number | null> {
    const point: Record<string, number | null> = {
      primary: round(this.rates.route.get('primary') ?? 0),
      replica: round(this.rates.route.get('replica') ?? 0),
      ryw: round(this.rates.reason.get('read-your-writes') ?? 0),
    };
    for (const s of this.servers)
      if (s.role === 'replica' && typeof s.lagSeconds === 'number') point[`lag:${s.server}`] = s.lagSeconds;
    for (const [shard, rate] of this.rates.shard) point[`shard:${shard}`] = round(rate);
    return point;
  }

  view(component: string, ok: boolean): DbView {
    const obj = (m: Counts) => Object.fromEntries([...m].map(([k, v]) => [k, round(v)]));
    return {
      component,
      ok,
      routes: obj(this.rates.route),
      reasons: obj(this.rates.reason),
      readYourWritesPerSec: round(this.rates.reason.get('read-your-writes') ?? 0),
      servers: this.servers,
      shards: this.shards,
      shardRates: this.sawShardLabel ? obj(this.rates.shard) : null,
    };
  }
}

const round = (n: number) => Math.round(n * 100) / 100;
