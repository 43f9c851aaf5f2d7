// Real HTTP target servers for load balancer tests: each records what reached it and can be made slow,
// failing, reset-happy or killed and restarted on the same port.
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  bodyBytes: number;
}

export class TestTarget {
  port = 0;
  readonly requests: RecordedRequest[] = [];
  connectionsAccepted = 0;
  /** Delay before answering ordinary requests. */
  delayMs = 0;
  /** Status for ordinary requests. */
  status = 200;
  /** Status for the health-check path. */
  healthStatus = 200;
  /** Reset the connection instead of answering ordinary requests. */
  resetRequests = false;
  /** A Set-Cookie header for ordinary responses (an application's own session cookie). */
  setCookie: string | undefined;
  private server: http.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  get id(): string {
    return `127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Requests other than health checks. */
  traffic(): RecordedRequest[] {
    return this.requests.filter((r) => r.url !== '/healthz');
  }

  async start(port = this.port): Promise<this> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 5000;
    server.on('connection', (socket) => {
      this.connectionsAccepted++;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('upgrade', (req, socket) => {
      // A minimal echo for upgrade tests that don't need a real WebSocket peer.
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
      socket.pipe(socket);
      this.record(req, 0);
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** Kills the server: stops listening and resets every open connection. */
  async kill(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private record(req: http.IncomingMessage, bodyBytes: number): void {
    this.requests.push({
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyBytes,
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/healthz') {
      this.record(req, 0);
      res.writeHead(this.healthStatus).end('health\n');
      return;
    }
    if (url.pathname === '/echo') {
      // Streams the request body straight back.
      res.writeHead(200, { 'x-target': String(this.port) });
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => this.record(req, n));
      req.pipe(res);
      return;
    }
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => (bodyBytes += c.length));
    req.on('end', () => {
      this.record(req, bodyBytes);
      if (url.pathname === '/reset' || this.resetRequests) {
        req.socket.destroy();
        return;
      }
      if (url.pathname === '/download') {
        this.download(res, Number(url.searchParams.get('bytes') ?? 0));
        return;
      }
      const answer = () => {
        if (res.destroyed) return;
        res.writeHead(this.status, {
          'content-type': 'text/plain',
          'x-target': String(this.port),
          ...(this.setCookie ? { 'set-cookie': this.setCookie } : {}),
        });
        res.end(`target ${this.port} ${req.method} ${req.url} body=${bodyBytes}\n`);
      };
      if (this.delayMs > 0) setTimeout(answer, this.delayMs);
      else answer();
    });
  }

  /** Streams `bytes` bytes of a repeating pattern, honouring backpressure. */
  private download(res: http.ServerResponse, bytes: number): void {
    res.writeHead(200, { 'content-length': String(bytes), 'x-target': String(this.port) });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let left = bytes;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  }
}

export async function startTargets(count: number): Promise<TestTarget[]> {
  return Promise.all(Array.from({ length: count }, () => new TestTarget().start()));
}

export async function stopTargets(targets: TestTarget[]): Promise<void> {
  await Promise.all(targets.map((t) => t.kill()));
}
