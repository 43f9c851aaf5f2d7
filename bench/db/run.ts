// `npm run bench:db`: pgbench through scaleout db-proxy, straight to the primary, through PgBouncer and
// through pgpool-II, side by side in one run, on a PostgreSQL primary + one streaming replica built by
// src/topology/postgres.ts. Prints TPS, latency, proxy CPU per transaction (from /proc, over the whole
// process tree) and the share of reads that reached the replica (pg_stat_database deltas).
//
// Knobs (environment): ROUTES="direct pgbouncer pgpool ours" (also "nodepipe": a bare Node.js TCP pipe
// to the replica, the floor of any Node.js proxy), WORKLOADS="ro rw",
// MODES="simple extended prepared", DURATION=15, CLIENTS=16, THREADS=2, SCALE=20, POOL_SIZE=20,
// PROXY_CPUS=1 and PGBENCH_CPUS=0 (taskset lists; empty = no pinning), BENCH_LOCK=/tmp/scaleout-bench.lock,
// RESULTS=bench/db/results (latest.md + latest.json). SHARDED=0 skips the sharded figure (bench/db/sharded.ts:
// 1 shard vs 2 shards through the proxy, written to sharded.md/json and appended to latest.md); SHARDED=only
// runs just that.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PgCluster, findPgBinDir, freePort } from '../../src/topology/postgres.js';
import { pinned, timedPgbench } from './common.js';
import { runSharded } from './sharded.js';

const run = promisify(execFile);
const env = process.env;
const ROUTES = (env.ROUTES ?? 'direct pgbouncer pgpool ours').split(/\s+/).filter(Boolean);
const WORKLOADS = (env.WORKLOADS ?? 'ro rw').split(/\s+/).filter(Boolean);
const MODES = (env.MODES ?? 'simple extended prepared').split(/\s+/).filter(Boolean);
const DURATION = Number(env.DURATION ?? 15);
const CLIENTS = Number(env.CLIENTS ?? 16);
const THREADS = Number(env.THREADS ?? 2);
const SCALE = Number(env.SCALE ?? 20);
const POOL_SIZE = Number(env.POOL_SIZE ?? 20);
const PROXY_CPUS = env.PROXY_CPUS ?? '1';
const PGBENCH_CPUS = env.PGBENCH_CPUS ?? '0';
const LOCK = env.BENCH_LOCK ?? '/tmp/scaleout-bench.lock';
const RESULTS = env.RESULTS ?? join(process.cwd(), 'bench', 'db', 'results');
const PGBOUNCER = env.PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer';
const PGPOOL = env.PGPOOL_BIN ?? '/usr/sbin/pgpool';
const OS_USER = 'postgres';
const UID = Number(execFileSync('id', ['-u', OS_USER]));
const GID = Number(execFileSync('id', ['-g', OS_USER]));
const BIN = findPgBinDir();
const DB = 'bench';

