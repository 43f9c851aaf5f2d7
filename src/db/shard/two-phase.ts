// Two-phase commit over shards, and recovery of what a crash left prepared.
//
// Commit: every participant runs PREPARE TRANSACTION; the coordinator (the lowest shard taking part)
// also inserts the transaction's id into scaleout_2pc_decisions inside its prepared transaction. Then
// the coordinator's COMMIT PREPARED goes first: that commit *is* the decision. The others follow.
//
// Recovery (at proxy start, then every 10 s): for every prepared transaction named scaleout_…, look
// on its coordinator shard. Decision row committed there → COMMIT PREPARED everywhere it is still
// prepared. No decision row (the coordinator never prepared, or is still prepared, i.e. undecided) and
// prepared for longer than two_phase_rollback_after_ms → ROLLBACK PREPARED everywhere (a younger one
// may belong to a commit still running, on this proxy or on another one). The client never got a COMMIT answer for either case, so both outcomes are allowed; what
// matters is that every shard ends the same way.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Cluster } from '../cluster.js';
import type { DbMetrics } from '../metrics.js';
import { ServerConnection } from '../server-connection.js';
import { ExchangeError, simple } from './exchange.js';

export const DECISIONS_TABLE = 'scaleout_2pc_decisions';
const GID = /^scaleout_([0-9a-f]+_\d+)_c(\d+)_s(\d+)$/;

export class TwoPhase {
  /** Distinguishes this proxy run's transaction ids from earlier runs'. */
  private readonly instance = randomBytes(4).toString('hex');
  private counter = 0;
  /**
   * Test hook: stop after this step of the next commit, as if the proxy crashed there. Set in-process by
   * tests, or for a real crash with SCALEOUT_TEST_CRASH_2PC_AFTER=prepare|coordinator-commit (the
   * process then kills itself with SIGKILL at that point).
   */
  crashAfter: 'prepare' | 'coordinator-commit' | undefined;
  private readonly crashForReal: boolean;

  constructor(
    private readonly clusters: Cluster[],
    private readonly metrics: DbMetrics,
    private readonly log: Logger,
  ) {
    const env = process.env.SCALEOUT_TEST_CRASH_2PC_AFTER;
    this.crashForReal = env === 'prepare' || env === 'coordinator-commit';
    if (this.crashForReal) this.crashAfter = env as 'prepare' | 'coordinator-commit';
  }

  /** Commits the open transactions on these connections atomically; throws if it rolled back instead. */
  async commit(participants: { shard: number; conn: ServerConnection }[]): Promise<void> {
    const sorted = [...participants].sort((a, b) => a.shard - b.shard);
    const coordinator = sorted[0]!.shard;
    const id = `${this.instance}_${++this.counter}`;
    const gid = (shard: number): string => `scaleout_${id}_c${coordinator}_s${shard}`;
    const prepared: typeof sorted = [];
    try {
      await simple(sorted[0]!.conn, `INSERT INTO ${DECISIONS_TABLE} (id) VALUES ('${id}')`);
      for (const p of sorted) {
        await simple(p.conn, `PREPARE TRANSACTION '${gid(p.shard)}'`);
        prepared.push(p);
      }
    } catch (err) {
      // Not decided: undo what was prepared; the others' transactions ended with the failed PREPARE.
      for (const p of sorted) {
        if (prepared.includes(p)) await simple(p.conn, `ROLLBACK PREPARED '${gid(p.shard)}'`).catch(() => {});
        else await simple(p.conn, 'ROLLBACK').catch(() => {});
      }
      this.metrics.twoPhaseCommits.labels('rolled-back').inc();
      throw new ExchangeError(
        `two-phase commit rolled back: ${(err as Error).message}`,
        (err as ExchangeError).code ?? '40000',
      );
    }
    if (this.crashAfter === 'prepare') return this.simulateCrash(sorted);
    await simple(sorted[0]!.conn, `COMMIT PREPARED '${gid(coordinator)}'`);
    if (this.crashAfter === 'coordinator-commit') return this.simulateCrash(sorted.slice(1));
    for (const p of sorted.slice(1)) {
      try {
        await simple(p.conn, `COMMIT PREPARED '${gid(p.shard)}'`);
      } catch (err) {
        // Decided: recovery (next start) finishes it; the client's commit stands.
        this.log.error(
          { gid: gid(p.shard), err: (err as Error).message },
          'COMMIT PREPARED failed; left for recovery',
        );
      }
    }
    this.metrics.twoPhaseCommits.labels('committed').inc();
  }

