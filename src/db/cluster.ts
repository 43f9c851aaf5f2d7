// One PostgreSQL cluster as the proxy sees it: the primary and its replicas, their pools, and the
// monitor that checks every replica's health and replay lag (and the primary's WAL position) every
// lag_check_interval_ms. Reads pick among eligible replicas with the shared balancer; read-your-writes
// asks for the primary's WAL position after a commit.
import type { Logger } from 'pino';
import { createBalancer } from '../balancing/index.js';
import type { AlgorithmName } from '../balancing/types.js';
import { TargetGroup } from '../registry/target-group.js';
import { Target } from '../registry/target.js';
import { Backend } from './backend.js';
import { clusterSpecs, endpointFromUrl, type ClusterSpec, type DatabaseConfig } from './config.js';
import { formatLsn, insertLsnToRecordEnd, parseLsn } from './lsn.js';
import type { DbMetrics } from './metrics.js';
import { ServerConnection } from './server-connection.js';

const APPLICATION_NAME = 'scaleout-db-proxy';

export type ReplicaRefusal = 'read-your-writes' | 'no-eligible-replica';

/** How long commits are collected before one primary WAL position query answers them all. */
const LSN_BATCH_WINDOW_MS = 5;

export class Cluster {
  readonly primary: Backend;
  readonly replicas: Backend[] = [];
  readonly group: TargetGroup;
  /** Server parameters (server_version, encodings…) announced to clients at startup. */
  serverParams = new Map<string, string>();
  private readonly byTarget = new Map<Target, Backend>();
  private readonly monitors = new Map<Backend, ServerConnection>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lsnWaiters: { resolve: (l: bigint) => void; reject: (e: Error) => void }[] = [];
  private lsnQueryRunning = false;
  private lsnBatchTimer: NodeJS.Timeout | undefined;

  readonly spec: ClusterSpec;

  constructor(
    readonly config: DatabaseConfig,
    private readonly metrics: DbMetrics,
    private readonly log: Logger,
    spec?: ClusterSpec,
  ) {
    this.spec = spec ?? clusterSpecs(config)[0]!;
    const thresholds = {
      healthyThreshold: config.healthy_threshold,
      unhealthyThreshold: config.unhealthy_threshold,
    };
    const poolOptions = {
      max: config.pool_size,
      connectTimeoutMs: config.connect_timeout_ms,
      acquireTimeoutMs: config.acquire_timeout_ms,
      applicationName: APPLICATION_NAME,
    };
    const primaryEndpoint = endpointFromUrl(this.spec.primary, 'primary');
    const primaryTarget = new Target(
      { id: primaryEndpoint.id, host: primaryEndpoint.host, port: primaryEndpoint.port, weight: 1 },
      thresholds,
    );
    this.primary = new Backend(primaryEndpoint, primaryTarget, poolOptions);
    this.group = new TargetGroup(
      'replicas',
      createBalancer<Target>(config.algorithm as AlgorithmName),
      thresholds,
    );
    for (const url of this.spec.replicas) {
      const ep = endpointFromUrl(url, 'replica');
      const target = this.group.register({ id: ep.id, host: ep.host, port: ep.port, weight: 1 });
      const backend = new Backend(ep, target, poolOptions);
      this.replicas.push(backend);
      this.byTarget.set(target, backend);
    }
    for (const b of this.backends) {
      b.pool.onConnectError = (err) => this.ban(b, err.message);
      b.pool.onConnected = (conn) => {
        if (this.serverParams.size === 0 || b.role === 'primary') this.serverParams = new Map(conn.params);
      };
    }
    this.group.on('transition', (t, tr) =>
      this.log.info(
        { server: t.id, from: tr.from, to: tr.to, reason: tr.reason, detail: tr.detail },
        'replica state changed',
      ),
    );
  }

  get backends(): Backend[] {
    return [this.primary, ...this.replicas];
  }

