// `scaleout lb status` and `scaleout lb drain TARGET`: clients of a running load balancer's admin API.
import { Command } from 'commander';
import { request } from 'undici';
import { duration } from './options.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9900';

export interface AdminClientOptions {
  /** Base URL ("http://host:port") or "host:port". */
  admin?: string;
  token?: string;
}

type Print = (line: string) => void;

/** Calls the admin API; API errors and unreachable servers become Errors with a readable message. */
export class AdminClient {
  readonly base: string;
  private readonly token: string | undefined;

  constructor(options: AdminClientOptions = {}) {
    const admin = options.admin ?? process.env.SCALEOUT_ADMIN_URL ?? DEFAULT_ADMIN_URL;
    this.base = (/^https?:\/\//.test(admin) ? admin : `http://${admin}`).replace(/\/+$/, '');
    this.token = options.token ?? process.env.SCALEOUT_ADMIN_TOKEN;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async call(method: 'GET' | 'POST' | 'DELETE' | 'PUT', path: string, body?: unknown): Promise<any> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await request(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).message;
      throw new Error(
        `cannot reach the admin API at ${this.base} (${code}); is scaleout lb running with an admin section? ` +
          'Use --admin URL to point elsewhere',
      );
    }
    const text = await res.body.text();
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new Error(`${this.base}${path} answered ${res.statusCode} without JSON: ${text.slice(0, 200)}`);
    }
    if (res.statusCode >= 400) {
      const error = (data as { error?: { message?: string } }).error;
      throw new Error(`admin API: ${error?.message ?? `HTTP ${res.statusCode}`}`);
    }
    return data;
  }
}

interface TargetRow {
  id: string;
  address: string;
  state: string;
  reason: string;
  configuredWeight: number;
  weight: number;
  inFlight: number;
  connections: number;
  history: Array<{ at: string }>;
}

function ago(iso: string | undefined, now: number): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** Prints listeners, target groups and targets as readable tables (or the raw JSON). */
export async function lbStatus(
  options: AdminClientOptions & { json?: boolean },
  print: Print = console.log,
): Promise<void> {
  const client = new AdminClient(options);
  const status = await client.call('GET', '/api/v1/status');
  if (options.json) {
    print(JSON.stringify(status, null, 2));
    return;
  }
  const now = Date.now();
  for (const l of status.listeners) {
    const rules = [...l.rules.map((r: { name: string }) => r.name), 'default'].join(', ');
    const stats = !l.stats
      ? 'not running'
      : l.stats.requests === undefined
        ? `served by worker processes: active connections ${l.stats.activeConnections}, retries ${l.stats.retries}`
        : `requests ${l.stats.requests}, active connections ${l.stats.activeConnections}, retries ${l.stats.retries}`;
    print(`listener ${l.name} (${l.protocol}) on ${l.address ?? l.listen}: rules ${rules}; ${stats}`);
  }
  for (const g of status.targetGroups) {
    print('');
    print(
      `target group ${g.name} (${g.algorithm})${g.failOpen ? ': FAIL-OPEN, every target is unhealthy' : ''}`,
    );
    if (g.targets.length === 0) {
      print('  (no targets)');
      continue;
    }
    const rows = [['  TARGET', 'STATE', 'REASON', 'WEIGHT', 'IN-FLIGHT', 'CONNS', 'CHANGED']];
    for (const t of g.targets as TargetRow[]) {
      const weight =
        t.weight === t.configuredWeight ? String(t.configuredWeight) : `${t.weight}/${t.configuredWeight}`;
      rows.push([
        `  ${t.id}`,
        t.state,
        t.reason,
        weight,
        String(t.inFlight),
        String(t.connections),
        ago(t.history.at(-1)?.at, now),
      ]);
    }
    for (const line of table(rows)) print(line);
  }
  if (status.stateFile?.error) {
    print('');
    print(`warning: ${status.stateFile.error}`);
  }
}

export interface DrainOptions extends AdminClientOptions {
  group?: string;
  wait?: boolean;
  /** How long --wait waits, in ms. */
  timeoutMs?: number;
  /** Poll interval for --wait, in ms. */
  pollMs?: number;
}

/** Finds the target group holding `target` (an id or host:port), within `group` when given. */
async function findGroup(
  client: AdminClient,
  target: string,
  group: string | undefined,
): Promise<{ group: string; id: string }> {
  const { targetGroups } = await client.call('GET', '/api/v1/target-groups');
  const hits: Array<{ group: string; id: string }> = [];
  for (const g of targetGroups) {
    if (group !== undefined && g.name !== group) continue;
    for (const t of g.targets as TargetRow[])
      if (t.id === target || t.address === target) hits.push({ group: g.name, id: t.id });
  }
  // Not listed: maybe already drained; the API knows (and says so, or names the unknown target).
  if (hits.length === 0 && group !== undefined) return { group, id: target };
  if (hits.length === 0) throw new Error(`no target group has a target ${target}`);
  if (hits.length > 1)
    throw new Error(
      `${target} is in several target groups (${hits.map((h) => h.group).join(', ')}): choose one with --group`,
    );
  return hits[0]!;
}

/** Deregisters a target (it drains); with `wait`, returns once it is fully drained. */
export async function lbDrain(
  target: string,
  options: DrainOptions,
  print: Print = console.log,
): Promise<void> {
  const client = new AdminClient(options);
  const { group, id } = await findGroup(client, target, options.group);
  const path = `/api/v1/target-groups/${encodeURIComponent(group)}/targets/${encodeURIComponent(id)}`;
  const answer = await client.call('DELETE', path);
  if (answer.drained || answer.after === null) {
    print(`${id} is drained (target group ${group})`);
    return;
  }
  const state = await client.call('GET', `${path}/drain`);
  print(
    `draining ${id} in target group ${group}: ${state.inFlight} in flight` +
      (state.cutAt ? `, cut at ${state.cutAt}` : ''),
  );
  if (!options.wait) return;
  const started = Date.now();
  const deadline = started + (options.timeoutMs ?? 120_000);
  let last = state;
  while (!last.drained) {
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${Math.round((Date.now() - started) / 1000)} s: ${id} still has ${last.inFlight} request(s) in flight`,
      );
    }
    await new Promise((r) => setTimeout(r, options.pollMs ?? 250));
    last = await client.call('GET', `${path}/drain`);
  }
  print(`${id} is drained (after ${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

/** Adds `status` and `drain` under the `lb` command. */
export function registerLbAdmin(lb: Command, print: Print = console.log): void {
  const adminOptions = (cmd: Command) =>
    cmd
      .option('--admin <url>', `admin API address (default $SCALEOUT_ADMIN_URL or ${DEFAULT_ADMIN_URL})`)
      .option('--token <token>', 'bearer token (default $SCALEOUT_ADMIN_TOKEN)');
  adminOptions(
    lb
      .command('status')
      .description('show listeners, target groups and targets of a running load balancer')
      .option('--json', 'print the raw JSON status'),
  ).action(async (opts: AdminClientOptions & { json?: boolean }) => lbStatus(opts, print));
  adminOptions(
    lb
      .command('drain')
      .description('deregister a target so it drains; with --wait, return once it is fully drained')
      .argument('<target>', 'target id or host:port')
      .option('--group <name>', 'target group (needed only when the target is in several)')
      .option('--wait', 'wait until no request is in flight and the target is gone')
      .option('--timeout <duration>', 'give up waiting after this long, exit 1 (default 2m)', duration),
  ).action(async (target: string, opts: DrainOptions & { timeout?: number }) =>
    lbDrain(target, { ...opts, timeoutMs: opts.timeout }, print),
  );
}
