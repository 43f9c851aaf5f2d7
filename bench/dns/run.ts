// npm run bench:dns — dnsperf against scaleout dns and against BIND, NSD and Knot serving the same zone,
// side by side in one run, each server pinned to one core. Prints a markdown table (QPS, server CPU µs
// per query from /proc, response-code shares) and writes bench/dns/results/latest.json.
//
// Rows: bind, nsd, knot (each with one worker), ours (scaleout dns with the health-aware `www` record
// set on: 4 addresses with live TCP health checks) and ours-static (the same zone file, no checks).
// Each round holds BENCH_LOCK while it measures every row back to back; rounds are interleaved.
// Knobs (environment): SERVERS, ROUNDS (3), DURATION (10 s), WARMUP (2 s), CLIENTS (4), OUTSTANDING
// (100), SRV_CPU (1), LOAD_CPU (0), NICE (-10), PORT (5353), HEALTH_PORT (18053), BENCH_LOCK
// (/tmp/scaleout-bench.lock), KEEP_WORK (keep the temp folder with configs and server logs).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import { cpus, tmpdir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { ORIGIN, WWW_ADDRESSES, writeBenchFiles } from './zone.js';

const env = (k: string, d: string) => process.env[k] ?? d;
const ROUNDS = Number(env('ROUNDS', '3'));
const DURATION = Number(env('DURATION', '10'));
const WARMUP = Number(env('WARMUP', '2'));
const CLIENTS = env('CLIENTS', '4');
const OUTSTANDING = env('OUTSTANDING', '100');
const SRV_CPU = env('SRV_CPU', '1');
const LOAD_CPU = env('LOAD_CPU', '0');
const PORT = Number(env('PORT', '5353'));
const ADDR = '127.0.0.1';
const LOCK = env('BENCH_LOCK', '/tmp/scaleout-bench.lock');
const HEALTH_PORT = Number(env('HEALTH_PORT', '18053'));
// This box is shared with other work that the bench lock does not stop (builds, tests). A higher
// priority for the server and dnsperf (the same for every row) keeps them from being time-sliced
// with it; without it, every server's CPU per query rises, Node's the most. The kernel groups
// processes by session (autogroup), and `nice` only ranks processes inside one group, so each
// measured process gets its own session (setsid) and that group's nice is set too. NICE=0: off.
const NICE = env('NICE', '-10');
const prio = (cmd: string[]) => (NICE === '0' ? cmd : ['setsid', 'nice', '-n', NICE, ...cmd]);
function prioritize(pid: number | undefined): void {
  if (NICE === '0' || pid === undefined) return;
  try {
    writeFileSync(`/proc/${pid}/autogroup`, NICE);
  } catch {
    // no autogroup support, or not allowed: plain nice still applies
  }
}
const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

interface ServerDef {
  name: string;
  binary: string;
  /** The command (without taskset) that runs the server in the foreground. */
  command(work: string, zoneFile: string): string[];
}

function writeConfigs(work: string, zoneFile: string): void {
  mkdirSync(join(work, 'bind'), { recursive: true });
  mkdirSync(join(work, 'nsd'), { recursive: true });
  mkdirSync(join(work, 'knot'), { recursive: true });
  // BIND 9: one worker, authoritative only, minimal responses (no NS/additional in positive answers).
  writeFileSync(
    join(work, 'bind/named.conf'),
    `options {
  directory "${work}/bind";
  pid-file "${work}/bind/named.pid";
  session-keyfile "${work}/bind/session.key";
  listen-on port ${PORT} { ${ADDR}; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  minimal-responses yes;
  notify no;
  querylog no;
};
controls { };
zone "${ORIGIN}" { type primary; file "${zoneFile}"; };
`,
  );
  // NSD: one server process; its response rate limiting (on by default) would throttle dnsperf.
  writeFileSync(
    join(work, 'nsd/nsd.conf'),
    `server:
  ip-address: ${ADDR}@${PORT}
  server-count: 1
  reuseport: no
  username: ""
  chroot: ""
  zonesdir: "${work}/nsd"
  database: ""
  zonelistfile: "${work}/nsd/zone.list"
  xfrdfile: "${work}/nsd/xfrd.state"
  xfrdir: "${work}/nsd"
  pidfile: "${work}/nsd/nsd.pid"
  logfile: "${work}/nsd/nsd.log"
  minimal-responses: yes
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  zonefiles-write: 0
remote-control:
  control-enable: no
zone:
  name: ${ORIGIN}
  zonefile: "${zoneFile}"
`,
  );
  // Knot: one UDP and one TCP worker, no journal.
  writeFileSync(
    join(work, 'knot/knot.conf'),
    `server:
  rundir: "${work}/knot"
  pidfile: "${work}/knot/knot.pid"
  listen: ${ADDR}@${PORT}
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
log:
  - target: stderr
    any: warning
database:
  storage: "${work}/knot/db"
control:
  listen: "${work}/knot/knot.sock"
template:
  - id: default
    storage: "${work}/knot"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: ${ORIGIN}
    file: "${zoneFile}"
`,
  );
}

