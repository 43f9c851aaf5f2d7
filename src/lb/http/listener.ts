import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../core/log.js';
import type { PassiveHealth } from '../../health/passive.js';
import type { Target } from '../../registry/target.js';
import type { TargetGroup } from '../../registry/target-group.js';
import type { RetryBudget } from '../retry-budget.js';
import { DeadlineSweeper } from './deadlines.js';
import type { HeadLimits, RequestHead } from './head-parser.js';
import { ClientSession, newProxyStats, type ClientTimeouts, type SessionContext } from './session.js';
import { UpstreamPool, type UpstreamOptions } from './upstream.js';

/** Where a hash-based algorithm takes its key from. */
export type HashOn =
  { kind: 'source-ip' } | { kind: 'header'; name: string } | { kind: 'cookie'; name: string };

export interface HttpListenerOptions {
  host: string;
  port: number;
  group: TargetGroup;
  passive: PassiveHealth;
  retryBudget: RetryBudget;
  upstream: UpstreamOptions;
  limits: HeadLimits;
  timeouts: ClientTimeouts;
  maxAttempts: number;
  /** Addresses or CIDRs whose X-Forwarded-* headers are kept and extended. */
  trustedProxies: string[];
  hashOn: HashOn;
  log: Logger;
}

function trustedMatcher(entries: string[]): (ip: string) => boolean {
  if (entries.length === 0) return () => false;
  const list = new net.BlockList();
  for (const entry of entries) {
    const [addr, bits] = entry.split('/');
    const type = net.isIPv6(addr!) ? 'ipv6' : 'ipv4';
    if (!net.isIP(addr!)) throw new Error(`trusted proxy "${entry}" is not an IP address or CIDR`);
    if (bits === undefined) list.addAddress(addr!, type);
    else list.addSubnet(addr!, Number(bits), type);
  }
  return (ip) => {
    const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
    return list.check(v4, net.isIPv6(v4) ? 'ipv6' : 'ipv4');
  };
}

function headerValue(head: RequestHead, lowerName: string): string | undefined {
  const h = head.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i]!.toLowerCase() === lowerName) return h[i + 1];
  return undefined;
}

function cookieValue(head: RequestHead, name: string): string | undefined {
  const cookies = headerValue(head, 'cookie');
  if (!cookies) return undefined;
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function hashKeyFunction(hashOn: HashOn): SessionContext['hashKey'] {
  switch (hashOn.kind) {
    case 'source-ip':
      return (_head, ip) => ip;
    case 'header': {
      const lower = hashOn.name.toLowerCase();
      return (head) => headerValue(head, lower);
    }
    case 'cookie':
      return (head) => cookieValue(head, hashOn.name);
  }
}

/** An HTTP/1.1 listener: accepts client connections and proxies their requests to one target group. */
export class HttpListener {
  readonly server: net.Server;
  private readonly ctx: SessionContext;
  private readonly sweeper = new DeadlineSweeper();
  private readonly pools = new Map<string, UpstreamPool>();

  constructor(private readonly options: HttpListenerOptions) {
    const pools = this.pools;
    const sweeper = this.sweeper;
    this.ctx = {
      group: options.group,
      poolFor(target: Target): UpstreamPool {
        let pool = pools.get(target.id);
        if (!pool || pool.target !== target) {
          pool?.close();
          pool = new UpstreamPool(target, options.upstream, sweeper);
          pools.set(target.id, pool);
        }
        return pool;
      },
      sweeper,
      passive: options.passive,
      retryBudget: options.retryBudget,
      limits: options.limits,
      timeouts: options.timeouts,
      maxAttempts: options.maxAttempts,
      proto: 'http',
      listenerPort: options.port,
      isTrustedPeer: trustedMatcher(options.trustedProxies),
      hashKey: hashKeyFunction(options.hashOn),
      stats: newProxyStats(),
      log: options.log,
      closing: false,
      sessions: new Set(),
    };
    // allowHalfOpen: a client may half-close after its request and still read the response.
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      new ClientSession(socket, this.ctx);
    });
    this.server.on('error', (err) => options.log.error({ err }, 'listener error'));
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

  /** Closes the pooled connections of a target that left the group. */
  dropTarget(id: string): void {
    this.pools.get(id)?.close();
    this.pools.delete(id);
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
