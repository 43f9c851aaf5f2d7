// Sharding inside the db-proxy session: deciding the shard of each unit of work (router.ts), and
// running the units that need several shards (a scatter SELECT, a reference-table write, DDL) by
// talking to each shard's server directly and answering the client with one merged reply.
import type { Logger } from 'pino';
import type { Backend } from '../backend.js';
import type { Cluster } from '../cluster.js';
import type { DatabaseConfig } from '../config.js';
import type { DbMetrics, ShardStatementCounts } from '../metrics.js';
import * as msg from '../protocol/messages.js';
import type { ServerConnection } from '../server-connection.js';
import { Analyzer } from './analyze.js';
import {
  bindComplete,
  closeComplete,
  describePortal,
  describeStatement,
  exchange,
  ExchangeError,
  execute,
  firstError,
  noData,
  parseComplete,
  parseMessage,
  simple,
  sync,
  unnamedBind,
  type ServerMessage,
} from './exchange.js';
import { ShardMap } from './map.js';
import {
  encodeDataRow,
  encodeRowDescription,
  mergeRows,
  MergeError,
  parseDataRow,
  parseRowDescription,
} from './merge.js';
import {
  paramText,
  parseBind,
  ShardRouter,
  type BoundParams,
  type SessionHints,
  type ShardDecision,
} from './router.js';
import { TwoPhase } from './two-phase.js';

/** What the shard code needs to know of a session's unit of work. */
export interface UnitView {
  readonly kind: 'query' | 'extended' | 'function';
  readonly sql?: string;
  readonly msgs: readonly { type: number; raw: Buffer; sql?: { text: string; rest: Buffer } }[];
  readonly syncs: number;
}

/** A reply for the client, or the error that stopped it. */
export interface FanoutResult {
  parts: Buffer[];
  /** Shards whose primary committed a write (their read-your-writes positions move). */
  wrote: number[];
}

export class ShardSupport {
  readonly map: ShardMap;
  readonly router: ShardRouter;
  readonly analyzer: Analyzer;
  readonly twoPhase: TwoPhase;
  /** Per shard: statements routed there alone, scatter parts, all-shard parts. */
  readonly counts: ShardStatementCounts[];
  scatterQueries = 0;
  refused = 0;
  private nextAny = 0;

  constructor(
    config: DatabaseConfig,
    readonly clusters: Cluster[],
    private readonly metrics: DbMetrics,
    private readonly log: Logger,
  ) {
    this.map = new ShardMap(config);
    this.router = new ShardRouter(this.map);
    this.analyzer = new Analyzer(this.map);
    this.counts = clusters.map(() => ({ single: 0, scatter: 0, all: 0 }));
    metrics.shardCountsFrom(this.map.names, this.counts);
    this.twoPhase = new TwoPhase(clusters, metrics, log);
  }

  /** A single statement of transaction control in a simple Query: what it does. */
  transactionKind(sql: string): 'begin' | 'commit' | 'rollback' | undefined {
    if (sql.length > 200) return undefined;
    const a = this.analyzer.analyze(sql);
    if (a.statements.length !== 1) return undefined;
    const k = a.statements[0]!.kind;
    return k === 'begin' || k === 'commit' || k === 'rollback' ? k : undefined;
  }

  /** The bound parameters and SQL of each Bind in an extended batch. */
  private binds(unit: UnitView): { sql: string; rest: Buffer; params: BoundParams; raw: Buffer }[] {
    const out: { sql: string; rest: Buffer; params: BoundParams; raw: Buffer }[] = [];
    for (const m of unit.msgs) {
      if (m.type === 0x42 && m.sql)
        out.push({ sql: m.sql.text, rest: m.sql.rest, params: parseBind(m.raw), raw: m.raw });
    }
    return out;
  }

  decide(unit: UnitView, hints: SessionHints): ShardDecision {
    const d = this.decideUnit(unit, hints);
    if (d.kind === 'refuse') {
      this.refused++;
      this.metrics.refusedStatements.labels(d.code).inc();
    }
    return d;
  }

