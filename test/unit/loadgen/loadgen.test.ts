// Pure parts of the load generator: option parsing, the timeline, the kind order, the recorder,
// the text and the chart.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  LoadOptionsError,
  parseLoadDuration,
  parseMix,
  parseRate,
  resolveOptions,
} from '../../../src/loadgen/options.js';
import { dueCount, kindSequence, scheduledAt } from '../../../src/loadgen/schedule.js';
import { Recorder } from '../../../src/loadgen/stats.js';
import { errorKind, type LoadResult } from '../../../src/loadgen/index.js';
import { compactRanges, progressLine, summaryText } from '../../../src/loadgen/report.js';
import { latencyChart, niceTicks } from '../../../src/loadgen/chart.js';

describe('load options', () => {
  it('parses a mix and refuses bad ones with the reason', () => {
    assert.deepEqual(parseMix('read=90,write=10'), { read: 90, write: 10 });
    assert.deepEqual(parseMix(' read = 8 , list=2 '), { read: 8, list: 2 });
    for (const [text, reason] of [
      ['read', /not KIND=WEIGHT/],
      ['read=abc', /not KIND=WEIGHT/],
      ['read=-1', /not KIND=WEIGHT/],
      ['read=1.5', /not KIND=WEIGHT/],
      ['delete=5', /unknown kind "delete"/],
      ['read=1,read=2', /given twice/],
      ['read=0,write=0', /above 0/],
      ['', /not KIND=WEIGHT/],
    ] as const) {
      assert.throws(
        () => parseMix(text),
        (err: Error) => err instanceof LoadOptionsError && reason.test(err.message),
        text,
      );
    }
  });

  it('parses rates and durations, refusing nonsense', () => {
    assert.equal(parseRate('250'), 250);
    assert.equal(parseRate('0.5'), 0.5);
    for (const bad of ['0', '-3', 'abc', '', 'Infinity', '1e9'])
      assert.throws(() => parseRate(bad), /--rate/, bad);
    assert.equal(parseLoadDuration('30s'), 30_000);
    assert.equal(parseLoadDuration('1m'), 60_000);
    for (const bad of ['0', 'forever', '-1s', '25h'])
      assert.throws(() => parseLoadDuration(bad), /--duration/, bad);
  });

  it('checks library options the same way', () => {
    const ok = { url: 'http://127.0.0.1:1/', rate: 10, durationMs: 1000 };
    assert.equal(resolveOptions(ok).total, 10);
    assert.equal(resolveOptions({ ...ok, rate: 3, durationMs: 500 }).total, 2);
    for (const [bad, reason] of [
      [{ url: 'not a url' }, /URL/],
      [{ url: 'ftp://x/' }, /http:\/\//],
      [{ rate: 0 }, /rate/],
      [{ rate: NaN }, /rate/],
      [{ durationMs: -5 }, /duration/],
      [{ connections: 0 }, /connections/],
      [{ mix: { read: 0 } }, /above 0/],
      [{ mix: { bogus: 1 } }, /unknown kind/],
    ] as const) {
      assert.throws(() => resolveOptions({ ...ok, ...bad } as never), reason);
    }
  });
});

describe('the timeline', () => {
  it('puts request i at i/rate and never has more due than scheduled so far', () => {
    assert.equal(scheduledAt(0, 100), 0);
    assert.equal(scheduledAt(150, 100), 1500);
    assert.equal(dueCount(0, 100, 500), 1);
    assert.equal(dueCount(9.99, 100, 500), 1);
    assert.equal(dueCount(10, 100, 500), 2);
    assert.equal(dueCount(1e9, 100, 500), 500);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.double({ min: 0, max: 100_000, noNaN: true }),
        (rate, t) => {
          const due = dueCount(t, rate, Number.MAX_SAFE_INTEGER);
          // Everything due is scheduled at or before t; the next one is after t.
          return scheduledAt(due - 1, rate) <= t + 1e-9 && scheduledAt(due, rate) > t - 1e-9;
        },
      ),
    );
  });

  it('spreads kinds evenly in exact proportion', () => {
    const next = kindSequence({ read: 90, write: 10 });
    const first100 = Array.from({ length: 100 }, next);
    assert.equal(first100.filter((k) => k === 'write').length, 10);
    // Never two writes in a row, and every block of 10 has exactly one write.
    for (let i = 0; i < 100; i += 10)
      assert.equal(first100.slice(i, i + 10).filter((k) => k === 'write').length, 1);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 1, max: 20 }),
        (r, w, l) => {
          const seq = kindSequence({ read: r, write: w, list: l });
          const n = (r + w + l) * 3;
          const got = Array.from({ length: n }, seq);
          return (
            got.filter((k) => k === 'read').length === r * 3 &&
            got.filter((k) => k === 'write').length === w * 3 &&
            got.filter((k) => k === 'list').length === l * 3
          );
        },
      ),
    );
  });
});

