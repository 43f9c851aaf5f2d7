// Pure parts of the bench:http harness: reading wrk's report, validity checks, medians and ratios.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { childCpuSeconds, parseWrk, wrkTimeToMs } from '../../../bench/http/lib/wrk.js';
import { figures, judge, median, summarise } from '../../../bench/http/lib/report.js';
import type { Phase, RunRecord } from '../../../bench/http/lib/measure.js';

const WRK_OUTPUT = `Running 10s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.04ms  412.00us  19.85ms   90.12%
    Req/Sec    59.31k     2.10k   63.00k    71.00%
  Latency Distribution
     50%  930.00us
     75%    1.10ms
     90%    1.45ms
     99%    2.01ms
  590123 requests in 10.00s, 85.10MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  59012.30
Transfer/sec:      8.51MB
0m0.000000s 0m0.000000s
0m2.500000s 0m4.250000s
`;

test('wrk report: counts, rate, percentiles in ms, errors, and the shell times line', () => {
  const r = parseWrk(WRK_OUTPUT);
  assert.equal(r.requests, 590123);
  assert.equal(r.seconds, 10);
  assert.equal(r.rps, 59012.3);
  assert.deepEqual(r.latencyMs, { p50: 0.93, p75: 1.1, p90: 1.45, p99: 2.01 });
  assert.deepEqual(r.socketErrors, { connect: 0, read: 3, write: 0, timeout: 1 });
  assert.equal(r.badStatus, 7);
  assert.equal(childCpuSeconds(WRK_OUTPUT), 6.75);
  assert.equal(wrkTimeToMs('2.00s'), 2000);
  assert.throws(() => parseWrk('unable to connect to 127.0.0.1:8080 Connection refused'));
});

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), undefined);
});

function phase(conns: number, rps: number, p99: number, proxyCpuSeconds: number, extra: string = ''): Phase {
  const wrk = parseWrk(
    WRK_OUTPUT.replace('590123 requests', `${rps * 10} requests`)
      .replace('59012.30', String(rps))
      .replace('2.01ms', `${p99}ms`)
      .replace(/Socket errors.*\n/, extra)
      .replace(/Non-2xx.*\n/, ''),
  );
  return {
    conns,
    wrk,
    wallSeconds: 10,
    proxyCpuSeconds,
    backendCpuSeconds: 1,
    wrkCpuSeconds: 3,
    cpuBusyPct: { cpu0: 90, cpu1: 95 },
    otherCpuPct: 5,
  };
}

function run(
  row: string,
  round: number,
  rps: number,
  cpu: number,
  p99: number,
  shares = [1, 1, 1, 1],
): RunRecord {
  const total = rps * 10;
  return {
    row,
    round,
    proxied: row !== 'none',
    status: 'ok',
    probeBackends: ['9001', '9002', '9003', '9004'],
    high: phase(64, rps, p99, cpu),
    low: phase(8, rps / 2, p99 / 2, cpu / 2),
    backends: shares.map((s, i) => ({
      port: 9001 + i,
      requests: Math.round((total * s) / 4),
      connections: 16,
    })),
  };
}

test('a clean run is valid; errors and an unfair spread make it invalid', () => {
  assert.deepEqual(judge(run('ours', 1, 20000, 8, 3), true, 64).problems, []);
  const errored = run('ours', 1, 20000, 8, 3);
  errored.high = phase(64, 20000, 3, 8, '  Socket errors: connect 0, read 2, write 0, timeout 0\n');
  assert.match(judge(errored, true, 64).problems.join(), /read 2/);
  const skewed = judge(run('ours', 1, 20000, 8, 3, [1.5, 0.5, 1, 1]), true, 64);
  assert.equal(skewed.valid, false);
  assert.match(skewed.problems.join(), /unfair spread: :9001/);
  assert.equal(judge({ ...run('ours', 1, 1, 1, 1), status: 'proxy_died' }, true, 64).valid, false);
});

test('ratios to nginx are taken within each round, then the median', () => {
  const nginx = [
    run('nginx', 1, 60000, 9.6, 2),
    run('nginx', 2, 50000, 8, 2),
    run('nginx', 3, 40000, 6.4, 2),
  ];
  const ours = [run('ours', 1, 30000, 9.6, 4), run('ours', 2, 10000, 8, 2), run('ours', 3, 20000, 6.4, 8)];
  const fig = (runs: RunRecord[]) => runs.map((r) => figures(r, true, '0'));
  const [n, o] = summarise([
    { row: 'nginx', runs: nginx, valid: fig(nginx) },
    { row: 'ours', runs: ours, valid: fig(ours) },
  ]);
  assert.equal(n!.vsNginx.rps, 1);
  // per-round rps ratios 0.5, 0.2, 0.5 → 0.5; CPU µs/req: 16 vs 32, 16 vs 80, 16 vs 32 → 2
  assert.equal(o!.vsNginx.rps, 0.5);
  assert.equal(o!.vsNginx.cpuUsPerReq, 2);
  assert.equal(o!.vsNginx.p99High, 2);
  assert.equal(o!.medians.rpsHigh, 20000);
  assert.equal(o!.medians.cpuUsPerReqHigh, 32);
  assert.equal(o!.medians.shareMin, 0.25);
});