  private decideUnit(unit: UnitView, hints: SessionHints): ShardDecision {
    if (unit.kind === 'query') return this.router.decide(unit.sql!, this.analyzer.analyze(unit.sql!), hints);
    if (unit.kind === 'function')
      return { kind: 'shard', shard: this.map.defaultShard, reason: 'function-call', any: true };
    const binds = this.binds(unit);
    if (binds.length === 0)
      return { kind: 'shard', shard: this.map.defaultShard, reason: 'no-statement', any: true };
    let result: ShardDecision | undefined;
    for (const b of binds) {
      const d = this.router.decide(b.sql, this.analyzer.analyze(b.sql), hints, b.params);
      if (d.kind === 'refuse') return d;
      if (binds.length > 1 && (d.kind === 'scatter' || d.kind === 'all'))
        return {
          kind: 'refuse',
          code: '0A000',
          message: 'scaleout: a statement that needs several shards must be alone in its batch (up to Sync)',
          hint: 'Send a Sync after it, or pin one shard.',
        };
      if (!result || (result.kind === 'shard' && result.any)) result = d;
      else if (d.kind === 'shard' && !d.any && result.kind === 'shard' && d.shard !== result.shard)
        return {
          kind: 'refuse',
          code: '0A000',
          message: `scaleout: this batch has statements for shards ${result.shard} and ${d.shard}`,
          hint: 'Send a Sync between statements for different shards.',
        };
    }
    return result!;
  }

  /** A shard for a read that any shard can answer (reference tables), in turn. */
  anyShard(): number {
    this.nextAny = (this.nextAny + 1) % this.map.count;
    return this.nextAny;
  }

  countSingle(shard: number): void {
    this.counts[shard]!.single++;
  }

  /** SET/RESET scaleout.shard and scaleout.shard_key; returns a problem, or undefined when done. */
  setHint(hints: SessionHints, name: 'shard' | 'shard_key', value: string | undefined): string | undefined {
    if (name === 'shard') {
      if (value === undefined || /^(auto|default)$/i.test(value)) {
        delete hints.shard;
        return undefined;
      }
      const shard = this.map.resolveShard(value);
      if (shard === undefined)
        return `invalid value for scaleout.shard: "${value}" (shards are 0…${this.map.count - 1}: ${this.map.names.join(', ')}; or auto)`;
      hints.shard = shard;
      return undefined;
    }
    if (value === undefined || value === '') {
      delete hints.shardKey;
      return undefined;
    }
    if (this.map.commonKeyType) {
      const r = this.router.shardOfText(this.map.commonKeyType, value);
      if (typeof r === 'string') return `invalid value for scaleout.shard_key: ${r}`;
    }
    hints.shardKey = value;
    return undefined;
  }

  // ---------------------------------------------------------------- running on several shards

  /** The messages that run the unit's statement (with `sql` instead of its own text) on one server. */
  canonical(unit: UnitView, sql: string | undefined): { parts: Buffer[]; params?: BoundParams } {
    if (unit.kind === 'query') return { parts: [msg.query(sql ?? unit.sql!)] };
    const b = this.binds(unit)[0]!;
    return {
      parts: [
        parseMessage(sql ?? b.sql, b.rest),
        describeStatement(),
        unnamedBind(b.raw),
        describePortal(),
        execute(),
        sync(),
      ],
      params: b.params,
    };
  }

