import net from 'node:net';
import type { Logger } from '../../core/log.js';
import type { PassiveHealth } from '../../health/passive.js';
import type { Target } from '../../registry/target.js';
import type { TargetGroup } from '../../registry/target-group.js';
import type { Selection } from '../../balancing/types.js';
import { encodeProxyHeader, normalizeIp, type ProxyProtocolVersion } from './proxy-protocol.js';
import type { TcpListenerStats, TcpTargetStats } from './stats.js';

/** The listener-wide settings and bookkeeping one proxied connection needs. */
export interface TcpConnectionOwner {
  readonly group: TargetGroup;
  readonly passive: PassiveHealth | undefined;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxAttempts: number;
  readonly proxyProtocol: false | ProxyProtocolVersion;
  readonly hashOn: 'source-ip' | 'none';
  readonly maxPendingBytes: number;
  /** Overrides the default pick when set (see TcpListenerOptions.select). */
  readonly select: ((clientIp: string) => Selection<Target>) | undefined;
  readonly stats: TcpListenerStats;
  readonly log: Logger;
  statsOf(target: Target): TcpTargetStats;
  /** The connection now holds (or is connecting to) `target`. */
  track(conn: TcpProxyConnection, target: Target): void;
  untrack(conn: TcpProxyConnection, target: Target): void;
  /** The client side is gone and nothing is held any more. */
  finished(conn: TcpProxyConnection): void;
}

/** Ends a socket with a TCP RST when possible (a cut the peer can tell from a clean end), else closes it. */
export function abortSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    // resetAndDestroy needs a connected TCP handle; TLS sockets and connecting ones fall back to destroy.
    if (!socket.connecting) {
      socket.resetAndDestroy();
      if (socket.destroyed) return;
    }
  } catch {
    // not a plain TCP handle
  }
  socket.destroy();
}

/**
 * One client connection and the target connection it is forwarded to. It picks a target, connects
 * (trying the next candidate on failure), optionally writes a PROXY protocol header, then copies bytes
 * both ways with backpressure and half-close, until either side is done or a timeout cuts it.
 */
export class TcpProxyConnection {
  readonly clientIp: string | undefined;
  target: Target | undefined;
  private upstream: net.Socket | undefined;
  private connected = false;
  private selection: Selection<Target> | undefined;
  private attempts = 0;
  /** Client bytes that arrived before the target connected, sent first once it does. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private clientEnded = false;
  private clientClosed = false;
  private upstreamClosed = true;
  private done = false;

  constructor(
    readonly client: net.Socket,
    private readonly owner: TcpConnectionOwner,
  ) {
    owner.stats.accepted++;
    owner.stats.active++;
    this.clientIp = normalizeIp(client.remoteAddress);
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    client.on('end', () => this.onClientEnd());
    client.on('error', (err) => owner.log.debug({ err, client: this.clientIp }, 'client connection error'));
    client.on('close', (hadError) => this.onClientClose(hadError));
    client.on('timeout', () => this.onIdle());
    if (!this.clientIp) {
      // Already closed before we saw it: nothing to forward.
      this.client.destroy();
      return;
    }
    try {
      this.selection = owner.select
        ? owner.select(this.clientIp)
        : owner.group.select(owner.hashOn === 'source-ip' ? { hashKey: this.clientIp } : undefined);
    } catch (err) {
      // A faulty select hook must not take the listener down: this client gets no target.
      owner.log.error({ err }, 'target selection failed');
    }
    this.connectNext();
  }

  /** Cuts both sides now (drain deadline, listener shutdown). */
  terminate(): void {
    if (this.upstream) abortSocket(this.upstream);
    abortSocket(this.client);
  }

  private connectNext(): void {
    if (this.clientClosed) return this.maybeFinish();
    const target = this.attempts < this.owner.maxAttempts ? this.selection?.next() : undefined;
    if (!target) {
      if (this.attempts === 0) this.owner.stats.noTarget++;
      else this.owner.stats.failedConnections++;
      this.owner.log.debug(
        { client: this.clientIp, attempts: this.attempts },
        this.attempts === 0
          ? 'no eligible target: closing client connection'
          : 'no target accepted the connection',
      );
      abortSocket(this.client);
      return;
    }
    this.attempts++;
    this.attach(target);
    const started = Date.now();
    const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    this.upstream = socket;
    this.upstreamClosed = false;
    socket.setTimeout(this.owner.connectTimeoutMs);
    const onConnect = () => {
      stop();
      this.owner.passive?.recordSuccess(target, Date.now() - started, Date.now());
      this.onConnected(socket);
    };
    const onError = (err: Error) => {
      stop();
      this.onConnectFailed(socket, target, err, false);
    };
    const onTimeout = () => {
      stop();
      this.onConnectFailed(
        socket,
        target,
        new Error(`no TCP connect within ${this.owner.connectTimeoutMs} ms`),
        true,
      );
    };
    const stop = () => {
      socket.setTimeout(0);
      socket.off('connect', onConnect).off('error', onError).off('timeout', onTimeout);
    };
    socket.on('connect', onConnect).on('error', onError).on('timeout', onTimeout);
  }

