// Routing policies and fail-open on AddressRecordSet directly (no sockets), driving target health by
// hand as the health checker would.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/core/log.js';
import type { Target } from '../../../src/registry/target.js';
import type { TargetState } from '../../../src/core/types.js';
import { AddressRecordSet, type RecordSetSpec } from '../../../src/dns/record-set.js';
import { summarizeGroupView } from '../../../src/dns/lb-health.js';
import { nameToKey } from '../../../src/dns/wire.js';

function makeSet(over: Partial<RecordSetSpec> = {}): AddressRecordSet {
  return new AddressRecordSet(
    {
      ownerKey: nameToKey('www.example.test.'),
      type: 'A',
      ttl: 30,
      policy: 'simple',
      addresses: [2, 3, 4, 5].map((i) => ({ address: `192.0.2.${i}`, weight: 1 })),
      upThreshold: 0.5,
      maxAnswers: 8,
      ...over,
    },
    silentLogger,
  );
}

const client = { address: '198.51.100.7', ecs: undefined };
const ids = (ts: Target[]) => ts.map((t) => t.id);

function setHealth(set: AddressRecordSet, address: string, healthy: boolean): void {
  for (const { pool, target } of set.targetsFor(address)) {
    target.health.force(healthy ? 'healthy' : 'unhealthy', healthy ? 'Target.Healthy' : 'Target.Timeout');
    pool.group.refresh(target);
  }
}

describe('DNS record set policies', () => {
  it('withholds unhealthy addresses while at least up_thresh of them are up', () => {
    const set = makeSet();
    setHealth(set, '192.0.2.3', false);
    assert.deepEqual(ids(set.pick(client).targets).sort(), ['192.0.2.2', '192.0.2.4', '192.0.2.5']);
    setHealth(set, '192.0.2.4', false); // 2 of 4 up = 50%: not below the threshold
    assert.deepEqual(ids(set.pick(client).targets).sort(), ['192.0.2.2', '192.0.2.5']);
    assert.equal(set.pools[0]!.balancer.failOpen, false);
  });

  it('fails open with every in-service address below the threshold, and recovers', () => {
    const events: boolean[] = [];
    const set = makeSet({ upThreshold: 0.75 });
    setHealth(set, '192.0.2.3', false);
    assert.equal(set.pick(client).targets.length, 3, '3 of 4 up = 75%: still withheld');
    setHealth(set, '192.0.2.4', false);
    assert.equal(set.pools[0]!.balancer.failOpen, true);
    events.push(set.pools[0]!.balancer.failOpen);
    assert.equal(set.pick(client).targets.length, 4);
    setHealth(set, '192.0.2.4', true);
    assert.equal(set.pools[0]!.balancer.failOpen, false);
    assert.equal(set.pick(client).targets.length, 3);
  });

  it('never answers with a draining address, even in fail-open', () => {
    const set = makeSet();
    const { pool, target } = set.targetsFor('192.0.2.2')[0]!;
    target.draining = true;
    pool.group.refresh(target);
    for (const a of ['192.0.2.3', '192.0.2.4', '192.0.2.5']) setHealth(set, a, false);
    assert.deepEqual(ids(set.pick(client).targets).sort(), ['192.0.2.3', '192.0.2.4', '192.0.2.5']);
  });

  it('weighted: spreads single answers by weight', () => {
    const set = makeSet({
      policy: 'weighted',
      addresses: [
        { address: '192.0.2.2', weight: 1 },
        { address: '192.0.2.3', weight: 2 },
        { address: '192.0.2.4', weight: 7 },
      ],
    });
    const counts = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const t = set.pick(client).targets;
      assert.equal(t.length, 1);
      counts.set(t[0]!.id, (counts.get(t[0]!.id) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(counts), { '192.0.2.2': 100, '192.0.2.3': 200, '192.0.2.4': 700 });
  });

  it('multivalue: at most maxAnswers distinct addresses', () => {
    const set = makeSet({ policy: 'multivalue', maxAnswers: 2 });
    for (let i = 0; i < 50; i++) {
      const t = ids(set.pick(client).targets);
      assert.equal(t.length, 2);
      assert.notEqual(t[0], t[1]);
    }
  });

  it('source: the first matching rule, falling back to the default set when its addresses are down', () => {
    const set = makeSet({
      policy: 'source',
      addresses: [{ address: '192.0.2.2', weight: 1 }],
      sources: [{ subnets: ['198.51.100.0/24'], addresses: [{ address: '192.0.2.9', weight: 1 }] }],
    });
    assert.deepEqual(ids(set.pick(client).targets), ['192.0.2.9']);
    const ecs = { family: 1 as const, sourcePrefix: 24, address: Buffer.from([203, 0, 113]) };
    assert.deepEqual(
      ids(set.pick({ address: '198.51.100.7', ecs }).targets),
      ['192.0.2.2'],
      'ECS wins over the resolver',
    );
    setHealth(set, '192.0.2.9', false);
    assert.deepEqual(ids(set.pick(client).targets), ['192.0.2.2']);
  });

  it("summarizes an LB target group's admin view for DNS", () => {
    const t = (state: TargetState, adminDisabled = false, draining = false) => ({
      state,
      adminDisabled,
      draining,
    });
    assert.deepEqual(summarizeGroupView({ targets: [t('healthy'), t('unhealthy'), t('initial')] }), {
      total: 3,
      inService: 3,
      healthy: 1,
      checking: 1,
    });
    // Disabled and draining targets are out of service even when healthy.
    assert.deepEqual(summarizeGroupView({ targets: [t('healthy', true), t('draining', false, true)] }), {
      total: 2,
      inService: 0,
      healthy: 0,
      checking: 0,
    });
  });
});
