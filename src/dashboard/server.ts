// The dashboard's HTTP server (node:http): the page and its assets, the JSON state and history, live
// updates by server-sent events, and the actions. Not a hot path, so a plain route table will do.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJson } from '../admin/http.js';
import type { Logger } from '../core/log.js';
import { formatHostPort } from '../core/types.js';
import { DashboardError, TARGET_ACTIONS, TargetActions, type TargetAction } from './actions.js';
import type { Collector, DashboardState } from './collector.js';
import { APP_INSTANCES, type ControlPlane } from './control-plane.js';

// src/dashboard/ and dist/dashboard/ sit at the same depth, so the package root is two levels up from
// either, and the static files are read from src/dashboard/static/ by both (tsc does not copy them).
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STATIC_DIR = join(PACKAGE_ROOT, 'src', 'dashboard', 'static');
const requireFromHere = createRequire(import.meta.url);

const ASSETS: Record<string, () => string> = {
  '/': () => join(STATIC_DIR, 'index.html'),
  '/static/app.js': () => join(STATIC_DIR, 'app.js'),
  '/static/topology.js': () => join(STATIC_DIR, 'topology.js'),
  '/static/style.css': () => join(STATIC_DIR, 'style.css'),
  '/vendor/uPlot.iife.min.js': () => requireFromHere.resolve('uplot/dist/uPlot.iife.min.js'),
  '/vendor/uPlot.min.css': () => requireFromHere.resolve('uplot/dist/uPlot.min.css'),
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

const MAX_BODY_BYTES = 16 * 1024;

export interface DashboardServerOptions {
  collector: Collector;
  control: ControlPlane;
  token: string | undefined;
  log: Logger;
}

export class DashboardServer {
  private readonly server: http.Server;
  private readonly streams = new Set<http.ServerResponse>();
  private readonly tokenDigest: Buffer | undefined;
  private readonly actions = new TargetActions();
  private readonly assetCache = new Map<string, Buffer>();
  private readonly onUpdate = (state: DashboardState) => this.broadcast(state);

  constructor(private readonly options: DashboardServerOptions) {
    this.tokenDigest = options.token === undefined ? undefined : sha256(options.token);
    this.server = http.createServer((req, res) => void this.handle(req, res));
    options.collector.on('update', this.onUpdate);
  }

  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address() as AddressInfo;
        resolve(`http://${formatHostPort(host, addr.port)}/`);
      });
    });
  }

  async close(): Promise<void> {
    this.options.collector.off('update', this.onUpdate);
    for (const res of this.streams) res.end();
    this.streams.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.actions.close();
  }

  // ---- requests ----------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://dashboard');
      const method = req.method ?? 'GET';
      if (method === 'GET' && ASSETS[url.pathname]) return await this.asset(url.pathname, res);
      if (!url.pathname.startsWith('/api/'))
        throw new DashboardError(404, 'not_found', `no such page: ${url.pathname}`);
      this.authorize(req);
      if (method === 'GET') {
        if (url.pathname === '/api/state') return json(res, 200, await this.options.collector.current());
        if (url.pathname === '/api/history') return json(res, 200, this.history(url));
        if (url.pathname === '/api/events') return await this.stream(res);
      }
      if (method === 'POST') {
        checkPostRequest(req);
        const target = /^\/api\/targets\/([^/]+)\/([^/]+)\/([a-z]+)$/.exec(url.pathname);
        if (target) return json(res, 200, await this.targetAction(target[1]!, target[2]!, target[3]!));
        const component = /^\/api\/components\/([^/]+)\/([a-z]+)$/.exec(url.pathname);
        if (component)
          return json(res, 200, await this.componentAction(decode(component[1]!), component[2]!));
        if (url.pathname === '/api/scale')
          return json(
            res,
            200,
            await this.scale(await readJson(req, { maxBytes: MAX_BODY_BYTES, emptyAs: {} })),
          );
      }
      throw new DashboardError(404, 'not_found', `no such endpoint: ${method} ${url.pathname}`);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof DashboardError) {
        const error: Record<string, unknown> = { code: err.code, message: err.message };
        if (err.details !== undefined) error.details = err.details;
        if (!req.complete) res.setHeader('connection', 'close');
        return json(res, err.status, { error });
      }
      this.options.log.error({ err }, 'dashboard request failed');
      json(res, 500, { error: { code: 'internal', message: (err as Error).message } });
    }
  }

  private authorize(req: http.IncomingMessage): void {
    if (!this.tokenDigest) return;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    // Compare digests so the time taken does not depend on how much of a guess is right.
    if (m && timingSafeEqual(sha256(m[1]!), this.tokenDigest)) return;
    throw new DashboardError(
      401,
      'unauthorized',
      req.headers.authorization
        ? 'the bearer token is wrong'
        : 'this dashboard needs "Authorization: Bearer <token>"',
    );
  }

  private async asset(path: string, res: http.ServerResponse): Promise<void> {
    const file = ASSETS[path]!();
    let data = this.assetCache.get(file);
    if (!data) {
      data = await readFile(file);
      this.assetCache.set(file, data);
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    res.end(data);
  }

  private history(url: URL) {
    const series = url.searchParams.get('series');
    const seconds = url.searchParams.get('seconds');
    const n = seconds === null ? undefined : Number(seconds);
    if (n !== undefined && !(Number.isInteger(n) && n > 0))
      throw new DashboardError(
        400,
        'bad_request',
        `seconds must be a positive whole number, not "${seconds}"`,
      );
    const keys = series === null ? undefined : series.split(',').filter((s) => s !== '');
    return this.options.collector.history.view(keys, n);
  }

  /** Server-sent events: the state now, then each new one. A client that cannot keep up misses ticks. */
  private async stream(res: http.ServerResponse): Promise<void> {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    this.streams.add(res);
    res.on('close', () => this.streams.delete(res));
    const state = this.options.collector.state() ?? (await this.options.collector.current());
    if (!res.writableEnded) res.write(`event: state\ndata: ${JSON.stringify(state)}\n\n`);
  }

  private broadcast(state: DashboardState): void {
    if (this.streams.size === 0) return;
    const message = `event: state\ndata: ${JSON.stringify(state)}\n\n`;
    for (const res of this.streams) {
      if (res.writableNeedDrain) continue;
      res.write(message);
    }
  }

  // ---- actions -----------------------------------------------------------------------------------

  private async targetAction(groupRaw: string, idRaw: string, action: string) {
    if (!(TARGET_ACTIONS as readonly string[]).includes(action))
      throw new DashboardError(
        404,
        'not_found',
        `no target action "${action}" (use ${TARGET_ACTIONS.join(', ')})`,
      );
    const group = decode(groupRaw);
    const id = decode(idRaw);
    const state = await this.options.collector.current();
    const known = state.lb.groups.find((g) => g.name === group)?.targets.find((t) => t.id === id);
    const lbs = this.options.control.snapshot().components.filter((c) => c.kind === 'lb');
    const result = await this.actions.run(lbs, action as TargetAction, group, id, known);
    this.options.log.info({ action, targetGroup: group, target: id }, `dashboard: ${action} ${group}/${id}`);
    for (const r of result.results) {
      const body = r.body as { before?: { state: string } | null; after?: { state: string; reason: string } };
      if (body.after)
        this.options.collector.note({
          at: Date.now(),
          source: r.lb,
          kind: 'target',
          subject: `${group}/${id}`,
          from: body.before?.state ?? null,
          to: body.after.state,
          reason: body.after.reason,
          detail: `dashboard: ${action}`,
        });
    }
    // Poll now so the page shows the new state without waiting for the next tick.
    void this.options.collector.tick().catch(() => {});
    return result;
  }

  private async componentAction(name: string, action: string) {
    if (action !== 'kill' && action !== 'restart')
      throw new DashboardError(404, 'not_found', `no component action "${action}" (use kill, restart)`);
    const control = this.options.control;
    const components = control.snapshot().components;
    if (!components.some((c) => c.name === name))
      throw new DashboardError(
        404,
        'unknown_component',
        `no component "${name}"; known: ${components.map((c) => c.name).join(', ') || 'none'}`,
      );
    requireControl(control);
    await controlCall(`${action} ${name}`, () =>
      action === 'kill' ? control.kill(name) : control.restart(name),
    );
    this.options.log.info({ component: name, action }, `dashboard: ${action} ${name}`);
    return { action, component: name };
  }

  private async scale(body: unknown) {
    const b = (body ?? {}) as { tier?: unknown; count?: unknown };
    if (b.tier !== 'app')
      throw new DashboardError(400, 'invalid_body', `tier must be "app", not ${JSON.stringify(b.tier)}`);
    const count = b.count;
    const { min, max } = APP_INSTANCES;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < min || count > max)
      throw new DashboardError(
        400,
        'invalid_body',
        `count must be a whole number from ${min} to ${max}, not ${JSON.stringify(count)}`,
      );
    requireControl(this.options.control);
    await controlCall(`scale app=${count}`, () => this.options.control.scale('app', count));
    this.options.log.info({ tier: 'app', count }, `dashboard: scale app=${count}`);
    return { tier: 'app', count };
  }
}

/** The supervisor could not do it (a port in use, a process that will not start): say what and why. */
async function controlCall(what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    throw new DashboardError(500, 'action_failed', `${what} failed: ${(err as Error).message}`);
  }
}

function requireControl(control: ControlPlane): void {
  if (!control.canControl)
    throw new DashboardError(
      409,
      'no_control',
      'this dashboard watches remote components: it cannot start, stop or scale processes (drain and disable work)',
    );
}

/**
 * A POST must say it is JSON: a page on another site can send a form or text/plain POST to a loopback
 * address without asking, but not application/json (that needs a CORS preflight, which we never allow).
 */
function checkPostRequest(req: http.IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json')
    throw new DashboardError(415, 'unsupported_media_type', 'actions take "content-type: application/json"');
}

function decode(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new DashboardError(400, 'bad_request', `"${raw}" is not valid percent-encoding`);
  }
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(`${JSON.stringify(body)}\n`);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