const log = (s: string): void =>
  void process.stderr.write(`[bench:db ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ proxies

interface Running {
  child: ChildProcess;
  port: number;
  stopSignal: NodeJS.Signals;
}

async function startRoute(route: string, cluster: PgCluster, runDir: string): Promise<Running | undefined> {
  if (route === 'direct') return undefined;
  const port = await freePort();
  const primary = cluster.primary;
  const replica = cluster.replicas[0]!;
  const asServerUser = ['setpriv', `--reuid=${OS_USER}`, `--regid=${OS_USER}`, '--init-groups', '--'];
  let argv: string[];
  let stopSignal: NodeJS.Signals = 'SIGTERM';
  if (route === 'ours' || route.startsWith('ours:')) {
    // "ours:DIR" runs another build (DIR/cli.js) for A/B comparisons of two versions in one run.
    argv = [
      process.execPath,
      route === 'ours' ? join(process.cwd(), 'dist', 'cli.js') : join(route.slice(5), 'cli.js'),
      'db-proxy',
      '--listen',
      `127.0.0.1:${port}`,
      '--primary',
      primary.url,
      '--replica',
      replica.url,
      '--pool-size',
      String(POOL_SIZE),
      '--log-level',
      'warn',
    ];
  } else if (route === 'nodepipe') {
    argv = [
      process.execPath,
      join(process.cwd(), 'bench', 'db', 'node-pipe.mjs'),
      String(port),
      '127.0.0.1',
      String(replica.port),
    ];
  } else if (route === 'pgbouncer') {
    const ini = join(runDir, 'pgbouncer.ini');
    writeFileSync(join(runDir, 'userlist.txt'), `"${cluster.user}" ""\n`);
    writeFileSync(
      ini,
      [
        '[databases]',
        `${DB} = host=127.0.0.1 port=${primary.port} dbname=${DB}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'unix_socket_dir =',
        'auth_type = trust',
        `auth_file = ${join(runDir, 'userlist.txt')}`,
        'pool_mode = transaction',
        `default_pool_size = ${POOL_SIZE}`,
        'max_client_conn = 200',
        `logfile = ${join(runDir, 'pgbouncer.log')}`,
        'log_connections = 0',
        'log_disconnections = 0',
        'ignore_startup_parameters = extra_float_digits',
      ].join('\n') + '\n',
    );
    argv = [...asServerUser, PGBOUNCER, ini];
  } else if (route === 'pgpool') {
    stopSignal = 'SIGINT'; // fast shutdown
    const conf = join(runDir, 'pgpool.conf');
    writeFileSync(join(runDir, 'pcp.conf'), '');
    writeFileSync(join(runDir, 'pool_hba.conf'), 'host all all 127.0.0.1/32 trust\n');
    mkdirSync(join(runDir, 'oiddir'), { recursive: true });
    const node = (i: number, p: number, name: string): string[] => [
      `backend_hostname${i} = '127.0.0.1'`,
      `backend_port${i} = ${p}`,
      `backend_weight${i} = 1`,
      `backend_flag${i} = 'DISALLOW_TO_FAILOVER'`,
      `backend_application_name${i} = '${name}'`,
    ];
    writeFileSync(
      conf,
      [
        "backend_clustering_mode = 'streaming_replication'",
        "listen_addresses = '127.0.0.1'",
        `port = ${port}`,
        `socket_dir = '${runDir}'`,
        "pcp_listen_addresses = ''",
        `pcp_port = ${await freePort()}`,
        `pcp_socket_dir = '${runDir}'`,
        ...node(0, primary.port, 'primary'),
        ...node(1, replica.port, 'replica'),
        'enable_pool_hba = off',
        "pool_passwd = ''",
        `num_init_children = ${POOL_SIZE}`,
        'max_pool = 1',
        'child_life_time = 0',
        'child_max_connections = 0',
        'connection_life_time = 0',
        'client_idle_limit = 0',
        'connection_cache = on',
        'load_balance_mode = on',
        'statement_level_load_balance = on',
        "disable_load_balance_on_write = 'transaction'",
        'sr_check_period = 0',
        `sr_check_user = '${cluster.user}'`,
        "sr_check_password = ''",
        `sr_check_database = '${DB}'`,
        'health_check_period = 0',
        'failover_on_backend_error = off',
        "log_destination = 'stderr'",
        'log_min_messages = warning',
        `pid_file_name = '${join(runDir, 'pgpool.pid')}'`,
        `logdir = '${runDir}'`,
        'use_watchdog = off',
        `wd_ipc_socket_dir = '${runDir}'`,
        'memory_cache_enabled = off',
        `memqcache_oiddir = '${join(runDir, 'oiddir')}'`,
      ].join('\n') + '\n',
    );
    for (const f of readdirSync(runDir)) chownSync(join(runDir, f), UID, GID);
    argv = [
      ...asServerUser,
      PGPOOL,
      '-n',
      '-D',
      '-f',
      conf,
      '-F',
      join(runDir, 'pcp.conf'),
      '-a',
      join(runDir, 'pool_hba.conf'),
    ];
  } else {
    throw new Error(`unknown route ${route}`);
  }
  const cmd = pinned(PROXY_CPUS, argv);
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const deadline = Date.now() + 30_000;
  while (true) {
    try {
      await run(
        join(BIN, 'psql'),
        ['-X', '-At', '-h', '127.0.0.1', '-p', String(port), '-U', cluster.user, '-d', DB, '-c', 'SELECT 1'],
        {
          timeout: 5000,
        },
      );
      break;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`${route} did not start: ${stderr.slice(-500)}`);
      await sleep(200);
    }
  }
  return { child, port, stopSignal };
}

async function stopRoute(r: Running | undefined): Promise<void> {
  if (!r) return;
  r.child.kill(r.stopSignal);
  const exited = await Promise.race([
    new Promise((res) => r.child.once('exit', () => res(true))),
    sleep(10_000).then(() => false),
  ]);
  if (!exited) r.child.kill('SIGKILL');
}

// ------------------------------------------------------------------ measurements

