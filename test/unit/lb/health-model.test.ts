import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createBalancer } from '../../../src/balancing/index.js';
import { HealthStateMachine } from '../../../src/health/state-machine.js';
import { DEFAULT_PASSIVE_HEALTH, PassiveHealth } from '../../../src/health/passive.js';
import { parseSuccessCodes } from '../../../src/health/matcher.js';
import { RetryBudget } from '../../../src/lb/retry-budget.js';
import type { Target } from '../../../src/registry/target.js';
import { TargetGroup } from '../../../src/registry/target-group.js';

const FAIL = { ok: false as const, reason: 'Target.Timeout' as const };
const PASS = { ok: true as const };

describe('health state machine', () => {
  it('needs the unhealthy threshold of consecutive failures, then the healthy threshold of passes', () => {
    const m = new HealthStateMachine({ healthyThreshold: 3, unhealthyThreshold: 2 });
    assert.equal(m.observe(PASS)?.to, 'healthy', 'a new target is healthy after its first pass');
    assert.equal(m.observe(FAIL), undefined);
    assert.equal(m.observe(PASS), undefined, 'a pass resets the failure count');
    assert.equal(m.observe(FAIL), undefined);
    assert.deepEqual(m.observe(FAIL), {
      from: 'healthy',
      to: 'unhealthy',
      reason: 'Target.Timeout',
      detail: undefined,
    });
    assert.equal(m.observe(PASS), undefined);
    assert.equal(m.observe(PASS), undefined);
    assert.equal(m.observe(PASS)?.to, 'healthy');
  });
});

describe('success-code matcher', () => {
  it('accepts ELB syntax and refuses nonsense', () => {
    const ok = parseSuccessCodes('200-299,301');
    assert.deepEqual([200, 250, 299, 300, 301, 404].map(ok), [true, true, true, false, true, false]);
    assert.throws(() => parseSuccessCodes('2xx'), /invalid success codes/);
    assert.throws(() => parseSuccessCodes('300-200'), /range/);
  });
});

describe('target group', () => {
  function group() {
    const g = new TargetGroup('g', createBalancer<Target>('round-robin'), {
      healthyThreshold: 1,
      unhealthyThreshold: 1,
    });
    for (const port of [1, 2, 3]) g.register({ id: `h:${port}`, host: 'h', port, weight: 1 });
    return g;
  }
  const ids = (g: TargetGroup) => g.eligibleTargets().map((t) => t.id);

  it('offers only healthy targets, fails open when all are unhealthy, and never offers drained ones', () => {
    const g = group();
    const events: boolean[] = [];
    g.on('fail-open', (active) => events.push(active));
    for (const t of g.list()) t.health.observe(PASS);
    g.refresh();
    assert.deepEqual(ids(g), ['h:1', 'h:2', 'h:3']);
    g.get('h:1')!.health.observe(FAIL);
    g.refresh();
    assert.deepEqual(ids(g), ['h:2', 'h:3']);
    for (const t of g.list()) t.health.observe(FAIL);
    g.refresh();
    assert.equal(g.failOpen, true);
    assert.deepEqual(ids(g), ['h:1', 'h:2', 'h:3']);
    g.get('h:3')!.draining = true;
    g.refresh();
    assert.deepEqual(ids(g), ['h:1', 'h:2'], 'fail-open never revives a draining target');
    assert.equal(g.get('h:3')!.state, 'draining');
    g.get('h:2')!.health.observe(PASS);
    g.refresh();
    assert.equal(g.failOpen, false);
    assert.deepEqual(ids(g), ['h:2']);
    assert.deepEqual(events, [true, false]);
  });

  it('passive checks: failed answers eject a target only while another can take its traffic', () => {
    const now = Date.now();
    const failTimes = (p: PassiveHealth, t: Target, kind: 'connect' | 'answer') => {
      for (let i = 0; i < DEFAULT_PASSIVE_HEALTH.consecutiveFailures; i++) p.recordFailure(t, now, kind);
    };
    // Three healthy targets: one answering 5xx is ejected.
    let g = group();
    for (const t of g.list()) t.health.observe(PASS);
    g.refresh();
    let passive = new PassiveHealth(g);
    failTimes(passive, g.get('h:1')!, 'answer');
    assert.equal(g.get('h:1')!.isEjected(now), true);
    assert.deepEqual(ids(g), ['h:2', 'h:3']);

    // The others failing their checks: the one still answering (with errors) stays.
    g = group();
    g.get('h:1')!.health.observe(PASS);
    for (const id of ['h:2', 'h:3']) g.get(id)!.health.observe(FAIL);
    g.refresh();
    passive = new PassiveHealth(g);
    failTimes(passive, g.get('h:1')!, 'answer');
    assert.equal(g.get('h:1')!.isEjected(now), false, 'the last target that answers is kept');
    assert.deepEqual(ids(g), ['h:1']);
    // A target that refuses connections is ejected even so: it cannot serve anything.
    failTimes(passive, g.get('h:1')!, 'connect');
    assert.equal(g.get('h:1')!.isEjected(now), true);

    // Failing open (every target failing its checks), a dead target drops out of the set.
    g = group();
    for (const t of g.list()) t.health.observe(FAIL);
    g.refresh();
    assert.equal(g.failOpen, true);
    passive = new PassiveHealth(g);
    failTimes(passive, g.get('h:2')!, 'connect');
    assert.deepEqual(ids(g), ['h:1', 'h:3']);
    failTimes(passive, g.get('h:1')!, 'answer');
    assert.deepEqual(ids(g), ['h:1', 'h:3'], 'answers with errors do not eject while failing open');
  });

  it('keeps a history of transitions with reasons', () => {
    const g = group();
    const t = g.get('h:1')!;
    t.health.observe(PASS);
    g.refresh(t);
    t.adminDisabled = true;
    g.refresh(t);
    assert.deepEqual(
      t.history.map((h) => `${h.from}>${h.to}:${h.reason}`),
      ['initial>healthy:Target.Healthy', 'healthy>unused:Target.AdminDisabled'],
    );
  });
});

describe('retry budget', () => {
  it('allows a floor of retries, then a share of live traffic', () => {
    const b = new RetryBudget(0.2, 3);
    let now = 10_000;
    let allowed = 0;
    for (let i = 0; i < 10; i++) if (b.tryRetry(now)) allowed++;
    assert.equal(allowed, 3, 'the floor applies with no traffic');
    now += 2500;
    for (let i = 0; i < 100; i++) b.recordRequest(now);
    allowed = 0;
    for (let i = 0; i < 100; i++) if (b.tryRetry(now)) allowed++;
    assert.equal(allowed, 20, '20% of 100 requests');
    assert.equal(b.remaining(now), 0);
    assert.ok(b.exhausted > 0);
  });
});
