import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import type { CertificateStore } from '../certificates.js';
import { H2Exchange } from './h2-stream.js';
import type { AddressInfo } from 'node:net';
import { rewrapWithOnread } from '../../core/shared-onread.js';
import type { Logger } from '../../core/log.js';
import { addressMatcher } from '../../core/net.js';
import type { Target } from '../../registry/target.js';
import type { GroupRuntime } from '../group-runtime.js';
import type { RetryBudget } from '../retry-budget.js';
import type { Router } from '../router.js';
import { DeadlineSweeper } from './deadlines.js';
import type { HeadLimits } from './head-parser.js';
import {
  ClientSession,
  newProxyStats,
  type ClientTimeouts,
  type RequestRecord,
  type SessionContext,
} from './session.js';
import { UpstreamPool, type UpstreamOptions } from './upstream.js';

export interface HttpListenerOptions {
  name: string;
  host: string;
  port: number;
  router: Router;
  groups: ReadonlyMap<string, GroupRuntime>;
  retryBudget: RetryBudget;
  upstream: UpstreamOptions;
  limits: HeadLimits;
  timeouts: ClientTimeouts;
  maxAttempts: number;
  /** Addresses or CIDRs whose X-Forwarded-* headers are kept and extended. */
  trustedProxies: string[];
  log: Logger;
  onRequest?: (record: RequestRecord) => void;
  /** HTTPS: the listener's certificates (chosen by SNI); HTTP/2 is offered when `http2` is set. */
  tls?: { certificates: CertificateStore; http2: boolean };
}

/** An HTTP/1.1 listener: accepts client connections and proxies their requests by its rules. */
export class HttpListener {
  readonly server: net.Server;
  private readonly ctx: SessionContext;
  private readonly sweeper = new DeadlineSweeper();
  private readonly pools = new Map<Target, UpstreamPool>();
  private upstreamOptions: UpstreamOptions;

  constructor(readonly options: HttpListenerOptions) {
    const sweeper = this.sweeper;
    this.upstreamOptions = options.upstream;
    this.ctx = {
      router: options.router,
      groups: options.groups,
      poolFor: (target) => this.poolFor(target),
      sweeper,
      retryBudget: options.retryBudget,
      limits: options.limits,
      timeouts: options.timeouts,
      maxAttempts: options.maxAttempts,
      proto: options.tls ? 'https' : 'http',
      listenerPort: options.port,
      isTrustedPeer: addressMatcher(options.trustedProxies),
      stats: newProxyStats(),
      onRequest: options.onRequest,
      log: options.log,
      closing: false,
      sessions: new Set(),
    };
    // allowHalfOpen: a client may half-close after its request and still read the response.
    this.server = options.tls
      ? this.createTlsServer(options.tls.certificates, options.tls.http2)
      : net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (accepted) =>
          this.accept(accepted),
        );
    this.server.on('error', (err) => options.log.error({ err }, 'listener error'));
  }

  /** A plain connection: read through `onread` where this Node allows it (see shared-onread.ts). */
  private accept(accepted: net.Socket): void {
    let session: ClientSession | undefined;
    const socket = rewrapWithOnread(accepted, this.server, true, (chunk) => session!.receive(chunk));
    if (socket) {
      session = new ClientSession(socket, this.ctx, false);
    } else {
      session = new ClientSession(accepted, this.ctx);
      accepted.resume();
    }
  }

  /**
   * TLS with SNI; ALPN picks HTTP/2 or HTTP/1.1 per connection. HTTP/1.1 goes through the same
   * ClientSession as plain HTTP; an h2 connection is handed to node:http2 for framing, and each of its
   * streams is proxied by an H2Exchange.
   */
  private createTlsServer(certificates: CertificateStore, offerH2: boolean): net.Server {
    const h2 = offerH2 ? http2.createSecureServer({ allowHTTP1: false }) : undefined;
    h2?.on('stream', (stream, headers) => new H2Exchange(stream, headers, this.ctx));
    h2?.on('sessionError', () => {});
    const server = tls.createServer(
      {
        SNICallback: certificates.sniCallback,
        ALPNProtocols: offerH2 ? ['h2', 'http/1.1'] : ['http/1.1'],
        allowHalfOpen: true,
        ...certificates.defaultPem(),
      },
      (socket) => {
        if (socket.alpnProtocol === 'h2' && h2) h2.emit('secureConnection', socket);
        else new ClientSession(socket, this.ctx);
      },
    );
    certificates.onReload = () => server.setSecureContext(certificates.defaultPem());
    server.on('tlsClientError', (err) =>
      this.options.log.debug({ err: err.message }, 'TLS handshake failed'),
    );
    return server;
  }

  get stats() {
    return this.ctx.stats;
  }

  get activeConnections(): number {
    return this.ctx.sessions.size;
  }

  idleUpstreamConnections(): number {
    let n = 0;
    for (const pool of this.pools.values()) n += pool.idleCount;
    return n;
  }

  /** The keep-alive pool of a target, made on first use. */
  private poolFor(target: Target): UpstreamPool {
    let pool = this.pools.get(target);
    if (!pool) {
      pool = new UpstreamPool(target, this.upstreamOptions, this.sweeper);
      this.pools.set(target, pool);
    }
    return pool;
  }

  /** Swaps rules and target groups atomically (config reload): the next request uses the new ones. */
  update(router: Router, groups: ReadonlyMap<string, GroupRuntime>): void {
    this.ctx.router = router;
    this.ctx.groups = groups;
  }

  /** A reload that keeps the address: new rules, timeouts and limits apply from the next request on. */
  reconfigure(options: HttpListenerOptions): void {
    this.update(options.router, options.groups);
    this.ctx.limits = options.limits;
    this.ctx.timeouts = options.timeouts;
    this.ctx.maxAttempts = options.maxAttempts;
    this.ctx.isTrustedPeer = addressMatcher(options.trustedProxies);
    this.ctx.onRequest = options.onRequest;
    this.upstreamOptions = options.upstream;
    for (const pool of this.pools.values()) pool.options = options.upstream;
  }

  /** Closes the pooled connections of a target that left its group (or is draining). */
  dropTarget(target: Target): void {
    this.pools.get(target)?.close();
    this.pools.delete(target);
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: this.options.host, port: this.options.port, backlog: 4096 }, () => {
        this.server.off('error', onError);
        const address = this.server.address() as AddressInfo;
        this.ctx.listenerPort = address.port;
        resolve(address);
      });
    });
  }

  /**
   * Graceful stop: no new connections; idle keep-alive connections close now, busy ones after their
   * current response; whatever is left after `drainTimeoutMs` is cut.
   */
  async close(drainTimeoutMs: number): Promise<void> {
    this.ctx.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.ctx.sessions) session.shutdown();
    const deadline = Date.now() + drainTimeoutMs;
    while (this.ctx.sessions.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      for (const session of this.ctx.sessions) session.shutdown();
    }
    for (const session of this.ctx.sessions) session.close();
    for (const pool of this.pools.values()) pool.close();
    this.sweeper.stop();
    await closed;
  }
}
