// End to end: `scaleout up` with a small balanced topology (2 app instances, a primary + 1 replica,
// an LB, DNS), the load generator at a fixed rate, and chaos: an app instance killed, a replica
// killed (and brought back), then the primary killed and restarted. The client must see no failed
// read while an app or the replica dies, failed writes only while the primary is down, and at most
// a few failed reads then (read-your-writes reads that only the primary could answer). At the end
// everything is stopped and no process is left.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runLoad, type LoadResult } from '../../src/loadgen/index.js';
import { isAlive } from '../../src/topology/stale.js';
import {
  cleanUp,
  control,
  processesOf,
  startUp,
  topologyStatus,
  writeTopology,
  type UpProcess,
} from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ServerStatus {
  server: string;
  eligible: boolean;
  up: boolean;
}

let up: UpProcess | undefined;
let dataDir = '';
after(() => cleanUp(up, dataDir));

test('balanced topology under load survives an app, a replica and the primary dying', async () => {
  const topo = await writeTopology({ apps: 2, replicas: 1, lbs: 1, dns: true });
  dataDir = topo.dataDir;
  up = await startUp(topo.file);
  const out = up.output();
  assert.match(out, /new data for pg-s0-primary, pg-s0-replica1/);
  for (const name of ['pg-s0-primary', 'pg-s0-replica1', 'db-proxy', 'app-1', 'app-2', 'lb-1', 'dns'])
    assert.match(out, new RegExp(`^  ${name} `, 'm'), `${name} in the table`);

  // DNS hands out the LB's address.
  const answer = execFileSync(
    'dig',
    ['@127.0.0.1', '-p', String(topo.ports.dns), 'www.scaleout.test', '+short'],
    {
      encoding: 'utf8',
    },
  ).trim();
  assert.equal(answer, topo.lbHost);

  const pidsSeen = new Set<number>();
  const remember = async () => {
    for (const c of (await topologyStatus(dataDir)).components) if (c.pid) pidsSeen.add(c.pid);
  };
  await remember();

  // Chaos on a schedule, measured from the start of the load.
  const url = `http://${topo.lbHost}:${topo.ports.lb}/`;
  const t0 = Date.now();
  const at = (ms: number) => sleep(Math.max(0, t0 + ms - Date.now()));
  const load: Promise<LoadResult> = runLoad({
    url,
    rate: 40,
    durationMs: 28_000,
    mix: { read: 70, list: 10, write: 20 },
    timeoutMs: 5000,
  });
  const events: Record<string, number> = {};
  const must = async (p: Promise<{ status: number; body: Record<string, unknown> }>) => {
    const r = await p;
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };

  await at(3000);
  events.appKilled = Date.now() - t0;
  await must(control(dataDir, '/kill', { name: 'app-1' }));
  await at(7000);
  events.replicaKilled = Date.now() - t0;
  await must(control(dataDir, '/kill', { name: 'pg-s0-replica1' }));
  await at(10_000);
  await must(control(dataDir, '/restart', { name: 'pg-s0-replica1' }));
  await remember();
  // Reads need the replica while the primary is down: wait until the proxy takes it back.
  const proxyAdmin = `http://127.0.0.1:${topo.ports.proxy + 1}/status`;
  const untilProxySees = async (server: string, ok: (s: ServerStatus) => boolean, withinMs: number) => {
    for (let deadline = Date.now() + withinMs; ; await sleep(100)) {
      const servers = ((await (await fetch(proxyAdmin)).json()) as { servers: ServerStatus[] }).servers;
      if (servers.some((s) => s.server === server && ok(s))) return;
      assert.ok(
        Date.now() < deadline,
        `the db-proxy did not take ${server} back: ${JSON.stringify(servers)}`,
      );
    }
  };
  await untilProxySees(`127.0.0.1:${topo.ports.pg + 1}`, (s) => s.eligible, 20_000);
  await at(15_000);
  events.primaryKilled = Date.now() - t0;
  await must(control(dataDir, '/kill', { name: 'pg-s0-primary' }));
  await at(19_000);
  events.primaryRestarted = Date.now() - t0;
  await must(control(dataDir, '/restart', { name: 'pg-s0-primary' }));
  // The outage ends when the proxy has the primary back (PostgreSQL's crash recovery takes longer on a
  // busy box); that must not take long.
  await untilProxySees(`127.0.0.1:${topo.ports.pg}`, (s) => s.up, 10_000);
  events.primaryBack = Date.now() - t0;
  await remember();
  const result = await load;
  const loadEnd = Date.parse(result.startedAt) + 28_000 - t0;
  assert.ok(
    events.primaryBack! + 3000 < loadEnd,
    `the chaos ran late on a busy box: ${JSON.stringify(events)}`,
  );

  const status = await topologyStatus(dataDir);
  const state = Object.fromEntries(status.components.map((c) => [c.name, c.status]));
  assert.equal(state['app-1'], 'crashed');
  assert.equal(state['pg-s0-primary'], 'running');
  assert.equal(state['pg-s0-replica1'], 'running');

  const timeline = result.timeline.map((s) => ({
    second: s.second,
    readFailed: (s.kinds.read?.failed ?? 0) + (s.kinds.list?.failed ?? 0),
    writeFailed: s.kinds.write?.failed ?? 0,
    writeOk: s.kinds.write?.ok ?? 0,
  }));
  const context = JSON.stringify({ events, timeline, errors: result.errors, codes: result.statusCodes });
  assert.ok(result.sent >= 900, `load ran at its rate (${result.sent} sent)`);

  // Timeline seconds count from the load's own start (after it seeded codes to read).
  const loadSecond = (ms: number) => Math.floor((t0 + ms - Date.parse(result.startedAt)) / 1000);
  const down = [loadSecond(events.primaryKilled! - 200), loadSecond(events.primaryBack!) + 3];
  const inOutage = (second: number) => second >= down[0]! && second <= down[1]!;
  const appSecond = loadSecond(events.appKilled!);

  // No failed read while an app instance or the replica dies: the LB retries reads on another app,
  // the db-proxy on another server. While the primary is down, a read that must see the client's
  // own write not yet replayed on the replica (read-your-writes) can only run on the primary and
  // fails: that may happen to the few reads sent right after a write, and to those running on the
  // primary at the instant it is killed (about a fifth of a second's 28 reads at most), never to the
  // others.
  const readsOutside = timeline.filter((s) => !inOutage(s.second)).reduce((n, s) => n + s.readFailed, 0);
  assert.equal(readsOutside, 0, `reads failed outside the primary's outage: ${context}`);
  const readsInside = timeline.filter((s) => inOutage(s.second)).reduce((n, s) => n + s.readFailed, 0);
  assert.ok(readsInside <= 6, `more than a few reads failed while the primary was down: ${context}`);

  // Writes fail only while the primary is down (second granularity, +3 s for the proxy to see it
  // back). A write in flight on app-1 at the moment it is SIGKILLed cannot be retried safely (it was
  // sent and is not idempotent), so that second may hold one failure.
  let outside = 0;
  let inside = 0;
  for (const s of timeline) {
    if (inOutage(s.second)) inside += s.writeFailed;
    else if (s.second === appSecond) assert.ok(s.writeFailed <= 1, `app kill second: ${context}`);
    else outside += s.writeFailed;
  }
  assert.equal(outside, 0, `writes failed outside the primary's outage: ${context}`);
  assert.ok(inside > 0, `writes failed while the primary was down: ${context}`);
  const after = timeline.filter((s) => s.second > down[1]!);
  assert.ok(
    after.some((s) => s.writeOk > 0),
    `writes succeed again after the restart: ${context}`,
  );
  // Both app instances answered before the kill, only app-2 after it.
  assert.ok((result.instances['app-2'] ?? 0) > 0 && (result.instances['app-1'] ?? 0) > 0, context);

  // Orderly stop: exit 0, nothing left running, PostgreSQL shut down cleanly.
  up.child.kill('SIGTERM');
  assert.equal(await up.exited, 0, up.output());
  assert.match(up.output(), /stopped; data kept in/);
  for (const pid of pidsSeen) assert.equal(isAlive(pid), false, `pid ${pid} still runs`);
  assert.deepEqual(processesOf(dataDir), []);
  for (const dir of ['s0-primary', 's0-replica1'])
    assert.equal(existsSync(join(dataDir, 'pg', dir, 'postmaster.pid')), false, `${dir} shut down`);
});
