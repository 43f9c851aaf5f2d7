// The supervisor's control endpoint: HTTP over a unix socket in DATA/run/, so `scaleout scale` and
// `scaleout down` find a running topology by its data dir, and only users who can reach that folder
// can use it (no port, no token). JSON in and out; errors are {"error": "..."} with 400/404 (413: body
// over 64 KiB). Bodies are read by the admin API's readJson.
import http from 'node:http';
import { rmSync } from 'node:fs';
import { ApiError, readJson } from '../admin/http.js';
import type { ControlPlane } from '../dashboard/control-plane.js';

export interface ControlHandlers {
  control: ControlPlane;
  /** POST /stop: stop the whole topology (as SIGTERM does). */
  stop: () => void;
}

async function readBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readJson(req, { maxBytes: 65_536, emptyAs: {} });
  if (!body || typeof body !== 'object') throw new Error('expected a JSON object');
  return body as Record<string, unknown>;
}

export async function startControlServer(
  socketPath: string,
  handlers: ControlHandlers,
): Promise<http.Server> {
  rmSync(socketPath, { force: true });
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    void (async () => {
      try {
        const { control } = handlers;
        const body = req.method === 'POST' ? await readBody(req) : {};
        const route = `${req.method} ${req.url}`;
        if (route === 'GET /status') return send(200, control.snapshot());
        if (route === 'POST /scale') {
          const tier = body.tier ?? 'app';
          if (tier !== 'app') return send(400, { error: `only the app tier scales (got "${String(tier)}")` });
          await control.scale('app', Number(body.count));
          return send(200, control.snapshot());
        }
        if (route === 'POST /kill' || route === 'POST /restart') {
          const name = String(body.name ?? '');
          const known = control.snapshot().components.some((c) => c.name === name);
          if (!known) return send(404, { error: `no component named "${name}"` });
          await (route === 'POST /kill' ? control.kill(name) : control.restart(name));
          return send(200, control.snapshot());
        }
        if (route === 'POST /stop') {
          send(202, { stopping: true });
          handlers.stop();
          return;
        }
        send(404, { error: `no such endpoint: ${route}` });
      } catch (err) {
        send(err instanceof ApiError ? err.status : 400, { error: (err as Error).message });
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return server;
}

/** One request to a running supervisor's control socket. */
export function controlRequest(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 120_000,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, method, path, headers: { 'content-type': 'application/json' }, timeout: timeoutMs },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: { error: text } });
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from the supervisor within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
