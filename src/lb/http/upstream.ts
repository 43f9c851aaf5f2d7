import net from 'node:net';
import { sharedOnread } from '../../core/shared-onread.js';
import type { Target } from '../../registry/target.js';
import { ChunkedScanner } from './chunked.js';
import type { DeadlineSweeper, Expirable } from './deadlines.js';
import { findHeadEnd, parseResponseHead, type HeadLimits, type ResponseHead } from './head-parser.js';

/** What an upstream connection reports to the request that currently owns it. */
export interface UpstreamOwner {
  onUpstreamConnect(conn: UpstreamConnection): void;
  /** Connecting failed (nothing was sent). */
  onUpstreamConnectError(conn: UpstreamConnection, err: Error, timedOut: boolean): void;
  /** A response head, interim (1xx) ones included. */
  onResponseHead(conn: UpstreamConnection, head: ResponseHead): void;
  onResponseData(conn: UpstreamConnection, chunk: Buffer): void;
  onResponseEnd(conn: UpstreamConnection): void;
  /** The connection failed after the request was (partly) sent. */
  onUpstreamError(conn: UpstreamConnection, err: Error, timedOut: boolean): void;
  /** Called after each chunk from the target is handled, so the owner can flush corked writes. */
  onDataProcessed(): void;
}

export interface UpstreamOptions {
  connectTimeoutMs: number;
  /** Idle keep-alive time. Keep it below the targets' own keep-alive timeout (Node's default is 5 s). */
  idleTimeoutMs: number;
  /** Time to wait for response bytes from the target before answering 504. */
  responseTimeoutMs: number;
  maxIdlePerTarget: number;
  limits: HeadLimits;
}

const enum Phase {
  Connecting,
  Idle,
  Head,
  BodyLength,
  BodyChunked,
  BodyUntilClose,
  Detached,
  Closed,
}

/**
 * One keep-alive connection to a target. It parses responses just enough to find where each one
 * ends, and passes the bytes through untouched.
 */
export class UpstreamConnection implements Expirable {
  readonly socket: net.Socket;
  owner: UpstreamOwner | undefined;
  deadline = 0;
  /** Whether any byte of the current response arrived (a retry is only safe before that). */
  responseStarted = false;
  /** Whether this socket served a request before (a reused socket may have been closed by the target). */
  reused = false;
  /** The connection can carry another request once the current response ends. */
  reusable = true;
  private phase = Phase.Connecting;
  private pending: Buffer | undefined;
  private remaining = 0;
  private scanner: ChunkedScanner | undefined;
  private expectNoBody = false;
  /** After a 101 answer: where the target's bytes go (the client socket of a WebSocket tunnel). */
  private tunnel: net.Socket | undefined;