const ourBase = (zoneFile: string) => [
  process.execPath,
  join(ROOT, 'dist/cli.js'),
  'dns',
  '--listen',
  `${ADDR}:${PORT}`,
  '--zone-file',
  zoneFile,
];

const SERVERS: ServerDef[] = [
  {
    name: 'bind',
    binary: 'named',
    command: (w) => ['named', '-g', '-n', '1', '-c', join(w, 'bind/named.conf')],
  },
  { name: 'nsd', binary: 'nsd', command: (w) => ['nsd', '-d', '-c', join(w, 'nsd/nsd.conf')] },
  { name: 'knot', binary: 'knotd', command: (w) => ['knotd', '-c', join(w, 'knot/knot.conf')] },
  {
    name: 'ours',
    binary: process.execPath,
    // The health-aware answers on: www's 4 addresses are a record set with TCP checks every 2 s.
    command: (_w, zoneFile) => [
      ...ourBase(zoneFile),
      '--record',
      `www 300 A ${WWW_ADDRESSES.join(' ')}`,
      '--health-port',
      String(HEALTH_PORT),
    ],
  },
  { name: 'ours-static', binary: process.execPath, command: (_w, zoneFile) => ourBase(zoneFile) },
];

function have(binary: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Holds an exclusive flock on LOCK until release() (flock(1) keeps it while its stdin is open). */
async function acquireLock(): Promise<{ release(): void; waitedMs: number }> {
  const start = Date.now();
  const child = spawn('flock', ['-x', LOCK, 'sh', '-c', 'echo locked; cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`flock exited with ${code}`)));
  });
  return { release: () => child.stdin!.end(), waitedMs: Date.now() - start };
}

function children(pid: number): number[] {
  const all: Array<[number, number]> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      all.push([Number(entry), ppid]);
    } catch {
      // exited meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [p, pp] of all) if (pp === tree[i]) tree.push(p);
  return tree;
}

/** utime + stime of every process in the tree, all threads, in clock ticks. */
function cpuTicks(pid: number): number {
  let ticks = 0;
  for (const p of children(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited
    }
  }
  return ticks;
}

/** Re-pins every thread of the tree to SRV_CPU (Knot pins its workers itself). Returns threads moved. */
function repin(pid: number): number {
  let moved = 0;
  for (const p of children(pid)) {
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const before = execFileSync('taskset', ['-c', '-p', tid]).toString().trim().split(': ')[1];
      if (before !== SRV_CPU) {
        execFileSync('taskset', ['-c', '-p', SRV_CPU, tid], { stdio: 'ignore' });
        moved++;
      }
    }
  }
  return moved;
}

function dig(...args: string[]): string {
  try {
    return execFileSync('dig', [
      `@${ADDR}`,
      '-p',
      String(PORT),
      '+time=1',
      '+tries=1',
      '+norec',
      '+noedns',
      ...args,
    ]).toString();
  } catch {
    return '';
  }
}