  /** Runs the first round of checks (so startup can report states), then keeps checking. */
  async start(): Promise<void> {
    await this.checkAll();
    const loop = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => void this.checkAll().finally(loop), this.config.lag_check_interval_ms);
    };
    loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.lsnBatchTimer) clearTimeout(this.lsnBatchTimer);
    for (const c of this.monitors.values()) c.discard();
    for (const b of this.backends) b.pool.close();
    for (const w of this.lsnWaiters.splice(0)) w.reject(new Error('proxy is shutting down'));
  }

  /**
   * A replica for a read that needs WAL replayed at least up to `minLsn`, or the reason there is none
   * (then the read goes to the primary). Candidates come from the shared balancer, in its order.
   */
  pickReplica(minLsn: bigint, exclude?: Backend): Backend | ReplicaRefusal {
    if (this.replicas.length === 0) return 'no-eligible-replica';
    const now = Date.now();
    const selection = this.group.select();
    let refusal: ReplicaRefusal = 'no-eligible-replica';
    for (let t = selection.next(); t; t = selection.next()) {
      const b = this.byTarget.get(t)!;
      if (b === exclude || !this.isEligible(b, now)) continue;
      if (b.lsn < minLsn) {
        refusal = 'read-your-writes';
        continue;
      }
      return b;
    }
    return refusal;
  }

  isEligible(b: Backend, now = Date.now()): boolean {
    if (b.role === 'primary') return !b.target.isEjected(now);
    return b.up && !b.lagging && b.target.health.state === 'healthy' && !b.target.isEjected(now);
  }

  /** Bans a server after a failed connection or a dropped one: exponential backoff, capped. */
  ban(b: Backend, detail: string): void {
    const now = Date.now();
    if (b.target.isEjected(now)) return;
    const ms = Math.min(this.config.ban_ms * 2 ** Math.min(b.consecutiveBans, 16), this.config.ban_max_ms);
    b.consecutiveBans++;
    b.target.ejectedUntil = now + ms;
    b.target.ejectionCount++;
    b.lastError = detail;
    this.metrics.bans.labels(b.id).inc();
    this.log.warn({ server: b.id, role: b.role, banMs: ms, detail }, 'server banned');
    if (b.role === 'replica') this.group.refresh(b.target);
    else b.target.refreshState(now);
  }

  /**
   * The primary's WAL insert position, read *after* this call: at or past every commit that finished
   * before it. Concurrent callers share one query (calls that arrive while a query runs wait for the next).
   */
  primaryLsnAfterNow(): Promise<bigint> {
    if (this.stopped) return Promise.reject(new Error('proxy is shutting down'));
    return new Promise((resolve, reject) => {
      this.lsnWaiters.push({ resolve, reject });
      this.scheduleLsnQuery();
    });
  }

  /**
   * Runs the pending position query now rather than at the end of its batching window (for a client
   * that is waiting for its position, e.g. SHOW scaleout.last_lsn).
   */
  hurryLsn(): void {
    if (!this.lsnBatchTimer) return;
    clearTimeout(this.lsnBatchTimer);
    this.lsnBatchTimer = undefined;
    void this.runLsnQuery();
  }

  /**
   * Commits are collected for LSN_BATCH_WINDOW_MS before one query answers them all: under a write
   * load a query per commit would cost the primary about as much as the commits themselves. The
   * position is read after the window, so it is still at or past every commit in the batch; meanwhile
   * those clients' reads go to the primary, which is always correct.
   */
  private scheduleLsnQuery(): void {
    if (this.lsnQueryRunning || this.lsnBatchTimer) return;
    this.lsnBatchTimer = setTimeout(() => {
      this.lsnBatchTimer = undefined;
      void this.runLsnQuery();
    }, LSN_BATCH_WINDOW_MS);
  }

  private async runLsnQuery(): Promise<void> {
    if (this.lsnQueryRunning) return;
    this.lsnQueryRunning = true;
    const waiters = this.lsnWaiters.splice(0);
    try {
      const lsn = await this.queryPrimaryLsn();
      for (const w of waiters) w.resolve(lsn);
    } catch (err) {
      for (const w of waiters) w.reject(err as Error);
    }
    this.lsnQueryRunning = false;
    // Commits that arrived while the query ran need a position read after them: the next batch.
    if (this.lsnWaiters.length > 0) this.scheduleLsnQuery();
  }

  private lsnConn: ServerConnection | undefined;
  private async queryPrimaryLsn(): Promise<bigint> {
    if (!this.lsnConn || this.lsnConn.closed) {
      this.lsnConn = await ServerConnection.connect(this.primary.endpoint, {
        timeoutMs: this.config.connect_timeout_ms,
        applicationName: APPLICATION_NAME + '-lsn',
      });
    }
    const rows = await this.lsnConn.query(
      'SELECT pg_current_wal_insert_lsn()',
      this.config.connect_timeout_ms,
    );
    const text = parseLsn(rows[0]?.[0]);
    if (text === undefined) throw new Error('primary returned no WAL position');
    const lsn = insertLsnToRecordEnd(text);
    if (lsn > this.primary.lsn) this.primary.lsn = lsn;
    return lsn;
  }

  private async monitorConnection(b: Backend): Promise<ServerConnection> {
    const existing = this.monitors.get(b);
    if (existing && !existing.closed) return existing;
    const conn = await ServerConnection.connect(b.endpoint, {
      timeoutMs: this.config.connect_timeout_ms,
      applicationName: APPLICATION_NAME + '-monitor',
    });
    this.monitors.set(b, conn);
    if (this.serverParams.size === 0 || b.role === 'primary') this.serverParams = new Map(conn.params);
    return conn;
  }

  private async checkAll(): Promise<void> {
    // Concurrently, so an unreachable primary (connect timeout) cannot stall the replicas' checks; the
    // replicas' byte lag then uses the primary position of the previous round at worst.
    await Promise.all([this.checkPrimary(), ...this.replicas.map((r) => this.checkReplica(r))]);
    // Bans expire with time: recompute the balancer's eligible set every round.
    if (this.replicas.length > 0) this.group.refresh();
    this.publishMetrics();
  }

  private async checkPrimary(): Promise<void> {
    const b = this.primary;
    const timeout = Math.max(this.config.lag_check_interval_ms * 5, 1000);
    try {
      const conn = await this.monitorConnection(b);
      const rows = await conn.query('SELECT pg_current_wal_insert_lsn(), pg_is_in_recovery()', timeout);
      const lsn = parseLsn(rows[0]?.[0]);
      if (lsn !== undefined && insertLsnToRecordEnd(lsn) > b.lsn) b.lsn = insertLsnToRecordEnd(lsn);
      this.setUp(b, rows[0]?.[1] === 'f', rows[0]?.[1] === 'f' ? undefined : 'primary is in recovery');
    } catch (err) {
      this.setUp(b, false, (err as Error).message);
    }
  }

  private async checkReplica(b: Backend): Promise<void> {
    const timeout = Math.max(this.config.lag_check_interval_ms * 5, 1000);
    try {
      const conn = await this.monitorConnection(b);
      const rows = await conn.query(
        'SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn(),' +
          ' extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp())',
        timeout,
      );
      const [inRecovery, replayText, receiveText, ageText] = rows[0] ?? [];
      if (inRecovery !== 't') {
        this.setUp(b, false, 'not in recovery (promoted?)');
        return;
      }
      const replay = parseLsn(replayText) ?? 0n;
      const receive = parseLsn(receiveText) ?? replay;
      b.lsn = replay;
      // Behind what, exactly: the primary's position if we know it, else what this replica received.
      const head = this.primary.up && this.primary.lsn > 0n ? this.primary.lsn : receive;
      const behind = head > replay ? head - replay : 0n;
      b.lagBytes = Number(behind);
      // The replay timestamp is that of the last replayed commit: it only means lag while WAL waits.
      b.lagSeconds = behind > 0n && ageText ? Math.max(0, Number(ageText)) : 0;
      const bytesLimit = this.config.max_lag_bytes;
      const msLimit = this.config.max_lag_ms;
      const over = (factor: number): boolean =>
        b.lagBytes > bytesLimit * factor || b.lagSeconds * 1000 > msLimit * factor;
      const wasLagging = b.lagging;
      // Hysteresis: out above the limit, back in only below half of it.
      b.lagging = wasLagging ? over(0.5) : over(1);
      if (b.lagging !== wasLagging) {
        this.log.warn(
          { server: b.id, lagBytes: b.lagBytes, lagSeconds: b.lagSeconds, replayLsn: formatLsn(replay) },
          b.lagging ? 'replica over max lag: no reads' : 'replica back under max lag',
        );
      }
      this.setUp(b, true);
    } catch (err) {
      this.setUp(b, false, (err as Error).message);
    }
  }

  private setUp(b: Backend, ok: boolean, detail?: string): void {
    b.up = ok;
    b.lastCheckAt = Date.now();
    if (ok) {
      b.lastError = undefined;
      b.consecutiveBans = 0;
    } else b.lastError = detail;
    const change = b.target.health.observe(
      ok
        ? { ok: true }
        : {
            ok: false,
            reason: detail?.includes('ECONNREFUSED')
              ? 'Target.ConnectionRefused'
              : 'Target.FailedHealthChecks',
            detail,
          },
    );
    if (change) {
      if (b.role === 'replica') this.group.refresh(b.target);
      else {
        b.target.refreshState(Date.now());
        this.log.info({ server: b.id, from: change.from, to: change.to, detail }, 'primary state changed');
      }
    }
  }

  private publishMetrics(): void {
    const now = Date.now();
    for (const b of this.backends) {
      this.metrics.serverUp.labels(b.id, b.role).set(this.isEligible(b, now) && b.up ? 1 : 0);
      this.metrics.poolConnections.labels(b.id, b.role, 'in_use').set(b.pool.inUse);
      this.metrics.poolConnections.labels(b.id, b.role, 'idle').set(b.pool.idleCount);
      if (b.role === 'replica') {
        this.metrics.lagBytes.labels(b.id).set(b.lagBytes);
        this.metrics.lagSeconds.labels(b.id).set(b.lagSeconds);
      }
    }
  }

  /** A snapshot for startup lines, the admin endpoint and EXPLAIN ROUTE. */
  status(): object[] {
    const now = Date.now();
    return this.backends.map((b) => ({
      ...(this.config.shards ? { shard: this.spec.name } : {}),
      server: b.id,
      role: b.role,
      state: b.target.state,
      reason: b.target.reason,
      eligible: this.isEligible(b, now),
      up: b.up,
      lsn: formatLsn(b.lsn),
      ...(b.role === 'replica' ? { lagBytes: b.lagBytes, lagSeconds: b.lagSeconds, lagging: b.lagging } : {}),
      bannedForMs: Math.max(0, b.target.ejectedUntil - now),
      pool: { inUse: b.pool.inUse, idle: b.pool.idleCount, waiting: b.pool.waiting },
      ...(b.lastError ? { lastError: b.lastError } : {}),
    }));
  }
}
