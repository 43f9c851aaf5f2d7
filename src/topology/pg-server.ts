// PostgreSQL servers for `scaleout up`: data directories that persist in the topology's data dir (a
// second `up` reuses them), streaming replicas made by copying the stopped primary's directory (so
// only initdb and postgres are needed, no pg_basebackup), and the postmaster run in the foreground as
// a ManagedProcess so the supervisor sees it exit and a parent-death signal covers a supervisor crash.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { ManagedProcess } from './process.js';

export interface PgServerSpec {
  name: string;
  role: 'primary' | 'replica';
  shard: number;
  host: string;
  port: number;
  dataDir: string;
  /** Replicas: the primary they stream from. */
  primary?: { host: string; port: number; dataDir: string };
  /** Bootstrap superuser and the database created for the apps. */
  user: string;
  database: string;
  settings: Record<string, string>;
  /** Networks besides loopback whose clients may connect (trust); for servers off loopback. */
  allowFrom?: string[];
}

export interface PgEnv {
  binDir: string;
  /** OS user the servers run as when we are root. */
  osUser: string;
}

const isRoot = () => process.getuid?.() === 0;

/** Runs a PostgreSQL binary to completion as the server's OS user. */
function runAsServerUser(env: PgEnv, binary: string, args: string[], input?: string): string {
  const path = join(env.binDir, binary);
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', env.osUser, '--', path, ...args]] : [path, args];
  const r = spawnSync(cmd, argv, { input, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-8).join('\n');
    throw new Error(
      `${binary} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}):\n${out}`,
    );
  }
  return r.stdout;
}

/** Makes a directory the server's OS user owns (when we are root). */
export function ownDir(env: PgEnv, dir: string): void {
  mkdirSync(dir, { recursive: true });
  if (!isRoot()) return;
  const uid = Number(execFileSync('id', ['-u', env.osUser]).toString());
  const gid = Number(execFileSync('id', ['-g', env.osUser]).toString());
  chownSync(dir, uid, gid);
}

/** Whether the OS user the servers run as can write to dir (its parents must be searchable). */
export function serverUserCanWrite(env: PgEnv, dir: string): boolean {
  if (!isRoot()) return true;
  return spawnSync('runuser', ['-u', env.osUser, '--', 'test', '-w', dir]).status === 0;
}

function hasData(dataDir: string): boolean {
  return existsSync(join(dataDir, 'PG_VERSION'));
}

const baseSettings: Record<string, string> = {
  shared_buffers: '32MB',
  max_connections: '100',
  wal_level: 'replica',
  max_wal_senders: '10',
  wal_keep_size: '256MB',
  hot_standby: 'on',
  hot_standby_feedback: 'on',
  wal_receiver_status_interval: '1s',
  logging_collector: 'off',
  log_line_prefix: "'%m [%p] '",
};

/**
 * Creates the primary's data directory if it has none: initdb, settings, pg_hba.conf, and the apps'
 * database (made in single-user mode, before the server ever listens). Returns true if it was created.
 */
export function preparePrimary(env: PgEnv, spec: PgServerSpec): boolean {
  if (hasData(spec.dataDir)) return false;
  rmSync(spec.dataDir, { recursive: true, force: true });
  runAsServerUser(env, 'initdb', [
    '-D',
    spec.dataDir,
    '-U',
    spec.user,
    '--auth=trust',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  const settings = { ...baseSettings, ...spec.settings };
  appendFileSync(
    join(spec.dataDir, 'postgresql.conf'),
    '\n# scaleout up\n' +
      Object.entries(settings)
        .map(([k, v]) => `${k} = ${v}\n`)
        .join(''),
  );
  // Loopback only, no passwords: a demo on one machine. See docs/scale-out-steps.md for real hosts.
  const networks = ['127.0.0.0/8', ...(spec.allowFrom ?? [])];
  writeFileSync(
    join(spec.dataDir, 'pg_hba.conf'),
    networks.flatMap((n) => [`host all all ${n} trust`, `host replication all ${n} trust`, '']).join('\n'),
  );
  runAsServerUser(
    env,
    'postgres',
    ['--single', '-D', spec.dataDir, 'postgres'],
    `CREATE DATABASE "${spec.database}";\n`,
  );
  return true;
}

/**
 * Creates a replica's data directory, if it has none, as a copy of the primary's (which must be
 * stopped) plus standby.signal; the connection to the primary is given on the command line.
 */
export function prepareReplica(env: PgEnv, spec: PgServerSpec): boolean {
  if (hasData(spec.dataDir)) return false;
  const from = spec.primary!.dataDir;
  rmSync(spec.dataDir, { recursive: true, force: true });
  // cp -a keeps the owner and the 0700 mode PostgreSQL insists on.
  execFileSync('cp', ['-a', from, spec.dataDir]);
  rmSync(join(spec.dataDir, 'postmaster.pid'), { force: true });
  rmSync(join(spec.dataDir, 'postmaster.opts'), { force: true });
  writeFileSync(join(spec.dataDir, 'standby.signal'), '');
  if (isRoot()) execFileSync('chown', ['--reference', from, join(spec.dataDir, 'standby.signal')]);
  return true;
}

/** The postmaster, in the foreground: ports and the primary's address come from the command line. */
export function postgresProcess(
  env: PgEnv,
  spec: PgServerSpec,
  logFile: string,
  marker: { key: string; value: string },
): ManagedProcess {
  const args = [
    '-D',
    spec.dataDir,
    '-p',
    String(spec.port),
    '-c',
    `listen_addresses=${spec.host}`,
    '-c',
    'unix_socket_directories=',
  ];
  if (spec.primary) {
    args.push(
      '-c',
      `primary_conninfo=host=${spec.primary.host} port=${spec.primary.port} user=${spec.user} application_name=${spec.name}`,
    );
  }
  return new ManagedProcess({
    name: spec.name,
    kind: 'postgres',
    command: join(env.binDir, 'postgres'),
    args,
    logFile,
    user: env.osUser,
    deathSignal: 'SIGQUIT',
    stopSignal: 'SIGINT',
    marker,
  });
}

/** The status word PostgreSQL writes to postmaster.pid once it accepts connections. */
function postmasterStatus(dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[7]?.trim();
  } catch {
    return undefined;
  }
}

/** Waits until the server accepts connections ("ready", or "standby" for a hot standby). */
export async function waitPostgresReady(
  proc: ManagedProcess,
  spec: PgServerSpec,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!proc.running) {
      throw new Error(
        `${spec.name} (PostgreSQL on port ${spec.port}) exited while starting:\n${proc.logTail()}`,
      );
    }
    const status = postmasterStatus(spec.dataDir);
    if (status === 'ready' || status === 'standby') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${spec.name} did not accept connections within ${timeoutMs} ms:\n${proc.logTail()}`);
}
