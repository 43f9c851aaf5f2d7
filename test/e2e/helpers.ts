// Helpers for tests that run `scaleout up` for real: free ports, a topology file, the CLI as a child
// process, and a scan of /proc for every process started for a data dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import type { TopologyInput } from '../../src/config/topology-schema.js';
import type { TopologySnapshot } from '../../src/dashboard/control-plane.js';
import { controlRequest } from '../../src/topology/control.js';
import { controlSocket, MARKER_KEY, sweepStale } from '../../src/topology/stale.js';

export const CLI = join(import.meta.dirname, '../../dist/cli.js');

function tcpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function udpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    sock.once('error', () => {
      sock.close();
      resolve(false);
    });
    sock.bind(port, host, () => sock.close(() => resolve(true)));
  });
}

/** A base port B such that B … B+count-1 are free (TCP on 127.0.0.1 and lbHost, UDP on 127.0.0.1). */
export async function freePortRange(count: number, lbHost: string): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below the ephemeral range (32768+), so no port-0 listener or outgoing connection takes it meanwhile.
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) {
      ok = (await tcpFree('127.0.0.1', p)) && (await tcpFree(lbHost, p)) && (await udpFree('127.0.0.1', p));
    }
    if (ok) return base;
  }
  throw new Error('no free port range found');
}

export interface TestTopology {
  dir: string;
  file: string;
  dataDir: string;
  ports: {
    pg: number;
    proxy: number;
    dashboard: number;
    dns: number;
    lb: number;
    lbAdmin: number;
    app: number;
  };
  lbHost: string;
}

/** A topology file with every port in one free range; `extra` is laid over it. */
export async function writeTopology(
  shape: { apps: number; replicas: number; lbs: number; dns: boolean },
  extra: Partial<TopologyInput> = {},
): Promise<TestTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'scaleout-up-test-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as another user and must reach the data dir
  const lbHost = `127.0.0.${10 + Math.floor(Math.random() * 200)}`;
  const base = await freePortRange(24, lbHost);
  const ports = {
    pg: base,
    proxy: base + 4,
    dashboard: base + 6,
    dns: base + 7,
    lb: base + 9,
    lbAdmin: base + 10,
    app: base + 14,
  };
  const topology: TopologyInput = {
    name: 'test',
    dataDir: join(dir, 'data'),
    lb: {
      instances: shape.lbs,
      addresses: Array.from({ length: shape.lbs }, () => lbHost),
      listeners: [{ name: 'web', port: ports.lb }],
      adminPortBase: ports.lbAdmin,
      slowStart: '2s',
      deregistrationDelay: '3s',
      healthCheckInterval: '500ms',
    },
    app: { instances: shape.apps, portBase: ports.app },
    database: {
      replicas: shape.replicas,
      portBase: ports.pg,
      proxy: { listen: `127.0.0.1:${ports.proxy}`, admin: `127.0.0.1:${ports.proxy + 1}` },
      settings: { fsync: 'off' },
    },
    dns: { enabled: shape.dns, listen: `127.0.0.1:${ports.dns}`, admin: `127.0.0.1:${ports.dns + 1}` },
    dashboard: { listen: `127.0.0.1:${ports.dashboard}` },
    ...extra,
  };
  const file = join(dir, 'scaleout.yaml');
  writeFileSync(file, stringify({ topology }));
  return { dir, file, dataDir: join(dir, 'data'), ports, lbHost };
}

export interface UpProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `scaleout up FILE` in the foreground; resolves once it printed the dashboard URL. */
export async function startUp(file: string, args: string[] = []): Promise<UpProcess> {
  const child = spawn(process.execPath, [CLI, 'up', file, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SCALEOUT_LOG_LEVEL: 'info' },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (out.includes('Dashboard:')) {
        clearInterval(timer);
        resolve();
      }
    }, 50);
    void exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`scaleout up exited with ${code}:\n${out}`));
    });
  });
  return { child, output: () => out, exited };
}

/** Runs the CLI to completion. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

export async function topologyStatus(dataDir: string): Promise<TopologySnapshot> {
  const r = await controlRequest(controlSocket(dataDir), 'GET', '/status');
  return r.body as unknown as TopologySnapshot;
}

export async function control(
  dataDir: string,
  path: '/kill' | '/restart' | '/scale',
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return controlRequest(controlSocket(dataDir), 'POST', path, body);
}

/** Every live process whose environment carries the marker `up` gives its components. */
export function processesOf(dataDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0');
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'Z' && env.includes(`${MARKER_KEY}=${dataDir}`)) pids.push(Number(entry));
    } catch {
      /* gone, or not readable */
    }
  }
  return pids;
}

/**
 * After a test: nothing may stay running, and its folder (PostgreSQL data, logs) goes, unless
 * SCALEOUT_KEEP_TEST_DIRS=1 keeps it to read the component logs.
 */
export async function cleanUp(up: UpProcess | undefined, dataDir: string): Promise<void> {
  if (up && up.child.exitCode === null) up.child.kill('SIGKILL');
  if (!dataDir) return;
  await sweepStale(dataDir);
  if (process.env.SCALEOUT_KEEP_TEST_DIRS !== '1') rmSync(dirname(dataDir), { recursive: true, force: true });
}