  constructor(
    readonly target: Target,
    private readonly pool: UpstreamPool,
    owner: UpstreamOwner,
  ) {
    this.owner = owner;
    // Reads reach onRead directly (net `onread` into the shared read buffer, copied out per read)
    // instead of through a fresh buffer and a stream 'data' event each.
    this.socket = net.connect({
      host: target.host,
      port: target.port,
      noDelay: true,
      onread: sharedOnread((chunk) => this.onRead(chunk)),
    });
    this.deadline = pool.sweeper.after(pool.options.connectTimeoutMs);
    target.connections++;
    pool.sweeper.add(this);
    this.socket.on('connect', () => this.onConnect());
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (err) => this.onError(err));
    this.socket.on('close', () => this.onClose());
  }

  get idle(): boolean {
    return this.phase === Phase.Idle;
  }

  /** Sends a request head (and any body bytes already at hand); `isHead` = the method is HEAD. */
  beginRequest(owner: UpstreamOwner, isHead: boolean): void {
    this.owner = owner;
    this.phase = Phase.Head;
    this.responseStarted = false;
    this.expectNoBody = isHead;
    this.deadline = this.pool.sweeper.after(this.pool.options.responseTimeoutMs);
  }

  /** Strings are written as latin1 (heads are bytes, one per character). */
  write(data: Buffer | string): boolean {
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }

  /** Re-arms the response timeout (called while request body bytes keep flowing). */
  touch(): void {
    if (this.phase !== Phase.Idle && this.phase !== Phase.Detached) {
      this.deadline = this.pool.sweeper.after(this.pool.options.responseTimeoutMs);
    }
  }

  /**
   * WebSocket tunnel after 101: from now on every byte from the target goes to `client` (with
   * backpressure, and end as end), and the pool forgets this connection. Returns the target socket,
   * for the bytes the other way.
   */
  detachTo(client: net.Socket): net.Socket {
    this.phase = Phase.Detached;
    this.owner = undefined;
    this.deadline = 0;
    this.tunnel = client;
    this.pool.sweeper.delete(this);
    client.on('drain', () => this.socket.resume());
    return this.socket;
  }

  destroy(): void {
    if (this.phase === Phase.Closed) return;
    this.phase = Phase.Closed;
    this.owner = undefined;
    this.socket.destroy();
  }

  onDeadline(): void {
    const owner = this.owner;
    const phase = this.phase;
    this.destroy();
    if (!owner) return;
    if (phase === Phase.Connecting) {
      owner.onUpstreamConnectError(
        this,
        new Error(`connect timeout after ${this.pool.options.connectTimeoutMs} ms`),
        true,
      );
    } else if (phase !== Phase.Idle) {
      owner.onUpstreamError(
        this,
        new Error(`no response within ${this.pool.options.responseTimeoutMs} ms`),
        true,
      );
    }
  }

  private onConnect(): void {
    this.deadline = 0;
    this.phase = Phase.Idle;
    this.owner?.onUpstreamConnect(this);
  }

  private onRead(chunk: Buffer): void {
    if (this.tunnel) {
      if (!this.tunnel.write(chunk)) this.socket.pause();
      return;
    }
    try {
      this.onData(chunk);
    } catch (err) {
      // A bug must cost one request, never the process: fail it like a broken target answer.
      this.fail(err as Error);
    }
  }

  private onData(chunk: Buffer): void {
    const owner = this.owner;
    switch (this.phase) {
      case Phase.Head:
        this.responseStarted = true;
        this.deadline = this.pool.sweeper.after(this.pool.options.responseTimeoutMs);
        this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
        this.parseHead();
        break;
      case Phase.BodyLength:
      case Phase.BodyChunked:
      case Phase.BodyUntilClose:
        this.touch();
        this.onBody(chunk);
        break;
      default:
        // Bytes while idle: the target is confused; never reuse this socket.
        this.destroy();
    }
    owner?.onDataProcessed();
  }

  private parseHead(): void {
    while (this.phase === Phase.Head && this.pending) {
      const buf = this.pending;
      let head: ResponseHead;
      try {
        const end = findHeadEnd(buf, this.pool.options.limits, false);
        if (end === 0) return;
        head = parseResponseHead(buf, end, this.pool.options.limits);
      } catch (err) {
        return this.fail(err as Error);
      }
      const rest = buf.length > head.headLength ? buf.subarray(head.headLength) : undefined;
      this.pending = undefined;
      const owner = this.owner!;
      if (head.status >= 100 && head.status < 200 && head.status !== 101) {
        owner.onResponseHead(this, head); // interim: another head follows
        this.pending = rest;
        continue;
      }
      if (head.connectionClose || head.minor === 0) this.reusable = false;
      if (head.status === 101) {
        this.phase = Phase.Detached;
        owner.onResponseHead(this, head);
        if (rest) owner.onResponseData(this, rest);
        return;
      }
      if (this.expectNoBody || head.status === 204 || head.status === 304) {
        this.remaining = 0;
        this.phase = Phase.BodyLength;
      } else if (head.chunked) {
        this.scanner = new ChunkedScanner(502);
        this.phase = Phase.BodyChunked;
      } else if (head.contentLength >= 0) {
        this.remaining = head.contentLength;
        this.phase = Phase.BodyLength;
      } else {
        this.phase = Phase.BodyUntilClose;
        this.reusable = false;
      }
      owner.onResponseHead(this, head);
      if (this.phase === Phase.BodyLength && this.remaining === 0) {
        if (rest) this.reusable = false; // bytes after a complete response
        this.finish();
      } else if (rest && this.owner) {
        this.onBody(rest);
      }
    }
  }

  private onBody(chunk: Buffer): void {
    const owner = this.owner;
    if (!owner) return this.destroy();
    if (this.phase === Phase.BodyLength) {
      if (chunk.length <= this.remaining) {
        this.remaining -= chunk.length;
        owner.onResponseData(this, chunk);
      } else {
        owner.onResponseData(this, chunk.subarray(0, this.remaining));
        this.remaining = 0;
        this.reusable = false;
      }
      if (this.remaining === 0) this.finish();
    } else if (this.phase === Phase.BodyChunked) {
      let end: number;
      try {
        end = this.scanner!.scan(chunk);
      } catch (err) {
        return this.fail(err as Error);
      }
      if (end === -1) {
        owner.onResponseData(this, chunk);
      } else {
        owner.onResponseData(this, end === chunk.length ? chunk : chunk.subarray(0, end));
        if (end < chunk.length) this.reusable = false;
        this.finish();
      }
    } else {
      owner.onResponseData(this, chunk);
    }
  }

  private finish(): void {
    this.phase = Phase.Idle;
    this.scanner = undefined;
    this.deadline = 0;
    this.reused = true;
    const owner = this.owner;
    this.owner = undefined;
    owner?.onResponseEnd(this);
  }

  private fail(err: Error): void {
    const owner = this.owner;
    this.destroy();
    owner?.onUpstreamError(this, err, false);
  }

  private onEnd(): void {
    if (this.tunnel) {
      this.tunnel.end();
      return;
    }
    if (this.phase === Phase.BodyUntilClose) {
      this.reusable = false;
      this.finish();
      this.destroy();
      return;
    }
    const owner = this.owner;
    const phase = this.phase;
    this.destroy();
    if (owner && phase !== Phase.Idle) {
      if (phase === Phase.Connecting)
        owner.onUpstreamConnectError(this, new Error('target closed the connection'), false);
      else
        owner.onUpstreamError(
          this,
          new Error('target closed the connection before the response ended'),
          false,
        );
    }
  }

  private onError(err: Error): void {
    const owner = this.owner;
    const phase = this.phase;
    this.destroy();
    if (!owner) return;
    if (phase === Phase.Connecting) owner.onUpstreamConnectError(this, err, false);
    else if (phase !== Phase.Idle) owner.onUpstreamError(this, err, false);
  }

  private onClose(): void {
    if (this.phase !== Phase.Detached) this.phase = Phase.Closed;
    this.target.connections--;
    this.pool.sweeper.delete(this);
    this.pool.forget(this);
  }
}

