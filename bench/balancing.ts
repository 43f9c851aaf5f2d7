/**
 * Micro-benchmark of the balancing algorithms: nanoseconds per `select()` + first `next()` (the work
 * a proxied request pays), for each algorithm with 4 and 100 endpoints, and the cost of an `update()`
 * that changes a weight (a rebuild, for ring-hash and maglev). Not part of the tests.
 *
 *   node --import tsx bench/balancing.ts [algorithm …]
 *
 * Method: endpoints with mixed weights (1, 2, 3) and static outstanding/connection counts 0..7; hash
 * keys are 4096 distinct IPv4 strings; each figure is the median of 7 timed rounds after a warm-up.
 * Time is this process's CPU time (user + system), not wall time: on a shared machine another
 * process's turn on the core would otherwise count as ours.
 * Each algorithm runs in its own child process, as in a real proxy where one or two algorithms are
 * hot, so the JIT is not confused by the others; all of it under the box-wide benchmark lock.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  ALGORITHMS,
  createBalancer,
  needsHashKey,
  type AlgorithmName,
  type Endpoint,
  type PickContext,
} from '../src/balancing/index.js';
import { withBenchLock } from './http/lib/lock.js';

const SIZES = [4, 100];
const ROUNDS = 7;
const PICKS_PER_ROUND = 400_000;
const UPDATES_PER_ROUND = 50;

interface Row {
  name: AlgorithmName;
  picksNs: number[];
  updatesUs: number[];
}

function makeEndpoints(n: number): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `10.1.${i >> 8}.${i & 255}:8080`,
    weight: 1 + (i % 3),
    outstanding: (i * 7) % 8,
    connections: (i * 5) % 8,
  }));
}

/** CPU time of this process so far, in nanoseconds. */
function cpuNs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

let sink = 0; // keeps the JIT from dropping the picks

function nsPerPick(name: AlgorithmName, n: number): number {
  const contexts: PickContext[] = Array.from({ length: 4096 }, (_, i) => ({
    hashKey: `198.51.${(i >> 8) & 255}.${i & 255}`,
  }));
  const balancer = createBalancer(name);
  balancer.update(makeEndpoints(n));
  const run = (count: number) => {
    const start = cpuNs();
    for (let i = 0; i < count; i++) sink ^= balancer.select(contexts[i & 4095]).next()!.outstanding;
    return (cpuNs() - start) / count;
  };
  run(PICKS_PER_ROUND); // warm-up: let the JIT settle
  return median(Array.from({ length: ROUNDS }, () => run(PICKS_PER_ROUND)));
}

function usPerUpdate(name: AlgorithmName, n: number): number {
  const balancer = createBalancer(name);
  const list = makeEndpoints(n);
  balancer.update(list);
  const run = () => {
    const start = cpuNs();
    for (let i = 0; i < UPDATES_PER_ROUND; i++) {
      list[0]!.weight = list[0]!.weight === 1 ? 2 : 1; // a real weight change: forces a rebuild
      balancer.update(list);
    }
    return (cpuNs() - start) / UPDATES_PER_ROUND / 1000;
  };
  run();
  return median(Array.from({ length: ROUNDS }, run));
}

function measureInChild(name: AlgorithmName): Row {
  const script = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, script, '--child', name], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (child.status !== 0) throw new Error(`benchmark of ${name} failed (exit ${child.status})`);
  return JSON.parse(child.stdout) as Row;
}

function printTable(rows: Row[], waitedMs: number): void {
  const sizes = SIZES.map((n) => `n=${n}`).join(' / ');
  const cell = (values: number[]) => values.map((x) => x.toFixed(1).padStart(7)).join(' / ');
  console.log(
    `Node ${process.version}, ${new Date().toISOString()}, waited ${waitedMs} ms for the bench lock\n`,
  );
  console.log(
    `| algorithm            | input    | select+next CPU ns, ${sizes} | update (weight change) CPU µs, ${sizes} |`,
  );
  console.log(
    '|----------------------|----------|--------------------------------|------------------------------------------|',
  );
  for (const { name, picksNs, updatesUs } of rows) {
    const input = needsHashKey(name) ? 'hash-key' : 'none';
    console.log(
      `| ${name.padEnd(20)} | ${input.padEnd(8)} | ${cell(picksNs).padEnd(30)} | ${cell(updatesUs).padEnd(40)} |`,
    );
  }
}

const childIndex = process.argv.indexOf('--child');
if (childIndex >= 0) {
  const name = process.argv[childIndex + 1] as AlgorithmName;
  const row: Row = {
    name,
    picksNs: SIZES.map((n) => nsPerPick(name, n)),
    updatesUs: SIZES.map((n) => usPerUpdate(name, n)),
  };
  process.stdout.write(JSON.stringify(row) + (sink === 0.5 ? ' ' : ''));
} else {
  const wanted = process.argv.slice(2);
  const selected = wanted.length > 0 ? ALGORITHMS.filter((a) => wanted.includes(a)) : ALGORITHMS;
  const { value: rows, waitedMs } = await withBenchLock('/tmp/scaleout-bench.lock', async () =>
    selected.map(measureInChild),
  );
  printTable(rows, waitedMs);
}
