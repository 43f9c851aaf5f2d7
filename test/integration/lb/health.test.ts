import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { load } from '../../helpers/load.js';
import { FAST_HEALTH, startLb, waitFor, type TestLb } from '../../helpers/lb.js';

async function get(url: string, agent?: Agent, method = 'GET', body?: string) {
  const res = await request(url, { method, body, dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, text, target: res.headers['x-target'] as string | undefined };
}

describe('health, failover and timeouts', () => {
  let targets: TestTarget[] = [];
  let lb: TestLb | undefined;

  afterEach(async () => {
    await lb?.stop();
    lb = undefined;
    await stopTargets(targets);
  });

  it('a target killed under load: no failed GETs, marked unhealthy within thresholds, healthy after recovery', async () => {
    targets = await startTargets(3);
    lb = await startLb(targets);
    const victim = targets[0]!;
    const victimTarget = lb.group.get(victim.id)!;
    assert.equal(victimTarget.state, 'healthy');

    const running = load(`${lb.url}/work`, 8, 2500);
    await new Promise((r) => setTimeout(r, 700));
    const killedAt = Date.now();
    await victim.kill();
    // Fall threshold 2 at a 200 ms interval with a 300 ms timeout: unhealthy well within ~1 s.
    const limit = FAST_HEALTH.unhealthyThreshold * FAST_HEALTH.interval + FAST_HEALTH.timeout + 500;
    assert.ok(await waitFor(() => victimTarget.state === 'unhealthy', limit), `state ${victimTarget.state}`);
    const markedAfter = Date.now() - killedAt;
    const result = await running;
    assert.deepEqual([...result.statuses.keys()], [200], `statuses: ${JSON.stringify([...result.statuses])}`);
    assert.ok(result.sent > 100, `only ${result.sent} requests were sent`);
    assert.ok(markedAfter <= limit);

    await victim.start(victim.port);
    const riseLimit = FAST_HEALTH.healthyThreshold * FAST_HEALTH.interval + FAST_HEALTH.timeout + 500;
    assert.ok(
      await waitFor(() => victimTarget.state === 'healthy', riseLimit),
      `state ${victimTarget.state}`,
    );
    const after = await load(`${lb.url}/again`, 4, 400);
    assert.ok((after.byTarget.get(String(victim.port)) ?? 0) > 0, 'the recovered target gets traffic again');
    const reasons = victimTarget.history.map((h) => `${h.to}:${h.reason}`);
    assert.ok(
      reasons.includes('unhealthy:Target.ConnectionRefused') ||
        reasons.some((r) => r.startsWith('unhealthy')),
    );
  });

  it('answers 503 when every target is down', async () => {
    targets = await startTargets(2);
    lb = await startLb(targets);
    await stopTargets(targets);
    assert.ok(await waitFor(() => lb!.group.list().every((t) => t.state === 'unhealthy'), 2000));
    const r = await get(`${lb.url}/down`);
    assert.equal(r.status, 503);
    assert.match(r.text, /no healthy target/);
  });

  it('fails open: every target failing its checks still gets traffic', async () => {
    targets = await startTargets(2);
    for (const t of targets) t.healthStatus = 500;
    lb = await startLb(targets);
    assert.ok(await waitFor(() => lb!.group.list().every((t) => t.state === 'unhealthy'), 2000));
    assert.equal(lb.group.failOpen, true);
    assert.equal(lb.group.get(targets[0]!.id)!.reason, 'Target.ResponseCodeMismatch');
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const r = await get(`${lb.url}/open`);
      assert.equal(r.status, 200);
      seen.add(r.target!);
    }
    assert.equal(seen.size, 2, 'fail-open routes to all targets');
    // One target healthy again ends fail-open, and it alone gets traffic.
    targets[1]!.healthStatus = 200;
    assert.ok(await waitFor(() => !lb!.group.failOpen, 2000));
    for (let i = 0; i < 6; i++)
      assert.equal((await get(`${lb.url}/closed`)).target, String(targets[1]!.port));
  });

  it('fails open onto the targets that still answer: a dead one is ejected by live traffic', async () => {
    targets = await startTargets(3);
    for (const t of targets) t.healthStatus = 500;
    lb = await startLb(targets);
    assert.ok(await waitFor(() => lb!.group.failOpen, 2000));
    const dead = targets[0]!;
    await dead.kill();
    // Every GET still succeeds (connect failures are retried elsewhere), and once the dead target has
    // failed its consecutive connects it is left out of the fail-open set.
    const result = await load(`${lb.url}/open`, 4, 1500);
    assert.deepEqual([...result.statuses.keys()], [200], `statuses: ${JSON.stringify([...result.statuses])}`);
    const deadTarget = lb.group.get(dead.id)!;
    assert.ok(deadTarget.isEjected(Date.now()), 'the dead target is ejected');
    assert.equal(lb.group.failOpen, true);
    const eligible = lb.group.eligibleTargets().map((t) => t.id);
    assert.deepEqual(eligible.sort(), [targets[1]!.id, targets[2]!.id].sort());
  });

  it('answers 504 when a target does not answer in time', async () => {
    targets = await startTargets(1);
    targets[0]!.delayMs = 1500;
    lb = await startLb(targets, { listener: { timeouts: { response: 300 } } });
    const started = Date.now();
    const r = await get(`${lb.url}/slow`);
    assert.equal(r.status, 504);
    assert.ok(Date.now() - started < 1400, 'the LB gave up before the target answered');
  });

  it('a slow-but-alive target loses most of its share', async () => {
    targets = await startTargets(3);
    targets[0]!.delayMs = 150;
    lb = await startLb(targets);
    const warm = await load(`${lb.url}/warm`, 6, 2000, 600);
    const slowTarget = lb.group.get(targets[0]!.id)!;
    assert.ok(slowTarget.grayFactor < 1, `gray factor ${slowTarget.grayFactor} after ${warm.sent} requests`);
    const measured = await load(`${lb.url}/measure`, 6, 1500, 400);
    const total = [...measured.byTarget.values()].reduce((a, b) => a + b, 0);
    const slowShare = (measured.byTarget.get(String(targets[0]!.port)) ?? 0) / total;
    assert.ok(slowShare < 0.15, `slow target share ${slowShare.toFixed(3)} (fair share 0.333)`);
    assert.equal(slowTarget.state, 'healthy', 'slow is not unhealthy: it keeps a small share');
  });

  it('retries an idempotent request reset by one target on another', async () => {
    targets = await startTargets(2);
    targets[0]!.resetRequests = true;
    lb = await startLb(targets, {
      targetGroup: { algorithm: 'round-robin', passiveHealth: { consecutiveFailures: 1000 } },
    });
    for (let i = 0; i < 6; i++) {
      const r = await get(`${lb.url}/idem-${i}`);
      assert.equal(r.status, 200);
      assert.equal(r.target, String(targets[1]!.port));
    }
    assert.ok(targets[0]!.traffic().length >= 3, 'the resetting target was tried');
  });

  it('never retries a non-idempotent request that was sent', async () => {
    targets = await startTargets(2);
    for (const t of targets) t.resetRequests = true;
    lb = await startLb(targets, { targetGroup: { algorithm: 'round-robin' } });
    const r = await get(`${lb.url}/pay`, undefined, 'POST', 'amount=10');
    assert.equal(r.status, 502);
    const attempts = targets.reduce((n, t) => n + t.traffic().filter((q) => q.url === '/pay').length, 0);
    assert.equal(attempts, 1, 'the POST reached exactly one target');
  });

  it('a retry budget caps retries when every target fails (no retry storm)', async () => {
    targets = await startTargets(2);
    for (const t of targets) t.resetRequests = true; // health checks still pass: only traffic fails
    lb = await startLb(targets, {
      targetGroup: { algorithm: 'round-robin', passiveHealth: { consecutiveFailures: 100_000 } },
    });
    const requests = 200;
    const started = Date.now();
    for (let i = 0; i < requests; i++) assert.equal((await get(`${lb.url}/storm-${i}`)).status, 502);
    const seconds = Math.ceil((Date.now() - started) / 1000);
    const arrived = targets.reduce((n, t) => n + t.traffic().length, 0);
    // Without a budget every request would be tried 3 times (600 arrivals). The budget allows 20 % of
    // the requests of the last two one-second windows, and at least 10 per window.
    const allowedRetries = requests * 0.2 * 2 + 10 * (seconds + 1);
    assert.ok(arrived >= requests, `every request reached a target once (${arrived})`);
    assert.ok(
      arrived - requests <= allowedRetries,
      `${arrived - requests} retries for ${requests} requests in ${seconds} s; at most ${allowedRetries} allowed`,
    );
    assert.ok(arrived - requests < requests, 'far fewer retries than failures');
    const budget = [...lb.runtime.listeners.values()][0]!.options.retryBudget;
    assert.ok(budget.exhausted > 0, 'the budget refused retries');
  });

  it('retries a connect failure on another target, even for POST', async () => {
    targets = await startTargets(2);
    lb = await startLb(targets, {
      targetGroup: { algorithm: 'round-robin', healthCheck: { enabled: false } },
    });
    await targets[0]!.kill();
    for (let i = 0; i < 4; i++) {
      const r = await get(`${lb.url}/post-${i}`, undefined, 'POST', 'x');
      assert.equal(r.status, 200);
    }
  });
});
