// Prometheus metrics of the db-proxy. Counts taken on the hot path (statements, shard statements) are
// plain numbers handed to prom-client when /metrics is scraped.
import { Counter, Gauge, Registry } from 'prom-client';

const SHARD_STATEMENT_KINDS = ['single', 'scatter', 'all'] as const;
export type ShardStatementCounts = Record<(typeof SHARD_STATEMENT_KINDS)[number], number>;

export class DbMetrics {
  readonly registry = new Registry();
  /**
   * Statements by route and reason. Counted in a plain map on the hot path (prom-client hashes the
   * label set on every inc) and handed to prom-client when /metrics is scraped.
   */
  private readonly statementCounts = new Map<
    string,
    { route: string; reason: string; n: number; reported: number }
  >();
  private readonly statements = new Counter({
    name: 'scaleout_db_statements_total',
    help: 'Statements (or extended-protocol batches) routed, by route and reason',
    labelNames: ['route', 'reason'] as const,
    registers: [this.registry],
    collect: () => {
      for (const c of this.statementCounts.values()) {
        if (c.n > c.reported) this.statements.labels(c.route, c.reason).inc(c.n - c.reported);
        c.reported = c.n;
      }
    },
  });
  readonly retries = new Counter({
    name: 'scaleout_db_retries_total',
    help: 'Reads retried on another server before any row reached the client, by cause',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });
  readonly misrouted = new Counter({
    name: 'scaleout_db_misclassified_total',
    help: 'Statements a replica refused as writes (SQLSTATE 25006): classifier bugs, re-run on the primary',
    registers: [this.registry],
  });
  readonly bans = new Counter({
    name: 'scaleout_db_server_bans_total',
    help: 'Times a server was banned after a connection failure',
    labelNames: ['server'] as const,
    registers: [this.registry],
  });
  readonly clients = new Gauge({
    name: 'scaleout_db_client_connections',
    help: 'Open client connections',
    registers: [this.registry],
  });
  readonly clientErrors = new Counter({
    name: 'scaleout_db_client_protocol_errors_total',
    help: 'Client connections closed for bad input (framing, auth, startup)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly poolConnections = new Gauge({
    name: 'scaleout_db_pool_connections',
    help: 'Server connections per server and state',
    labelNames: ['server', 'role', 'state'] as const,
    registers: [this.registry],
  });
  readonly lagBytes = new Gauge({
    name: 'scaleout_db_replica_lag_bytes',
    help: 'Replay lag of each replica behind the primary, in bytes of WAL',
    labelNames: ['server'] as const,
    registers: [this.registry],
  });
  readonly lagSeconds = new Gauge({
    name: 'scaleout_db_replica_lag_seconds',
    help: 'Replay lag of each replica in seconds (0 when it has replayed everything)',
    labelNames: ['server'] as const,
    registers: [this.registry],
  });
  readonly serverUp = new Gauge({
    name: 'scaleout_db_server_eligible',
    help: '1 when the server may take traffic of its role (healthy, not banned, not lagging)',
    labelNames: ['server', 'role'] as const,
    registers: [this.registry],
  });

  /**
   * Sharding: statements sent to each shard, by kind (single shard, part of a scatter, part of an
   * all-shard write). The shard support counts them in plain numbers (see shardCounts) and they are
   * read when /metrics is scraped, as for `statements`.
   */
  private shardCounts: { names: readonly string[]; counts: readonly ShardStatementCounts[] } | undefined;
  private readonly shardStatements = new Counter({
    name: 'scaleout_db_shard_statements_total',
    help: 'Statements run on each shard, by kind: single (routed to one shard), scatter, all (reference write or DDL)',
    labelNames: ['shard', 'kind'] as const,
    registers: [this.registry],
    collect: () => {
      const s = this.shardCounts;
      if (!s) return;
      this.shardStatements.reset();
      s.counts.forEach((c, i) => {
        for (const kind of SHARD_STATEMENT_KINDS)
          if (c[kind] > 0) this.shardStatements.labels(s.names[i]!, kind).inc(c[kind]);
      });
    },
  });
  readonly scatterQueries = new Counter({
    name: 'scaleout_db_scatter_queries_total',
    help: 'SELECTs without a shard key sent to several shards and merged',
    registers: [this.registry],
  });
  readonly refusedStatements = new Counter({
    name: 'scaleout_db_refused_statements_total',
    help: 'Statements the shard router refused (never sent anywhere), by SQLSTATE',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly twoPhaseCommits = new Counter({
    name: 'scaleout_db_two_phase_commits_total',
    help: 'Multi-shard transactions finished with two-phase commit, by outcome (committed, rolled-back, recovered-commit, recovered-rollback)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  /** Reports these per-shard counts (kept and incremented by the caller) as scaleout_db_shard_statements_total. */
  shardCountsFrom(names: readonly string[], counts: readonly ShardStatementCounts[]): void {
    this.shardCounts = { names, counts };
  }

  statement(route: 'primary' | 'replica', reason: string): void {
    const key = route === 'primary' ? reason : 'r:' + reason;
    const c = this.statementCounts.get(key);
    if (c) c.n++;
    else this.statementCounts.set(key, { route, reason, n: 1, reported: 0 });
  }

  /** Statements counted so far for a route and reason (tests, /status). */
  statementCount(route: 'primary' | 'replica', reason: string): number {
    return this.statementCounts.get(route === 'primary' ? reason : 'r:' + reason)?.n ?? 0;
  }
}
