// `scaleout dns --follow-lb`: each DNS address takes its health from the live state of the load
// balancer at that address, read from the LB's admin API. Two real `scaleout lb` processes with real
// targets; the answers are read with dig.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCli, type RunningCli } from '../../helpers/cli.js';
import { TestTarget } from '../../helpers/http-targets.js';
import { dig, parseDig, startDns, type RunningDns } from './helpers.js';

const LB_ADDRESSES = ['127.0.0.2', '127.0.0.3'];

interface Lb {
  cli: RunningCli;
  adminUrl: string;
  target: TestTarget;
}

async function startLb(address: string): Promise<Lb> {
  const target = await new TestTarget().start();
  const cli = startCli([
    'lb',
    '--listen',
    `${address}:0`,
    '--target',
    target.id,
    '--health-path',
    '/healthz',
    '--health-interval',
    '200ms',
    '--healthy-threshold',
    '1',
    '--unhealthy-threshold',
    '1',
    '--admin-listen',
    '127.0.0.1:0',
  ]);
  const m = await cli.waitFor(/admin API on (http:\/\/[\d.:]+)\//);
  return { cli, adminUrl: m[1]!, target };
}

let lbs: Lb[] = [];
let dns: RunningDns;

async function answers(): Promise<string[]> {
  const out = parseDig(await dig(dns.port, 'www.example.test', 'A'));
  return out.answer.map((line) => line.split(/\s+/).at(-1)!).sort();
}

async function waitForAnswers(expected: string[], ms = 8000): Promise<void> {
  let last: string[] = [];
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    last = await answers();
    if (JSON.stringify(last) === JSON.stringify(expected)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`expected answers ${expected.join(',')}, last saw ${last.join(',') || 'none'}`);
}

before(async () => {
  lbs = await Promise.all(LB_ADDRESSES.map(startLb));
  dns = await startDns([
    '--zone',
    'example.test',
    '--record',
    `www A ${LB_ADDRESSES.join(' ')}`,
    '--policy',
    'multivalue',
    '--ttl',
    '1',
    '--follow-lb',
    'default',
    ...lbs.flatMap((lb, i) => ['--lb-admin', `${LB_ADDRESSES[i]}=${lb.adminUrl}`]),
    '--fail-open-threshold',
    '0',
    '--admin',
    '127.0.0.1:0',
  ]);
});

after(async () => {
  await dns?.stop();
  await Promise.all(lbs.map(async (lb) => (await lb.cli.stop(), await lb.target.kill())));
});

test('both LBs with a healthy target: both addresses answered', async () => {
  await waitForAnswers(LB_ADDRESSES);
  const line = await dns.waitForLog(/^record set www/);
  assert.match(String(line.msg), /health from 2 LB admin APIs/);
});

test('an LB whose every target fails is withdrawn, and comes back when its target does', async () => {
  lbs[0]!.target.healthStatus = 503;
  await waitForAnswers([LB_ADDRESSES[1]!]);
  lbs[0]!.target.healthStatus = 200;
  await waitForAnswers(LB_ADDRESSES);
});

test('an LB draining its whole target group is withdrawn from DNS as draining', async () => {
  const lb = lbs[1]!;
  const res = await fetch(
    `${lb.adminUrl}/api/v1/target-groups/default/targets/${encodeURIComponent(lb.target.id)}/disable`,
    { method: 'POST' },
  );
  assert.equal(res.status, 200, await res.text());
  await waitForAnswers([LB_ADDRESSES[0]!]);
  const status = (await (await fetch(`http://127.0.0.1:${dns.adminPort}/status`)).json()) as {
    recordSets: Array<{ pools: Array<{ addresses: Array<{ address: string; draining: boolean }> }> }>;
  };
  const addresses = status.recordSets[0]!.pools[0]!.addresses;
  assert.deepEqual(
    addresses.map((a) => [a.address, a.draining]),
    [
      [LB_ADDRESSES[0], false],
      [LB_ADDRESSES[1], true],
    ],
  );
  const enable = await fetch(
    `${lb.adminUrl}/api/v1/target-groups/default/targets/${encodeURIComponent(lb.target.id)}/enable`,
    { method: 'POST' },
  );
  assert.equal(enable.status, 200);
  await waitForAnswers(LB_ADDRESSES);
});

test('an LB that is gone (admin API unreachable) is withdrawn, with a warning naming it', async () => {
  await lbs[0]!.cli.stop();
  await waitForAnswers([LB_ADDRESSES[1]!]);
  const warn = await dns.waitForLog(/unreachable/);
  assert.equal(warn.address, LB_ADDRESSES[0]);
});
