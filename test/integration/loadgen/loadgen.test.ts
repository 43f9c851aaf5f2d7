// The load generator over real sockets against a real HTTP server: pacing, coordinated-omission
// correction, instance spread, statuses and errors, abort, and the CLI with its JSON and SVG outputs.
// Assertions are bounds that a busy machine cannot break (requests are never sent early; a stall can
// only make latencies larger), never "it was fast".
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { runLoad, LoadOptionsError, type LoadProgress, type LoadResult } from '../../../src/loadgen/index.js';
import { CLI, startCli } from '../../helpers/cli.js';
import { atFileEnd } from '../../helpers/postgres.js';
import { freePort } from '../../../src/topology/postgres.js';
import { LoadTarget } from './target.js';

describe('scaleout load (runLoad)', () => {
  it('sends on a fixed timeline: exactly rate × duration requests, none before its time', async () => {
    const target = await new LoadTarget().start();
    const progress: LoadProgress[] = [];
    const before = performance.now();
    const result = await runLoad(
      { url: `${target.url}/`, rate: 200, durationMs: 2000, connections: 8 },
      { onProgress: (p) => progress.push(p), progressIntervalMs: 250 },
    );
    assert.equal(result.sent, 400);
    assert.equal(result.ok, 400);
    assert.equal(target.arrivals.length, 401, 'the 400 and one unmeasured warm-up request before them');
    target.arrivals.shift();
    assert.deepEqual(
      result.timeline.map((s) => [s.sent, s.ok, s.kinds.read?.ok]),
      [
        [200, 200, 200],
        [200, 200, 200],
      ],
    );
    // Open loop, not a burst: by any moment t no more than the t·rate+1 requests due had arrived …
    for (const t of [250, 500, 1000, 1500]) {
      const arrived = target.arrivals.filter((a) => a - before < t).length;
      assert.ok(arrived <= (t * 200) / 1000 + 1, `${arrived} requests arrived in the first ${t} ms`);
    }
    // … so the last one, due at 1995 ms, cannot have arrived earlier.
    assert.ok(target.arrivals.at(-1)! - before >= 1995);
    assert.equal(result.achievedRate, 200);
    assert.ok(progress.length >= 2, 'progress was reported');
    const sentSeen = progress.map((p) => p.sent);
    assert.deepEqual(
      sentSeen,
      [...sentSeen].sort((a, b) => a - b),
      'progress only grows',
    );
    assert.ok(progress.every((p) => p.durationMs === 2000 && p.failed === 0));
  });

  it('corrects for coordinated omission: a 1 s stall shows in the percentiles, not only in a few requests', async () => {
    const target = await new LoadTarget().start();
    // At the 50th request the server stops answering for a second (every answer is held till then).
    target.onArrival = (n) => {
      if (n === 50) target.holdUntil = performance.now() + 1000;
    };
    const result = await runLoad({ url: `${target.url}/`, rate: 100, durationMs: 3000, connections: 4 });
    assert.equal(result.ok, 300);
    // ~100 of 300 requests were due during the stall, waiting from 1000 ms down to ~0 ms: a third of
    // all requests is slow. A closed-loop client (4 connections, each waiting for its answer before
    // sending again) would have sent only ~4 requests in that second and reported p75/p90 as fast.
    assert.ok(result.latency.p90 >= 400, `p90 ${result.latency.p90} ms`);
    const p75 = result.percentiles.find((p) => p.percentile === 75)!.ms;
    assert.ok(p75 >= 100, `p75 ${p75} ms`);
    assert.ok(result.latency.max >= 900, `max ${result.latency.max} ms`);
    const slowSeconds = result.timeline.filter((s) => s.p99 >= 500);
    assert.ok(slowSeconds.length >= 1, 'the stall shows on the timeline');
  });

  it('counts the spread over instances and the statuses, and answers without the header apart', async () => {
    const target = await new LoadTarget().start();
    target.instances = ['app-1', 'app-2', 'app-3'];
    const spread = await runLoad({ url: `${target.url}/`, rate: 150, durationMs: 1000 });
    assert.deepEqual(spread.instances, { 'app-1': 50, 'app-2': 50, 'app-3': 50 });
    assert.equal(spread.unlabelled, 0);
    assert.deepEqual(spread.statusCodes, { 200: 150 });

    const unlabelled = await runLoad({ url: `${target.url}/unlabelled`, rate: 50, durationMs: 1000 });
    assert.deepEqual(unlabelled.instances, {});
    assert.equal(unlabelled.unlabelled, 50);

    const failing = await runLoad({ url: `${target.url}/status/503`, rate: 50, durationMs: 1000 });
    assert.deepEqual([failing.ok, failing.failed], [0, 50]);
    assert.deepEqual(failing.statusCodes, { 503: 50 });
    assert.deepEqual(failing.errors, {});
    assert.deepEqual(failing.kinds.read && [failing.kinds.read.ok, failing.kinds.read.failed], [0, 50]);
    assert.equal(failing.latency.count, 50, 'HTTP errors are answers: they have a latency');
  });

  it('sorts requests without an answer by cause: refused, reset, timeout', async () => {
    const closedPort = await freePort();
    const refused = await runLoad({ url: `http://127.0.0.1:${closedPort}/`, rate: 50, durationMs: 500 });
    assert.deepEqual(refused.errors, { 'connection-refused': 25 });
    assert.deepEqual([refused.ok, refused.failed, refused.latency.count], [0, 25, 0]);
    assert.deepEqual(
      refused.timeline.map((s) => s.kinds.read),
      [{ ok: 0, failed: 25 }],
    );

    const target = await new LoadTarget().start();
    const reset = await runLoad({ url: `${target.url}/reset`, rate: 40, durationMs: 500 });
    assert.deepEqual(reset.errors, { 'connection-reset': 20 });

    const timeout = await runLoad({ url: `${target.url}/never`, rate: 20, durationMs: 500, timeoutMs: 300 });
    assert.deepEqual(timeout.errors, { timeout: 10 });
    assert.equal(timeout.failed, 10);
  });

  it('stops early on abort, keeping what it measured', async () => {
    const target = await new LoadTarget().start();
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    const result: LoadResult = await runLoad({
      url: `${target.url}/`,
      rate: 100,
      durationMs: 60_000,
      signal: stop.signal,
    });
    assert.equal(result.aborted, true);
    assert.ok(result.sent > 0 && result.sent < 6000, String(result.sent));
    assert.equal(result.ok, result.sent);
  });

  it('refuses bad options before sending anything', async () => {
    await assert.rejects(runLoad({ url: 'localhost:80', rate: 1, durationMs: 1000 }), LoadOptionsError);
    await assert.rejects(runLoad({ url: 'http://127.0.0.1:1/', rate: -1, durationMs: 1000 }), /rate/);
    await assert.rejects(runLoad({ url: 'http://127.0.0.1:1/', rate: 1, durationMs: 0 }), /duration/);
    await assert.rejects(
      runLoad({ url: 'http://127.0.0.1:1/', rate: 1, durationMs: 10, mix: { read: 0, write: 0 } }),
      /at least one weight/,
    );
    // With a mix the target must be the demo app: a clear error if it is not there.
    const closedPort = await freePort();
    await assert.rejects(
      runLoad({ url: `http://127.0.0.1:${closedPort}/`, rate: 1, durationMs: 10, mix: { read: 1 } }),
      /cannot start the load on http:\/\/127\.0\.0\.1:\d+\/: .*ECONNREFUSED/,
    );
  });
});

