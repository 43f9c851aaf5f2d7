// The demo app's HTTP API (a URL shortener). Every answer names the instance that gave it, in the
// X-Scaleout-Instance header and, for JSON, an `instance` field, so a load balancer's spread is visible.
import type http from 'node:http';
import type { Logger } from '../core/log.js';
import { isCode } from './codes.js';
import { isUnavailable, type LinkStore } from './store.js';

/** The cookie carrying the user's read-your-writes token (opaque, from `SHOW scaleout.last_lsn`). */
export const TOKEN_COOKIE = 'scaleout_lsn';
/**
 * How long a token is worth keeping: replicas far behind are cut off by the proxy's max lag anyway,
 * so after a few minutes the token no longer changes where a read goes and only costs a SET.
 */
const TOKEN_MAX_AGE_S = 300;
const MAX_BODY_BYTES = 8 * 1024;
const MAX_URL_LENGTH = 2048;

export const ENDPOINTS = [
  'GET  /healthz            200 when the database answers, else 503',
  'GET  /api/links?limit=N  the newest links (N ≤ 100, default 20)',
  'GET  /api/links/CODE     one link',
  'POST /api/links          {"url": "https://…"} → 201 with the new link',
  'GET  /r/CODE             302 redirect to the link',
];

export interface AppState {
  instance: string;
  store: LinkStore;
  log: Logger;
  /** false until the schema exists: every endpoint but / answers 503. */
  ready: boolean;
  /** true once shutdown began: answers carry Connection: close. */
  closing: boolean;
}

type Json = Record<string, unknown>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function handleRequest(app: AppState, req: http.IncomingMessage, res: http.ServerResponse): void {
  res.setHeader('X-Scaleout-Instance', app.instance);
  if (app.closing) res.shouldKeepAlive = false;
  route(app, req, res).catch((err: unknown) => {
    const status = err instanceof HttpError ? err.status : isUnavailable(err) ? 503 : 500;
    const message =
      err instanceof HttpError ? err.message : status === 503 ? 'database unavailable' : 'internal error';
    if (err instanceof HttpError) for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
    else app.log.warn({ method: req.method, url: req.url, error: (err as Error).message, status }, message);
    sendJson(app, res, status, {
      error: message,
      ...(err instanceof HttpError ? {} : { detail: (err as Error).message }),
    });
  });
}

async function route(app: AppState, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://demo-app');
  const path = url.pathname;
  const method = req.method ?? 'GET';

  if (path === '/') {
    allow(method, ['GET']);
    return sendJson(app, res, 200, { service: 'scaleout demo app (URL shortener)', endpoints: ENDPOINTS });
  }
  if (path === '/healthz') {
    allow(method, ['GET', 'HEAD']);
    return health(app, res);
  }
  if (!app.ready) throw new HttpError(503, 'starting: the database schema is not ready yet');

  if (path === '/api/links') {
    allow(method, ['GET', 'POST']);
    if (method === 'POST') return createLink(app, req, res);
    const limit = url.searchParams.has('limit') ? Number(url.searchParams.get('limit')) : 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      throw new HttpError(400, 'limit must be a whole number from 1 to 100');
    const links = await app.store.latest(limit, readToken(req));
    return sendJson(app, res, 200, { links });
  }
  const linkMatch = /^\/api\/links\/([^/]+)$/.exec(path) ?? /^\/r\/([^/]+)$/.exec(path);
  if (linkMatch) {
    allow(method, ['GET']);
    const code = linkMatch[1]!; // codes are plain letters and digits: anything else is no link
    const link = isCode(code) ? await app.store.get(code, readToken(req)) : undefined;
    if (!link) throw new HttpError(404, `no link ${JSON.stringify(code)}`);
    if (path.startsWith('/r/')) {
      res.writeHead(302, { location: link.url, 'content-type': 'text/plain' }).end(`${link.url}\n`);
      return;
    }
    return sendJson(app, res, 200, { link });
  }
  throw new HttpError(404, `no endpoint ${path}`);
}

/** 200 when a trivial query runs (on its own connection), 503 when it does not or the app is not ready. */
async function health(app: AppState, res: http.ServerResponse): Promise<void> {
  if (!app.ready) return sendJson(app, res, 503, { status: 'starting' });
  if (app.closing) return sendJson(app, res, 503, { status: 'stopping' });
  try {
    await app.store.ping();
    sendJson(app, res, 200, { status: 'ok' });
  } catch (err) {
    sendJson(app, res, 503, { status: 'database unreachable', detail: (err as Error).message });
  }
}

async function createLink(app: AppState, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const body = await readJson(req);
  const target = typeof body.url === 'string' ? body.url : '';
  if (!isHttpUrl(target) || target.length > MAX_URL_LENGTH)
    throw new HttpError(
      400,
      `body must be {"url": "http(s)://…"} with a URL of at most ${MAX_URL_LENGTH} characters`,
    );
  const { link, token } = await app.store.create(target);
  if (token !== undefined)
    res.setHeader(
      'Set-Cookie',
      `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; Max-Age=${TOKEN_MAX_AGE_S}; HttpOnly; SameSite=Lax`,
    );
  res.setHeader('Location', `/api/links/${link.code}`);
  sendJson(app, res, 201, { link });
}

function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** The user's read-your-writes token from the Cookie header, if any. */
export function readToken(req: http.IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === TOKEN_COOKIE) {
      try {
        const value = decodeURIComponent(part.slice(eq + 1).trim());
        return value === '' ? undefined : value;
      } catch {
        return undefined; // not valid percent-encoding: ignore the cookie
      }
    }
  }
  return undefined;
}

function allow(method: string, methods: string[]): void {
  if (!methods.includes(method))
    throw new HttpError(405, `use ${methods.join(' or ')}`, { allow: methods.join(', ') });
}

async function readJson(req: http.IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Json;
  } catch {
    /* answered below */
  }
  throw new HttpError(400, 'body must be a JSON object');
}

function sendJson(app: AppState, res: http.ServerResponse, status: number, body: Json): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify({ instance: app.instance, ...body });
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
