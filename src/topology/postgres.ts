// A real PostgreSQL cluster on loopback: one primary plus streaming hot-standby replicas, built from
// the system binaries (Debian: /usr/lib/postgresql/<v>/bin). Used by the db-proxy tests and benchmarks,
// and later by `scaleout up`. Postgres refuses to run as root, so when we are root every server binary
// runs as an unprivileged OS user (Debian's `postgres`) through `runuser`, with data under a temp dir
// chowned to that user. Every started postmaster is stopped on `stop()` and, as a last resort, on
// process exit, so a failing test never leaves servers behind.
import { execFile, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  appendFileSync,
  chownSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface PgClusterOptions {
  /** Number of streaming replicas (default 1). */
  replicas?: number;
  /** Bootstrap superuser (default "postgres") and the database created for the cluster (default "app"). */
  user?: string;
  database?: string;
  /** Extra postgresql.conf lines for every node, e.g. { shared_preload_libraries: "'pg_stat_statements'" }. */
  settings?: Record<string, string>;
  /** pg_hba.conf lines placed before the default trust rules (for password-auth tests). */
  hba?: string[];
  /** Directory holding initdb/pg_ctl/postgres; default: newest /usr/lib/postgresql/<v>/bin or $PG_BIN. */
  binDir?: string;
  /** OS user the servers run as when we are root (default "postgres"). */
  osUser?: string;
  /** Parent of the cluster's temp dir (default os.tmpdir()). */
  parentDir?: string;
}

const liveDataDirs = new Set<string>();
let exitHookInstalled = false;

/** Kills every postmaster this process started (SIGQUIT = immediate shutdown) if we exit without stop(). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllServers);
  // Killed by a test-runner timeout or Ctrl-C: stop the servers, then die of the same signal.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllServers();
      process.kill(process.pid, signal);
    });
  }
}

function killAllServers(): void {
  for (const dir of liveDataDirs) {
    const pid = readPostmasterPid(dir);
    if (pid) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        /* already gone */
      }
    }
  }
}

/** The pid in a data directory's postmaster.pid, if any. */
export function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function findPgBinDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  throw new Error('PostgreSQL server binaries not found (install postgresql, or set PG_BIN)');
}

/** A free TCP port on 127.0.0.1 (briefly bound, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export class PgNode {
  constructor(
    private readonly cluster: PgCluster,
    readonly name: string,
    readonly dataDir: string,
    readonly port: number,
    readonly role: 'primary' | 'replica',
  ) {}

  readonly host = '127.0.0.1';

  /** postgres://user@127.0.0.1:port/database */
  get url(): string {
    return `postgres://${this.cluster.user}@${this.host}:${this.port}/${this.cluster.database}`;
  }

  get logFile(): string {
    return join(this.cluster.dir, `${this.name}.log`);
  }

  get pid(): number | undefined {
    return readPostmasterPid(this.dataDir);
  }

  async start(): Promise<void> {
    await this.cluster.runAsServerUser('pg_ctl', [
      'start',
      '-w',
      '-t',
      '60',
      '-D',
      this.dataDir,
      '-l',
      this.logFile,
    ]);
    liveDataDirs.add(this.dataDir);
  }

  /** mode "immediate" is a crash-like stop (clients see their connections drop); "fast" is orderly. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!this.pid) {
      liveDataDirs.delete(this.dataDir);
      return;
    }
    try {
      await this.cluster.runAsServerUser('pg_ctl', [
        'stop',
        '-w',
        '-t',
        '30',
        '-m',
        mode,
        '-D',
        this.dataDir,
      ]);
    } catch (err) {
      // pg_ctl fails when the server is already down; anything else still running gets killed below.
      const pid = this.pid;
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      if (!String(err).includes('not running') && this.pid) throw err;
    }
    liveDataDirs.delete(this.dataDir);
  }

  /** Appends settings to postgresql.auto.conf and reloads the server. */
  async setAndReload(settings: Record<string, string>): Promise<void> {
    appendFileSync(join(this.dataDir, 'postgresql.auto.conf'), settingsText(settings));
    await this.cluster.runAsServerUser('pg_ctl', ['reload', '-D', this.dataDir]);
  }

  /** Runs SQL through psql over the cluster's unix socket as the bootstrap superuser; returns stdout (unaligned, tuples only). */
  async psql(sql: string, database = this.cluster.database): Promise<string> {
    const { stdout } = await execFileAsync(
      join(this.cluster.binDir, 'psql'),
      [
        '-X',
        '-q',
        '-At',
        '-v',
        'ON_ERROR_STOP=1',
        '-h',
        this.cluster.socketDir,
        '-p',
        String(this.port),
        '-U',
        this.cluster.user,
        '-d',
        database,
        '-c',
        sql,
      ],
      { timeout: 30_000 },
    );
    return stdout.trim();
  }
}

function settingsText(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([k, v]) => `${k} = ${v}\n`)
    .join('');
}

export class PgCluster {
  primary!: PgNode;
  readonly replicas: PgNode[] = [];
  readonly socketDir: string;
  private readonly asOtherUser: string | undefined;