async function dbCounters(cluster: PgCluster): Promise<{ xacts: number; rows: number }[]> {
  return Promise.all(
    cluster.nodes.map(async (n) => {
      const [x, r] = (
        await n.psql(
          `SELECT xact_commit, tup_returned + tup_fetched FROM pg_stat_database WHERE datname = '${DB}'`,
          DB,
        )
      ).split('|');
      return { xacts: Number(x), rows: Number(r) };
    }),
  );
}

/** Waits until no client backend of ours is left on any node, so pg_stat_database has been flushed. */
async function waitForBackendsGone(cluster: PgCluster): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (const n of cluster.nodes) {
    while (Date.now() < deadline) {
      const left = await n.psql(
        `SELECT count(*) FROM pg_stat_activity WHERE datname = '${DB}' AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
        DB,
      );
      if (left === '0') break;
      await sleep(100);
    }
  }
  await sleep(600);
}

interface Row {
  workload: string;
  mode: string;
  route: string;
  ok: boolean;
  error?: string;
  tps?: number;
  latencyMs?: number;
  txns?: number;
  proxyCpuUsPerTx?: number;
  /** The system (kernel) part of proxyCpuUsPerTx. */
  proxySysUsPerTx?: number;
  replicaXactShare?: number;
  /** Transactions the primary committed per pgbench transaction (the proxy's own queries included). */
  primaryXactsPerTx?: number;
  replicaRowShare?: number;
}

async function measure(
  cluster: PgCluster,
  workload: string,
  mode: string,
  route: string,
  runDir: string,
): Promise<Row> {
  const primary = cluster.primary;
  await primary.psql('VACUUM pgbench_branches, pgbench_tellers', DB);
  await primary.psql('TRUNCATE pgbench_history; CHECKPOINT', DB);
  await cluster.waitForReplication(60_000);
  const proxy = await startRoute(route, cluster, runDir);
  const port = proxy?.port ?? primary.port;
  const before = await dbCounters(cluster);
  const args = [
    '-n',
    '-M',
    mode,
    '-c',
    String(CLIENTS),
    '-j',
    String(THREADS),
    '-T',
    String(DURATION),
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    cluster.user,
  ];
  if (workload === 'ro') args.push('-S');
  args.push(DB);
  const cmd = pinned(PGBENCH_CPUS, [join(BIN, 'pgbench'), ...args]);
  const { out, cpu, sys } = await timedPgbench(cmd, DURATION, proxy?.child.pid, LOCK, log);
  await stopRoute(proxy);
  await waitForBackendsGone(cluster);
  const after = await dbCounters(cluster);
  const row: Row = { workload, mode, route, ok: false };
  const txns = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? 0);
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  const aborted = /(\d+) of (\d+) clients? aborted|client \d+ aborted/.exec(out);
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1] ?? NaN);
  if (!txns || failed > 0 || aborted || out.includes('FAILED:') || !Number.isFinite(tps)) {
    const errLine = out.split('\n').find((l) => /ERROR|error:|aborted|FAILED/.test(l)) ?? 'no result';
    return { ...row, error: errLine.trim().slice(0, 160), txns };
  }
  const d = after.map((a, i) => ({ xacts: a.xacts - before[i]!.xacts, rows: a.rows - before[i]!.rows }));
  const total = d.reduce((s, x) => ({ xacts: s.xacts + x.xacts, rows: s.rows + x.rows }), {
    xacts: 0,
    rows: 0,
  });
  return {
    ...row,
    ok: true,
    tps,
    txns,
    latencyMs: Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? NaN),
    proxyCpuUsPerTx: proxy ? (cpu * 1e6) / txns : undefined,
    proxySysUsPerTx: proxy ? (sys * 1e6) / txns : undefined,
    replicaXactShare: total.xacts ? d[1]!.xacts / total.xacts : 0,
    primaryXactsPerTx: d[0]!.xacts / txns,
    replicaRowShare: total.rows ? d[1]!.rows / total.rows : 0,
  };
}

// ------------------------------------------------------------------ main

function table(rows: Row[]): string {
  const pct = (v?: number): string => (v === undefined ? '–' : `${(v * 100).toFixed(1)}%`);
  const lines = [
    '| workload | -M | route | TPS | × direct | avg latency ms | proxy CPU µs/tx | replica share: xacts / rows read |',
    '|---|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const direct = rows.find((x) => x.workload === r.workload && x.mode === r.mode && x.route === 'direct');
    const w = r.workload === 'ro' ? 'read-only `-S`' : 'TPC-B-like r/w';
    if (!r.ok) {
      lines.push(`| ${w} | ${r.mode} | ${r.route} | FAIL | – | – | – | ${r.error ?? ''} |`);
      continue;
    }
    const ratio = direct?.ok && direct.tps ? (r.tps! / direct.tps).toFixed(2) : '–';
    lines.push(
      `| ${w} | ${r.mode} | ${r.route} | ${Math.round(r.tps!).toLocaleString('en-US')} | ${ratio} | ${r.latencyMs!.toFixed(3)} | ${
        r.proxyCpuUsPerTx === undefined ? '–' : r.proxyCpuUsPerTx.toFixed(1)
      } | ${pct(r.replicaXactShare)} / ${pct(r.replicaRowShare)} |`,
    );
  }
  return lines.join('\n');
}

async function shardedFigure(): Promise<void> {
  const { md, rows } = await runSharded();
  process.stdout.write('\n' + md);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'sharded.md'), md);
  writeFileSync(join(RESULTS, 'sharded.json'), JSON.stringify({ rows }, null, 2));
}

async function main(): Promise<void> {
  if (env.SHARDED === 'only') return shardedFigure();
  const started = Date.now();
  log(
    `routes ${ROUTES.join(' ')}, workloads ${WORKLOADS.join(' ')}, modes ${MODES.join(' ')}, ${DURATION} s each`,
  );
  const cluster = await PgCluster.start({
    replicas: 1,
    user: 'bench',
    database: DB,
    settings: {
      fsync: 'on',
      full_page_writes: 'on',
      synchronous_commit: 'on',
      shared_buffers: "'512MB'",
      max_wal_size: "'4GB'",
      checkpoint_timeout: "'30min'",
      max_connections: '200',
    },
  });
  const stopCluster = (): void => void cluster.stop();
  process.once('SIGINT', stopCluster);
  try {
    const runDir = join(cluster.dir, 'run');
    mkdirSync(runDir);
    chownSync(runDir, UID, GID);
    log(`cluster up in ${cluster.dir}; pgbench -i -s ${SCALE}`);
    await run(
      join(BIN, 'pgbench'),
      [
        '-i',
        '-q',
        '-s',
        String(SCALE),
        '-h',
        '127.0.0.1',
        '-p',
        String(cluster.primary.port),
        '-U',
        'bench',
        DB,
      ],
      {
        maxBuffer: 1 << 24,
      },
    );
    await cluster.waitForReplication(120_000);
    for (const n of cluster.nodes) await n.psql('SELECT count(*) FROM pgbench_accounts', DB); // warm the caches
    const rows: Row[] = [];
    for (const workload of WORKLOADS) {
      for (const mode of MODES) {
        for (const route of ROUTES) {
          const row = await measure(cluster, workload, mode, route, runDir);
          rows.push(row);
          log(
            `${workload} ${mode} ${route}: ${row.ok ? `${Math.round(row.tps!)} tps, ${row.proxyCpuUsPerTx?.toFixed(1) ?? '–'} µs/tx (sys ${row.proxySysUsPerTx?.toFixed(1) ?? '–'}), replica ${((row.replicaXactShare ?? 0) * 100).toFixed(1)}%, primary xacts/tx ${row.primaryXactsPerTx?.toFixed(2) ?? '–'}` : `FAIL ${row.error}`}`,
          );
        }
      }
    }
    const versions = {
      node: process.version,
      postgres: (await run(join(BIN, 'postgres'), ['--version'])).stdout.trim(),
      pgbouncer: (await run(PGBOUNCER, ['--version']).catch(() => ({ stdout: 'n/a' }))).stdout
        .split('\n')[0]!
        .trim(),
      pgpool: (
        await run(PGPOOL, ['--version']).catch((e: { stdout?: string; stderr?: string }) => ({
          stdout: e.stderr ?? e.stdout ?? 'n/a',
        }))
      ).stdout.trim(),
    };
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB`;
    const md = [
      `pgbench -c ${CLIENTS} -j ${THREADS} -T ${DURATION}, scale ${SCALE}, pool size ${POOL_SIZE}; proxies pinned to CPU ${PROXY_CPUS || 'any'}, pgbench to CPU ${PGBENCH_CPUS || 'any'}`,
      `machine: ${machine}; ${Object.entries(versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; ${new Date().toISOString()}`,
      '',
      table(rows),
      '',
    ].join('\n');
    process.stdout.write(md);
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, 'latest.md'), md);
    writeFileSync(
      join(RESULTS, 'latest.json'),
      JSON.stringify({ rows, versions, machine, durationS: DURATION, clients: CLIENTS }, null, 2),
    );
    log(`done in ${((Date.now() - started) / 60000).toFixed(1)} min`);
  } finally {
    await cluster.stop();
  }
  if (env.SHARDED !== '0') await shardedFigure();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
