// The sharded figure of `npm run bench:db`: pgbench with a custom script keyed on aid (one UPDATE and
// one SELECT of the same account, each its own single-shard statement) through scaleout db-proxy, with
// pgbench_accounts on 1 shard, then split over 2 shards (two PostgreSQL primaries). Prints TPS, latency,
// proxy CPU per transaction and each shard's share of the transactions (pg_stat_database deltas).
//
// Run alone: `node --import tsx bench/db/sharded.ts` (the same knobs as run.ts: DURATION, CLIENTS,
// THREADS, MODES, PROXY_CPUS, PGBENCH_CPUS, BENCH_LOCK; SHARD_SCALE = accounts in units of 100,000).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { PgCluster, findPgBinDir, freePort } from '../../src/topology/postgres.js';
import { pinned, timedPgbench } from './common.js';

const env = process.env;
const DURATION = Number(env.DURATION ?? 15);
const CLIENTS = Number(env.CLIENTS ?? 16);
const THREADS = Number(env.THREADS ?? 2);
const MODES = (env.SHARD_MODES ?? 'simple prepared').split(/\s+/).filter(Boolean);
const ACCOUNTS = Number(env.SHARD_SCALE ?? 5) * 100_000;
const PROXY_CPUS = env.PROXY_CPUS ?? '1';
const PGBENCH_CPUS = env.PGBENCH_CPUS ?? '0';
const LOCK = env.BENCH_LOCK ?? '/tmp/scaleout-bench.lock';
const RESULTS = env.RESULTS ?? join(process.cwd(), 'bench', 'db', 'results');
const BIN = findPgBinDir();
const DB = 'bench';

