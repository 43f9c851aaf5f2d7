// The plan `scaleout up` makes from a topology: names, addresses and ports of every component, and
// the config file each one is started with, checked against the real schemas of lb, dns and db-proxy
// (so a change there that the generated files no longer fit fails here, not in a user's `up`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { databaseSchema } from '../../../src/db/config.js';
import { configSchema } from '../../../src/config/schema.js';
import { dnsConfigSchema } from '../../../src/dns/config.js';
import { dnsConfig, lbConfig, makePlan, proxyConfig } from '../../../src/topology/plan.js';
import { PRESETS } from '../../../src/topology/presets.js';
import { resolveTopology } from '../../../src/topology/resolve.js';

const planOf = (preset: string) => {
  const { topology, name } = resolveTopology({ preset, dataDir: '/tmp/scaleout-plan-test' });
  return makePlan(topology, name);
};

test('every preset yields configs the lb, dns and db-proxy schemas accept', () => {
  for (const preset of PRESETS) {
    const plan = planOf(preset);
    const proxy = databaseSchema.safeParse(proxyConfig(plan).database);
    assert.ok(proxy.success, `${preset} db-proxy: ${JSON.stringify(proxy.error?.issues)}`);
    for (const lb of plan.lbs) {
      const lbParsed = configSchema.safeParse(lbConfig(plan, lb, plan.apps));
      assert.ok(lbParsed.success, `${preset} ${lb.name}: ${JSON.stringify(lbParsed.error?.issues)}`);
    }
    if (plan.dns) {
      const dns = dnsConfigSchema.safeParse(dnsConfig(plan).dns);
      assert.ok(dns.success, `${preset} dns: ${JSON.stringify(dns.error?.issues)}`);
    }
  }
});

test('sharded: each shard a primary and a replica on consecutive ports, replicas follow their own primary', () => {
  const plan = planOf('sharded');
  assert.deepEqual(
    plan.postgres.map((s) => [s.name, s.port, s.primary?.port]),
    [
      ['pg-s0-primary', 15432, undefined],
      ['pg-s0-replica1', 15433, 15432],
      ['pg-s1-primary', 15434, undefined],
      ['pg-s1-replica1', 15435, 15434],
    ],
  );
  const db = proxyConfig(plan).database as { shards: Array<{ primary: string; replicas: string[] }> };
  assert.deepEqual(
    db.shards.map((s) => [s.primary, s.replicas]),
    [
      ['postgres://postgres@127.0.0.1:15432/app', ['postgres://postgres@127.0.0.1:15433/app']],
      ['postgres://postgres@127.0.0.1:15434/app', ['postgres://postgres@127.0.0.1:15435/app']],
    ],
  );
});

test('balanced: LB instances on their own loopback addresses, DNS follows each one through its admin API', () => {
  const plan = planOf('balanced');
  assert.deepEqual(
    plan.lbs.map((l) => [l.name, l.address, l.admin.port]),
    [
      ['lb-1', '127.0.0.2', 9901],
      ['lb-2', '127.0.0.3', 9902],
    ],
  );
  assert.deepEqual(
    plan.apps.map((a) => `${a.name}=${a.host}:${a.port}`),
    ['app-1=127.0.0.1:3001', 'app-2=127.0.0.1:3002', 'app-3=127.0.0.1:3003'],
  );
  const zone = (dnsConfig(plan).dns as { zones: Array<{ recordSets: Array<Record<string, unknown>> }> })
    .zones[0]!;
  assert.deepEqual(zone.recordSets[0]!.addresses, [
    { address: '127.0.0.2', lbAdmin: 'http://127.0.0.1:9901' },
    { address: '127.0.0.3', lbAdmin: 'http://127.0.0.1:9902' },
  ]);
  const lb = lbConfig(plan, plan.lbs[1]!, plan.apps) as {
    listeners: Record<string, { listen: string }>;
    targetGroups: { app: { targets: Array<{ id: string }> } };
  };
  assert.equal(lb.listeners.web!.listen, '127.0.0.3:8080');
  assert.deepEqual(
    lb.targetGroups.app.targets.map((t) => t.id),
    ['app-1', 'app-2', 'app-3'],
  );
});