describe('the recorder', () => {
  it('counts per second and per kind, with latency percentiles from the histogram', () => {
    const rec = new Recorder();
    for (let i = 0; i < 100; i++) {
      rec.recordSent('read', 0);
      rec.recordAnswer('read', 0, 200, i + 1, i % 2 ? 'a' : 'b');
    }
    rec.recordSent('write', 1);
    rec.recordAnswer('write', 1, 503, 5, 'a');
    rec.recordSent('write', 2);
    rec.recordError('write', 2, 'connection-refused');
    const t = rec.timeline();
    assert.equal(t.length, 3);
    assert.deepEqual(
      t.map((s) => [s.second, s.sent, s.ok, s.failed]),
      [
        [0, 100, 100, 0],
        [1, 1, 0, 1],
        [2, 1, 0, 1],
      ],
    );
    assert.deepEqual(t[1]!.kinds, { write: { ok: 0, failed: 1 } });
    assert.ok(Math.abs(t[0]!.p50 - 50) <= 1, String(t[0]!.p50));
    assert.ok(Math.abs(t[0]!.p99 - 99) <= 1, String(t[0]!.p99));
    assert.equal(t[0]!.max, 100);
    assert.equal(t[2]!.max, 0);
    assert.deepEqual(
      [...rec.statusCodes],
      [
        [200, 100],
        [503, 1],
      ],
    );
    assert.deepEqual([...rec.errors], [['connection-refused', 1]]);
    assert.deepEqual([...rec.instances].sort(), [
      ['a', 51],
      ['b', 50],
    ]);
  });

  it('sorts errors into kinds', () => {
    assert.equal(errorKind(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 'connection-refused');
    assert.equal(errorKind({ cause: { code: 'ECONNRESET' } }), 'connection-reset');
    assert.equal(errorKind({ code: 'UND_ERR_SOCKET' }), 'connection-reset');
    assert.equal(errorKind({ code: 'UND_ERR_HEADERS_TIMEOUT' }), 'timeout');
    assert.equal(errorKind({ code: 'ENOTFOUND' }), 'dns');
    assert.equal(errorKind(new Error('?')), 'other');
  });
});

function sampleResult(): LoadResult {
  return {
    url: 'http://127.0.0.1:8080/',
    mode: 'mix',
    mix: { read: 9, write: 1 },
    rate: 100,
    durationMs: 3000,
    connections: 8,
    timeoutMs: 1000,
    startedAt: new Date(0).toISOString(),
    elapsedMs: 3010,
    aborted: false,
    sent: 300,
    ok: 297,
    failed: 3,
    achievedRate: 100,
    maxSendLagMs: 1.5,
    latency: { count: 298, min: 0.5, mean: 2, p50: 1.2, p90: 3, p99: 9.5, p999: 40, max: 41 },
    percentiles: [
      { percentile: 0, ms: 0.5 },
      { percentile: 50, ms: 1.2 },
      { percentile: 99, ms: 9.5 },
      { percentile: 100, ms: 41 },
    ],
    statusCodes: { 200: 270, 201: 27, 503: 1 },
    errors: { 'connection-refused': 2 },
    kinds: {
      read: {
        sent: 270,
        ok: 270,
        failed: 0,
        latency: { count: 270, min: 0.5, mean: 1, p50: 1, p90: 2, p99: 5, p999: 6, max: 6 },
      },
      write: {
        sent: 30,
        ok: 27,
        failed: 3,
        latency: { count: 28, min: 1, mean: 5, p50: 4, p90: 9, p99: 40, p999: 41, max: 41 },
      },
    },
    instances: { 'app-1': 150, 'app-2': 148 },
    unlabelled: 0,
    timeline: [0, 1, 2].map((second) => ({
      second,
      sent: 100,
      ok: second === 1 ? 97 : 100,
      failed: second === 1 ? 3 : 0,
      kinds: {
        read: { ok: 90, failed: 0 },
        write: { ok: second === 1 ? 7 : 10, failed: second === 1 ? 3 : 0 },
      },
      p50: 1,
      p99: second === 1 ? 40 : 5,
      max: second === 1 ? 41 : 6,
    })),
  };
}

describe('reports', () => {
  it('summarises percentiles, kinds, statuses, errors, instances and the seconds with failures', () => {
    const text = summaryText(sampleResult());
    assert.match(text, /300 sent, 297 ok, 3 failed; 100\/s achieved/);
    assert.match(text, /p50 1\.20 {2}p90 3\.00 {2}p99 9\.50 {2}p99\.9 40\.0 {2}max 41\.0/);
    assert.match(text, /read +270 sent {2}ok 270 {2}failed 0/);
    assert.match(text, /write +30 sent {2}ok 27 {2}failed 3/);
    assert.match(text, /status +200: 270 {2}201: 27 {2}503: 1/);
    assert.match(text, /errors +connection-refused: 2/);
    assert.match(text, /instances +app-1: 150 \(50\.3%\) {2}app-2: 148 \(49\.7%\)/);
    assert.match(text, /failures +in second 1 of the run/);
    assert.equal(compactRanges([0, 1, 2, 5, 7, 8]), '0-2, 5, 7-8');
  });

  it('draws a progress bar', () => {
    const line = progressLine({
      elapsedMs: 5000,
      durationMs: 10_000,
      sent: 500,
      ok: 498,
      failed: 2,
      inFlight: 3,
      rate: 99.6,
      p99: 4.2,
    });
    assert.equal(line, '[##########..........] 5s/10s  100/s  ok 498  failed 2  p99 4.20 ms  in flight 3');
  });

  it('says when only answers of requests in flight are awaited', () => {
    const line = progressLine({
      elapsedMs: 11_000,
      durationMs: 10_000,
      sent: 1000,
      ok: 990,
      failed: 0,
      inFlight: 10,
      rate: 0,
      p99: 0,
    });
    assert.match(line, /^\[#{20}\] 10s sent, finishing {2}0\/s {2}ok 990 {2}failed 0 .* in flight 10$/);
  });

  it('writes a self-contained SVG with both plots and the failed second marked', () => {
    const svg = latencyChart(sampleResult());
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
    assert.equal((svg.match(/<polyline /g) ?? []).length, 4); // p50, p99, max over time + percentile curve
    assert.equal((svg.match(/<title>second 1: 3 failed<\/title>/g) ?? []).length, 1);
    assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
    // Balanced tags: every opened element is closed (a cheap well-formedness check).
    const opened = (svg.match(/<(svg|text|rect|circle|title|style)\b/g) ?? []).length;
    const closed = (svg.match(/<\/(svg|text|rect|circle|title|style)>|\/>/g) ?? []).length;
    assert.ok(closed >= opened);
    const empty = latencyChart({
      ...sampleResult(),
      timeline: [],
      percentiles: [],
      latency: { ...sampleResult().latency, max: 0 },
    });
    assert.doesNotMatch(empty, /NaN|undefined|Infinity/);
    assert.deepEqual(niceTicks(41), [0, 10, 20, 30, 40, 50]);
    assert.deepEqual(niceTicks(0), [0, 1]);
  });
});
