/**
 * `npm run bench:http`: wrk against an HTTP load balancer in front of four fast nginx targets, for
 * nginx, HAProxy and our LB side by side in one run, each pinned to one core. Prints a markdown table
 * and writes every raw figure to results/latest.json. Method and knobs: README.md.
 */
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Backends } from './lib/backends.js';
import { BACKEND_PORTS, LISTEN } from './lib/configs.js';
import { withBenchLock } from './lib/lock.js';
import { CLOCK_TICKS_PER_SECOND, runBlock, type RunRecord } from './lib/measure.js';
import { capture, killAllNow, portFree, stopTree } from './lib/proc.js';
import { figures, judge, markdown, summarise, type RunFigures } from './lib/report.js';
import { findRow, type RowContext, type RowDef } from './lib/rows.js';
import { readSettings, type Settings } from './lib/settings.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function log(message: string): void {
  process.stderr.write(`[bench:http ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function has(command: string): Promise<boolean> {
  return (await capture('sh', ['-c', `command -v ${command}`])).code === 0;
}

async function versions(): Promise<Record<string, string>> {
  const first = async (cmd: string, args: string[]): Promise<string> =>
    (await capture(cmd, args)).text.split('\n')[0]?.trim() ?? '';
  return {
    node: process.version,
    nginx: await first('nginx', ['-v']),
    haproxy: await first('haproxy', ['-v']),
    wrk: await first('wrk', ['-v']),
  };
}

async function gitFacts(): Promise<{ commit: string; srcDirty: boolean; srcChanges: string[] }> {
  const commit = (await capture('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'])).text.trim();
  const status = (await capture('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'src'])).text.trim();
  return { commit, srcDirty: status.length > 0, srcChanges: status ? status.split('\n') : [] };
}

function machine(): Record<string, string | number> {
  const model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  return {
    nproc: cpus().length,
    cpuModel: model,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  };
}

/** Copy dist/ (with package.json for ESM and a link to node_modules) into the temp folder; return its cli.js. */
function snapshotBuild(work: string): string {
  const dir = join(work, 'scaleout');
  mkdirSync(dir);
  cpSync(join(repoRoot, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  return join(dir, 'dist', 'cli.js');
}

/** Verdicts, medians and the table, from raw runs (also used by `--report FILE`). */
function analyse(
  runs: RunRecord[],
  rowNames: string[],
  settings: Pick<Settings, 'conns' | 'lowConns' | 'rounds' | 'loadCpu'>,
  skipped: { row: string; why: string }[],
) {
  const problems: { row: string; round: number; text: string }[] = [];
  const warnings: { row: string; round: number; text: string }[] = [];
  const verdicts = runs.map((run) => {
    const v = judge(run, run.proxied, settings.conns);
    for (const text of v.problems) problems.push({ row: run.row, round: run.round, text });
    for (const text of v.warnings) warnings.push({ row: run.row, round: run.round, text });
    return v;
  });
  const grouped = rowNames.map((name) => {
    const mine = runs.map((run, i) => ({ run, v: verdicts[i]! })).filter((x) => x.run.row === name);
    const valid: RunFigures[] = mine
      .filter((x) => x.v.valid)
      .map((x) => figures(x.run, x.run.proxied, settings.loadCpu));
    return { row: name, runs: mine.map((x) => x.run), valid };
  });
  const summaries = summarise(grouped);
  const table = markdown({ summaries, settings, skipped, problems, warnings });
  return { verdicts, summaries, table, problems };
}

/** `--report FILE`: print the table again from a results JSON written by an earlier run. */
function reprint(file: string): number {
  const saved = JSON.parse(readFileSync(file, 'utf8')) as {
    settings: Settings;
    rows: { name: string }[];
    skipped: { row: string; why: string }[];
    runs: RunRecord[];
  };
  const names = saved.rows.map((r) => r.name);
  const { table } = analyse(saved.runs, names, saved.settings, saved.skipped);
  process.stdout.write(`${table}\n`);
  return 0;
}

async function main(): Promise<number> {
  if (process.argv[2] === '--report' && process.argv[3]) return reprint(process.argv[3]);
  const settings = readSettings(process.env, repoRoot);
  for (const command of ['wrk', 'nginx', 'taskset', 'flock']) {
    if (!(await has(command)))
      throw new Error(`missing command: ${command} (apt-get install -y nginx haproxy wrk util-linux)`);
  }
  const clk = (await capture('getconf', ['CLK_TCK'])).text.trim();
  if (Number(clk) !== CLOCK_TICKS_PER_SECOND)
    throw new Error(`CLK_TCK is ${clk}, expected ${CLOCK_TICKS_PER_SECOND}`);
  if (cpus().length < 2)
    log('WARNING: fewer than 2 CPUs: proxy and load share a core, figures are not comparable');
  for (const port of [LISTEN.port, ...BACKEND_PORTS]) {
    if (!(await portFree(port)))
      throw new Error(`port ${port} is in use on 127.0.0.1; stop whatever listens there`);
  }

  const work = mkdtempSync(join(tmpdir(), 'scaleout-bench-http-'));
  chmodSync(work, 0o755); // nginx workers may run as another user
  const cleanup = (): void => {
    killAllNow();
    if (settings.keepWork) process.stderr.write(`raw files kept in ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  };
  process.on('exit', cleanup);

  // Run our LB from a copy of dist/, so a rebuild by someone else during the run cannot mix two builds.
  if (!process.env.SCALEOUT_CLI && existsSync(settings.cli)) settings.cli = snapshotBuild(work);
  const git = await gitFacts(); // the state the snapshot was built from (as far as git can tell)

  const commands = new Map<string, boolean>();
  for (const c of ['nginx', 'haproxy']) commands.set(c, await has(c));
  const ctx: RowContext = {
    work,
    cli: settings.cli,
    oursArgs: settings.oursArgs,
    oursNodeFlags: settings.oursNodeFlags,
    has: (c) => commands.get(c) ?? false,
  };

  const rows: RowDef[] = [];
  const skipped: { row: string; why: string }[] = [];
  for (const name of settings.rows) {
    const row = findRow(name);
    if (!row) throw new Error(`unknown row "${name}" in ROWS`);
    const why = row.unavailable(ctx);
    if (why) {
      skipped.push({ row: name, why });
      log(`skipping ${name}: ${why}`);
    } else rows.push(row);
  }

  const started = new Date();
  const backends = await Backends.start(work, settings.loadCpu);
  log(
    `backends up on ${BACKEND_PORTS.join(', ')} (CPU ${settings.loadCpu}); rows: ${rows.map((r) => r.name).join(' ')}; rounds: ${settings.rounds}`,
  );

  const runs: RunRecord[] = [];
  let lockWaitMs = 0;
  for (let round = 1; round <= settings.rounds; round++) {
    for (const row of rows) {
      const { value, waitedMs } = await withBenchLock(settings.lockPath, () =>
        runBlock(row, round, ctx, settings, backends),
      );
      value.lockWaitSeconds = waitedMs / 1000;
      lockWaitMs += waitedMs;
      runs.push(value);
      const rps = value.high?.wrk ? `${Math.round(value.high.wrk.rps)} rps @c${settings.conns}` : '';
      const quiet = value.quiet
        ? `, ${value.quiet.waitedSeconds} s for quiet (${value.quiet.busyPct.toFixed(0)}% busy)`
        : '';
      log(
        `round ${round}/${settings.rounds} ${row.name}: ${value.status} ${rps} (waited ${(waitedMs / 1000).toFixed(1)} s for the lock${quiet})`,
      );
    }
  }
  await stopTree(backends.process);
  const elapsed = (Date.now() - started.getTime()) / 1000;
  log(
    `done in ${elapsed.toFixed(0)} s, of which ${(lockWaitMs / 1000).toFixed(0)} s waiting for ${settings.lockPath}`,
  );

  const { verdicts, summaries, table, problems } = analyse(
    runs,
    rows.map((r) => r.name),
    settings,
    skipped,
  );

  const result = {
    date: started.toISOString(),
    elapsedSeconds: elapsed,
    lockWaitSeconds: lockWaitMs / 1000,
    command: `${settings.rows.join(' ')} | ROUNDS=${settings.rounds} DURATION=${settings.duration} LOW_DURATION=${settings.lowDuration} WARMUP=${settings.warmup} CONNS=${settings.conns} LOW_CONNS=${settings.lowConns}`,
    settings,
    machine: machine(),
    versions: await versions(),
    git,
    rows: rows.map((r) => ({ name: r.name, what: r.what })),
    skipped,
    summaries,
    runs: runs.map((run, i) => ({ ...run, verdict: verdicts[i] })),
    table,
  };
  mkdirSync(dirname(settings.outJson), { recursive: true });
  writeFileSync(settings.outJson, `${JSON.stringify(result, null, 2)}\n`);

  process.stdout.write(`\n${table}\n\n`);
  process.stdout.write(
    `commit ${git.commit}${git.srcDirty ? ' (src/ has uncommitted changes)' : ''}; ${result.machine.nproc} CPUs, ${result.machine.cpuModel}; raw results in ${settings.outJson}\n`,
  );
  return problems.length > 0 ? 2 : 0;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping everything started`);
    process.exit(130); // the exit handler kills every tracked process tree and removes the temp folder
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