  private constructor(
    readonly dir: string,
    readonly binDir: string,
    readonly user: string,
    readonly database: string,
    osUser: string,
  ) {
    this.socketDir = join(dir, 'sock');
    this.asOtherUser = userInfo().uid === 0 ? osUser : undefined;
  }

  get nodes(): PgNode[] {
    return [this.primary, ...this.replicas];
  }

  /** Runs a PostgreSQL binary as the server's OS user. */
  async runAsServerUser(binary: string, args: string[]): Promise<string> {
    const path = join(this.binDir, binary);
    const [cmd, argv] = this.asOtherUser
      ? ['runuser', ['-u', this.asOtherUser, '--', path, ...args]]
      : [path, args];
    const { stdout } = await execFileAsync(cmd, argv, { timeout: 120_000, cwd: this.dir });
    return stdout;
  }

  static async start(options: PgClusterOptions = {}): Promise<PgCluster> {
    installExitHook();
    const binDir = options.binDir ?? findPgBinDir();
    const osUser = options.osUser ?? 'postgres';
    const dir = mkdtempSync(join(options.parentDir ?? tmpdir(), 'scaleout-pg-'));
    const cluster = new PgCluster(dir, binDir, options.user ?? 'postgres', options.database ?? 'app', osUser);
    try {
      await cluster.build(options);
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  private chownToServerUser(path: string): void {
    if (!this.asOtherUser) return;
    const uid = Number(execFileSync('id', ['-u', this.asOtherUser]).toString());
    const gid = Number(execFileSync('id', ['-g', this.asOtherUser]).toString());
    chownSync(path, uid, gid);
  }

  private async build(options: PgClusterOptions): Promise<void> {
    this.chownToServerUser(this.dir);
    const primaryDir = join(this.dir, 'primary');
    await this.runAsServerUser('initdb', [
      '-D',
      primaryDir,
      '-U',
      this.user,
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
      '--locale=C',
    ]);
    mkdirSync(this.socketDir);
    this.chownToServerUser(this.socketDir);
    const settings: Record<string, string> = {
      listen_addresses: "'127.0.0.1'",
      unix_socket_directories: `'${this.socketDir}'`,
      fsync: 'off',
      full_page_writes: 'off',
      shared_buffers: '32MB',
      max_connections: '100',
      wal_level: 'replica',
      max_wal_senders: '10',
      wal_keep_size: '128MB',
      hot_standby: 'on',
      hot_standby_feedback: 'on',
      wal_receiver_status_interval: '1s',
      autovacuum: 'off',
      logging_collector: 'off',
      ...options.settings,
    };
    appendFileSync(join(primaryDir, 'postgresql.conf'), settingsText(settings));
    const hba = [
      ...(options.hba ?? []),
      'local all all trust',
      'local replication all trust',
      'host all all 127.0.0.1/32 trust',
      'host replication all 127.0.0.1/32 trust',
    ];
    writeFileSync(join(primaryDir, 'pg_hba.conf'), hba.join('\n') + '\n');
    const primaryPort = await freePort();
    appendFileSync(join(primaryDir, 'postgresql.auto.conf'), `port = ${primaryPort}\n`);
    this.primary = new PgNode(this, 'primary', primaryDir, primaryPort, 'primary');
    await this.primary.start();
    await this.primary.psql(`CREATE DATABASE ${quoteIdent(this.database)}`, 'postgres');

    for (let i = 1; i <= (options.replicas ?? 1); i++) {
      await this.addReplica(`replica${i}`);
    }
  }

  /** Clones the primary with pg_basebackup (-R writes standby.signal + primary_conninfo) and starts it. */
  async addReplica(name = `replica${this.replicas.length + 1}`): Promise<PgNode> {
    const dataDir = join(this.dir, name);
    await this.runAsServerUser('pg_basebackup', [
      '-h',
      this.socketDir,
      '-p',
      String(this.primary.port),
      '-U',
      this.user,
      '-D',
      dataDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
      '--no-sync',
    ]);
    const port = await freePort();
    appendFileSync(join(dataDir, 'postgresql.auto.conf'), `port = ${port}\n`);
    const node = new PgNode(this, name, dataDir, port, 'replica');
    this.replicas.push(node);
    await node.start();
    return node;
  }

  /** Waits until every replica has replayed the primary's current WAL position. */
  async waitForReplication(timeoutMs = 20_000): Promise<void> {
    // The insert position covers commits still in WAL buffers (synchronous_commit=off).
    const target = await this.primary.psql('SELECT pg_current_wal_insert_lsn()');
    const deadline = Date.now() + timeoutMs;
    for (const replica of this.replicas) {
      if (!replica.pid) continue;
      while (true) {
        const caughtUp = await replica.psql(`SELECT pg_last_wal_replay_lsn() >= '${target}'::pg_lsn`);
        if (caughtUp === 't') break;
        if (Date.now() > deadline)
          throw new Error(`${replica.name} did not replay up to ${target} in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** Stops every node (immediate) and deletes the cluster's directory. Safe to call twice. */
  async stop(): Promise<void> {
    const nodes = [...this.replicas, ...(this.primary ? [this.primary] : [])];
    await Promise.allSettled(nodes.map((n) => n.stop('immediate')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
