import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import {
  bucketsDelta,
  counterDelta,
  histogramQuantile,
  parsePrometheusText,
  type Buckets,
} from '../../../src/dashboard/prometheus.js';
import { lbReadings } from '../../../src/dashboard/collector.js';

describe('Prometheus text parsing', () => {
  it('reads names, labels (with escapes), values, and skips comments and malformed lines', () => {
    const samples = parsePrometheusText(
      [
        '# HELP x_total things',
        '# TYPE x_total counter',
        'x_total{a="1",b="with \\"quotes\\", a \\\\ and\\na newline"} 42',
        'plain 3.5 1700000000000',
        'inf_bucket{le="+Inf"} +Inf',
        'not a sample line {',
        'broken{a="unterminated} 1',
        '',
        'empty_labels{} 7',
      ].join('\n'),
    );
    assert.deepEqual(samples, [
      { name: 'x_total', labels: { a: '1', b: 'with "quotes", a \\ and\na newline' }, value: 42 },
      { name: 'plain', labels: {}, value: 3.5 },
      { name: 'inf_bucket', labels: { le: '+Inf' }, value: Infinity },
      { name: 'empty_labels', labels: {}, value: 7 },
    ]);
  });

  it('reads what prom-client writes, and the quantiles match the observations', async () => {
    const registry = new Registry();
    const h = new Histogram({
      name: 'scaleout_lb_request_duration_seconds',
      help: 'h',
      labelNames: ['listener', 'target_group', 'target'],
      buckets: [0.001, 0.01, 0.1, 1],
      registers: [registry],
    });
    // 90 fast observations and 10 slow ones, over two listeners of the same target.
    for (let i = 0; i < 90; i++)
      h.observe({ listener: i % 2 ? 'a' : 'b', target_group: 'g', target: 't:1' }, 0.005);
    for (let i = 0; i < 10; i++) h.observe({ listener: 'a', target_group: 'g', target: 't:1' }, 0.5);
    const readings = lbReadings(parsePrometheusText(await registry.metrics()));
    const r = readings.get('g\u0000t:1')!;
    assert.deepEqual(r.buckets!.le, [0.001, 0.01, 0.1, 1, Infinity]);
    assert.deepEqual(r.buckets!.counts, [0, 90, 90, 100, 100], 'summed over listeners');
    const p50 = histogramQuantile(0.5, r.buckets!)!;
    const p99 = histogramQuantile(0.99, r.buckets!)!;
    assert.ok(p50 > 0.001 && p50 <= 0.01, `p50 ${p50} is in the bucket of the fast observations`);
    assert.ok(p99 > 0.1 && p99 <= 1, `p99 ${p99} is in the bucket of the slow ones`);
  });
});

describe('rates from counters and histograms', () => {
  it('a counter that went down restarted: its new value is the growth', () => {
    assert.equal(counterDelta(undefined, 10), 0);
    assert.equal(counterDelta(10, 15), 5);
    assert.equal(counterDelta(100, 7), 7);
  });

  it('bucket deltas, including a restarted process', () => {
    const a: Buckets = { le: [0.1, 1, Infinity], counts: [5, 8, 10] };
    const b: Buckets = { le: [0.1, 1, Infinity], counts: [6, 12, 15] };
    assert.deepEqual(bucketsDelta(a, b).counts, [1, 4, 5]);
    const restarted: Buckets = { le: [0.1, 1, Infinity], counts: [1, 1, 2] };
    assert.deepEqual(bucketsDelta(b, restarted).counts, [1, 1, 2]);
    assert.deepEqual(bucketsDelta(undefined, b).counts, [6, 12, 15], 'a new series: all of it is growth');
  });

  it('histogramQuantile: nothing observed, the +Inf bucket, interpolation', () => {
    assert.equal(histogramQuantile(0.5, { le: [1, Infinity], counts: [0, 0] }), undefined);
    assert.equal(histogramQuantile(0.99, { le: [1, 2, Infinity], counts: [0, 0, 10] }), 2);
    assert.equal(histogramQuantile(0.5, { le: [1, 2, Infinity], counts: [0, 10, 10] }), 1.5);
  });

  it('property: the estimate lies in the bucket that holds the true quantile', () => {
    const bounds = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 4.9, noNaN: true }), { minLength: 1, maxLength: 200 }),
        fc.constantFrom(0.5, 0.9, 0.99),
        (values, q) => {
          const le = [...bounds, Infinity];
          const counts = le.map((b) => values.filter((v) => v <= b).length);
          const sorted = [...values].sort((x, y) => x - y);
          const exact = sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
          const estimate = histogramQuantile(q, { le, counts })!;
          const i = le.findIndex((b) => exact <= b);
          const lower = i === 0 ? 0 : le[i - 1]!;
          return estimate >= lower - 1e-12 && estimate <= le[i]! + 1e-12;
        },
      ),
    );
  });
});
