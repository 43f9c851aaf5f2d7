// The admin API's HTTP plumbing: a small route table over node:http (the admin API is not the hot
// path), bearer-token checks, JSON bodies with a size limit, and errors as {error: {code, message}}.
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { z } from 'zod';
import type { Logger } from '../core/log.js';
import { formatHostPort } from '../core/types.js';

/** An error the API reports to the caller, with a stable code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export interface Request {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The JSON body (read on demand; throws ApiError 400/413 when it is not JSON or too large). */
  body(): Promise<unknown>;
  remote: string;
}

export interface Reply {
  status?: number;
  body: unknown;
  /** A ready-made text body (Prometheus exposition) instead of JSON. */
  text?: { contentType: string; data: string };
}

type Handler = (req: Request) => Promise<Reply> | Reply;

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: Handler;
}

const MAX_BODY_BYTES = 64 * 1024;

/** Loopback hosts: the only ones the admin API may listen on without a token. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export class AdminHttpServer {
  private readonly routes: Route[] = [];
  private server: http.Server | undefined;
  private readonly tokenDigest: Buffer | undefined;

  constructor(
    private readonly log: Logger,
    token: string | undefined,
  ) {
    this.tokenDigest = token === undefined ? undefined : sha256(token);
  }

  /** Adds a route; ":name" segments become params (percent-decoded, so "127.0.0.1%3A80" works). */
  route(method: string, path: string, handler: Handler): this {
    const names: string[] = [];
    const source = path.replace(/:([A-Za-z]+)/g, (_m, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    this.routes.push({ method, pattern: new RegExp(`^${source}/?$`), names, handler });
    return this;
  }

  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const server = http.createServer((req, res) => void this.handle(req, res));
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        this.server = server;
        const addr = server.address() as AddressInfo;
        resolve(`http://${formatHostPort(host, addr.port)}`);
      });
    });
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private authorized(req: http.IncomingMessage): boolean {
    if (!this.tokenDigest) return true;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    // Compare digests so the comparison takes the same time whatever the length of the guess.
    return m !== null && timingSafeEqual(sha256(m[1]!), this.tokenDigest);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      reply = await this.dispatch(req);
    } catch (err) {
      if (err instanceof ApiError) {
        const error: Record<string, unknown> = { code: err.code, message: err.message };
        if (err.details !== undefined) error.details = err.details;
        reply = { status: err.status, body: { error } };
      } else {
        this.log.error({ err }, 'admin API request failed');
        reply = { status: 500, body: { error: { code: 'internal', message: (err as Error).message } } };
      }
      // Unread request bytes would otherwise be parsed as the next request on this connection.
      if (!req.complete) res.setHeader('connection', 'close');
    }
    if (reply.text) {
      res.writeHead(reply.status ?? 200, { 'content-type': reply.text.contentType });
      res.end(reply.text.data);
      return;
    }
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(reply.body, null, 2)}\n`);
  }

  private async dispatch(req: http.IncomingMessage): Promise<Reply> {
    if (!this.authorized(req)) {
      throw new ApiError(
        401,
        'unauthorized',
        req.headers.authorization
          ? 'the bearer token is wrong'
          : 'this admin API needs "Authorization: Bearer <token>"',
      );
    }
    const url = new URL(req.url ?? '/', 'http://admin');
    const method = req.method ?? 'GET';
    const allowed: string[] = [];
    for (const route of this.routes) {
      const m = route.pattern.exec(url.pathname);
      if (!m) continue;
      if (route.method !== method) {
        allowed.push(route.method);
        continue;
      }
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => (params[name] = decodeParam(m[i + 1]!)));
      return route.handler({
        method,
        path: url.pathname,
        params,
        query: url.searchParams,
        body: () => readJson(req),
        remote: req.socket.remoteAddress ?? '',
      });
    }
    if (allowed.length)
      throw new ApiError(405, 'method_not_allowed', `${method} ${url.pathname}: use ${allowed.join(', ')}`);
    throw new ApiError(404, 'not_found', `no such endpoint: ${method} ${url.pathname}`);
  }
}

function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, 'bad_request', `"${raw}" is not valid percent-encoding`);
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Reads a JSON request body of at most `maxBytes`; an empty body is `emptyAs` when given, else a 400.
 * Shared by the LB admin API and the dashboard.
 */
export async function readJson(
  req: http.IncomingMessage,
  options: { maxBytes?: number; emptyAs?: unknown } = {},
): Promise<unknown> {
  const maxBytes = options.maxBytes ?? MAX_BODY_BYTES;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new ApiError(413, 'body_too_large', `the body is over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') {
    if (options.emptyAs !== undefined) return options.emptyAs;
    throw new ApiError(400, 'invalid_body', 'a JSON body is required');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ApiError(400, 'invalid_json', `the body is not JSON: ${(err as Error).message}`);
  }
}

/** Validates a body with a zod schema; problems become one 400 with each field named. */
export function parseBody<T extends z.ZodType>(schema: T, data: unknown): z.output<T> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const details = result.error.issues.map((i) => ({
    path: i.path.map(String).join('.') || '(body)',
    message: i.message,
  }));
  throw new ApiError(
    400,
    'invalid_body',
    `invalid body: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`,
    details,
  );
}