  /** Builds the client's reply from one server's answer to canonical(), optionally with merged rows. */
  reply(
    unit: UnitView,
    answer: ServerMessage[],
    status: 'I' | 'T' | 'E',
    merged?: { fields: Buffer; rows: Buffer[]; tag: string },
  ): Buffer[] {
    const err = answer.find((m) => m.type === 0x45);
    const notices = answer.filter((m) => m.type === 0x4e).map((m) => m.raw);
    if (err) return [...notices, err.raw, msg.readyForQuery(status)];
    const rows = merged ? merged.rows : answer.filter((m) => m.type === 0x44).map((m) => m.raw);
    const done = answer.find((m) => m.type === 0x43 || m.type === 0x49);
    const tag = merged ? msg.commandComplete(merged.tag) : done!.raw;
    if (unit.kind === 'query') {
      const desc = merged ? merged.fields : answer.find((m) => m.type === 0x54)?.raw;
      return [...notices, ...(desc ? [desc] : []), ...rows, tag, msg.readyForQuery(status)];
    }
    // Extended: '1' 't' T|n (statement) '2' T|n (portal) rows C Z, answered message by message.
    const descs = answer.filter((m) => m.type === 0x54 || m.type === 0x6e);
    const paramDesc = answer.find((m) => m.type === 0x74)?.raw;
    const rowDesc = (i: number): Buffer => (merged ? merged.fields : (descs[i]?.raw ?? noData()));
    const out: Buffer[] = [...notices];
    for (const m of unit.msgs) {
      switch (m.type) {
        case 0x50:
          out.push(parseComplete());
          break;
        case 0x42:
          out.push(bindComplete());
          break;
        case 0x44:
          if (m.raw[5] === 0x53) out.push(paramDesc ?? noData(), rowDesc(0));
          else out.push(rowDesc(1));
          break;
        case 0x45:
          out.push(...rows, tag);
          break;
        case 0x43:
          out.push(closeComplete());
          break;
        case 0x53:
          out.push(msg.readyForQuery(status));
          break;
      }
    }
    return out;
  }

  async acquire(backend: Backend): Promise<ServerConnection> {
    try {
      const conn = await backend.pool.acquire();
      if (backend.role === 'replica') backend.target.outstanding++;
      return conn;
    } catch (err) {
      const shard = this.map.names[backend.shard]!;
      throw new ExchangeError(
        `scaleout: shard ${shard} (${backend.role} ${backend.id}) is unavailable: ${(err as Error).message}`,
        '08006',
      );
    }
  }

  release(backend: Backend, conn: ServerConnection): void {
    if (backend.role === 'replica') backend.target.outstanding--;
    if (!conn.closed && conn.status === 'I') backend.pool.release(conn);
    else backend.pool.discard(conn);
  }

  unavailable(err: unknown, status: 'I' | 'T' | 'E'): Buffer[] {
    const e = err instanceof ExchangeError ? err : new ExchangeError((err as Error).message, 'XX000');
    return [
      msg.errorResponse({
        code: e.code,
        message: e.message.startsWith('scaleout:') ? e.message : `scaleout: ${e.message}`,
        hint: 'Statements pinned to the other shards keep working.',
      }),
      msg.readyForQuery(status),
    ];
  }

