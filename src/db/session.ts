// One client connection: startup and authentication, then the message loop that groups client messages
// into units (a simple Query, or an extended-protocol batch up to Sync), routes each unit, forwards it
// raw to a pooled server connection, and forwards the server's answer raw until ReadyForQuery. The
// life of a request through this file is described in docs/db-proxy.md.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { md5Response } from './auth/md5.js';
import { ScramServer, SCRAM_MECHANISM, type ScramVerifier } from './auth/scram.js';
import type { Backend } from './backend.js';
import type { Classification, Classifier } from './classifier.js';
import type { Cluster } from './cluster.js';
import type { DatabaseConfig } from './config.js';
import { formatLsn, parseLsn } from './lsn.js';
import type { DbMetrics } from './metrics.js';
import { Output, writeParts } from './output.js';
import { FramingError, MessageFramer } from './protocol/framer.js';
import {
  parseStartupPacket,
  startupPacketLength,
  validateFrontendMessage,
  BodyReader,
} from './protocol/frontend.js';
import * as msg from './protocol/messages.js';
import { errorCode, type ServerConnection, type ServerHandler } from './server-connection.js';
import type { ShardSupport } from './shard/support.js';
import { DistributedTx } from './shard/distributed.js';
import type { ShardDecision } from './shard/router.js';
import { formatShardLsns, parseShardLsns } from './shard/tokens.js';

/** What the proxy gives each session. */
export interface SessionContext {
  readonly config: DatabaseConfig;
  readonly cluster: Cluster;
  /** Every cluster, in shard order (one when unsharded). */
  readonly clusters: Cluster[];
  /** Set when the config has shards. */
  readonly sharding: ShardSupport | undefined;
  readonly classifier: Classifier;
  readonly metrics: DbMetrics;
  readonly log: Logger;
  readonly users: Map<string, { password: string; scram: ScramVerifier }>;
  readonly tls: SecureContext | undefined;
  registerCancelKey(session: Session): { pid: number; secret: number };
  unregisterCancelKey(pid: number): void;
  cancel(pid: number, secret: number): void;
}

/** A named prepared statement of this client, and the name it has on every server connection. */
interface Statement {
  readonly serverName: string;
  /** The statement text and the Parse bytes after it (parameter types), for sharded routing and fan-out. */
  readonly sql: string;
  readonly parseRest: Buffer;
  /** The client's Parse message rewritten to the server name. */
  readonly parse: Buffer;
  readonly cls: Classification;
}

interface ClientMessage {
  readonly type: number;
  readonly raw: Buffer;
  /** Resolved at arrival, so a later Close/Parse of the same name cannot change what this one meant. */
  stmt?: Statement;
  closing?: boolean;
  /** Parse and Bind: the SQL text (and parameter type bytes) of the statement they prepare or bind. */
  sql?: { text: string; rest: Buffer };
}

interface Unit {
  readonly kind: 'query' | 'extended' | 'function';
  readonly msgs: ClientMessage[];
  /** ReadyForQuery messages the unit will produce (0 for a batch ended by Flush). */
  syncs: number;
  cls: Classification;
  sql?: string;
  local?: LocalCommand;
  retries: number;
  /** Set after a replica refused it: run on the primary. */
  forcePrimary?: boolean;
  retryReason?: string;
  backend?: Backend;
  /** Sharded: where the unit goes (decided once, when it is first at the head of the queue). */
  decision?: ShardDecision;
  /** Sharded: the client's BEGIN, answered locally, sent in front of this unit on its shard. */
  beginPrefix?: Buffer[];
}

type LocalCommand =
  | { kind: 'explain-route'; sql: string }
  | { kind: 'set'; name: string; value: string | undefined }
  | { kind: 'show'; name: string };

type Expect =
  | { k: 'parse'; swallow: boolean; name?: string }
  | { k: 'close'; swallow: boolean }
  | { k: 'sync' }
  /** The answer to a deferred BEGIN sent in front of a unit: swallowed. */
  | { k: 'begin' };

const NEUTRAL: Classification = { readOnly: true, reason: 'read-only', write: false, sessionState: false };
const FUNCTION_CALL: Classification = {
  readOnly: false,
  reason: 'volatile-function',
  detail: 'FunctionCall message',
  write: true,
  sessionState: false,
};

/** Errors from a replica that mean "try this read elsewhere": not in recovery-safe mode, shutting down, overloaded, conflict. */
const RETRYABLE_ON_REPLICA = new Set([
  '25006',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '40001',
  '08006',
  '08003',
]);
const MAX_RETRIES = 2;

const LOCAL_EXPLAIN = /^\s*explain\s+route\s+([\s\S]+?)\s*;?\s*$/i;
const LOCAL_SET = /^\s*(set|reset|show)\s+scaleout\.(\w+)\s*(?:(?:=|\bto\b)\s*([\s\S]*?))?\s*;?\s*$/i;

let serverNameCounter = 0;
const serverNames = new Map<string, string>();
/** One server-side name per distinct (query, parameter types): every client's copy shares it. */
function serverStatementName(key: string): string {
  let name = serverNames.get(key);
  if (!name) {
    name = `scaleout_s${++serverNameCounter}`;
    serverNames.set(key, name);
  }
  return name;
}

