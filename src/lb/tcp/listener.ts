import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../core/log.js';
import { silentLogger } from '../../core/log.js';
import type { PassiveHealth } from '../../health/passive.js';
import type { Selection } from '../../balancing/types.js';
import type { Target } from '../../registry/target.js';
import type { TargetGroup } from '../../registry/target-group.js';
import { TcpProxyConnection, type TcpConnectionOwner } from './connection.js';
import type { ProxyProtocolVersion } from './proxy-protocol.js';
import {
  newTcpListenerStats,
  newTcpTargetStats,
  type TcpListenerStats,
  type TcpTargetStats,
} from './stats.js';

/**
 * Builds the accepting server and calls `onConnection` with each ready client socket. The default is a
 * plain `net.Server`; a TLS listener passes `(on) => tls.createServer({ ...certs, allowHalfOpen: true }, on)`
 * (tls.Server is a net.Server whose connection callback gets the decrypted TLSSocket).
 */
export type TcpServerFactory = (onConnection: (socket: net.Socket) => void) => net.Server;

export interface TcpListenerOptions {
  host: string;
  port: number;
  group: TargetGroup;
  /** Records connect failures and successes (outlier ejection); optional. */
  passive?: PassiveHealth;
  connectTimeoutMs: number;
  /** No byte either way for this long closes both sides (AWS NLB: 350 s). */
  idleTimeoutMs: number;
  /** Targets tried per client connection when connecting fails (1 = no retry). */
  maxAttempts: number;
  /** Send a PROXY protocol header to the target before the client's bytes. */
  proxyProtocol: false | ProxyProtocolVersion;
  /** What hash algorithms (ring-hash, maglev) key on: the client IP (default), or nothing. */
  hashOn?: 'source-ip' | 'none';
  /** Client bytes buffered while the target connects; above this the client is paused. Default 64 KiB. */
  maxPendingBytes?: number;
  backlog?: number;
  /**
   * Replaces the default pick (`group.select({ hashKey: clientIp })`), e.g. to add slow start or
   * stickiness from the group's runtime. Gets the client IP (IPv4-mapped addresses unmapped).
   */
  select?: (clientIp: string) => Selection<Target>;
  createServer?: TcpServerFactory;
  log?: Logger;
}

export const DEFAULT_TCP_LISTENER_SETTINGS = {
  connectTimeoutMs: 3000,
  idleTimeoutMs: 350_000,
  maxAttempts: 3,
  proxyProtocol: false,
  hashOn: 'source-ip',
  maxPendingBytes: 64 * 1024,
  backlog: 4096,
} as const;

export interface TcpDrainResult {
  targetId: string;
  /** Connections still open at the deadline and cut then. */
  cut: number;
  durationMs: number;
}

export interface TcpListenerEvents {
  /** A target being drained has no connection left on this listener (ended by itself or cut). */
  'target-drained': [result: TcpDrainResult];
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new Error(
      `tcp listener option "${name}" must be an integer from ${min} to ${max}, got ${String(value)}`,
    );
}

/** Throws a readable error for a bad option (the config loader validates too; this guards direct use). */
export function validateTcpListenerOptions(o: TcpListenerOptions): void {
  if (typeof o.host !== 'string' || o.host === '') throw new Error('tcp listener option "host" is required');
  checkInteger('port', o.port, 0, 65535);
  checkInteger('connectTimeoutMs', o.connectTimeoutMs, 1, 3_600_000);
  checkInteger('idleTimeoutMs', o.idleTimeoutMs, 1, 24 * 3_600_000);
  checkInteger('maxAttempts', o.maxAttempts, 1, 100);
  if (o.maxPendingBytes !== undefined) checkInteger('maxPendingBytes', o.maxPendingBytes, 1, 64 << 20);
  if (o.backlog !== undefined) checkInteger('backlog', o.backlog, 1, 65535);
  if (o.proxyProtocol !== false && o.proxyProtocol !== 'v1' && o.proxyProtocol !== 'v2')
    throw new Error(
      `tcp listener option "proxyProtocol" must be false, "v1" or "v2", got ${String(o.proxyProtocol)}`,
    );
  if (o.hashOn !== undefined && o.hashOn !== 'source-ip' && o.hashOn !== 'none')
    throw new Error(`tcp listener option "hashOn" must be "source-ip" or "none", got ${String(o.hashOn)}`);
}

/**
 * A TCP (L4) listener, as AWS NLB has: each client connection is forwarded as a byte stream to one
 * target of a target group, chosen by the group's balancer. See docs/lb-tcp.md.
 */
export class TcpListener extends EventEmitter<TcpListenerEvents> implements TcpConnectionOwner {
  readonly server: net.Server;
  readonly stats: TcpListenerStats = newTcpListenerStats();
  readonly group: TargetGroup;
  readonly passive: PassiveHealth | undefined;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxAttempts: number;
  readonly proxyProtocol: false | ProxyProtocolVersion;
  readonly hashOn: 'source-ip' | 'none';
  readonly maxPendingBytes: number;
  readonly select: ((clientIp: string) => Selection<Target>) | undefined;
  readonly log: Logger;
  private readonly connections = new Set<TcpProxyConnection>();
  private readonly byTarget = new Map<string, Set<TcpProxyConnection>>();
  private readonly perTarget = new Map<string, TcpTargetStats>();
  /** Callbacks waiting for a target (by id) or the whole listener ('') to have no connection left. */
  private readonly emptyWaiters = new Map<string, Array<() => void>>();
  private closing = false;