  private simulateCrash(left: { conn: ServerConnection }[]): never {
    this.crashAfter = undefined;
    if (this.crashForReal) process.kill(process.pid, 'SIGKILL');
    for (const p of left) p.conn.destroy();
    throw new ExchangeError('scaleout: simulated crash during two-phase commit (test hook)', '08006');
  }

  /** Creates the decisions table on every primary (two_phase_commit on); run at start. */
  async prepareTables(connectTimeoutMs: number): Promise<void> {
    await Promise.all(
      this.clusters.map((c) =>
        this.withPrimary(c, connectTimeoutMs, (conn) =>
          conn.query(
            `CREATE TABLE IF NOT EXISTS ${DECISIONS_TABLE} (id text PRIMARY KEY, decided_at timestamptz NOT NULL DEFAULT now())`,
          ),
        ),
      ),
    );
  }

  /** Finishes every scaleout transaction left prepared on any shard; returns what it did. */
  async recover(
    connectTimeoutMs: number,
    rollbackAfterMs: number,
  ): Promise<{ committed: string[]; rolledBack: string[] }> {
    const found: { shard: number; gid: string; id: string; coordinator: number; ageMs: number }[] = [];
    await Promise.all(
      this.clusters.map((c, shard) =>
        this.withPrimary(c, connectTimeoutMs, async (conn) => {
          const rows = await conn.query(
            `SELECT gid, extract(epoch from now() - prepared) * 1000 FROM pg_prepared_xacts
              WHERE gid LIKE 'scaleout\\_%' AND database = current_database()`,
          );
          for (const [gid, age] of rows) {
            const m = GID.exec(gid ?? '');
            if (m) found.push({ shard, gid: gid!, id: m[1]!, coordinator: Number(m[2]), ageMs: Number(age) });
          }
        }),
      ),
    );
    const decided = new Map<string, boolean>();
    for (const f of found) {
      if (decided.has(f.id)) continue;
      const coordinator = this.clusters[f.coordinator];
      if (!coordinator) continue;
      const rows = await this.withPrimary(coordinator, connectTimeoutMs, (conn) =>
        conn.query(`SELECT 1 FROM ${DECISIONS_TABLE} WHERE id = '${f.id}'`),
      );
      decided.set(f.id, rows.length > 0);
    }
    const result = { committed: [] as string[], rolledBack: [] as string[] };
    for (const f of found) {
      const commit = decided.get(f.id) ?? false;
      // Undecided and young: maybe a commit still running (here or on another proxy); not abandoned yet.
      if (!commit && f.ageMs < rollbackAfterMs) continue;
      await this.withPrimary(this.clusters[f.shard]!, connectTimeoutMs, (conn) =>
        conn.query(`${commit ? 'COMMIT' : 'ROLLBACK'} PREPARED '${f.gid}'`),
      );
      (commit ? result.committed : result.rolledBack).push(f.gid);
      this.metrics.twoPhaseCommits.labels(commit ? 'recovered-commit' : 'recovered-rollback').inc();
      this.log.warn(
        { gid: f.gid, outcome: commit ? 'commit' : 'rollback' },
        'recovered an in-doubt prepared transaction',
      );
    }
    return result;
  }

  private async withPrimary<T>(
    c: Cluster,
    timeoutMs: number,
    fn: (conn: ServerConnection) => Promise<T>,
  ): Promise<T> {
    const conn = await ServerConnection.connect(c.primary.endpoint, {
      timeoutMs,
      applicationName: 'scaleout-db-proxy-2pc',
    });
    try {
      return await fn(conn);
    } finally {
      conn.discard();
    }
  }
}
