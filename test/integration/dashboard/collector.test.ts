// The collector against real processes: `scaleout lb` over real targets, and `scaleout dns` answering
// real queries. Rates, latency percentiles, spread, the timeline and unreachable admin endpoints.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Collector, type DashboardState, type TargetView } from '../../../src/dashboard/collector.js';
import { RemoteControlPlane } from '../../../src/dashboard/remote.js';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { load } from '../../helpers/load.js';
import { startLbProcess, startWeightedDns, type DnsProcess, type LbProcess } from './harness.js';

const run = promisify(execFile);

function target(state: DashboardState, t: TestTarget): TargetView {
  const found = state.lb.groups.flatMap((g) => g.targets).find((x) => x.id === t.id);
  assert.ok(found, `target ${t.id} is in the state`);
  return found;
}

/** Ticks until `predicate` holds on the state (or the time is up); returns the last state. */
async function tickUntil(c: Collector, predicate: (s: DashboardState) => boolean, timeoutMs = 8000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await c.tick();
    const s = c.state()!;
    if (predicate(s) || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('dashboard collector over a real load balancer', () => {
  let targets: TestTarget[] = [];
  let lb: LbProcess;
  let collector: Collector;

  before(async () => {
    targets = await startTargets(3);
    targets[1]!.delayMs = 40; // slow
    targets[2]!.status = 500; // failing answers (health checks still pass)
    lb = await startLbProcess(targets);
    collector = new Collector({ control: new RemoteControlPlane({ lb: [lb.adminUrl] }), intervalMs: 200 });
  });
  after(async () => {
    await collector.stop();
    await lb?.stop();
    await stopTargets(targets);
  });

  it('derives requests/s, error rate, p50/p99 and spread per target and per group from LB metrics', async () => {
    await collector.tick();
    const result = await load(lb.url, 3, 5000, 150);
    assert.equal(result.sent, 150);
    await collector.tick();
    const s = collector.state()!;
    const [fast, slow, failing] = targets.map((t) => target(s, t));
    assert.equal(fast!.state, 'healthy');
    assert.equal(slow!.state, 'healthy');
    for (const t of [fast!, slow!, failing!]) {
      assert.ok(t.rps !== null && t.rps > 0, `${t.id} has a request rate: ${t.rps}`);
      assert.ok(t.spark.length >= 1, `${t.id} has a sparkline`);
    }
    assert.equal(failing!.errorRate, 1, 'every answer of the failing target is a 5xx');
    assert.equal(fast!.errorRate, 0);
    assert.ok(slow!.p50! >= 25, `the slow target's p50 (${slow!.p50} ms) shows its 40 ms delay`);
    assert.ok(slow!.p50! > fast!.p50!, 'the slow target is slower than the fast one');
    assert.ok(slow!.p99! >= slow!.p50!, 'p99 is at least p50');
    const group = s.lb.groups[0]!;
    assert.equal(group.name, 'default');
    const sum = [fast!, slow!, failing!].reduce((n, t) => n + t.rps!, 0);
    assert.ok(Math.abs(group.rps! - sum) < 0.1, `group rps ${group.rps} = sum of targets ${sum}`);
    // Passive outlier detection may eject the failing target part way, so compare with its own figures.
    const errorsPerSec = group.errorRate! * group.rps!;
    assert.ok(
      Math.abs(errorsPerSec - failing!.rps!) < 0.5,
      `group errors/s ${errorsPerSec} = the failing target's rps`,
    );
    assert.ok(
      group.errorRate! > 0 && group.errorRate! < 1,
      `the group error rate is a share: ${group.errorRate}`,
    );
    const shares = [fast!, slow!, failing!].reduce((n, t) => n + t.share!, 0);
    assert.ok(Math.abs(shares - 1) < 0.01, `shares add up to 1: ${shares}`);
    // Not an even split: the LB's gray-failure detection may lower the slow target's weight.
    for (const t of [fast!, slow!]) assert.ok(t.share! > 0, `${t.id} has a share: ${t.share}`);
    for (const t of [fast!, slow!]) assert.ok(t.expectedShare! >= 0.3333, `${t.expectedShare}`);
    // The history holds the same figures for the chart.
    const h = collector.history.view([`group:default`, `target:default/${targets[1]!.id}`]);
    assert.equal(h.times.length, 2);
    assert.equal(h.series['group:default']!.rps!.at(-1), group.rps);
    assert.equal(h.series[`target:default/${targets[1]!.id}`]!.p50!.at(-1), slow!.p50);
  });

  it('records state changes in the timeline: a killed target goes unhealthy with its reason', async () => {
    const victim = targets[0]!;
    await victim.kill();
    let s = await tickUntil(collector, (st) => target(st, victim).state === 'unhealthy');
    assert.equal(target(s, victim).state, 'unhealthy');
    assert.match(target(s, victim).reason, /^Target\./);
    const down = s.timeline.find((e) => e.subject === `default/${victim.id}` && e.to === 'unhealthy');
    assert.ok(down, `timeline: ${JSON.stringify(s.timeline)}`);
    assert.equal(down.source, 'lb');
    assert.equal(down.from, 'healthy');
    await victim.start();
    s = await tickUntil(collector, (st) => target(st, victim).state === 'healthy');
    assert.ok(
      s.timeline.some(
        (e) => e.subject === `default/${victim.id}` && e.from === 'unhealthy' && e.to === 'healthy',
      ),
      `the timeline has the way back to healthy: ${JSON.stringify(s.timeline)}`,
    );
    // Each change once, though every poll sees the LB's history again.
    const ups = s.timeline.filter((e) => e.subject === `default/${victim.id}` && e.to === 'unhealthy');
    assert.equal(ups.length, 1);
  });

  it('marks an LB whose admin API stops answering, keeps its last targets as stale', async () => {
    await lb.stop();
    await collector.tick();
    const s = collector.state()!;
    const c = s.components.find((x) => x.kind === 'lb')!;
    assert.equal(c.admin?.ok, false);
    assert.ok(c.admin?.error, 'the admin error is given');
    assert.ok(
      s.timeline.some((e) => e.kind === 'admin' && e.to === 'unreachable'),
      'the timeline notes the lost admin endpoint',
    );
    assert.ok(
      s.lb.groups[0]!.targets.every((t) => t.stale),
      'its targets are marked stale',
    );
  });
});

describe('dashboard collector over a real DNS server', () => {
  let dns: DnsProcess;
  let collector: Collector;

  before(async () => {
    dns = await startWeightedDns(['--rrl-rate', '0']);
    collector = new Collector({
      control: new RemoteControlPlane({ dns: [dns.admin] }),
      intervalMs: 200,
    });
  });
  after(async () => {
    await collector.stop();
    await dns?.cli.stop();
  });

  it('shows answers per address against the configured weights', async () => {
    await tickUntil(collector, (s) => s.dns[0]?.ok === true, 5000);
    // 40 real queries.
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 10; i++)
          await run('dig', [
            '+short',
            '+tries=1',
            '+time=2',
            '-p',
            String(dns.port),
            '@127.0.0.1',
            'www.example.test',
            'A',
          ]);
      }),
    );
    await collector.tick();
    const s = collector.state()!;
    const view = s.dns[0]!;
    assert.equal(view.ok, true);
    assert.ok(view.qps! > 0, `queries/s ${view.qps}`);
    const set = view.recordSets.find((r) => r.name.startsWith('www'))!;
    assert.equal(set.policy, 'weighted');
    const addresses = set.pools[0]!.addresses;
    const byAddress = new Map(addresses.map((a) => [a.address, a]));
    assert.equal(byAddress.get('127.0.0.2')!.weight, 1);
    assert.equal(byAddress.get('127.0.0.3')!.expectedShare, 0.75);
    const total = addresses.reduce((n, a) => n + (a.answersPerSec ?? 0), 0);
    assert.ok(total > 0, 'answers per second per address');
    assert.ok(
      byAddress.get('127.0.0.3')!.share > byAddress.get('127.0.0.2')!.share,
      'the heavier address got more answers',
    );
    assert.deepEqual(collector.history.view([`dns:dns`]).series['dns:dns']!.qps!.at(-1), view.qps);
  });
});
