// The sockets: one UDP socket and one TCP listener on the same address and port. Each packet or TCP
// frame goes to the Responder; nothing a client sends can throw out of a handler.
import dgram from 'node:dgram';
import net from 'node:net';
import { isIPv6 } from 'node:net';
import type { Logger } from '../core/log.js';
import type { DnsMetrics } from './metrics.js';
import type { Responder } from './responder.js';

export interface ServerOptions {
  host: string;
  port: number;
  /** Close a TCP connection after this long without a complete query (RFC 7766 suggests seconds). */
  tcpIdleTimeoutMs: number;
  /** Largest TCP query accepted; a bigger length prefix closes the connection. */
  maxTcpQueryBytes: number;
  maxTcpConnections: number;
  maxTcpConnectionsPerSource: number;
}

export const DEFAULT_SERVER_OPTIONS: Omit<ServerOptions, 'host' | 'port'> = {
  tcpIdleTimeoutMs: 10_000,
  maxTcpQueryBytes: 4096,
  maxTcpConnections: 1000,
  maxTcpConnectionsPerSource: 64,
};

/**
 * We only ever send to the address a datagram came from, which is an IP literal. The default lookup
 * (dns.lookup) answers literals too, but through process.nextTick, which costs a tick per answer;
 * this one calls back synchronously.
 */
function literalLookup(
  address: string,
  family: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, address, family === 6 ? 6 : 4);
}

/** Stop reading from a TCP client whose unread answers pile up beyond this (it pipelines but never reads). */
const MAX_TCP_BACKLOG = 1 << 20;

export class DnsServer {
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();
  private readonly perSource = new Map<string, number>();
  port = 0;

  constructor(
    private readonly responder: Responder,
    private readonly metrics: DnsMetrics,
    private readonly options: ServerOptions,
    private readonly log: Logger,
  ) {}

  /** Binds UDP first (port 0 picks a free one), then TCP on the same port; retries if TCP's is taken. */
  async listen(): Promise<{ host: string; port: number }> {
    for (let attempt = 0; ; attempt++) {
      const udp = await this.bindUdp(this.options.port);
      const port = udp.address().port;
      try {
        this.tcp = await this.bindTcp(port);
        this.udp = udp;
        this.port = port;
        return { host: this.options.host, port };
      } catch (err) {
        udp.close();
        if (this.options.port !== 0 || attempt >= 10) throw err;
      }
    }
  }

  private bindUdp(port: number): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({
        type: isIPv6(this.options.host) ? 'udp6' : 'udp4',
        lookup: literalLookup,
      });
      socket.once('error', reject);
      socket.bind(port, this.options.host, () => {
        socket.off('error', reject);
        socket.on('error', (err) => this.log.error({ err }, 'UDP socket error'));
        socket.on('message', (msg, rinfo) => this.onUdp(socket, msg, rinfo));
        resolve(socket);
      });
    });
  }

  private onUdp(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let reply: Buffer | Buffer[] | null;
    try {
      reply = this.responder.respond(msg, rinfo.address, false);
    } catch (err) {
      // A bug, not bad input (the decoder rejects bad input without throwing): keep serving others.
      this.metrics.dropped.get({ reason: 'internal_error' }).n++;
      this.log.error({ err, client: rinfo.address }, 'internal error answering a UDP query');
      return;
    }
    if (reply === null) return;
    if (Array.isArray(reply)) reply = reply[0]!;
    socket.send(reply, rinfo.port, rinfo.address);
  }

  private bindTcp(port: number): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ noDelay: true }, (socket) => this.onTcp(socket));
      server.maxConnections = this.options.maxTcpConnections;
      server.once('error', reject);
      server.listen(port, this.options.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error({ err }, 'TCP listener error'));
        resolve(server);
      });
    });
  }

  private onTcp(socket: net.Socket): void {
    const source = socket.remoteAddress ?? '?';
    const open = (this.perSource.get(source) ?? 0) + 1;
    if (open > this.options.maxTcpConnectionsPerSource) {
      this.metrics.dropped.get({ reason: 'tcp_per_source_limit' }).n++;
      socket.destroy();
      return;
    }
    this.perSource.set(source, open);
    this.connections.add(socket);
    this.metrics.tcpConnections++;
    socket.setTimeout(this.options.tcpIdleTimeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      this.connections.delete(socket);
      this.metrics.tcpConnections--;
      const n = (this.perSource.get(source) ?? 1) - 1;
      if (n <= 0) this.perSource.delete(source);
      else this.perSource.set(source, n);
    });
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      // RFC 7766 pipelining: answer every complete frame in order.
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (len > this.options.maxTcpQueryBytes || len < 12) {
          this.metrics.dropped.get({ reason: len < 12 ? 'tcp_frame_too_short' : 'tcp_frame_too_large' }).n++;
          socket.destroy();
          return;
        }
        if (pending.length < 2 + len) break;
        const frame = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        this.answerTcp(socket, frame, source);
        if (socket.destroyed) return;
      }
      if (socket.writableLength > MAX_TCP_BACKLOG) {
        this.metrics.dropped.get({ reason: 'tcp_backlog' }).n++;
        socket.destroy();
      }
    });
  }

  private answerTcp(socket: net.Socket, frame: Buffer, source: string): void {
    let reply: Buffer | Buffer[] | null;
    try {
      reply = this.responder.respond(frame, source, true);
    } catch (err) {
      this.metrics.dropped.get({ reason: 'internal_error' }).n++;
      this.log.error({ err, client: source }, 'internal error answering a TCP query');
      socket.destroy();
      return;
    }
    if (reply === null) {
      // Nothing sensible to answer (e.g. a response sent to us): RFC 7766 lets us close.
      socket.destroy();
      return;
    }
    for (const msg of Array.isArray(reply) ? reply : [reply]) {
      const prefix = Buffer.allocUnsafe(2);
      prefix.writeUInt16BE(msg.length);
      socket.write(Buffer.concat([prefix, msg]));
    }
  }

  async close(): Promise<void> {
    for (const s of this.connections) s.destroy();
    await Promise.all([
      new Promise<void>((resolve) => (this.udp ? this.udp.close(() => resolve()) : resolve())),
      new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve())),
    ]);
  }
}