  /** A SELECT without a shard key: run on every shard (`pick` chooses primary or replica), then merged. */
  async scatter(
    unit: UnitView,
    d: Extract<ShardDecision, { kind: 'scatter' }>,
    pick: (shard: number) => Backend,
    status: 'I' | 'T' | 'E',
  ): Promise<FanoutResult> {
    this.scatterQueries++;
    this.metrics.scatterQueries.inc();
    const { parts, params } = this.canonical(unit, d.plan.sql);
    let answers: ServerMessage[][];
    try {
      answers = await Promise.all(
        d.shards.map(async (shard) => {
          this.counts[shard]!.scatter++;
          const backend = pick(shard);
          const conn = await this.acquire(backend);
          try {
            return await exchange(conn, parts, 1);
          } finally {
            this.release(backend, conn);
          }
        }),
      );
    } catch (err) {
      return { parts: this.unavailable(err, status), wrote: [] };
    }
    const failed = answers.findIndex((a) => a.some((m) => m.type === 0x45));
    if (failed >= 0) return { parts: this.reply(unit, answers[failed]!, status), wrote: [] };
    const descMsg = answers[0]!.find((m) => m.type === 0x54);
    if (!descMsg) return { parts: this.reply(unit, answers[0]!, status), wrote: [] };
    try {
      const fields = parseRowDescription(descMsg.raw);
      const texts = params ? params.values.map((_, i) => paramText(params, i + 1) ?? null) : [];
      const merged = mergeRows(
        d.plan,
        fields,
        answers.map((a) => a.filter((m) => m.type === 0x44).map((m) => parseDataRow(m.raw))),
        texts,
      );
      return {
        parts: this.reply(unit, answers[0]!, status, {
          fields: encodeRowDescription(merged.fields),
          rows: merged.rows.map(encodeDataRow),
          tag: `SELECT ${merged.rows.length}`,
        }),
        wrote: [],
      };
    } catch (err) {
      if (!(err instanceof MergeError)) throw err;
      return {
        parts: [
          msg.errorResponse({
            code: '0A000',
            message: `scaleout: ${err.message}`,
            hint: 'Pin one shard with the shard key or /* scaleout:shard=N */.',
          }),
          msg.readyForQuery(status),
        ],
        wrote: [],
      };
    }
  }

  /**
   * A write every shard must make (reference table, DDL): on every primary in its own transaction,
   * committed only when every shard ran it (with two-phase commit when enabled; otherwise a failure
   * during the COMMIT round can leave shards apart, see docs/sharding.md).
   */
  async writeAll(
    unit: UnitView,
    d: Extract<ShardDecision, { kind: 'all' }>,
    status: 'I' | 'T' | 'E',
  ): Promise<FanoutResult> {
    const { parts } = this.canonical(unit, undefined);
    const shards = [...this.clusters.keys()];
    const conns: { backend: Backend; conn: ServerConnection }[] = [];
    const transactional = d.reason === 'reference-write';
    try {
      for (const shard of shards) {
        const backend = this.clusters[shard]!.primary;
        conns.push({ backend, conn: await this.acquire(backend) });
      }
    } catch (err) {
      for (const c of conns) this.release(c.backend, c.conn);
      return { parts: this.unavailable(err, status), wrote: [] };
    }
    const answers: ServerMessage[][] = [];
    try {
      await Promise.all(
        conns.map(async ({ conn }, i) => {
          this.counts[i]!.all++;
          if (transactional) await simple(conn, 'BEGIN');
          answers[i] = await exchange(conn, parts, 1);
        }),
      );
      const failed = answers.findIndex((a) => firstError(a));
      if (failed >= 0) {
        if (transactional)
          await Promise.all(conns.map(({ conn }) => simple(conn, 'ROLLBACK').catch(() => {})));
        const e = firstError(answers[failed]!)!;
        return {
          parts: [
            msg.errorResponse({
              code: e.get('C') ?? 'XX000',
              message: e.get('M') ?? 'error',
              detail: `on shard ${this.map.names[failed]}${transactional ? '; rolled back on every shard' : ''}`,
              hint: e.get('H'),
            }),
            msg.readyForQuery(status),
          ],
          wrote: transactional ? [] : shards,
        };
      }
      if (transactional) {
        if (this.map.twoPhaseCommit)
          await this.twoPhase.commit(conns.map((c, i) => ({ shard: i, conn: c.conn })));
        else for (const { conn } of conns) await simple(conn, 'COMMIT');
      }
      return { parts: this.reply(unit, answers[0]!, status), wrote: shards };
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'all-shard write failed');
      for (const { conn } of conns) conn.destroy();
      return { parts: this.unavailable(err, status), wrote: shards };
    } finally {
      for (const c of conns) this.release(c.backend, c.conn);
    }
  }

  /** The `shards` array of the admin /status answer. */
  status(): object[] {
    return this.clusters.map((c, i) => ({
      index: i,
      name: this.map.names[i],
      statements: this.counts[i],
      servers: c.status(),
    }));
  }
}