  constructor(private readonly options: TcpListenerOptions) {
    super();
    validateTcpListenerOptions(options);
    this.group = options.group;
    this.passive = options.passive;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.maxAttempts = options.maxAttempts;
    this.proxyProtocol = options.proxyProtocol;
    this.hashOn = options.hashOn ?? DEFAULT_TCP_LISTENER_SETTINGS.hashOn;
    this.maxPendingBytes = options.maxPendingBytes ?? DEFAULT_TCP_LISTENER_SETTINGS.maxPendingBytes;
    this.select = options.select;
    this.log = options.log ?? silentLogger;
    const onConnection = (socket: net.Socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      this.connections.add(new TcpProxyConnection(socket, this));
    };
    // allowHalfOpen: a client's FIN is passed on to the target, which may still answer.
    this.server = options.createServer
      ? options.createServer(onConnection)
      : net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
    this.server.on('error', (err) => this.log.error({ err }, 'tcp listener error'));
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) =>
        reject(
          new Error(
            `tcp listener cannot listen on ${this.options.host}:${this.options.port}: ${err.message}`,
          ),
        );
      this.server.once('error', onError);
      const backlog = this.options.backlog ?? DEFAULT_TCP_LISTENER_SETTINGS.backlog;
      this.server.listen({ host: this.options.host, port: this.options.port, backlog }, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo | undefined {
    return (this.server.address() as AddressInfo | null) ?? undefined;
  }

  /** Client connections open now. */
  get activeConnections(): number {
    return this.connections.size;
  }

  /** Connections holding a target now (connecting or forwarding). */
  connectionsTo(targetId: string): number {
    return this.byTarget.get(targetId)?.size ?? 0;
  }

  /** Whether a target has no connection left on this listener (a draining target can then be removed). */
  isDrained(targetId: string): boolean {
    return this.connectionsTo(targetId) === 0;
  }

  /** Counters per target id (only targets this listener has used). */
  targetStats(): ReadonlyMap<string, TcpTargetStats> {
    return this.perTarget;
  }

  /**
   * Drains a target: it gets no new connections (it is marked draining in the group), its open ones
   * may go on until `timeoutMs`, and those left then are cut. Resolves when none is left. Removing the
   * target from the group afterwards (deregistration) is the caller's call.
   */
  async drainTarget(targetId: string, timeoutMs: number): Promise<TcpDrainResult> {
    const target = this.group.get(targetId);
    if (!target)
      throw new Error(`target "${targetId}" is not registered in target group "${this.group.name}"`);
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0)
      throw new Error(`drain timeout must be a number of milliseconds >= 0, got ${timeoutMs}`);
    const started = Date.now();
    if (!target.draining) {
      target.draining = true;
      target.drainingSince = started;
      this.group.refresh(target);
    }
    this.log.info(
      { target: targetId, connections: this.connectionsTo(targetId), timeoutMs },
      'draining target',
    );
    let cut = 0;
    if (!this.isDrained(targetId)) {
      const timer = setTimeout(() => (cut = this.cutTarget(targetId)), timeoutMs);
      await this.whenEmpty(targetId);
      clearTimeout(timer);
    }
    const result = { targetId, cut, durationMs: Date.now() - started };
    this.log.info(result, `target ${targetId} drained`);
    this.emit('target-drained', result);
    return result;
  }

  /**
   * Cuts every connection to a target now (both sides get a reset); returns how many. For a caller
   * that runs its own deregistration delay, e.g. when a target group removes a drained target.
   */
  cutTarget(targetId: string): number {
    const conns = [...(this.byTarget.get(targetId) ?? [])];
    for (const conn of conns) conn.terminate();
    this.stats.drainClosed += conns.length;
    if (conns.length > 0)
      this.log.info({ target: targetId, connections: conns.length }, 'cut connections to target');
    return conns.length;
  }

  /**
   * Graceful stop: no new connections; open ones may finish until `drainTimeoutMs`, then the rest are
   * cut. (A byte stream has no request boundary at which to close politely.)
   */
  async close(drainTimeoutMs: number): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.connections.size > 0) {
      const timer = setTimeout(() => {
        for (const conn of this.connections) {
          this.stats.drainClosed++;
          conn.terminate();
        }
      }, drainTimeoutMs);
      await this.whenEmpty('');
      clearTimeout(timer);
    }
    await closed;
  }

  // ---- TcpConnectionOwner: bookkeeping called by the connections ----

  statsOf(target: Target): TcpTargetStats {
    let s = this.perTarget.get(target.id);
    if (!s) {
      s = newTcpTargetStats();
      this.perTarget.set(target.id, s);
    }
    return s;
  }

  track(conn: TcpProxyConnection, target: Target): void {
    let set = this.byTarget.get(target.id);
    if (!set) {
      set = new Set();
      this.byTarget.set(target.id, set);
    }
    set.add(conn);
    this.statsOf(target).active++;
  }

  untrack(conn: TcpProxyConnection, target: Target): void {
    const set = this.byTarget.get(target.id);
    if (!set?.delete(conn)) return;
    this.statsOf(target).active--;
    if (set.size === 0) {
      this.byTarget.delete(target.id);
      this.wake(target.id);
    }
  }

  finished(conn: TcpProxyConnection): void {
    this.connections.delete(conn);
    if (this.connections.size === 0) this.wake('');
  }

  private whenEmpty(key: string): Promise<void> {
    const empty = key === '' ? this.connections.size === 0 : this.isDrained(key);
    if (empty) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.emptyWaiters.get(key) ?? [];
      list.push(resolve);
      this.emptyWaiters.set(key, list);
    });
  }

  private wake(key: string): void {
    const list = this.emptyWaiters.get(key);
    if (!list) return;
    this.emptyWaiters.delete(key);
    for (const fn of list) fn();
  }
}