/** Keep-alive connections to one target: most recently used first, so idle ones age out. */
export class UpstreamPool {
  private readonly idle: UpstreamConnection[] = [];
  private closed = false;

  constructor(
    readonly target: Target,
    public options: UpstreamOptions,
    readonly sweeper: DeadlineSweeper,
  ) {}

  get idleCount(): number {
    return this.idle.length;
  }

  /**
   * Returns an idle connection (already connected; the caller sends at once) or a new connecting one
   * (the owner hears onUpstreamConnect or onUpstreamConnectError).
   */
  acquire(owner: UpstreamOwner): { conn: UpstreamConnection; ready: boolean } {
    let conn: UpstreamConnection | undefined;
    while ((conn = this.idle.pop()) !== undefined) {
      if (conn.idle && !conn.socket.destroyed && conn.socket.writable) {
        conn.owner = owner;
        return { conn, ready: true };
      }
      conn.destroy();
    }
    return { conn: new UpstreamConnection(this.target, this, owner), ready: false };
  }

  release(conn: UpstreamConnection): void {
    if (this.closed || !conn.reusable || !conn.idle || this.idle.length >= this.options.maxIdlePerTarget) {
      conn.destroy();
      return;
    }
    conn.deadline = this.sweeper.after(this.options.idleTimeoutMs);
    this.idle.push(conn);
  }

  forget(conn: UpstreamConnection): void {
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
  }

  /** Closes idle connections now, and any in use when their response ends (draining, shutdown). */
  close(): void {
    this.closed = true;
    for (const conn of this.idle.splice(0)) conn.destroy();
  }
}
