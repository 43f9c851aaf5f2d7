// Shared pieces of the dashboard tests: a real `scaleout lb` process with its admin API, JSON calls,
// and a reader of the dashboard's server-sent events.
import { request } from 'undici';
import { startCli, type RunningCli } from '../../helpers/cli.js';
import type { TestTarget } from '../../helpers/http-targets.js';
import { freePort } from '../../../src/topology/postgres.js';

export const TOKEN = 'dashboard-test-token-0123456789';

export interface LbProcess {
  cli: RunningCli;
  /** The listener, e.g. http://127.0.0.1:PORT */
  url: string;
  /** The admin API base, e.g. http://127.0.0.1:PORT */
  adminUrl: string;
  stop(): Promise<void>;
}

export { dyingWithUs, startCli as startScaleout } from '../../helpers/cli.js';

/** `node dist/cli.js lb` over the given targets with fast health checks and an admin API on a free port. */
export async function startLbProcess(
  targets: Array<TestTarget | string>,
  extra: string[] = [],
): Promise<LbProcess> {
  const args = ['lb', '--workers', '1', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'];
  for (const t of targets) args.push('--target', typeof t === 'string' ? t : t.id);
  // Checks a few times a second, with a timeout that a busy shared box does not trip.
  args.push('--health-path', '/healthz', '--health-interval', '400ms', '--health-timeout', '350ms', ...extra);
  const cli = startCli(args, { SCALEOUT_LOG_LEVEL: 'warn' });
  try {
    const admin = await cli.waitFor(/admin API on (http:\/\/[\d.]+:\d+)\/api\/v1\/status/, 15_000);
    const listen = await cli.waitFor(/listening on (http:\/\/[\d.]+:\d+)\//, 15_000);
    return { cli, url: listen[1]!, adminUrl: admin[1]!, stop: async () => void (await cli.stop()) };
  } catch (err) {
    await cli.stop('SIGKILL');
    throw err;
  }
}

export interface DnsProcess {
  cli: RunningCli;
  /** The UDP and TCP port it answers on (127.0.0.1). */
  port: number;
  /** The admin endpoint, host:port. */
  admin: string;
}

/**
 * `node dist/cli.js dns` for zone example.test with one weighted record set, www A 127.0.0.2 (weight 1)
 * and 127.0.0.3 (weight 3), and an admin endpoint, both on free ports.
 */
export async function startWeightedDns(extra: string[] = []): Promise<DnsProcess> {
  const port = await freePort();
  const admin = `127.0.0.1:${await freePort()}`;
  const cli = startCli(
    [
      ...['dns', '--listen', `127.0.0.1:${port}`, '--admin', admin, '--zone', 'example.test'],
      ...['--record', 'www A 127.0.0.2=1 127.0.0.3=3', '--policy', 'weighted', ...extra],
    ],
    { SCALEOUT_LOG_LEVEL: 'info' },
  );
  try {
    await cli.waitFor(/dns listening on udp/, 10_000);
    return { cli, port, admin };
  } catch (err) {
    await cli.stop('SIGKILL');
    throw err;
  }
}

export interface JsonReply {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export async function call(
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  options: { token?: string; body?: unknown; contentType?: string | null } = {},
): Promise<JsonReply> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (method === 'POST' && options.contentType !== null)
    headers['content-type'] = options.contentType ?? 'application/json';
  const res = await request(url, {
    method,
    headers,
    body:
      method === 'POST'
        ? typeof options.body === 'string'
          ? options.body
          : JSON.stringify(options.body ?? {})
        : undefined,
  });
  const text = await res.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (the page): keep the text.
  }
  return { status: res.statusCode, body };
}

/** Reads `count` 'state' events from the dashboard's event stream. */
export async function readStates(
  url: string,
  count: number,
  token?: string,
  timeoutMs = 10_000,
): Promise<unknown[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const states: unknown[] = [];
  try {
    const res = await fetch(url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: controller.signal,
    });
    if (res.status !== 200) throw new Error(`event stream: HTTP ${res.status}`);
    if (!res.headers.get('content-type')?.startsWith('text/event-stream'))
      throw new Error('not an event stream');
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!block.includes('event: state')) continue;
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5))
          .join('');
        states.push(JSON.parse(data));
        if (states.length >= count) return states;
      }
    }
    return states;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/**
 * Open-loop GETs at a fixed rate (light on a shared 2-core box), bounded by `durationMs`; resolves
 * with the statuses once every request has finished (-1 = connection error).
 */
export async function pacedLoad(
  url: string,
  perSecond: number,
  durationMs: number,
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const pending: Promise<void>[] = [];
  const count = Math.floor((perSecond * durationMs) / 1000);
  const start = Date.now();
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / perSecond;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    pending.push(
      request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 })
        .then(async (res) => {
          await res.body.text();
          return res.statusCode;
        })
        .catch(() => -1)
        .then((status) => void statuses.set(status, (statuses.get(status) ?? 0) + 1)),
    );
  }
  await Promise.all(pending);
  return statuses;
}