async function waitReady(proc: ChildProcess, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) return false;
    if (/status: NOERROR/.test(dig(ORIGIN, 'SOA'))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** The answers every row must give (same as the anchors): checked once per run. */
function probe(): string[] {
  const problems: string[] = [];
  const answers = (out: string) => out.split('\n').filter((l) => /\tIN\t/.test(l) && !l.startsWith(';'));
  const www = dig(`www.${ORIGIN}`, 'A');
  if (!/flags: qr aa/.test(www)) problems.push('www A: AA not set');
  const addrs = answers(www)
    .map((l) => l.split('\t').at(-1))
    .sort();
  if (JSON.stringify(addrs) !== JSON.stringify(WWW_ADDRESSES)) problems.push(`www A: got ${addrs.join(',')}`);
  if (answers(dig(`alias.${ORIGIN}`, 'A')).length !== 5) problems.push('alias A: expected CNAME + 4 A');
  const nx = dig(`nx-probe.${ORIGIN}`, 'A');
  if (!/status: NXDOMAIN/.test(nx) || !/AUTHORITY: 1/.test(nx)) problems.push('NXDOMAIN with SOA expected');
  const nodata = dig(`www.${ORIGIN}`, 'MX');
  if (!/status: NOERROR/.test(nodata) || !/ANSWER: 0, AUTHORITY: 1/.test(nodata))
    problems.push('NODATA with SOA expected');
  const tcp = answers(dig('+tcp', `www.${ORIGIN}`, 'A'));
  if (tcp.length !== 4) problems.push('www A over TCP: expected 4 A');
  return problems;
}

/** busy and total jiffies of one CPU from /proc/stat. */
function cpuStat(cpu: string): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `))!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = v[3]! + (v[4] ?? 0);
  return { busy: total - idle, total };
}

interface DnsperfResult {
  completed: number;
  lost: number;
  qps: number;
  rcodes: Record<string, number>;
  avgLatencyMs: number;
}

async function dnsperf(queryFile: string, seconds: number): Promise<DnsperfResult> {
  const [bin, ...pre] = prio(['taskset', '-c', LOAD_CPU, 'dnsperf']);
  const child = spawn(
    bin!,
    [
      ...pre,
      '-s',
      ADDR,
      '-p',
      String(PORT),
      '-d',
      queryFile,
      '-l',
      String(seconds),
      '-c',
      CLIENTS,
      '-q',
      OUTSTANDING,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prioritize(child.pid);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`dnsperf exited with ${code}: ${out}`);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const rcodes: Record<string, number> = {};
  const line = /Response codes:\s+(.*)/.exec(out)?.[1] ?? '';
  for (const m of line.matchAll(/(\w+) (\d+) \(/g)) rcodes[m[1]!] = Number(m[2]);
  return {
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    qps: num(/Queries per second:\s+([\d.]+)/),
    rcodes,
    avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
  };
}

interface Run {
  server: string;
  round: number;
  ok: boolean;
  error?: string;
  qps?: number;
  usPerQuery?: number;
  serverCpuPct?: number;
  completed?: number;
  lost?: number;
  rcodes?: Record<string, number>;
  avgLatencyMs?: number;
  threadsRepinned?: number;
  /** Busy % of the server's and the load generator's CPU during the run (anything running there). */
  serverCoreBusyPct?: number;
  loadCoreBusyPct?: number;
  probeProblems?: string[];
  lockWaitMs?: number;
}

async function stopServer(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const tree = children(proc.pid!);
  for (const p of tree) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      // gone
    }
  }
  const timer = setTimeout(
    () =>
      tree.forEach((p) => {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }),
    5000,
  );
  await once(proc, 'exit');
  clearTimeout(timer);
  // Give forked helpers (NSD) a moment to release the port.
  await new Promise((r) => setTimeout(r, 300));
}

async function runOne(
  def: ServerDef,
  round: number,
  work: string,
  zoneFile: string,
  queryFile: string,
): Promise<Run> {
  const run: Run = { server: def.name, round, ok: false };
  const log = join(work, `${def.name}-${round}.log`);
  const [bin, ...args] = prio(['taskset', '-c', SRV_CPU, ...def.command(work, zoneFile)]);
  const proc = spawn(bin!, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  prioritize(proc.pid);
  let output = '';
  const keep = (d: Buffer) => {
    output += d.toString();
    if (output.length > 20000) output = output.slice(-10000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  try {
    if (!(await waitReady(proc))) throw new Error(`did not answer ${ORIGIN} SOA within 30 s`);
    run.threadsRepinned = repin(proc.pid!);
    if (round === 1) {
      run.probeProblems = probe();
      if (run.probeProblems.length) throw new Error(`wrong answers: ${run.probeProblems.join('; ')}`);
    }
    await dnsperf(queryFile, WARMUP);
    repin(proc.pid!);
    const t0 = cpuTicks(proc.pid!);
    const s0 = cpuStat(SRV_CPU);
    const l0 = cpuStat(LOAD_CPU);
    const started = process.hrtime.bigint();
    const r = await dnsperf(queryFile, DURATION);
    const wallS = Number(process.hrtime.bigint() - started) / 1e9;
    const ticks = cpuTicks(proc.pid!) - t0;
    const s1 = cpuStat(SRV_CPU);
    const l1 = cpuStat(LOAD_CPU);
    run.serverCoreBusyPct = ((s1.busy - s0.busy) / (s1.total - s0.total)) * 100;
    run.loadCoreBusyPct = ((l1.busy - l0.busy) / (l1.total - l0.total)) * 100;
    Object.assign(run, r);
    run.usPerQuery = ((ticks / CLK_TCK) * 1e6) / r.completed;
    run.serverCpuPct = (ticks / CLK_TCK / wallS) * 100;
    const total = r.completed;
    const share = (k: string) => (r.rcodes[k] ?? 0) / total;
    const bad = Object.keys(r.rcodes).filter((k) => k !== 'NOERROR' && k !== 'NXDOMAIN');
    if (bad.length) throw new Error(`unexpected response codes ${bad.join(',')}`);
    if (Math.abs(share('NOERROR') - 0.9) > 0.01 || Math.abs(share('NXDOMAIN') - 0.1) > 0.01)
      throw new Error('rcode shares off 90/10');
    if (r.lost > total * 0.001) throw new Error(`lost ${r.lost} queries`);
    run.ok = true;
  } catch (err) {
    run.error = (err as Error).message;
  } finally {
    await stopServer(proc);
    writeFileSync(log, output);
  }
  return run;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Stand-ins for the servers behind www's addresses, so `ours` health checks pass. */
async function startHealthTargets(): Promise<net.Server[]> {
  const servers: net.Server[] = [];
  for (const host of WWW_ADDRESSES) {
    const s = net.createServer((c) => c.destroy());
    s.listen(HEALTH_PORT, host);
    await once(s, 'listening');
    servers.push(s);
  }
  return servers;
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      .toString()
      .split('\n')[0]!
      .trim();
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    return `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`.split('\n')[0]!.trim();
  }
}

async function main(): Promise<void> {
  for (const tool of ['dnsperf', 'dig', 'taskset', 'flock'])
    if (!have(tool)) throw new Error(`${tool} is required`);
  const wanted = env('SERVERS', 'bind nsd knot ours ours-static').split(/\s+/).filter(Boolean);
  const defs = wanted.map((n) => {
    const d = SERVERS.find((s) => s.name === n);
    if (!d) throw new Error(`unknown server ${n} (known: ${SERVERS.map((s) => s.name).join(', ')})`);
    return d;
  });
  const skipped = defs.filter((d) => !have(d.binary)).map((d) => d.name);
  const active = defs.filter((d) => !skipped.includes(d.name));
  for (const s of skipped) console.error(`warning: ${s} skipped (binary not installed)`);

  const work = mkdtempSync(join(tmpdir(), 'scaleout-bench-dns-'));
  const zoneFile = join(work, 'example.test.zone');
  const queryFile = join(work, 'queries.txt');
  writeBenchFiles(zoneFile, queryFile);
  writeConfigs(work, zoneFile);
  const targets = await startHealthTargets();
  const runs: Run[] = [];
  const startedAt = new Date();
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      // One lock per round: every row of a round is measured back to back under the same conditions
      // (the per-round ratio to bind depends on it), and other benchmarks get the box between rounds.
      const lock = await acquireLock();
      if (lock.waitedMs > 1000)
        console.error(`round ${round}: waited ${(lock.waitedMs / 1000).toFixed(0)} s for ${LOCK}`);
      try {
        for (const def of active) {
          const run = await runOne(def, round, work, zoneFile, queryFile);
          run.lockWaitMs = lock.waitedMs;
          runs.push(run);
          const summary = run.ok
            ? `${Math.round(run.qps!)} qps, ${run.usPerQuery!.toFixed(2)} µs/query`
            : `INVALID: ${run.error}`;
          console.error(`round ${round} ${def.name}: ${summary}`);
        }
      } finally {
        lock.release();
      }
    }
  } finally {
    for (const t of targets) t.close();
    if (!process.env.KEEP_WORK) rmSync(work, { recursive: true, force: true });
    else console.error(`work folder kept: ${work}`);
  }

  // Per-round ratio to bind, then the median of those ratios (bind's figures drift between rounds).
  const byRound = (server: string, round: number) =>
    runs.find((r) => r.server === server && r.round === round && r.ok);
  const rows = active.map((def) => {
    const ok = runs.filter((r) => r.server === def.name && r.ok);
    const ratios = (field: 'qps' | 'usPerQuery') =>
      median(
        ok
          .map((r) => {
            const b = byRound('bind', r.round);
            return b ? r[field]! / b[field]! : NaN;
          })
          .filter((x) => Number.isFinite(x)),
      );
    const rc = (k: string) => median(ok.map((r) => (r.rcodes![k] ?? 0) / r.completed!));
    return {
      server: def.name,
      valid: `${ok.length}/${ROUNDS}`,
      qps: median(ok.map((r) => r.qps!)),
      qpsVsBind: ratios('qps'),
      usPerQuery: median(ok.map((r) => r.usPerQuery!)),
      usVsBind: ratios('usPerQuery'),
      cpuPct: median(ok.map((r) => r.serverCpuPct!)),
      serverCoreBusy: median(ok.map((r) => r.serverCoreBusyPct!)),
      loadCoreBusy: median(ok.map((r) => r.loadCoreBusyPct!)),
      noerror: rc('NOERROR'),
      nxdomain: rc('NXDOMAIN'),
      lost: ok.reduce((s, r) => s + r.lost!, 0),
      perRound: runs
        .filter((r) => r.server === def.name)
        .map((r) => (r.ok ? r.usPerQuery!.toFixed(2) : 'invalid')),
      qpsPerRound: runs
        .filter((r) => r.server === def.name)
        .map((r) => (r.ok ? `${(r.qps! / 1000).toFixed(1)}k` : 'invalid')),
    };
  });

  const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const pct = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(1)}%` : '–');
  const lines = [
    `| server | QPS (median) | × bind | server CPU µs/query | × bind | server CPU % | server-core / load-core busy % | NOERROR / NXDOMAIN | lost | valid | µs/query by round | QPS by round |`,
    `|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|`,
    ...rows.map(
      (r) =>
        `| ${r.server} | ${Number.isFinite(r.qps) ? Math.round(r.qps).toLocaleString('en-US') : '–'} | ${f(r.qpsVsBind)} | ${f(r.usPerQuery)} | ${f(r.usVsBind)} | ${f(r.cpuPct, 0)} | ${f(r.serverCoreBusy, 0)} / ${f(r.loadCoreBusy, 0)} | ${pct(r.noerror)} / ${pct(r.nxdomain)} | ${r.lost} | ${r.valid} | ${r.perRound.join(' / ')} | ${r.qpsPerRound.join(' / ')} |`,
    ),
  ];
  console.log(lines.join('\n'));
  if (skipped.length) console.log(`\nSkipped (not installed): ${skipped.join(', ')}`);
  console.log(
    `\nServer CPU % = the server's own CPU time over the run's wall time (100 = one core). Server-core busy % minus server CPU % is other work on the server's core; a load core near 100 % with a server below ~90 % means dnsperf (or whatever else shares its core) was the limit, and then every server's µs/query rises (fewer queries per wake-up).`,
    `\n${ROUNDS} interleaved rounds; each: ${WARMUP} s warm-up, then \`dnsperf -l ${DURATION} -c ${CLIENTS} -q ${OUTSTANDING}\` on CPU ${LOAD_CPU}, server tree on CPU ${SRV_CPU}, both at nice ${NICE}. µs/query = server utime+stime (/proc, all threads) / queries completed.`,
  );

  const resultsDir = join(ROOT, 'bench/dns/results');
  mkdirSync(resultsDir, { recursive: true });
  const machine = {
    hostname: hostname(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    kernel: version('uname', ['-r']),
    node: process.version,
    packages: Object.fromEntries(
      ['bind9', 'nsd', 'knot', 'dnsperf', 'dnsutils'].map((p) => [
        p,
        version('dpkg-query', ['-W', '-f', '${Version}', p]),
      ]),
    ),
  };
  writeFileSync(
    join(resultsDir, 'latest.json'),
    JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        machine,
        settings: { ROUNDS, DURATION, WARMUP, CLIENTS, OUTSTANDING, SRV_CPU, LOAD_CPU, NICE },
        rows,
        runs,
      },
      null,
      2,
    ) + '\n',
  );
  try {
    // Keep the committed results file in the repository's format (npm run lint checks it).
    execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules/prettier/bin/prettier.cjs'), '--write', join(resultsDir, 'latest.json')],
      {
        stdio: 'ignore',
      },
    );
  } catch {
    // formatting is cosmetic
  }
  if (runs.some((r) => !r.ok)) process.exitCode = 2;
}

main().catch((err: unknown) => {
  console.error(`bench:dns: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