describe('scaleout load (CLI)', () => {
  it('prints a summary and writes the JSON result and the SVG chart', async () => {
    const target = await new LoadTarget().start();
    target.instances = ['app-1', 'app-2'];
    const dir = mkdtempSync(join(tmpdir(), 'scaleout-load-'));
    atFileEnd(async () => rmSync(dir, { recursive: true, force: true }));
    const json = join(dir, 'result.json');
    const chart = join(dir, 'latency.svg');
    const cli = startCli([
      'load',
      `${target.url}/`,
      '--rate',
      '100',
      '--duration',
      '1s',
      '--json',
      json,
      '--chart',
      chart,
    ]);
    assert.equal(await cli.stop('SIGCONT'), 0, cli.output());
    const out = cli.output();
    assert.match(out, /100 sent, 100 ok, 0 failed; 100\/s achieved/);
    assert.match(out, /p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}p99\.9 [\d.]+ {2}max [\d.]+/);
    assert.match(out, /status +200: 100/);
    assert.match(out, /instances +app-1: 50 \(50\.0%\) {2}app-2: 50 \(50\.0%\)/);
    assert.doesNotMatch(out, /\[#+/, 'no progress bar when stderr is not a terminal');
    const result = JSON.parse(readFileSync(json, 'utf8')) as LoadResult;
    assert.equal(result.sent, 100);
    assert.deepEqual(result.instances, { 'app-1': 50, 'app-2': 50 });
    assert.equal(result.timeline.length, 1);
    assert.ok(result.latency.p99 >= result.latency.p50 && result.latency.p50 > 0);
    const svg = readFileSync(chart, 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>/);
    assert.match(svg, /<polyline points="[\d., ]+"/);
    assert.match(svg, /<\/svg>\n$/);
  });

  it('shows a live progress line when stderr is a terminal', async () => {
    const target = await new LoadTarget().start();
    // script(1) runs the command on a pseudo-terminal.
    const command = `${process.execPath} ${CLI} load ${target.url}/ --rate 50 --duration 2500ms`;
    // (Not spawnSync: the target answers from this process's event loop.)
    const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const [status] = (await once(child, 'close')) as [number];
    assert.equal(status, 0, stdout);
    const lines = stdout.split('\r').filter((l) => l.startsWith('['));
    assert.ok(lines.length >= 2, stdout);
    assert.match(
      lines[0]!,
      /^\[#+\.+\] 1s\/2\.5s {2}\d+\/s {2}ok \d+ {2}failed 0 {2}p99 [\d.]+ ms {2}in flight \d+/,
    );
    assert.match(stdout, /125 sent, 125 ok, 0 failed/);
  });

  it('bad input: clear errors and exit status 1', async () => {
    for (const [args, message] of [
      [
        ['notaurl', '--rate', '10', '--duration', '1s'],
        /'notaurl' is invalid for argument 'url'\. not a URL/,
      ],
      [['ftp://x/', '--rate', '10', '--duration', '1s'], /must start with http:\/\//],
      [
        ['http://127.0.0.1:1/', '--rate', 'fast', '--duration', '1s'],
        /--rate.*"fast" is not a number of requests per second/,
      ],
      [['http://127.0.0.1:1/', '--rate', '0', '--duration', '1s'], /--rate/],
      [
        ['http://127.0.0.1:1/', '--rate', '10', '--duration', 'forever'],
        /--duration.*"forever" is not a duration/,
      ],
      [
        ['http://127.0.0.1:1/', '--rate', '10', '--duration', '1s', '--mix', 'read=90,delete=10'],
        /unknown kind "delete"/,
      ],
      [
        ['http://127.0.0.1:1/', '--rate', '10', '--duration', '1s', '--mix', 'read=lots'],
        /"read=lots" is not KIND=WEIGHT/,
      ],
      [['http://127.0.0.1:1/', '--rate', '10', '--duration', '1s', '--chart', 'out.png'], /the chart is SVG/],
      [['http://127.0.0.1:1/', '--duration', '1s'], /required option '--rate <r>' not specified/],
    ] as const) {
      const cli = startCli(['load', ...args]);
      assert.equal(await cli.stop('SIGCONT'), 1, cli.output());
      assert.match(cli.output(), message);
    }
  });
});