/** Replaces the statement name in a Parse, Bind, Describe or Close message. */
function renameStatement(raw: Buffer, type: number, newName: string): Buffer {
  const name = Buffer.from(newName + '\0');
  if (type === 0x50 || type === 0x44 || type === 0x43) {
    // P: name first; D/C: kind byte then name
    const at = type === 0x50 ? 5 : 6;
    const nul = raw.indexOf(0, at);
    const out = Buffer.allocUnsafe(at + name.length + raw.length - nul - 1);
    raw.copy(out, 0, 0, at);
    name.copy(out, at);
    raw.copy(out, at + name.length, nul + 1);
    out.writeInt32BE(out.length - 1, 1);
    return out;
  }
  // B: portal name, then statement name
  const portalEnd = raw.indexOf(0, 5) + 1;
  const nul = raw.indexOf(0, portalEnd);
  const out = Buffer.allocUnsafe(portalEnd + name.length + raw.length - nul - 1);
  raw.copy(out, 0, 0, portalEnd);
  name.copy(out, portalEnd);
  raw.copy(out, portalEnd + name.length, nul + 1);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

export class Session implements ServerHandler {
  private phase: 'startup' | 'auth' | 'ready' | 'closed' = 'startup';
  private startupBuf: Buffer = Buffer.alloc(0);
  private readonly framer: MessageFramer;
  private user = '';
  private authStep: ((raw: Buffer) => void) | undefined;
  private cancelKey: { pid: number; secret: number } | undefined;

  private readonly queue: Unit[] = [];
  private building: Unit | undefined;
  /** Units sent to `conn` whose ReadyForQuery has not come back yet. */
  private readonly inflight: Unit[] = [];
  private expect: Expect[] = [];
  private conn: ServerConnection | undefined;
  private backend: Backend | undefined;
  /** Session pooling: the connections this client keeps, one per server it used. */
  private readonly held = new Map<Backend, ServerConnection>();
  private pinned = false;
  private acquiring = false;
  private unsynced = false;
  private copyIn = false;
  private txStatus: 'I' | 'T' | 'E' = 'I';
  private txWrote = false;
  private forcedPrimary = false;
  /** Read-your-writes: reads need a replica that replayed at least this far. */
  private readonly minLsns: bigint[] = [];
  private lsnPending = 0;
  /** Per shard: WAL position reads still running, and until when reads stay on the primary after one failed. */
  private readonly lsnPendingOn: number[] = [];
  private readonly lsnFailedUntil: number[] = [];
  private announceLsn = false;
  private readonly statements = new Map<string, Statement>();
  private unnamedCls: Classification = NEUTRAL;
  private unnamedSql: { text: string; rest: Buffer } | undefined;
  /** The last unnamed Parse seen (a copy), so a repeat of it skips decoding and classification. */
  private lastUnnamedParse:
    { raw: Buffer; cls: Classification; sql: { text: string; rest: Buffer } } | undefined;
  /** Sharded: a BEGIN answered locally, not yet sent anywhere (it goes in front of the next statement). */
  private pendingBegin: { raws: Buffer[]; cls: Classification } | undefined;
  /** Sharded: a scatter, all-shard write or 2PC step running; nothing else is sent meanwhile. */
  private fanoutRunning = false;
  /** Sharded with two_phase_commit: the transaction spans shards; every unit goes through it. */
  private dtx: DistributedTx | undefined;
  /** The BEGIN the current transaction started with (repeated on each shard a multi-shard transaction adds). */
  private beginRaw: Buffer[] | undefined;
  /** Sharded: SET scaleout.shard / scaleout.shard_key. */
  readonly shardHints: { shard?: number; shardKey?: string } = {};
  private readonly out = new Output();
  /** Replica answer held back until it is clear no retry is needed (no row has reached the client). */
  private holding: { buf: Buffer; start: number; end: number }[] | undefined;
  private retryCause: string | undefined;
  private pumping = false;

  /**
   * `dataEvents`: the socket's reads come as 'data' events; otherwise the owner passes them to
   * receive() (a socket read through net's `onread`).
   */
  constructor(
    private socket: Socket,
    private readonly ctx: SessionContext,
    dataEvents = true,
  ) {
    this.framer = new MessageFramer(ctx.config.max_message_bytes);
    this.attachSocket(socket, dataEvents);
    ctx.metrics.clients.inc();
  }

  private attachSocket(socket: Socket, dataEvents: boolean): void {
    this.socket = socket;
    socket.setNoDelay(true);
    if (dataEvents) socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => {
      // The client half-closed: a message it started but never finished is an error it should see.
      const pending = this.phase === 'startup' ? this.startupBuf.length : this.framer.pendingBytes;
      if (pending > 0) {
        this.ctx.metrics.clientErrors.labels('protocol').inc();
        this.fatal('08P01', `truncated message: the connection ended ${pending} bytes into a message`);
      } else this.close();
    });
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
    socket.on('drain', () => {
      for (const c of this.held.values()) c.socket.resume();
      this.conn?.socket.resume();
    });
  }

  // ---------------------------------------------------------------- client input

  /** Bytes from the client. */
  receive(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    try {
      if (this.phase === 'startup') {
        this.startupBuf = this.startupBuf.length ? Buffer.concat([this.startupBuf, chunk]) : chunk;
        const len = startupPacketLength(this.startupBuf);
        if (len === undefined || this.startupBuf.length < len) return;
        const pkt = this.startupBuf.subarray(0, len);
        const rest = this.startupBuf.subarray(len);
        this.startupBuf = Buffer.alloc(0);
        this.onStartupPacket(pkt);
        if (rest.length && (this.phase as string) !== 'closed') this.receive(rest);
        return;
      }
      this.framer.push(chunk, this.onClientMessage);
      if (this.phase === 'ready') this.pump();
    } catch (err) {
      if (err instanceof FramingError) {
        this.ctx.metrics.clientErrors.labels('protocol').inc();
        this.ctx.log.info({ client: this.socket.remoteAddress, error: err.message }, 'client protocol error');
        this.fatal(err.code, err.message);
      } else {
        this.ctx.log.error({ err }, 'session error');
        this.fatal('XX000', `internal proxy error: ${(err as Error).message}`);
      }
    }
  }

  private onStartupPacket(pkt: Buffer): void {
    const startup = parseStartupPacket(pkt);
    switch (startup.kind) {
      case 'ssl':
        if (this.ctx.tls && !(this.socket instanceof TLSSocket)) {
          this.socket.removeAllListeners('data');
          this.socket.write('S');
          const tls = new TLSSocket(this.socket, { isServer: true, secureContext: this.ctx.tls });
          this.socket.removeAllListeners('close');
          this.socket.removeAllListeners('error');
          this.socket.removeAllListeners('drain');
          this.attachSocket(tls, true);
        } else {
          this.socket.write('N');
        }
        return;
      case 'gssenc':
        this.socket.write('N');
        return;
      case 'cancel':
        this.ctx.cancel(startup.pid, startup.secret);
        this.close(false);
        this.socket.end();
        return;
      case 'startup':
        return this.authenticate(startup.params);
    }
  }

  private authenticate(params: Map<string, string>): void {
    this.user = params.get('user')!;
    const database = params.get('database') || this.user;
    const expectedDb = this.ctx.cluster.primary.endpoint.database;
    if (database !== expectedDb) {
      this.ctx.metrics.clientErrors.labels('startup').inc();
      return this.fatal('3D000', `database "${database}" does not exist (this proxy serves "${expectedDb}")`);
    }
    const method = this.ctx.config.auth;
    const entry = this.ctx.users.get(this.user);
    if (method !== 'trust' || this.ctx.users.size > 0) {
      if (!entry) return this.authFailed();
    }
    this.phase = 'auth';
    if (method === 'trust') return this.authenticated();
    if (method === 'md5') {
      const salt = randomBytes(4);
      this.authStep = (raw) => {
        const given = raw.toString('utf8', 5, raw.length - 1);
        const expected = md5Response(this.user, entry!.password, salt);
        const ok =
          given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
        if (ok) this.authenticated();
        else this.authFailed();
      };
      this.socket.write(msg.authenticationMd5(salt));
      return;
    }
    const scram = new ScramServer(entry!.scram);
    this.authStep = (raw) => {
      const r = new BodyReader(raw, 5, raw.length);
      const mechanism = r.cstring();
      if (mechanism !== SCRAM_MECHANISM)
        throw new FramingError(`unsupported SASL mechanism "${mechanism}"`, '28000');
      const len = r.int32();
      r.skip(len);
      r.done();
      let serverFirst: string;
      try {
        serverFirst = scram.first(raw.toString('utf8', raw.length - len));
      } catch (err) {
        throw new FramingError((err as Error).message, '08P01');
      }
      this.authStep = (raw2) => {
        let final: string | undefined;
        try {
          final = scram.final(raw2.toString('utf8', 5));
        } catch (err) {
          throw new FramingError((err as Error).message, '08P01');
        }
        if (!final) return this.authFailed();
        this.socket.write(msg.authenticationSaslFinal(final));
        this.authenticated();
      };
      this.socket.write(msg.authenticationSaslContinue(serverFirst));
    };
    this.socket.write(msg.authenticationSasl([SCRAM_MECHANISM]));
  }

  private authFailed(): void {
    this.ctx.metrics.clientErrors.labels('auth').inc();
    this.ctx.log.info({ user: this.user, client: this.socket.remoteAddress }, 'client authentication failed');
    const what = this.ctx.config.auth === 'trust' ? 'unknown user' : 'password authentication failed';
    this.fatal('28P01', `${what} for user "${this.user}"`);
  }

  private authenticated(): void {
    this.authStep = undefined;
    this.phase = 'ready';
    this.cancelKey = this.ctx.registerCancelKey(this);
    const parts: Buffer[] = [msg.authenticationOk()];
    for (const [k, v] of this.ctx.cluster.serverParams) {
      if (k !== 'application_name') parts.push(msg.parameterStatus(k, v));
    }
    parts.push(msg.backendKeyData(this.cancelKey.pid, this.cancelKey.secret));
    parts.push(msg.readyForQuery('I'));
    this.socket.write(Buffer.concat(parts));
  }

  private readonly onClientMessage = (type: number, buf: Buffer, start: number, end: number): void => {
    if (this.phase === 'auth') {
      if (type !== 0x70 || !this.authStep) throw new FramingError('expected a password message', '08P01');
      this.authStep(buf.subarray(start, end));
      return;
    }
    if (this.phase !== 'ready') return;
    validateFrontendMessage(type, buf, start, end);
    const raw = buf.subarray(start, end);
    switch (type) {
      case 0x51: {
        // Q
        this.endBatchWithoutSync();
        const sql = raw.toString('utf8', 5, raw.length - 1);
        const local = this.localCommand(sql);
        const cls = local ? NEUTRAL : this.ctx.classifier.classify(sql);
        this.queue.push({ kind: 'query', msgs: [{ type, raw }], syncs: 1, cls, sql, local, retries: 0 });
        return;
      }
      case 0x50: {
        // P
        const last = this.lastUnnamedParse;
        if (last && raw[5] === 0 && raw.equals(last.raw)) {
          // The same unnamed Parse as last time (drivers send one per execution): same classification.
          this.unnamedCls = last.cls;
          this.unnamedSql = last.sql;
          this.batch(last.cls).msgs.push({ type, raw, sql: last.sql });
          return;
        }
        const r = new BodyReader(raw, 5, raw.length);
        const name = r.cstring();
        const sql = r.cstring();
        const cls = this.ctx.classifier.classify(sql);
        const rest = raw.subarray(r.pos);
        const m: ClientMessage = { type, raw, sql: { text: sql, rest } };
        if (name === '') {
          this.unnamedCls = cls;
          this.unnamedSql = m.sql;
          this.lastUnnamedParse = { raw: Buffer.from(raw), cls, sql: { text: sql, rest: Buffer.from(rest) } };
        } else {
          const key = sql + '\0' + raw.toString('latin1', r.pos);
          const stmt: Statement = {
            serverName: serverStatementName(key),
            parse: Buffer.alloc(0),
            cls,
            sql,
            parseRest: rest,
          };
          (stmt as { parse: Buffer }).parse = renameStatement(raw, type, stmt.serverName);
          this.statements.set(name, stmt);
          m.stmt = stmt;
        }
        this.batch(cls).msgs.push(m);
        return;
      }
      case 0x42: {
        // B
        const portalEnd = raw[5] === 0 ? 5 : raw.indexOf(0, 5);
        // The unnamed statement (what drivers mostly bind) needs no decoding.
        const name =
          raw[portalEnd + 1] === 0 ? '' : raw.toString('utf8', portalEnd + 1, raw.indexOf(0, portalEnd + 1));
        const stmt = name ? this.statements.get(name) : undefined;
        const sql = stmt ? { text: stmt.sql, rest: stmt.parseRest } : name ? undefined : this.unnamedSql;
        this.batch(stmt ? stmt.cls : name ? NEUTRAL : this.unnamedCls).msgs.push({ type, raw, stmt, sql });
        return;
      }
      case 0x44:
      case 0x43: {
        // D, C
        const isStatement = raw[5] === 0x53;
        const name = raw.length === 7 ? '' : raw.toString('utf8', 6, raw.length - 1);
        const stmt = isStatement && name ? this.statements.get(name) : undefined;
        if (type === 0x43 && stmt) this.statements.delete(name);
        this.batch(stmt && type === 0x44 ? stmt.cls : undefined).msgs.push({
          type,
          raw,
          stmt,
          closing: type === 0x43,
        });
        return;
      }
      case 0x45: // E
        this.batch().msgs.push({ type, raw });
        return;
      case 0x53: {
        // S
        const unit = this.batch();
        unit.msgs.push({ type, raw });
        unit.syncs = 1;
        this.queue.push(unit);
        this.building = undefined;
        return;
      }
      case 0x48: // H Flush: send what we have; the answer comes without ReadyForQuery
        this.batch().msgs.push({ type, raw });
        this.endBatchWithoutSync();
        return;
      case 0x46: // F FunctionCall
        this.endBatchWithoutSync();
        this.queue.push({
          kind: 'function',
          msgs: [{ type, raw }],
          syncs: 1,
          cls: FUNCTION_CALL,
          retries: 0,
        });
        return;
      case 0x64: // d, c, f: COPY data goes straight after the COPY statement
      case 0x63:
      case 0x66: {
        const last = this.queue[this.queue.length - 1];
        if (last) last.msgs.push({ type, raw });
        else if (this.conn) this.conn.write(raw);
        return;
      }
      case 0x58: // X
        this.close();
        return;
      case 0x70:
        throw new FramingError('unexpected password message', '08P01');
    }
  };

  private batch(cls?: Classification): Unit {
    let unit = this.building;
    if (!unit) {
      unit = { kind: 'extended', msgs: [], syncs: 0, cls: NEUTRAL, retries: 0 };
      this.building = unit;
    }
    if (cls) unit.cls = combine(unit.cls, cls);
    return unit;
  }

  private endBatchWithoutSync(): void {
    if (this.building) {
      this.queue.push(this.building);
      this.building = undefined;
    }
  }

  // ---------------------------------------------------------------- routing and dispatch

  /** Sends queued units while they can go: to the attached connection, or to a newly routed one. */
  private pump(): void {
    if (this.pumping || this.phase !== 'ready') return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.acquiring && this.phase === 'ready' && !this.fanoutRunning) {
        const unit = this.queue[0]!;
        if (unit.local) {
          if (this.lsnPending > 0) for (const c of this.ctx.clusters) c.hurryLsn(); // SHOW waits for it
          if (this.inflight.length > 0 || this.lsnPending > 0) return;
          this.queue.shift();
          this.runLocal(unit.local);
          continue;
        }
        if (this.dtx) {
          if (this.inflight.length > 0) return;
          this.queue.shift();
          void this.runDistributed(unit);
          return;
        }
        if (this.conn) {
          if (this.inflight.length > 0 && !this.fitsAttached(unit)) return;
          if (this.inflight.length === 0) this.maybeDetach();
        }
        let cluster = this.ctx.cluster;
        if (this.ctx.sharding) {
          const step = this.shardStep(unit);
          if (step === 'wait') return;
          if (step === 'done') continue;
          cluster = step;
        }
        if (!this.conn) {
          const choice = this.route(unit, cluster);
          this.ctx.metrics.statement(choice.backend.role, choice.reason);
          unit.backend = choice.backend;
          const conn = this.takeConnection(choice.backend);
          if (!conn) return; // acquiring asynchronously; pump() runs again when it arrives
          this.attach(conn, choice.backend);
        } else {
          this.ctx.metrics.statement(this.backend!.role, this.pinned ? 'session-pinned' : 'in-transaction');
          unit.backend = this.backend;
        }
        this.queue.shift();
        this.send(unit);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The status the client should see: a locally answered BEGIN counts as a transaction. */
  private clientTxStatus(): 'I' | 'T' | 'E' {
    return this.pendingBegin ? 'T' : this.txStatus;
  }

  /**
   * Sharded: decides where the unit at the head of the queue goes. Returns its cluster, or 'done' when
   * it was answered here (refusal, deferred BEGIN/COMMIT), or 'wait' (earlier answers still coming, or
   * a multi-shard run started).
   */
  private shardStep(unit: Unit): Cluster | 'wait' | 'done' {
    const sh = this.ctx.sharding!;
    if (!this.conn && unit.kind === 'query' && !unit.decision) {
      const tx = sh.transactionKind(unit.sql!);
      if (
        this.pendingBegin &&
        this.inflight.length === 0 &&
        unit.cls.reason === 'transaction-control' &&
        unit.cls.detail === 'SET LOCAL / SET TRANSACTION'
      ) {
        // SET TRANSACTION / SET LOCAL right after BEGIN: goes along with the BEGIN, wherever it goes.
        this.queue.shift();
        this.pendingBegin.raws.push(Buffer.from(unit.msgs[0]!.raw));
        this.socket.write(Buffer.concat([msg.commandComplete('SET'), msg.readyForQuery('T')]));
        return 'done';
      }
      if ((tx === 'begin' && !this.pendingBegin) || (tx && tx !== 'begin' && this.pendingBegin)) {
        // BEGIN waits for the first statement that names its shard; COMMIT/ROLLBACK of a transaction
        // that never ran anything ends here.
        if (this.inflight.length > 0) return 'wait';
        this.queue.shift();
        const tag = tx === 'begin' ? 'BEGIN' : tx === 'commit' ? 'COMMIT' : 'ROLLBACK';
        this.pendingBegin =
          tx === 'begin' ? { raws: [Buffer.from(unit.msgs[0]!.raw)], cls: unit.cls } : undefined;
        this.beginRaw = this.pendingBegin?.raws;
        this.socket.write(
          Buffer.concat([msg.commandComplete(tag), msg.readyForQuery(this.clientTxStatus())]),
        );
        return 'done';
      }
    }
    const fresh = !unit.decision;
    unit.decision ??= sh.decide(unit, this.shardHints);
    const d = unit.decision;
    if (this.conn) {
      if (d.kind === 'shard' && (d.any || d.shard === this.backend!.shard)) {
        if (fresh) sh.countSingle(this.backend!.shard);
        return this.ctx.cluster;
      }
      if (this.inflight.length > 0) return 'wait';
      this.queue.shift();
      if (
        sh.map.twoPhaseCommit &&
        d.kind !== 'refuse' &&
        this.txStatus === 'T' &&
        this.backend!.role === 'primary' &&
        !this.pinned &&
        !this.unsynced &&
        !this.copyIn
      ) {
        // The transaction reaches a second shard: it becomes a two-phase one.
        this.dtx = new DistributedTx(sh);
        this.dtx.adopt(this.backend!.shard, this.backend!, this.conn, this.txWrote);
        this.held.delete(this.backend!);
        this.txWrote = false;
        this.conn = undefined;
        this.backend = undefined;
        void this.runDistributed(unit);
        return 'wait';
      }
      this.refuseAttached(unit, d);
      return 'done';
    }
    if (d.kind === 'refuse') {
      if (this.inflight.length > 0) return 'wait';
      this.queue.shift();
      this.answerLocally(unit, [msg.errorResponse({ code: d.code, message: d.message, hint: d.hint })]);
      return 'done';
    }
    if (d.kind === 'scatter' || d.kind === 'all') {
      if (this.inflight.length > 0) return 'wait';
      if (this.pendingBegin && sh.map.twoPhaseCommit) {
        this.pendingBegin = undefined;
        this.queue.shift();
        this.dtx = new DistributedTx(sh);
        void this.runDistributed(unit);
        return 'wait';
      }
      if (d.kind === 'all' && this.pendingBegin) {
        this.queue.shift();
        const hint = 'Run it outside the transaction.';
        this.answerLocally(unit, [
          msg.errorResponse({
            code: '0A000',
            message: 'scaleout: a write on every shard (reference table or DDL) cannot join a transaction',
            hint,
          }),
        ]);
        return 'done';
      }
      this.queue.shift();
      void this.runFanout(unit, d);
      return 'wait';
    }
    const shard = d.any && d.reason === 'reference-read' ? sh.anyShard() : d.shard;
    if (fresh) sh.countSingle(shard);
    if (this.pendingBegin) {
      const begin = this.pendingBegin;
      this.pendingBegin = undefined;
      unit.beginPrefix = begin.raws;
      unit.cls = {
        ...begin.cls,
        write: begin.cls.write || unit.cls.write,
        sessionState: unit.cls.sessionState,
      };
    }
    return this.ctx.clusters[shard]!;
  }

  /** Answers a unit without sending it anywhere: the given messages, then ReadyForQuery per Sync. */
  private answerLocally(unit: Unit, parts: Buffer[]): void {
    for (let i = 0; i < unit.syncs; i++) parts.push(msg.readyForQuery(this.clientTxStatus()));
    this.socket.write(Buffer.concat(parts));
  }

  /**
   * A unit that needs another shard than the one this client is tied to. Inside a transaction the
   * refusal is raised *on the server*, so the transaction is aborted exactly as PostgreSQL aborts one
   * after an error (a later COMMIT rolls back).
   */
  private refuseAttached(unit: Unit, d: ShardDecision): void {
    const here = this.ctx.sharding!.map.names[this.backend!.shard];
    const why =
      d.kind === 'refuse'
        ? { code: d.code, message: d.message, hint: d.hint }
        : {
            code: '0A000',
            message:
              this.txStatus !== 'I'
                ? `scaleout: this transaction runs on shard ${here}; the statement needs ${d.kind === 'shard' ? `shard ${this.ctx.sharding!.map.names[d.shard]}` : 'several shards'}`
                : `scaleout: this session is pinned to shard ${here} by session state; the statement needs ${d.kind === 'shard' ? `shard ${this.ctx.sharding!.map.names[d.shard]}` : 'several shards'}`,
            hint:
              this.txStatus !== 'I'
                ? 'Keep each transaction on one shard (or enable two_phase_commit), or commit first.'
                : 'Avoid SET/PREPARE/temp tables on sharded sessions, or reconnect.',
          };
    if (d.kind === 'refuse' || this.txStatus === 'I' || unit.syncs !== 1) {
      this.answerLocally(unit, [msg.errorResponse(why)]);
      return;
    }
    const q = (t: string): string => t.replace(/'/g, "''");
    const sql =
      `DO $scaleout$BEGIN RAISE EXCEPTION USING ERRCODE = '${q(why.code)}', MESSAGE = '${q(why.message)}'` +
      `, HINT = '${q(why.hint)}'; END$scaleout$`;
    this.send({
      kind: 'query',
      msgs: [{ type: 0x51, raw: msg.query(sql) }],
      syncs: 1,
      cls: NEUTRAL,
      retries: 0,
    });
  }

  /** Runs one unit of a multi-shard transaction (see shard/distributed.ts). */
  private runDistributed(unit: Unit): Promise<void> {
    return this.runMultiShard(unit, 'multi-shard transaction step failed', async () => {
      const sh = this.ctx.sharding!;
      const tx = unit.kind === 'query' ? sh.transactionKind(unit.sql!) : undefined;
      const end = tx === 'commit' || tx === 'rollback' ? tx : undefined;
      const d = end ? undefined : (unit.decision ?? sh.decide(unit, this.shardHints));
      const result = await this.dtx!.run(
        unit,
        end,
        d ?? { kind: 'shard', shard: sh.map.defaultShard, reason: 'no-table', any: true },
        this.beginRaw ?? [msg.query('BEGIN')],
      );
      if (result.done) {
        this.dtx = undefined;
        this.txStatus = 'I';
        this.beginRaw = undefined;
      }
      return result;
    });
  }

  /** Runs a scatter SELECT or an all-shard write. */
  private runFanout(unit: Unit, d: Extract<ShardDecision, { kind: 'scatter' | 'all' }>): Promise<void> {
    return this.runMultiShard(unit, 'multi-shard statement failed', () => {
      const sh = this.ctx.sharding!;
      const status = this.clientTxStatus();
      return d.kind === 'scatter'
        ? sh.scatter(unit, d, (shard) => this.route(unit, this.ctx.clusters[shard]).backend, status)
        : sh.writeAll(unit, d, status);
    });
  }

  /**
   * Runs a unit that spans several shards: holds the queue while it runs, answers the client with the
   * step's reply (or an error if the step throws), then carries on with the queue.
   */
  private async runMultiShard(
    unit: Unit,
    failure: string,
    step: () => Promise<{ parts: Buffer[]; wrote: Iterable<number> }>,
  ): Promise<void> {
    this.fanoutRunning = true;
    try {
      const result = await step();
      if (this.phase !== 'ready') return;
      writeParts(this.socket, result.parts);
      for (const shard of result.wrote) this.afterCommit(shard);
    } catch (err) {
      this.ctx.log.error({ err }, failure);
      if (this.phase === 'ready')
        this.answerLocally(unit, [
          msg.errorResponse({ code: 'XX000', message: `scaleout: ${(err as Error).message}` }),
        ]);
    } finally {
      this.fanoutRunning = false;
      if (this.phase === 'ready') this.pump();
    }
  }

  /** May this unit be pipelined onto the connection that is still busy with earlier units? */
  private fitsAttached(unit: Unit): boolean {
    if (this.pinned || this.txStatus !== 'I' || this.unsynced || this.copyIn) return true;
    const needsPrimary = !unit.cls.readOnly && !unit.cls.begin;
    return this.backend!.role === 'primary' || !needsPrimary;
  }

  /** Where a unit goes when no connection is attached, and why. */
  private route(unit: Unit, cluster = this.ctx.cluster): { backend: Backend; reason: string } {
    const cls = unit.cls;
    if (unit.forcePrimary) return { backend: cluster.primary, reason: unit.retryReason ?? 'replica-retry' };
    if (this.forcedPrimary) return { backend: cluster.primary, reason: 'forced' };
    const readable = cls.readOnly || cls.begin === 'read-only';
    if (!readable) return { backend: cluster.primary, reason: cls.reason };
    const shard = cluster.primary.shard;
    if (
      this.ctx.config.read_your_writes &&
      ((this.lsnPendingOn[shard] ?? 0) > 0 || (this.lsnFailedUntil[shard] ?? 0) > Date.now())
    ) {
      return { backend: cluster.primary, reason: 'read-your-writes' };
    }
    const exclude = unit.retries > 0 ? unit.backend : undefined;
    const minLsn = this.minLsns[cluster.primary.shard] ?? 0n;
    const pick = cluster.pickReplica(this.ctx.config.read_your_writes ? minLsn : 0n, exclude);
    if (typeof pick === 'string') return { backend: cluster.primary, reason: pick };
    return { backend: pick, reason: cls.begin === 'read-only' ? 'read-only-transaction' : cls.reason };
  }

  private takeConnection(backend: Backend): ServerConnection | undefined {
    const held = this.held.get(backend);
    if (held && !held.closed) return held;
    const conn = backend.pool.tryAcquire();
    if (conn) return conn;
    this.acquiring = true;
    backend.pool.acquire().then(
      (c) => {
        this.acquiring = false;
        if (this.phase === 'closed') {
          backend.pool.release(c);
          return;
        }
        // Send the unit it was acquired for right away: pump() would see an idle connection and
        // hand it back to the pool (and to the next waiter) before using it.
        this.attach(c, backend);
        const unit = this.queue.shift();
        if (unit) {
          unit.backend = backend;
          this.send(unit);
        }
        this.pump();
      },
      (err: Error) => {
        this.acquiring = false;
        if (this.phase === 'closed') return;
        const unit = this.queue[0];
        if (backend.role === 'replica' && unit && unit.retries < MAX_RETRIES) {
          // The cluster banned the replica; the next route() will not pick it.
          unit.retries++;
          this.ctx.metrics.retries.labels('replica-connect').inc();
        } else if (unit) {
          this.queue.shift();
          this.failUnit(unit, backend, err.message);
        }
        this.pump();
      },
    );
    return undefined;
  }

  /** Answers a unit that could not be sent with an error (and its ReadyForQuery), as a server would. */
  private failUnit(unit: Unit, backend: Backend, detail: string): void {
    const shardName = this.ctx.sharding?.map.names[backend.shard];
    const what = `${shardName ? `shard ${shardName}: ` : ''}${backend.role === 'primary' ? 'the primary' : 'replica'}`;
    const parts = [
      msg.errorResponse({
        code: '08006',
        message: `scaleout: ${what} ${backend.id} is unavailable: ${detail}`,
        hint:
          backend.role === 'primary'
            ? `Writes fail until the primary is back; reads continue on replicas${shardName ? ', and the other shards keep serving' : ''}.`
            : undefined,
      }),
    ];
    for (let i = 0; i < unit.syncs; i++) parts.push(msg.readyForQuery(this.clientTxStatus()));
    this.socket.write(Buffer.concat(parts));
  }

  private attach(conn: ServerConnection, backend: Backend): void {
    this.conn = conn;
    this.backend = backend;
    conn.handler = this;
    if (this.ctx.config.pool_mode === 'session') this.held.set(backend, conn);
  }

  /** Gives the connection back when the unit sequence on it is complete and nothing ties the client to it. */
  private maybeDetach(): void {
    const conn = this.conn;
    if (
      !conn ||
      this.inflight.length > 0 ||
      this.pinned ||
      this.txStatus !== 'I' ||
      this.unsynced ||
      this.copyIn
    )
      return;
    this.conn = undefined;
    const backend = this.backend!;
    this.backend = undefined;
    if (this.ctx.config.pool_mode === 'session') return; // kept in `held`
    backend.pool.release(conn);
  }

  private send(unit: Unit): void {
    const conn = this.conn!;
    const parts: Buffer[] = [];
    for (const prefix of unit.beginPrefix ?? []) {
      parts.push(prefix);
      this.expect.push({ k: 'begin' });
    }
    for (const m of unit.msgs) {
      switch (m.type) {
        case 0x50: // P
          if (m.stmt) {
            if (conn.prepared.has(m.stmt.serverName)) {
              parts.push(msg.closeStatement(m.stmt.serverName));
              this.expect.push({ k: 'close', swallow: true });
            }
            parts.push(m.stmt.parse);
            conn.prepared.add(m.stmt.serverName);
            this.expect.push({ k: 'parse', swallow: false, name: m.stmt.serverName });
          } else {
            parts.push(m.raw);
            this.expect.push({ k: 'parse', swallow: false });
          }
          break;
        case 0x42: // B
        case 0x44: // D
          if (m.stmt) {
            this.ensurePrepared(conn, m.stmt, parts);
            parts.push(renameStatement(m.raw, m.type, m.stmt.serverName));
          } else parts.push(m.raw);
          break;
        case 0x43: // C
          if (m.stmt) {
            parts.push(renameStatement(m.raw, m.type, m.stmt.serverName));
            conn.prepared.delete(m.stmt.serverName);
          } else parts.push(m.raw);
          this.expect.push({ k: 'close', swallow: false });
          break;
        case 0x53: // S
        case 0x51: // Q
        case 0x46: // F
          parts.push(m.raw);
          this.expect.push({ k: 'sync' });
          break;
        default:
          parts.push(m.raw);
      }
    }
    if (unit.cls.write) this.txWrote = true;
    if (unit.cls.sessionState) {
      this.pinned = true;
      this.ctx.log.debug(
        { reason: unit.cls.detail ?? unit.cls.reason },
        'session pinned to its server connection',
      );
    }
    this.unsynced = unit.syncs === 0;
    if (this.backend!.role === 'replica') this.backend!.target.outstanding++;
    // A replica's answer is held back until a row arrives, so a refused or failed read can be retried.
    this.holding =
      this.backend!.role === 'replica' &&
      this.txStatus === 'I' &&
      !unit.beginPrefix &&
      this.inflight.length === 0 &&
      unit.syncs === 1
        ? []
        : undefined;
    this.inflight.push(unit);
    conn.writeAll(parts);
  }

  private ensurePrepared(conn: ServerConnection, stmt: Statement, parts: Buffer[]): void {
    if (conn.prepared.has(stmt.serverName)) return;
    parts.push(stmt.parse);
    conn.prepared.add(stmt.serverName);
    this.expect.push({ k: 'parse', swallow: true, name: stmt.serverName });
  }

  // ---------------------------------------------------------------- server input

  onServerMessage(conn: ServerConnection, type: number, buf: Buffer, start: number, end: number): void {
    if (conn !== this.conn) {
      // A held (session-mode) connection speaking while another is attached: only async messages.
      if (type === 0x41 || type === 0x4e || type === 0x53) this.socket.write(buf.subarray(start, end));
      return;
    }
    if (this.retryCause !== undefined) {
      if (type === 0x5a) this.finishRetry(conn, buf[start + 5]!);
      return;
    }
    if (this.expect[0]?.k === 'begin') {
      // The deferred BEGIN's answer: the client had its BEGIN answered already. An error (rare: the
      // lexer-valid BEGIN refused) is passed on, so the client learns its transaction did not start.
      if (type === 0x45) this.out.add(buf, start, end);
      if (type === 0x5a) {
        this.expect.shift();
        this.txStatus = conn.status = String.fromCharCode(buf[start + 5]!) as 'I' | 'T' | 'E';
      }
      return;
    }
    switch (type) {
      case 0x31: {
        // 1 ParseComplete
        const e = this.expect.shift();
        if (e?.k === 'parse' && e.swallow) return;
        break;
      }
      case 0x33: {
        // 3 CloseComplete
        const e = this.expect.shift();
        if (e?.k === 'close' && e.swallow) return;
        break;
      }
      case 0x45: {
        // E: the server skips to the next Sync, so the statements it skipped were never prepared.
        if (this.holding) {
          const code = errorCode(buf, start, end);
          if (RETRYABLE_ON_REPLICA.has(code) && this.inflight[0]!.retries < MAX_RETRIES) {
            this.retryCause = code;
            this.dropExpectationsUntilSync(conn);
            return;
          }
        }
        this.dropExpectationsUntilSync(conn);
        if (this.copyIn) this.copyIn = false;
        break;
      }
      case 0x47: // G CopyInResponse
        this.copyIn = true;
        break;
      case 0x43: // C CommandComplete (ends COPY IN too)
        this.copyIn = false;
        break;
      case 0x5a: {
        // Z ReadyForQuery
        this.expect.shift();
        const status = String.fromCharCode(buf[start + 5]!) as 'I' | 'T' | 'E';
        this.txStatus = status;
        conn.status = status;
        const unit = this.inflight.shift();
        if (unit?.backend?.role === 'replica') unit.backend.target.outstanding--;
        if (status === 'I' && this.txWrote) {
          this.txWrote = false;
          this.afterCommit(this.backend?.shard ?? 0);
        }
        break;
      }
    }
    if (this.holding) {
      // Parse/Bind/row-description noise can still be retried; anything else means the answer is real.
      if (
        type === 0x31 ||
        type === 0x32 ||
        type === 0x74 ||
        type === 0x54 ||
        type === 0x6e ||
        type === 0x4e ||
        type === 0x53
      ) {
        this.holding.push({ buf, start, end });
        return;
      }
      // Re-added as views of the same chunk, so the answer still goes out in one write.
      for (const h of this.holding) this.out.add(h.buf, h.start, h.end);
      this.holding = undefined;
    }
    this.out.add(buf, start, end);
  }

  onServerChunkEnd(conn: ServerConnection): void {
    if (conn !== this.conn) return;
    if (this.out.empty) return;
    const ok = writeParts(this.socket, this.out.take());
    if (!ok) conn.socket.pause(); // slow client: stop reading the server until the client drains
    if (this.inflight.length === 0) {
      this.sendLsnIfDue();
      this.maybeDetach();
      this.pump();
    }
  }

  onServerClose(conn: ServerConnection, error?: Error): void {
    const backend =
      [...this.held.entries()].find(([, c]) => c === conn)?.[0] ??
      (conn === this.conn ? this.backend : undefined);
    if (backend) this.held.delete(backend);
    if (conn !== this.conn) {
      if (backend) backend.pool.discard(conn);
      return;
    }
    const b = this.backend!;
    this.conn = undefined;
    this.backend = undefined;
    b.pool.discard(conn);
    if (this.phase === 'closed') return;
    if (!conn.discarded) this.ctx.cluster.ban(b, error?.message ?? 'server closed the connection');
    const unit = this.inflight[0];
    // A read whose answer has not started reaching the client can be run again elsewhere.
    if (this.holding && unit && this.inflight.length === 1 && unit.retries < MAX_RETRIES) {
      this.inflight.length = 0;
      this.expect = [];
      this.holding = undefined;
      this.retryCause = undefined;
      if (b.role === 'replica') b.target.outstanding--;
      unit.retries++;
      this.ctx.metrics.retries.labels('server-lost').inc();
      this.queue.unshift(unit);
      this.pump();
      return;
    }
    this.ctx.log.warn(
      { server: b.id, error: error?.message },
      'server connection lost mid-request; closing client',
    );
    this.fatal('08006', `scaleout: connection to ${b.role} ${b.id} lost${error ? `: ${error.message}` : ''}`);
  }

  private dropExpectationsUntilSync(conn: ServerConnection): void {
    while (this.expect.length > 0 && this.expect[0]!.k !== 'sync') {
      const e = this.expect.shift()!;
      if (e.k === 'parse' && e.name) conn.prepared.delete(e.name);
    }
  }

  /** The refused read's ReadyForQuery arrived: put the connection back and run the unit elsewhere. */
  private finishRetry(conn: ServerConnection, status: number): void {
    const cause = this.retryCause!;
    this.retryCause = undefined;
    this.expect = [];
    this.holding = undefined;
    conn.status = String.fromCharCode(status) as 'I';
    const unit = this.inflight.shift()!;
    const b = this.backend!;
    b.target.outstanding--;
    unit.retries++;
    if (cause === '25006') {
      unit.forcePrimary = true;
      this.ctx.metrics.misrouted.inc();
      this.ctx.log.error(
        { sql: unit.sql, reason: unit.cls.reason, server: b.id },
        'BUG: statement classified read-only was refused by a replica (25006); re-running it on the primary',
      );
    } else {
      if (unit.retries >= MAX_RETRIES) unit.forcePrimary = true;
      this.ctx.log.warn({ server: b.id, sqlstate: cause }, 'replica refused a read; retrying elsewhere');
    }
    this.ctx.metrics.retries.labels(`sqlstate-${cause}`).inc();
    unit.retryReason = cause === '25006' ? 'misclassified-retry' : 'replica-retry';
    this.txStatus = 'I';
    this.maybeDetach();
    this.queue.unshift(unit);
    this.pump();
  }

  // ---------------------------------------------------------------- read-your-writes

  private afterCommit(shard: number): void {
    if (!this.ctx.config.read_your_writes) return;
    this.lsnPending++;
    this.lsnPendingOn[shard] = (this.lsnPendingOn[shard] ?? 0) + 1;
    this.ctx.clusters[shard]!.primaryLsnAfterNow().then(
      (lsn) => {
        this.lsnPending--;
        this.lsnPendingOn[shard]!--;
        if (lsn > (this.minLsns[shard] ?? 0n)) {
          this.minLsns[shard] = lsn;
          this.announceLsn = true;
        }
        if (this.inflight.length === 0) {
          this.sendLsnIfDue();
          this.pump();
        }
      },
      (err: Error) => {
        this.lsnPending--;
        this.lsnPendingOn[shard]!--;
        // Without the position, keep this client's reads on the primary for a while.
        this.lsnFailedUntil[shard] = Date.now() + Math.max(this.ctx.config.max_lag_ms, 1000) * 5;
        this.ctx.log.warn({ error: err.message }, 'could not read the primary WAL position after a write');
        if (this.inflight.length === 0) this.pump();
      },
    );
  }

  /** Tells the client its read-your-writes token (ParameterStatus scaleout.last_lsn) between answers. */
  private sendLsnIfDue(): void {
    if (!this.announceLsn || this.phase !== 'ready' || this.inflight.length > 0) return;
    this.announceLsn = false;
    this.socket.write(msg.parameterStatus('scaleout.last_lsn', this.lsnToken()));
  }

  // ---------------------------------------------------------------- local commands

  private localCommand(sql: string): LocalCommand | undefined {
    const c = sql.charCodeAt(0) | 0x20;
    // Cheap guard: only statements starting with e/s/r (after spaces) can be ours.
    if (c !== 0x65 && c !== 0x73 && c !== 0x72 && c !== 0x20 && c !== 0x0a && c !== 0x29) return undefined;
    const ex = LOCAL_EXPLAIN.exec(sql);
    if (ex) return { kind: 'explain-route', sql: ex[1]! };
    const m = LOCAL_SET.exec(sql);
    if (!m) return undefined;
    const verb = m[1]!.toLowerCase();
    const name = m[2]!.toLowerCase();
    if (verb === 'show') return { kind: 'show', name };
    return {
      kind: 'set',
      name,
      value: verb === 'reset' ? undefined : (m[3] ?? '').replace(/^'(.*)'$/, '$1').trim(),
    };
  }

  private runLocal(cmd: LocalCommand): void {
    const parts: Buffer[] = [];
    const error = (code: string, message: string): void => {
      parts.push(msg.errorResponse({ code, message }));
    };
    switch (cmd.kind) {
      case 'explain-route': {
        const cls = this.ctx.classifier.classify(cmd.sql);
        const probe: Unit = { kind: 'query', msgs: [], syncs: 1, cls, retries: 0 };
        let server: string;
        let reason: string;
        if (this.conn && (this.pinned || this.txStatus !== 'I')) {
          server = this.backend!.id;
          reason = this.pinned ? 'session-pinned' : 'in-transaction';
        } else {
          const r = this.route(probe);
          server = r.backend.id;
          reason = r.reason;
        }
        if (this.ctx.sharding) {
          this.explainShardRoute(cmd.sql, cls, parts);
          break;
        }
        const role = server === this.ctx.cluster.primary.id ? 'primary' : 'replica';
        parts.push(msg.rowDescription(['route', 'server', 'reason', 'detail', 'statement_class']));
        parts.push(
          msg.dataRow([
            role,
            server,
            reason,
            cls.detail ?? null,
            `${cls.readOnly ? 'read-only' : 'not read-only'} (${cls.reason})`,
          ]),
        );
        parts.push(msg.commandComplete('EXPLAIN'));
        break;
      }
      case 'show': {
        const value =
          cmd.name === 'last_lsn'
            ? this.lsnToken()
            : cmd.name === 'route'
              ? this.forcedPrimary
                ? 'primary'
                : 'auto'
              : this.ctx.sharding && cmd.name === 'shard'
                ? this.shardHints.shard === undefined
                  ? 'auto'
                  : String(this.shardHints.shard)
                : this.ctx.sharding && cmd.name === 'shard_key'
                  ? (this.shardHints.shardKey ?? '')
                  : undefined;
        if (value === undefined)
          error('42704', `unrecognized configuration parameter "scaleout.${cmd.name}"`);
        else {
          parts.push(
            msg.rowDescription([`scaleout.${cmd.name}`]),
            msg.dataRow([value]),
            msg.commandComplete('SHOW'),
          );
        }
        break;
      }
      case 'set': {
        if (cmd.name === 'route') {
          const v = (cmd.value ?? 'auto').toLowerCase();
          if (v !== 'primary' && v !== 'auto' && v !== 'default') {
            error('22023', `invalid value for scaleout.route: "${cmd.value}" (use primary or auto)`);
          } else {
            this.forcedPrimary = v === 'primary';
            parts.push(msg.commandComplete(cmd.value === undefined ? 'RESET' : 'SET'));
          }
        } else if (cmd.name === 'last_lsn') {
          const sharded = this.ctx.sharding;
          let lsns: (bigint | undefined)[] | undefined = [];
          if (cmd.value !== undefined) {
            if (sharded) lsns = parseShardLsns(cmd.value, sharded.map.count);
            else {
              const lsn = parseLsn(cmd.value);
              lsns = lsn === undefined ? undefined : [lsn];
            }
          }
          if (!lsns)
            error(
              '22023',
              `invalid WAL position for scaleout.last_lsn: "${cmd.value}" (expected ${sharded ? 'a token from SHOW scaleout.last_lsn, like 0:0/16B3748,1:0/3000060' : 'like 0/16B3748'})`,
            );
          else {
            if (cmd.value === undefined) this.minLsns.length = 0;
            lsns.forEach((lsn, shard) => {
              if (lsn !== undefined && lsn > (this.minLsns[shard] ?? 0n)) this.minLsns[shard] = lsn;
            });
            parts.push(msg.commandComplete(cmd.value === undefined ? 'RESET' : 'SET'));
          }
        } else if (this.ctx.sharding && (cmd.name === 'shard' || cmd.name === 'shard_key')) {
          const problem = this.ctx.sharding.setHint(this.shardHints, cmd.name, cmd.value);
          if (problem) error('22023', problem);
          else parts.push(msg.commandComplete(cmd.value === undefined ? 'RESET' : 'SET'));
        } else error('42704', `unrecognized configuration parameter "scaleout.${cmd.name}"`);
        break;
      }
    }
    parts.push(msg.readyForQuery(this.clientTxStatus()));
    this.socket.write(Buffer.concat(parts));
  }

  /** EXPLAIN ROUTE when sharded: the shard(s) and why, then the server each would use and why. */
  private explainShardRoute(sql: string, cls: Classification, parts: Buffer[]): void {
    const sh = this.ctx.sharding!;
    const d = sh.router.decide(sql, sh.analyzer.analyze(sql), this.shardHints);
    const probe: Unit = { kind: 'query', msgs: [], syncs: 1, cls, retries: 0 };
    const names = sh.map.names;
    parts.push(
      msg.rowDescription([
        'route',
        'shards',
        'shard_reason',
        'server',
        'reason',
        'detail',
        'statement_class',
      ]),
    );
    const statementClass = `${cls.readOnly ? 'read-only' : 'not read-only'} (${cls.reason})`;
    const serverOf = (shard: number): { server: string; role: string; reason: string } => {
      if (this.conn && (this.pinned || this.txStatus !== 'I'))
        return {
          server: this.backend!.id,
          role: this.backend!.role,
          reason: this.pinned ? 'session-pinned' : 'in-transaction',
        };
      const r = this.route(probe, this.ctx.clusters[shard]);
      return { server: r.backend.id, role: r.backend.role, reason: r.reason };
    };
    switch (d.kind) {
      case 'refuse':
        parts.push(
          msg.dataRow(['refused', null, d.code, null, null, `${d.message}. ${d.hint}`, statementClass]),
        );
        break;
      case 'shard': {
        const shard = this.conn && d.any ? this.backend!.shard : d.shard;
        const s = serverOf(shard);
        parts.push(
          msg.dataRow([
            s.role,
            names[shard]!,
            d.reason,
            s.server,
            s.reason,
            cls.detail ?? null,
            statementClass,
          ]),
        );
        break;
      }
      case 'scatter':
      case 'all': {
        const shards = d.kind === 'scatter' ? d.shards : [...names.keys()];
        for (const shard of shards) {
          const s =
            d.kind === 'all'
              ? { server: this.ctx.clusters[shard]!.primary.id, role: 'primary', reason: 'write' }
              : serverOf(shard);
          parts.push(
            msg.dataRow([
              d.kind === 'scatter' ? 'scatter' : 'all-shards',
              names[shard]!,
              d.reason,
              s.server,
              s.reason,
              d.kind === 'scatter' && d.plan.sql !== sql ? `runs: ${d.plan.sql}` : (cls.detail ?? null),
              statementClass,
            ]),
          );
        }
        break;
      }
    }
    parts.push(msg.commandComplete('EXPLAIN'));
  }

  /** The read-your-writes token: one LSN unsharded, one per shard when sharded. */
  private lsnToken(): string {
    const sharded = this.ctx.sharding;
    return sharded ? formatShardLsns(this.minLsns, sharded.map.count) : formatLsn(this.minLsns[0] ?? 0n);
  }

  /** The server (and its real cancel key) running this client's current request, if any. */
  cancelTarget(): { host: string; port: number; pid: number; secret: number } | undefined {
    const conn = this.conn;
    if (!conn || this.inflight.length === 0) return undefined;
    return { host: conn.endpoint.host, port: conn.endpoint.port, pid: conn.pid, secret: conn.secret };
  }

  // ---------------------------------------------------------------- teardown

  /** Sends a FATAL error and closes; nothing of the offending input reaches a server. */
  private fatal(code: string, message: string): void {
    if (this.phase === 'closed') return;
    const socket = this.socket;
    if (!socket.destroyed) {
      socket.end(msg.errorResponse({ severity: 'FATAL', code, message }));
      setTimeout(() => socket.destroy(), 1000).unref();
    }
    this.close(false);
  }

  /** Client gone: every server connection it held is rolled back and reset before anyone reuses it. */
  close(destroySocket = true): void {
    if (this.phase === 'closed') return;
    const wasReady = this.phase === 'ready';
    this.phase = 'closed';
    this.ctx.metrics.clients.dec();
    if (this.cancelKey) this.ctx.unregisterCancelKey(this.cancelKey.pid);
    if (destroySocket && !this.socket.destroyed) this.socket.destroy();
    if (!wasReady) return;
    this.dtx?.releaseAll();
    this.dtx = undefined;
    const conns = new Map<ServerConnection, Backend>();
    for (const [b, c] of this.held) conns.set(c, b);
    if (this.conn) conns.set(this.conn, this.backend!);
    const busy = this.inflight.length > 0 || this.copyIn || this.unsynced;
    for (const [conn, backend] of conns) {
      const active = conn === this.conn;
      if (backend.role === 'replica' && active && this.inflight.length > 0) backend.target.outstanding--;
      if (conn.closed || (active && busy)) {
        // Mid-statement: dropping the connection makes the server abort and roll back.
        conn.handler = undefined;
        backend.pool.discard(conn);
        continue;
      }
      const needsReset = this.pinned || this.ctx.config.pool_mode === 'session';
      const needsRollback = conn.status !== 'I' || (active && this.txStatus !== 'I');
      if (!needsReset && !needsRollback) {
        conn.handler = undefined;
        backend.pool.release(conn);
        continue;
      }
      void resetConnection(conn, needsRollback, needsReset).then(
        () => backend.pool.release(conn),
        () => backend.pool.discard(conn),
      );
    }
    this.conn = undefined;
    this.held.clear();
  }
}

async function resetConnection(conn: ServerConnection, rollback: boolean, reset: boolean): Promise<void> {
  conn.handler = undefined;
  if (rollback) await conn.query('ROLLBACK');
  if (reset) {
    await conn.query('DISCARD ALL');
    conn.prepared.clear();
  }
  if (conn.status !== 'I') throw new Error('connection not idle after reset');
}

function combine(a: Classification, b: Classification): Classification {
  if (a === NEUTRAL) return b;
  if (!a.readOnly)
    return b.readOnly
      ? a
      : { ...a, sessionState: a.sessionState || b.sessionState, write: a.write || b.write };
  return b;
}
