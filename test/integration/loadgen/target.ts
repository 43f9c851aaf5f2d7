// A real HTTP server for load generator tests: it records when each request arrived, names an
// "instance" in X-Scaleout-Instance (rotating over `instances`, as a load balancer would spread them),
// and can stall: hold every answer until a moment in the future.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { atFileEnd } from '../../helpers/postgres.js';

export class LoadTarget {
  readonly arrivals: number[] = [];
  instances: string[] = ['only'];
  /** When set, answers wait until performance.now() reaches this. */
  holdUntil = 0;
  /** Called with the arrival count of each request (e.g. to start a stall at request N). */
  onArrival?: (n: number) => void;
  private server!: http.Server;
  private next = 0;
  url = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 10_000;
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    atFileEnd(() => this.stop());
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.arrivals.push(performance.now());
    this.onArrival?.(this.arrivals.length);
    req.resume();
    const path = req.url ?? '/';
    if (path === '/reset') {
      req.socket.destroy();
      return;
    }
    if (path === '/never') return; // no answer at all
    const answer = (): void => {
      const headers: Record<string, string> = { 'content-type': 'text/plain' };
      if (path !== '/unlabelled')
        headers['x-scaleout-instance'] = this.instances[this.next++ % this.instances.length]!;
      const status = /^\/status\/(\d{3})$/.exec(path)?.[1];
      res.writeHead(status ? Number(status) : 200, headers).end('ok\n');
    };
    const wait = this.holdUntil - performance.now();
    if (wait > 0) setTimeout(answer, wait);
    else answer();
  }
}
