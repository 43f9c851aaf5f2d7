import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { startCli, type RunningCli } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/lb.js';

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

describe('--workers 2', () => {
  let targets: TestTarget[];
  let cli: RunningCli;
  let url: string;

  before(async () => {
    targets = await startTargets(2);
    cli = startCli(
      [
        'lb',
        '--workers',
        '2',
        '--listen',
        '127.0.0.1:0',
        ...targets.flatMap((t) => ['--target', t.id]),
        '--health-path',
        '/healthz',
        '--health-interval',
        '200ms',
      ],
      { SCALEOUT_LOG_LEVEL: 'info' },
    );
    const [, port] = await cli.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\/ .*2 workers/);
    url = `http://127.0.0.1:${port}`;
    await cli.waitFor(/target 127\.0\.0\.1:\d+ .*healthy/);
  });
  after(async () => {
    // Regression: a replacement worker forked just before SIGTERM missed the shutdown message, so the
    // primary waited out the whole 30 s drain timeout. Idle workers must stop at once.
    const stopping = Date.now();
    assert.equal(await cli.stop('SIGTERM'), 0);
    assert.ok(Date.now() - stopping < 10_000, `stop took ${Date.now() - stopping} ms`);
    assert.ok(await waitFor(() => childPids(cli.child.pid!).length === 0, 1000), 'no worker left behind');
    await stopTargets(targets);
  });

  it('runs two worker processes that serve traffic', async () => {
    assert.equal(childPids(cli.child.pid!).length, 2);
    const agent = new Agent({ connections: 8 });
    const statuses = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const res = await request(`${url}/w${i}`, { dispatcher: agent });
        await res.body.text();
        return res.statusCode;
      }),
    );
    await agent.close();
    assert.deepEqual(new Set(statuses), new Set([200]));
    await cli.waitFor(/worker 1 .*is serving/);
    await cli.waitFor(/worker 2 .*is serving/);
  });

  it('probes health once for all workers', async () => {
    const before = targets[0]!.requests.filter((r) => r.url === '/healthz').length;
    await new Promise((r) => setTimeout(r, 2000));
    const checks = targets[0]!.requests.filter((r) => r.url === '/healthz').length - before;
    // One prober at a 200 ms interval: about 10 in 2 s (three probers would make about 30).
    assert.ok(checks >= 6 && checks <= 14, `${checks} health checks in 2 s`);
  });

  it('replaces a worker that dies, without losing the listener', async () => {
    const [victim] = childPids(cli.child.pid!);
    process.kill(victim!, 'SIGKILL');
    await cli.waitFor(/died; starting a replacement/);
    for (let i = 0; i < 20; i++) {
      const res = await request(`${url}/after-kill-${i}`);
      await res.body.text();
      assert.equal(res.statusCode, 200);
    }
    assert.ok(await waitFor(() => childPids(cli.child.pid!).length === 2, 5000), 'back to two workers');
    assert.ok(!childPids(cli.child.pid!).includes(victim!));
  });
});

describe('--workers 2 with least-outstanding', () => {
  let targets: TestTarget[];
  let cli: RunningCli;
  let url: string;

  before(async () => {
    targets = await startTargets(2);
    for (const t of targets) t.delayMs = 3000; // requests stay in flight while the next ones arrive
    cli = startCli([
      'lb',
      '--workers',
      '2',
      '--algorithm',
      'least-outstanding',
      '--listen',
      '127.0.0.1:0',
      ...targets.flatMap((t) => ['--target', t.id]),
      '--health-path',
      '/healthz',
      '--health-interval',
      '200ms',
    ]);
    const [, port] = await cli.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\/ .*2 workers/);
    url = `http://127.0.0.1:${port}`;
    await cli.waitFor(/target 127\.0\.0\.1:\d+ .*healthy/);
    await waitFor(() => false, 500); // both targets healthy in every worker
  });
  after(async () => {
    await cli.stop('SIGTERM');
    await stopTargets(targets);
  });

  it("counts the other workers' requests in flight", async () => {
    // Each request opens its own connection, and cluster hands connections to the workers in turn, so
    // consecutive requests land on different workers. A worker that saw only its own in-flight count
    // would send the second request to the target the first one already occupies.
    const inFlight: Array<Promise<unknown>> = [];
    const arrivals: number[][] = [];
    for (let i = 0; i < 4; i++) {
      const agent = new Agent({ connections: 1 });
      inFlight.push(request(`${url}/held-${i}`, { dispatcher: agent }).then((r) => r.body.text()));
      await waitFor(() => targets.reduce((n, t) => n + t.traffic().length, 0) > i, 2000);
      await waitFor(() => false, 300); // the primary sums the workers' counts every 100 ms
      arrivals.push(targets.map((t) => t.traffic().length));
    }
    assert.deepEqual(
      arrivals.filter((_, i) => i % 2 === 1),
      [
        [1, 1],
        [2, 2],
      ],
      `targets' requests after each arrival: ${JSON.stringify(arrivals)}`,
    );
    await Promise.all(inFlight);
  });
});