const log = (s: string): void =>
  void process.stderr.write(`[bench:db sharded ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const SCRIPT = `\\set aid random(1, ${ACCOUNTS})
\\set delta random(-5000, 5000)
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
`;

async function commits(c: PgCluster): Promise<number> {
  return Number(await c.primary.psql(`SELECT xact_commit FROM pg_stat_database WHERE datname = '${DB}'`, DB));
}

export interface ShardRow {
  shards: number;
  mode: string;
  ok: boolean;
  error?: string;
  tps?: number;
  latencyMs?: number;
  proxyCpuUsPerTx?: number;
  shardShare?: number[];
}

async function startProxy(
  dir: string,
  clusters: PgCluster[],
): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const config = join(dir, `shards-${clusters.length}.yaml`);
  writeFileSync(
    config,
    [
      'database:',
      `  listen: 127.0.0.1:${port}`,
      '  pool_size: 20',
      '  log_level: info',
      '  shards:',
      ...clusters.map((c) => `    - primary: ${c.primary.url}`),
      '  sharded_tables:',
      '    - { table: pgbench_accounts, key: aid, type: int }',
      '',
    ].join('\n'),
  );
  const argv = pinned(PROXY_CPUS, [
    process.execPath,
    join(process.cwd(), 'dist', 'cli.js'),
    'db-proxy',
    '--config',
    config,
  ]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`db-proxy exited with ${code}`)));
  });
  return { child, port };
}

async function measure(dir: string, clusters: PgCluster[], mode: string): Promise<ShardRow> {
  const row: ShardRow = { shards: clusters.length, mode, ok: false };
  const proxy = await startProxy(dir, clusters);
  const script = join(dir, 'keyed.sql');
  writeFileSync(script, SCRIPT);
  const before = await Promise.all(clusters.map(commits));
  const cmd = pinned(PGBENCH_CPUS, [
    join(BIN, 'pgbench'),
    '-n',
    '-M',
    mode,
    '-f',
    script,
    '-c',
    String(CLIENTS),
    '-j',
    String(THREADS),
    '-T',
    String(DURATION),
    '-h',
    '127.0.0.1',
    '-p',
    String(proxy.port),
    '-U',
    'bench',
    DB,
  ]);
  const { out, cpu } = await timedPgbench(cmd, DURATION, proxy.child.pid, LOCK, log);
  proxy.child.kill('SIGTERM');
  await new Promise((r) => proxy.child.once('exit', r));
  await sleep(700);
  const after = await Promise.all(clusters.map(commits));
  const txns = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? 0);
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1] ?? NaN);
  if (!txns || out.includes('FAILED:') || /aborted/.test(out) || !Number.isFinite(tps)) {
    return {
      ...row,
      error: (out.split('\n').find((l) => /ERROR|error|aborted|FAILED/.test(l)) ?? 'no result').slice(0, 160),
    };
  }
  const d = after.map((a, i) => a - before[i]!);
  const total = d.reduce((a, b) => a + b, 0);
  return {
    ...row,
    ok: true,
    tps,
    latencyMs: Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? NaN),
    proxyCpuUsPerTx: (cpu * 1e6) / txns,
    shardShare: d.map((x) => (total ? x / total : 0)),
  };
}

export function shardTable(rows: ShardRow[]): string {
  const lines = [
    '| shards | -M | TPS | × 1 shard | avg latency ms | proxy CPU µs/tx | share of commits per shard |',
    '|---:|---|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    if (!r.ok) {
      lines.push(`| ${r.shards} | ${r.mode} | FAIL | – | – | – | ${r.error ?? ''} |`);
      continue;
    }
    const one = rows.find((x) => x.shards === 1 && x.mode === r.mode && x.ok);
    lines.push(
      `| ${r.shards} | ${r.mode} | ${Math.round(r.tps!).toLocaleString('en-US')} | ${one ? (r.tps! / one.tps!).toFixed(2) : '–'} | ${r.latencyMs!.toFixed(3)} | ${r.proxyCpuUsPerTx!.toFixed(1)} | ${r.shardShare!.map((s) => `${(s * 100).toFixed(1)}%`).join(' / ')} |`,
    );
  }
  return lines.join('\n');
}

/** Loads the accounts for `n` shards: each shard keeps the rows whose hash remainder is its index. */
async function load(clusters: PgCluster[], n: number): Promise<void> {
  for (const [r, c] of clusters.slice(0, n).entries()) {
    await c.primary.psql(
      [
        'SET client_min_messages = warning',
        'DROP TABLE IF EXISTS pgbench_accounts, hp_int',
        'CREATE TABLE hp_int (k int) PARTITION BY HASH (k)',
        'CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84)) WITH (fillfactor = 90)',
        `INSERT INTO pgbench_accounts SELECT aid, 1, 0, '' FROM generate_series(1, ${ACCOUNTS}) aid WHERE satisfies_hash_partition('hp_int'::regclass, ${n}, ${r}, aid)`,
      ].join('; '),
      DB,
    );
    await c.primary.psql('VACUUM ANALYZE pgbench_accounts', DB);
    await c.primary.psql('CHECKPOINT', DB);
  }
}

export async function runSharded(): Promise<{ md: string; rows: ShardRow[] }> {
  log(`2 primaries; ${ACCOUNTS} accounts; modes ${MODES.join(' ')}; ${DURATION} s each`);
  const settings = {
    fsync: 'on',
    synchronous_commit: 'on',
    shared_buffers: "'256MB'",
    max_connections: '100',
    max_wal_size: "'2GB'",
  };
  const clusters = await Promise.all(
    [0, 1].map(() => PgCluster.start({ replicas: 0, user: 'bench', database: DB, settings })),
  );
  const dir = mkdtempSync(join(tmpdir(), 'scaleout-bench-shard-'));
  try {
    const rows: ShardRow[] = [];
    for (const n of [1, 2]) {
      await load(clusters, n);
      for (const mode of MODES) {
        const row = await measure(dir, clusters.slice(0, n), mode);
        rows.push(row);
        log(
          `${n} shard(s) ${mode}: ${row.ok ? `${Math.round(row.tps!)} tps, ${row.proxyCpuUsPerTx!.toFixed(1)} µs/tx` : `FAIL ${row.error}`}`,
        );
      }
    }
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB`;
    const md = [
      `sharded: pgbench -f keyed.sql (UPDATE + SELECT by aid) -c ${CLIENTS} -j ${THREADS} -T ${DURATION}, ${ACCOUNTS} accounts; proxy pinned to CPU ${PROXY_CPUS || 'any'}, pgbench to CPU ${PGBENCH_CPUS || 'any'}`,
      `machine: ${machine}; node ${process.version}; ${new Date().toISOString()}`,
      '',
      shardTable(rows),
      '',
    ].join('\n');
    return { md, rows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await Promise.all(clusters.map((c) => c.stop()));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runSharded()
    .then(({ md, rows }) => {
      process.stdout.write(md);
      mkdirSync(RESULTS, { recursive: true });
      writeFileSync(join(RESULTS, 'sharded.md'), md);
      writeFileSync(join(RESULTS, 'sharded.json'), JSON.stringify({ rows }, null, 2));
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
