// A load balancer with its admin API, both in-process on ephemeral loopback ports, built from a real
// YAML config file (so reload can re-read it).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { LbAdmin } from '../../../src/admin/index.js';
import { loadConfig } from '../../../src/cli/lb.js';
import { silentLogger } from '../../../src/core/log.js';
import { LbRuntime } from '../../../src/lb/runtime.js';
import type { TestTarget } from '../../helpers/http-targets.js';
import { FAST_HEALTH } from '../../helpers/lb.js';

export const TOKEN = 'test-token-0123456789abcdef';

export interface Harness {
  runtime: LbRuntime;
  admin: LbAdmin;
  /** Admin API base URL (always reached over 127.0.0.1). */
  api: string;
  /** The listener "web". */
  url: string;
  dir: string;
  configPath: string;
  writeConfig(raw: Record<string, unknown>): void;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  adminListen?: string;
  token?: string;
  stateFile?: string;
  accessLog?: boolean | string;
  /** Extra target-group settings. */
  group?: Record<string, unknown>;
  targets?: TestTarget[];
}

export function rawConfig(targets: TestTarget[], options: HarnessOptions): Record<string, unknown> {
  return {
    listeners: {
      web: {
        listen: '127.0.0.1:0',
        rules: [{ name: 'api', match: { pathPrefix: '/api/' }, forward: { targetGroup: 'app' } }],
        defaultAction: { forward: { targetGroup: 'app' } },
      },
    },
    targetGroups: {
      app: {
        algorithm: 'weighted-round-robin',
        targets: targets.map((t) => t.id),
        healthCheck: FAST_HEALTH,
        deregistrationDelay: 5000,
        ...options.group,
      },
    },
    admin: {
      listen: options.adminListen ?? '127.0.0.1:0',
      ...(options.token ? { token: options.token } : {}),
      ...(options.stateFile ? { stateFile: options.stateFile } : {}),
    },
  };
}

export async function startHarness(targets: TestTarget[], options: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'scaleout-admin-'));
  const configPath = join(dir, 'scaleout.yaml');
  const writeConfig = (raw: Record<string, unknown>) => writeFileSync(configPath, stringify(raw));
  writeConfig(rawConfig(targets, options));
  const config = loadConfig(configPath);
  const admin = new LbAdmin(config, {
    log: silentLogger,
    configPath,
    accessLog: options.accessLog ?? false,
    processMetrics: false,
  });
  const runtime = new LbRuntime({
    log: silentLogger,
    drainTimeoutMs: 1000,
    stateFile: config.admin?.stateFile,
    onRequest: admin.onRequest,
  });
  await runtime.apply(config);
  const started = (await admin.start(runtime))!;
  const port = new URL(started).port;
  const deadline = Date.now() + 3000;
  while (
    Date.now() < deadline &&
    [...runtime.groups.values()].some((g) => g.group.list().some((t) => t.state !== 'healthy'))
  )
    await new Promise((r) => setTimeout(r, 20));
  return {
    runtime,
    admin,
    api: `http://127.0.0.1:${port}`,
    url: `http://127.0.0.1:${runtime.addresses.get('web')!.port}`,
    dir,
    configPath,
    writeConfig,
    async stop() {
      await admin.close();
      await runtime.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ApiAnswer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
}

/** One admin API call; `body` is sent as JSON unless it is already a string. */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${base}${path}`, {
    method: method as 'GET',
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.statusCode, body: parsed, text };
}

/** GETs `path` on the LB `n` times; returns how many answers each target (x-target port) gave. */
export async function spread(url: string, n: number, path = '/'): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const res = await request(`${url}${path}`);
    await res.body.text();
    const t = String(res.headers['x-target'] ?? `status-${res.statusCode}`);
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  return counts;
}
