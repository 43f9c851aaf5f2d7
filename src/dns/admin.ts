// A small admin HTTP endpoint for `scaleout dns` until the shared admin API exists:
// GET /metrics (Prometheus), GET /status (JSON), POST /drain and /undrain ?recordSet=NAME[/TYPE]&address=IP.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../core/log.js';
import { formatHostPort } from '../core/types.js';
import type { DnsService } from './service.js';

export class AdminServer {
  private server: http.Server | undefined;

  constructor(
    private readonly service: DnsService,
    private readonly log: Logger,
  ) {}

  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const server = http.createServer((req, res) => {
        this.handle(req, res).catch((err: unknown) => {
          this.log.error({ err }, 'admin request failed');
          if (!res.headersSent) send(res, 500, { error: 'internal error' });
        });
      });
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        this.server = server;
        const addr = server.address() as AddressInfo;
        resolve(formatHostPort(host, addr.port));
      });
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method === 'GET' && url.pathname === '/metrics') {
      const body = await this.service.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.service.metrics.registry.contentType });
      res.end(body);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/status') {
      send(res, 200, this.service.status());
      return;
    }
    if (req.method === 'POST' && (url.pathname === '/drain' || url.pathname === '/undrain')) {
      const recordSet = url.searchParams.get('recordSet');
      const address = url.searchParams.get('address');
      if (!recordSet || !address) {
        send(res, 400, { error: 'recordSet and address query parameters are required' });
        return;
      }
      try {
        if (url.pathname === '/drain') {
          const { safeToStopAt } = this.service.drain(recordSet, address);
          send(res, 200, {
            recordSet,
            address,
            draining: true,
            safeToStopAt: new Date(safeToStopAt).toISOString(),
          });
        } else {
          this.service.undrain(recordSet, address);
          send(res, 200, { recordSet, address, draining: false });
        }
      } catch (err) {
        send(res, 404, { error: (err as Error).message });
      }
      return;
    }
    send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body, null, 2) + '\n');
}
