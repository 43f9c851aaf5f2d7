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
  /** The shard's name, when the proxy shards (taken from /status `shards[].servers`). */
  shard?: string;
  lagBytes?: number;
  lagSeconds?: number;
  lagging?: boolean;
  [field: string]: unknown;
}

/** A shard as db-proxy /status lists it (src/db/shard/support.ts `status()`). */
interface ShardJson {
  index?: number;
  name?: string;
  statements?: Record<string, number>;
  servers?: DbServer[];
}

export interface ShardView {
  name: string;
  index: number | null;
  /** Statements per second sent to this shard (single-shard, scatter parts and all-shard writes). */
  rate: number | null;
  /** Totals since the proxy started, by kind (single, scatter, all). */
  statements: Record<string, number>;
  primary: string | null;
  replicas: number;
  /** Servers of this shard that are not healthy. */
  unhealthy: number;
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
  /** Per shard, when the proxy shards; null otherwise. */
  shards: ShardView[] | null;
  /** Sharded proxies: SELECTs without a shard key run on every shard, and statements refused. */
  scatterQueries: number | null;
  refusedStatements: number | null;
}

type Counts = Map<string, number>;
const LABELS = ['route', 'reason'] as const;

/** One poll of a db-proxy admin endpoint, with rates against the poll before. */
export class DbScrape {
  readonly servers: DbServer[];
  private readonly shards: ShardJson[] | null;
  private readonly extra: { scatterQueries: number | null; refusedStatements: number | null };
  private readonly totals = {
    route: new Map() as Counts,
    reason: new Map() as Counts,
    shard: new Map() as Counts,
  };
  private readonly rates = {
    route: new Map() as Counts,
    reason: new Map() as Counts,
    shard: new Map() as Counts,
  };

  constructor(
    status: unknown,
    samples: Sample[],
    readonly at: number,
    previous: DbScrape | undefined,
  ) {
    const s = (status ?? {}) as {
      servers?: unknown;
      shards?: unknown;
      scatterQueries?: unknown;
      refusedStatements?: unknown;
    };
    this.shards = Array.isArray(s.shards) ? (s.shards as ShardJson[]) : null;
    // Give each server its shard's name, so the page and the picture can group them.
    const shardOf = new Map<string, string>();
    this.shards?.forEach((shard, i) => {
      for (const server of shard.servers ?? [])
        shardOf.set(server.server, shard.name ?? String(shard.index ?? i));
    });
    const servers = Array.isArray(s.servers) ? (s.servers as DbServer[]) : [];
    this.servers = servers.map((server) =>
      shardOf.has(server.server) ? { ...server, shard: shardOf.get(server.server)! } : server,
    );
    const count = (v: unknown) => (typeof v === 'number' ? v : Array.isArray(v) ? v.length : null);
    this.extra = { scatterQueries: count(s.scatterQueries), refusedStatements: count(s.refusedStatements) };

    for (const sample of samples) {
      if (sample.name === 'scaleout_db_statements_total') {
        for (const label of LABELS) add(this.totals[label], sample.labels[label], sample.value);
      } else if (sample.name === 'scaleout_db_shard_statements_total') {
        add(this.totals.shard, sample.labels.shard, sample.value);
      }
    }
    const dt = previous ? (at - previous.at) / 1000 : 0;
    if (previous && dt > 0)
      for (const label of [...LABELS, 'shard'] as const)
        for (const [value, n] of this.totals[label])
          this.rates[label].set(value, counterDelta(previous.totals[label].get(value) ?? 0, n) / dt);
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
      shards: this.shards ? this.shards.map((shard, i) => this.shardView(shard, i)) : null,
      ...this.extra,
    };
  }

  private shardView(shard: ShardJson, i: number): ShardView {
    const name = shard.name ?? String(shard.index ?? i);
    const servers = shard.servers ?? [];
    const rate = this.rates.shard.get(name);
    return {
      name,
      index: shard.index ?? i,
      rate: rate === undefined ? null : round(rate),
      statements: shard.statements ?? {},
      primary: servers.find((s) => s.role === 'primary')?.server ?? null,
      replicas: servers.filter((s) => s.role === 'replica').length,
      unhealthy: servers.filter((s) => s.state !== 'healthy').length,
    };
  }
}

function add(counts: Counts, key: string | undefined, value: number): void {
  if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + value);
}

const round = (n: number) => Math.round(n * 100) / 100;