  private attach(target: Target): void {
    this.target = target;
    // A TCP connection is one outstanding request for its whole life, so least-outstanding and
    // least-connections both see it (counted from the first connect attempt, as the HTTP side does).
    target.outstanding++;
    target.connections++;
    this.owner.track(this, target);
  }

  private detach(): void {
    const target = this.target;
    if (!target) return;
    this.target = undefined;
    target.outstanding--;
    target.connections--;
    this.owner.untrack(this, target);
  }

  private onConnectFailed(socket: net.Socket, target: Target, err: Error, timedOut: boolean): void {
    socket.destroy();
    this.upstream = undefined;
    this.upstreamClosed = true;
    this.detach();
    const stats = this.owner.stats;
    stats.connectFailures++;
    if (timedOut) stats.connectTimeouts++;
    this.owner.statsOf(target).connectFailures++;
    // A client that left while we were connecting says nothing about the target.
    if (!this.clientClosed) this.owner.passive?.recordFailure(target, Date.now(), 'connect');
    this.owner.log.debug({ target: target.id, err: err.message }, 'connect to target failed');
    this.connectNext();
  }

  private onConnected(upstream: net.Socket): void {
    this.connected = true;
    const client = this.client;
    const targetStats = this.owner.statsOf(this.target!);
    targetStats.total++;
    upstream.on('data', (chunk: Buffer) => {
      this.owner.stats.bytesOut += chunk.length;
      targetStats.bytesOut += chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    upstream.on('end', () => client.end());
    upstream.on('error', (err) =>
      this.owner.log.debug({ err, target: this.target?.id }, 'target connection error'),
    );
    upstream.on('close', (hadError) => this.onUpstreamClose(hadError));
    upstream.on('drain', () => client.resume());
    client.on('drain', () => upstream.resume());

    if (this.owner.proxyProtocol) {
      upstream.write(
        encodeProxyHeader(this.owner.proxyProtocol, {
          sourceIp: this.clientIp!,
          sourcePort: client.remotePort ?? -1,
          destinationIp: client.localAddress ?? '',
          destinationPort: client.localPort ?? -1,
        }),
      );
    }
    let flowing = true;
    for (const chunk of this.pending) flowing = this.forward(chunk);
    this.pending = [];
    this.pendingBytes = 0;
    if (this.clientEnded) upstream.end();
    if (flowing) client.resume();
    client.setTimeout(this.owner.idleTimeoutMs);
  }

  /** Writes client bytes to the target; false means the target is full and the client stays paused. */
  private forward(chunk: Buffer): boolean {
    this.owner.stats.bytesIn += chunk.length;
    this.owner.statsOf(this.target!).bytesIn += chunk.length;
    if (this.upstream!.write(chunk)) return true;
    this.client.pause();
    return false;
  }

  private onClientData(chunk: Buffer): void {
    if (this.connected) {
      this.forward(chunk);
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= this.owner.maxPendingBytes) this.client.pause();
  }

  private onClientEnd(): void {
    // Half-close: pass the client's FIN on; the target may still answer.
    if (this.connected) this.upstream!.end();
    else this.clientEnded = true;
  }

  private onIdle(): void {
    this.owner.stats.idleTimeouts++;
    this.owner.log.debug({ client: this.clientIp, target: this.target?.id }, 'idle timeout');
    this.terminate();
  }

  private onClientClose(hadError: boolean): void {
    this.clientClosed = true;
    const upstream = this.upstream;
    if (upstream && !this.connected) {
      // The client left while we were still connecting: give the attempt up (no 'close' is awaited).
      upstream.setTimeout(0);
      upstream.destroy();
      this.upstream = undefined;
      this.upstreamClosed = true;
    } else if (upstream && hadError) {
      // The client vanished with an error (e.g. a reset): cut the target side too. A clean close
      // means both FINs already went through, and the target side closes by itself.
      abortSocket(upstream);
    }
    this.maybeFinish();
  }

  private onUpstreamClose(hadError: boolean): void {
    this.upstreamClosed = true;
    if (hadError) abortSocket(this.client);
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.done || !this.clientClosed || !this.upstreamClosed) return;
    this.done = true;
    this.detach();
    this.owner.stats.active--;
    this.owner.finished(this);
  }
}
