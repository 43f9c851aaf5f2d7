// The demo app: a small URL shortener that shows how to write an app for scaleout (docs/demo-app.md).
// It listens at once (health checks answer 503 "starting" meanwhile), creates its schema through the
// db-proxy, retrying while the database is not up yet, and shuts down gracefully.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatHostPort } from '../core/types.js';
import { silentLogger, type Logger } from '../core/log.js';
import { handleRequest, type AppState } from './http.js';
import { LinkStore } from './store.js';

export { TOKEN_COOKIE, ENDPOINTS } from './http.js';

export interface DemoAppOptions {
  listen: { host: string; port: number };
  /** postgres://USER[:PASSWORD]@HOST:PORT/DB, normally the db-proxy. */
  database: string;
  /** Name reported in X-Scaleout-Instance; default HOST:PORT of the listener. */
  instance?: string;
  /** Database connections of this instance (default 10). */
  poolSize?: number;
  log?: Logger;
  /** How long shutdown waits for requests in flight before cutting connections (default 10 s). */
  drainTimeoutMs?: number;
}

export interface DemoApp {
  instance: string;
  address: { host: string; port: number };
  /** http://HOST:PORT */
  url: string;
  /** Resolves once the schema exists (the app then serves its API). */
  ready: Promise<void>;
  /** Stops accepting, lets requests in flight finish, closes the database pool. */
  close(): Promise<void>;
}

/** postgres://user:secret@host/db → postgres://user:***@host/db, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

export async function startDemoApp(options: DemoAppOptions): Promise<DemoApp> {
  const log = options.log ?? silentLogger;
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const address = { host: options.listen.host, port };
  const instance = options.instance ?? formatHostPort(address.host, port);
  const app: AppState = {
    instance,
    log,
    store: new LinkStore(options.database, instance, log, options.poolSize),
    ready: false,
    closing: false,
  };
  let inFlight = 0;
  let drained: (() => void) | undefined;
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (app.closing) server.closeIdleConnections();
      if (inFlight === 0) drained?.();
    });
    handleRequest(app, req, res);
  });
  const url = `http://${formatHostPort(address.host, port)}`;
  log.info(
    { listen: formatHostPort(address.host, port), instance, database: redactUrl(options.database) },
    `demo app ${instance} listening on ${url}, database ${redactUrl(options.database)}`,
  );

  const ready = createSchemaWithRetry(app).then(() => {
    if (!app.closing) log.info({ instance }, 'demo app ready: schema in place');
  });

  const close = async (): Promise<void> => {
    if (app.closing) return;
    app.closing = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    if (inFlight > 0) {
      const timeout = options.drainTimeoutMs ?? 10_000;
      await new Promise<void>((resolve) => {
        drained = resolve;
        setTimeout(resolve, timeout).unref();
      });
    }
    server.closeAllConnections();
    await closed;
    await ready.catch(() => {});
    await app.store.close();
    log.info({ instance }, 'demo app stopped');
  };
  return { instance, address, url, ready, close };
}

/** Creates the schema, retrying with backoff while the database (or the proxy) is not reachable yet. */
async function createSchemaWithRetry(app: AppState): Promise<void> {
  for (let attempt = 1, delay = 250; !app.closing; attempt++, delay = Math.min(delay * 2, 2000)) {
    try {
      await app.store.createSchema();
      app.ready = true;
      return;
    } catch (err) {
      app.log.warn(
        { attempt, error: (err as Error).message, retryInMs: delay },
        `database not reachable yet (${(err as Error).message}); retrying in ${delay} ms`,
      );
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
