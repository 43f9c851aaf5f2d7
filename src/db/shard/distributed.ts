// A transaction that spans shards (two_phase_commit: true). It starts when a transaction on one shard
// reaches a statement for another: from then on the session hands every unit to this object, which
// keeps one primary connection per shard it touched (each with its own BEGIN), answers the client
// from them, and ends with PREPARE TRANSACTION / COMMIT PREPARED on all (two-phase.ts) or ROLLBACK.
import type { Backend } from '../backend.js';
import * as msg from '../protocol/messages.js';
import type { ServerConnection } from '../server-connection.js';
import { exchange, simple, type ServerMessage } from './exchange.js';
import {
  encodeDataRow,
  encodeRowDescription,
  mergeRows,
  parseDataRow,
  parseRowDescription,
} from './merge.js';
import { paramText, type ShardDecision } from './router.js';
import type { FanoutResult, ShardSupport, UnitView } from './support.js';

export class DistributedTx {
  private readonly conns = new Map<number, { backend: Backend; conn: ServerConnection }>();
  private readonly wrote = new Set<number>();
  /** An error ended the transaction on a shard: everything but COMMIT/ROLLBACK now fails. */
  private failed = false;
  /** COMMIT/ROLLBACK running: it must finish even if the client goes away (no half-done 2PC). */
  private finishing = false;

  constructor(private readonly sh: ShardSupport) {}

  /** Takes over the connection of the transaction begun on one shard. */
  adopt(shard: number, backend: Backend, conn: ServerConnection, wrote: boolean): void {
    conn.handler = undefined;
    this.conns.set(shard, { backend, conn });
    if (wrote) this.wrote.add(shard);
  }

  private async connFor(shard: number, begin: Buffer[]): Promise<ServerConnection> {
    const held = this.conns.get(shard);
    if (held) return held.conn;
    const backend = this.sh.clusters[shard]!.primary;
    const conn = await this.sh.acquire(backend);
    this.conns.set(shard, { backend, conn });
    for (const q of begin) await simple(conn, q.toString('utf8', 5, q.length - 1));
    return conn;
  }

  /** Runs one unit inside the transaction; `done` means the transaction is over. */
  async run(
    unit: UnitView,
    tx: 'commit' | 'rollback' | undefined,
    d: ShardDecision,
    begin: Buffer[],
  ): Promise<FanoutResult & { done: boolean }> {
    if (tx) return this.finish(tx);
    const status = (): 'T' | 'E' => (this.failed ? 'E' : 'T');
    if (this.failed) {
      return {
        parts: [
          msg.errorResponse({
            code: '25P02',
            message: 'current transaction is aborted, commands ignored until end of transaction block',
          }),
          msg.readyForQuery('E'),
        ],
        wrote: [],
        done: false,
      };
    }
    if (d.kind === 'refuse') {
      this.failed = true;
      return {
        parts: [
          msg.errorResponse({ code: d.code, message: d.message, hint: d.hint }),
          msg.readyForQuery('E'),
        ],
        wrote: [],
        done: false,
      };
    }
    const held = [...this.conns.keys()][0];
    const shards =
      d.kind === 'shard'
        ? [d.any && held !== undefined ? held : d.shard]
        : d.kind === 'scatter'
          ? d.shards
          : [...this.sh.clusters.keys()];
    const { parts, params } = this.sh.canonical(unit, d.kind === 'scatter' ? d.plan.sql : undefined);
    let answers: ServerMessage[][];
    try {
      answers = await Promise.all(
        shards.map(async (shard) => exchange(await this.connFor(shard, begin), parts, 1)),
      );
    } catch (err) {
      this.failed = true;
      return { parts: this.sh.unavailable(err, 'E'), wrote: [], done: false };
    }
    const failedAt = answers.findIndex((a) => a.some((m) => m.type === 0x45));
    if (failedAt >= 0) {
      this.failed = true;
      return { parts: this.sh.reply(unit, answers[failedAt]!, 'E'), wrote: [], done: false };
    }
    if (d.kind !== 'scatter') {
      if (d.kind === 'all' || !/^\s*select\b/i.test(unit.sql ?? ''))
        for (const s of shards) this.wrote.add(s);
      return { parts: this.sh.reply(unit, answers[0]!, status()), wrote: [], done: false };
    }
    const descMsg = answers[0]!.find((m) => m.type === 0x54);
    if (!descMsg) return { parts: this.sh.reply(unit, answers[0]!, status()), wrote: [], done: false };
    const merged = mergeRows(
      d.plan,
      parseRowDescription(descMsg.raw),
      answers.map((a) => a.filter((m) => m.type === 0x44).map((m) => parseDataRow(m.raw))),
      params ? params.values.map((_, i) => paramText(params, i + 1) ?? null) : [],
    );
    return {
      parts: this.sh.reply(unit, answers[0]!, status(), {
        fields: encodeRowDescription(merged.fields),
        rows: merged.rows.map(encodeDataRow),
        tag: `SELECT ${merged.rows.length}`,
      }),
      wrote: [],
      done: false,
    };
  }

  private async finish(tx: 'commit' | 'rollback'): Promise<FanoutResult & { done: true }> {
    const all = [...this.conns.entries()];
    const wrote = [...this.wrote];
    this.finishing = true;
    try {
      if (tx === 'commit' && !this.failed) {
        const writers = all.filter(([shard]) => this.wrote.has(shard));
        // Shards that only read just end their transaction; 2PC needs only the writers.
        for (const [shard, { conn }] of all) if (!this.wrote.has(shard)) await simple(conn, 'COMMIT');
        if (writers.length === 1) await simple(writers[0]![1].conn, 'COMMIT');
        else if (writers.length > 1)
          await this.sh.twoPhase.commit(writers.map(([shard, { conn }]) => ({ shard, conn })));
        return { parts: [msg.commandComplete('COMMIT'), msg.readyForQuery('I')], wrote, done: true };
      }
      await Promise.all(all.map(([, { conn }]) => simple(conn, 'ROLLBACK').catch(() => {})));
      return { parts: [msg.commandComplete('ROLLBACK'), msg.readyForQuery('I')], wrote: [], done: true };
    } catch (err) {
      return { parts: this.sh.unavailable(err, 'I'), wrote: [], done: true };
    } finally {
      this.finishing = false;
      this.releaseAll();
    }
  }

  /** Client gone or transaction over: connections still in a transaction are dropped (the server rolls back). */
  releaseAll(): void {
    if (this.finishing) return; // finish() releases them when it is done
    for (const { backend, conn } of this.conns.values()) this.sh.release(backend, conn);
    this.conns.clear();
  }
}
