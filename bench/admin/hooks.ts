// CPU cost of the per-request observers alone: LbMetrics.onRequest and AccessLog.onRequest (to a
// file, including its asynchronous writes, which run on libuv's threads and are counted too).
// Usage: taskset -c 1 node --import tsx bench/admin/hooks.ts   (prints µs of process CPU per record)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessLog } from '../../src/lb/access-log.js';
import type { RequestRecord } from '../../src/lb/http/session.js';
import { LbMetrics } from '../../src/lb/metrics.js';

const N = Number(process.env.N ?? 200_000);
const targets = ['127.0.0.1:9001', '127.0.0.1:9002', '127.0.0.1:9003', '127.0.0.1:9004'];
const records: RequestRecord[] = targets.map((upstream, i) => ({
  method: 'GET',
  target: '/api/items?page=2',
  host: 'example.test',
  clientIp: '127.0.0.1',
  rule: 'api',
  targetGroup: 'app',
  upstream,
  status: i === 3 ? 503 : 200,
  attempts: 1,
  durationMs: 1.234 + i,
  upstreamMs: 0.987 + i,
  reason: 'forward',
}));

async function measure(
  name: string,
  hook: (l: string, r: RequestRecord) => void,
  settle?: () => Promise<void>,
) {
  for (let i = 0; i < 20_000; i++) hook('web', records[i & 3]!); // warm up
  await settle?.();
  const before = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    hook('web', records[i & 3]!);
    // A serving LB finishes a few dozen requests per event-loop turn, not 200 000.
    if (i % 50 === 49) await new Promise((r) => setImmediate(r));
  }
  await settle?.();
  const used = process.cpuUsage(before);
  console.log(`${name.padEnd(26)} ${((used.user + used.system) / N).toFixed(2)} µs CPU per request`);
}

/** Waits for the lines handed to the file stream to be written (writes run on libuv's threads). */
async function drained(log: AccessLog): Promise<void> {
  log.flush();
  await new Promise((r) => setImmediate(r));
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const out = (log as any).lines.out as NodeJS.WritableStream & { writableLength: number };
  while (out.writableLength > 0) await new Promise((r) => setTimeout(r, 5));
}

const dir = mkdtempSync(join(tmpdir(), 'scaleout-hooks-'));
try {
  await measure('baseline (empty hook)', () => {});
  const metrics = new LbMetrics({ processMetrics: false });
  await measure('metrics', metrics.onRequest);
  const log = new AccessLog(join(dir, 'access.log'));
  await measure('access log (file)', log.onRequest, () => drained(log));
  const log2 = new AccessLog(join(dir, 'access2.log'));
  await measure(
    'metrics + access log',
    (l, r) => {
      metrics.onRequest(l, r);
      log2.onRequest(l, r);
    },
    () => drained(log2),
  );
  metrics.close();
  await log.close();
  await log2.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
