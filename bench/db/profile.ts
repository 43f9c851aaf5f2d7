// Ad-hoc profiling helper (not part of bench:db): a primary + replica, then `pgbench -S` through
// `scaleout db-proxy` started with `node --cpu-prof`, one proxy per protocol, and a summary of the
// profile's self time by function. Usage: node --import tsx bench/db/profile.ts OUTDIR [DIST] [MODES] [WORKLOAD]
import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PgCluster, findPgBinDir, freePort } from '../../src/topology/postgres.js';

const run = promisify(execFile);
const [
  outDir = '/tmp/db-prof',
  dist = join(process.cwd(), 'dist'),
  modes = 'simple extended prepared',
  workload = 'ro',
] = process.argv.slice(2);
const BIN = findPgBinDir();

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}

function summary(file: string): string {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[] };
  const self = new Map<string, number>();
  let total = 0;
  for (const n of prof.nodes) {
    const url = n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/');
    const key = `${n.callFrame.functionName || '(anon)'} ${url}:${n.callFrame.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + n.hitCount);
    total += n.hitCount;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 40)
    .map(([k, v]) => `${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`)
    .join('\n');
}

const cluster = await PgCluster.start({ replicas: 1, user: 'bench', database: 'bench' });
try {
  await run(join(BIN, 'pgbench'), [
    '-i',
    '-q',
    '-s',
    '5',
    '-h',
    '127.0.0.1',
    '-p',
    String(cluster.primary.port),
    '-U',
    'bench',
    'bench',
  ]);
  await cluster.waitForReplication(60_000);
  for (const mode of modes.split(' ')) {
    const port = await freePort();
    const dir = join(outDir, mode);
    const child = spawn(
      'taskset',
      [
        '-c',
        '1',
        process.execPath,
        '--cpu-prof',
        '--cpu-prof-dir',
        dir,
        join(dist, 'cli.js'),
        'db-proxy',
        '--listen',
        `127.0.0.1:${port}`,
        '--primary',
        cluster.primary.url,
        '--replica',
        cluster.replicas[0]!.url,
        '--pool-size',
        '20',
        '--log-level',
        'warn',
      ],
      { stdio: 'inherit' },
    );
    await new Promise((r) => setTimeout(r, 1500));
    const args = [
      '-n',
      '-M',
      mode,
      '-c',
      '16',
      '-j',
      '2',
      '-T',
      '8',
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      'bench',
    ];
    if (workload === 'ro') args.push('-S');
    const r = await run('flock', [
      '/tmp/scaleout-bench.lock',
      'taskset',
      '-c',
      '0',
      join(BIN, 'pgbench'),
      ...args,
      'bench',
    ]);
    console.log(mode, /tps = [\d.]+ \(without/.exec(r.stdout)?.[0]);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const f = readdirSync(dir).find((x) => x.endsWith('.cpuprofile'));
    if (f) console.log(summary(join(dir, f)));
  }
} finally {
  await cluster.stop();
}
