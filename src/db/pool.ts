// A pool of authenticated connections to one server. tryAcquire() is the synchronous fast path used for
// every statement; acquire() opens a new connection (up to `max`) or waits in line for a released one.
import { ServerConnection, ServerError, type ServerEndpoint } from './server-connection.js';

export interface PoolOptions {
  max: number;
  connectTimeoutMs: number;
  acquireTimeoutMs: number;
  applicationName: string;
}

interface Waiter {
  resolve: (c: ServerConnection) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class ServerPool {
  private readonly idle: ServerConnection[] = [];
  private readonly waiters: Waiter[] = [];
  /** Open or opening connections. */
  size = 0;
  inUse = 0;
  /** Called when a connection attempt fails (the cluster bans the server). */
  onConnectError: ((err: Error) => void) | undefined;
  onConnected: ((conn: ServerConnection) => void) | undefined;
  closed = false;

  constructor(
    readonly endpoint: ServerEndpoint,
    private readonly options: PoolOptions,
  ) {}

  get idleCount(): number {
    return this.idle.length;
  }
  get waiting(): number {
    return this.waiters.length;
  }

  tryAcquire(): ServerConnection | undefined {
    while (this.idle.length > 0) {
      const conn = this.idle.pop()!;
      if (!conn.closed) {
        this.inUse++;
        return conn;
      }
    }
    return undefined;
  }

  acquire(): Promise<ServerConnection> {
    const conn = this.tryAcquire();
    if (conn) return Promise.resolve(conn);
    if (this.closed) return Promise.reject(new ServerError('pool is closed', '08006'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(
          new ServerError(
            `no connection to ${this.endpoint.id} free within ${this.options.acquireTimeoutMs} ms`,
            '53300',
          ),
        );
      }, this.options.acquireTimeoutMs);
      const waiter: Waiter = { resolve, reject, timer };
      this.waiters.push(waiter);
      if (this.size < this.options.max) this.grow();
    });
  }

  private grow(): void {
    this.size++;
    ServerConnection.connect(this.endpoint, {
      timeoutMs: this.options.connectTimeoutMs,
      applicationName: this.options.applicationName,
    }).then(
      (conn) => {
        this.onConnected?.(conn);
        this.watchIdle(conn);
        this.inUse++;
        this.release(conn);
      },
      (err: Error) => {
        this.size--;
        this.onConnectError?.(err);
        // Everyone waiting for this server learns now, rather than at their timeout.
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(err);
        }
      },
    );
  }

  /** The handler of idle connections: one object for the pool, not one per release. */
  private readonly idleHandler = {
    onServerMessage: (conn: ServerConnection) => conn.discard(), // nothing may arrive on an idle connection
    onServerChunkEnd: () => {},
    onServerClose: (conn: ServerConnection) => this.forget(conn),
  };

  /** An idle connection that closes (server restart, idle kill) leaves the pool quietly. */
  private watchIdle(conn: ServerConnection): void {
    conn.handler = this.idleHandler;
  }

  private forget(conn: ServerConnection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) {
      this.idle.splice(i, 1);
      this.size--;
    }
  }

  /** Returns a connection that is idle (ReadyForQuery 'I', nothing in flight) to the pool. */
  release(conn: ServerConnection): void {
    this.inUse--;
    if (conn.closed || this.closed) {
      this.dropped(conn);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      this.inUse++;
      waiter.resolve(conn);
      return;
    }
    this.watchIdle(conn);
    this.idle.push(conn);
  }

  /** A connection in use that must not be reused: closes it and lets a waiter have a fresh one. */
  discard(conn: ServerConnection): void {
    this.inUse--;
    conn.discard();
    this.dropped(conn);
  }

  private dropped(_conn: ServerConnection): void {
    this.size--;
    if (this.waiters.length > 0 && this.size < this.options.max && !this.closed) this.grow();
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.discard();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new ServerError('proxy is shutting down', '57P01'));
    }
  }
}
