// `scaleout up`, `down` and `scale` from the command line: bad input refused before anything starts,
// a background topology scaled up and down through the LB's admin API, bad actions refused without
// damage, data kept across runs, and nothing left running after `down` or a supervisor crash.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { isAlive, readRunState } from '../../../src/topology/stale.js';
import { cleanUp, control, processesOf, runCli, topologyStatus, writeTopology } from '../../e2e/helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Changes the topology section of a config file. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function edit(file: string, change: (topology: any) => void): void {
  const doc = parse(readFileSync(file, 'utf8')) as { topology: unknown };
  change(doc.topology);
  writeFileSync(file, stringify(doc));
}
const dataDirs: string[] = [];
after(async () => {
  for (const d of dataDirs) await cleanUp(undefined, d);
});

test('a topology file with mistakes is refused with file:line: key: problem', async () => {
  const topo = await writeTopology({ apps: 1, replicas: 0, lbs: 1, dns: false });
  dataDirs.push(topo.dataDir);
  edit(topo.file, (t) => {
    t.app.instances = 500;
    t.colour = 'blue';
  });
  const r = await runCli(['up', topo.file]);
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /scaleout\.yaml:\d+:\d+: topology\.app\.instances: .*64/);
  assert.match(r.out, /topology: Unrecognized key: "colour"/);

  writeFileSync(topo.file, 'listeners: {}\n');
  const missing = await runCli(['up', topo.file]);
  assert.equal(missing.code, 2);
  assert.match(missing.out, /topology: section is missing/);

  const preset = await runCli(['up', '--preset', 'huge']);
  assert.notEqual(preset.code, 0);
  assert.match(preset.out, /Allowed choices are single, split, replicas, sharded, balanced/);
});

test('a port in use, missing PostgreSQL or too little memory: refused, nothing started', async () => {
  const topo = await writeTopology({ apps: 2, replicas: 0, lbs: 1, dns: false });
  dataDirs.push(topo.dataDir);
  const squatter: Server = createServer();
  await new Promise<void>((r) => squatter.listen(topo.ports.app + 1, '127.0.0.1', () => r()));
  try {
    const r = await runCli(['up', topo.file]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /cannot start; nothing was started/);
    assert.match(r.out, new RegExp(`127\\.0\\.0\\.1:${topo.ports.app + 1} \\(app-2\\) is already in use`));
  } finally {
    squatter.close();
  }
  assert.equal(existsSync(join(topo.dataDir, 'pg')), false, 'no PostgreSQL data was made');
  assert.deepEqual(processesOf(topo.dataDir), []);

  const noPg = await runCli(['up', topo.file], { PG_BIN: '/nonexistent/bin' });
  assert.equal(noPg.code, 1, noPg.out);
  assert.match(noPg.out, /PostgreSQL: \/nonexistent\/bin\/initdb is missing/);

  edit(topo.file, (t) => (t.app.memoryMb = 900_000));
  const memory = await runCli(['up', topo.file]);
  assert.equal(memory.code, 1, memory.out);
  assert.match(
    memory.out,
    /needs about \d+ MiB of memory, but only \d+ MiB is available: use fewer instances/,
  );
  assert.deepEqual(processesOf(topo.dataDir), []);
});

interface Target {
  id: string;
  state: string;
  slowStartFactor: number;
}

async function lbTargets(adminPort: number): Promise<Target[]> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/api/v1/target-groups/app`);
  return ((await res.json()) as { targets: Target[] }).targets;
}

test('up --detach, scale up and down, bad actions, down; a second up reuses the data; a supervisor crash leaves nothing', async () => {
  const topo = await writeTopology({ apps: 1, replicas: 0, lbs: 1, dns: false });
  dataDirs.push(topo.dataDir);
  const dd = ['--data-dir', topo.dataDir];
  const started = await runCli(['up', topo.file, '--detach']);
  assert.equal(started.code, 0, started.out);
  assert.match(started.out, /Running in the background \(supervisor pid (\d+)/);
  const web = `http://${topo.lbHost}:${topo.ports.lb}`;

  const again = await runCli(['up', topo.file, '--detach']);
  assert.equal(again.code, 1, again.out);
  assert.match(
    again.out,
    /a topology already runs from .* \(supervisor pid \d+\): stop it with `scaleout down/,
  );

  // A link written now must still be there after down and a second up.
  const created = await fetch(`${web}/api/links`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: 'https://example.com/kept' }),
  });
  assert.equal(created.status, 201);
  const { link } = (await created.json()) as { link: { code: string } };

  // Scale up: app-2 starts, passes its health check, is registered with the LB and slow-starts.
  const up2 = await runCli(['scale', 'app=2', ...dd]);
  assert.equal(up2.code, 0, up2.out);
  assert.match(up2.out, /app instances: 2/);
  const targets = await lbTargets(topo.ports.lbAdmin);
  assert.deepEqual(targets.map((t) => t.id).sort(), ['app-1', 'app-2']);
  assert.ok(targets.find((t) => t.id === 'app-2')!.slowStartFactor < 1, 'app-2 slow-starts');
  const seen = new Set<string>();
  // Its share ramps up over the 2 s slow start.
  for (const deadline = Date.now() + 6000; Date.now() < deadline && seen.size < 2;) {
    const res = await fetch(`${web}/api/links?limit=1`);
    seen.add(res.headers.get('x-scaleout-instance') ?? '');
    await res.arrayBuffer();
    await sleep(20);
  }
  assert.deepEqual([...seen].sort(), ['app-1', 'app-2']);

  // Bad actions get clear errors and change nothing.
  const before = await topologyStatus(topo.dataDir);
  const kill = await control(topo.dataDir, '/kill', { name: 'app-9' });
  assert.equal(kill.status, 404);
  assert.match(String(kill.body.error), /no component named "app-9"/);
  const dashboard = `http://127.0.0.1:${topo.ports.dashboard}`;
  const post = (path: string, body?: unknown) =>
    fetch(`${dashboard}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    });
  const dashKill = await post('/api/components/pg-s9-primary/kill');
  assert.equal(dashKill.status, 404, await dashKill.text());
  const drain = await post('/api/targets/app/app-9/drain');
  assert.equal(drain.status, 404);
  assert.match(await drain.text(), /unknown_target.*app-9/);
  const tooMany = await runCli(['scale', 'app=65', ...dd]);
  assert.equal(tooMany.code, 1);
  assert.match(tooMany.out, /from 1 to 64/);
  const otherTier = await runCli(['scale', 'db=2', ...dd]);
  assert.notEqual(otherTier.code, 0);
  assert.match(otherTier.out, /only the app tier scales/);
  const afterBad = await topologyStatus(topo.dataDir);
  assert.deepEqual(
    afterBad.components.map((c) => [c.name, c.status, c.pid]),
    before.components.map((c) => [c.name, c.status, c.pid]),
  );

  // Scale down through the dashboard's action: app-2 is drained by the LB, then stopped.
  const app2 = before.components.find((c) => c.name === 'app-2')!.pid!;
  const down1 = await post('/api/scale', { tier: 'app', count: 1 });
  assert.equal(down1.status, 200, await down1.text());
  assert.deepEqual(
    (await lbTargets(topo.ports.lbAdmin)).map((t) => t.id),
    ['app-1'],
  );
  assert.equal(isAlive(app2), false);

  // down: everything stops, the data stays.
  const stopped = await runCli(['down', ...dd]);
  assert.equal(stopped.code, 0, stopped.out);
  assert.match(stopped.out, /stopped/);
  assert.deepEqual(processesOf(topo.dataDir), []);
  const nothing = await runCli(['down', ...dd]);
  assert.match(nothing.out, /nothing runs from/);

  const second = await runCli(['up', topo.file, '--detach']);
  assert.equal(second.code, 0, second.out);
  assert.match(second.out, /data reused/);
  const kept = await fetch(`${web}/api/links/${link.code}`);
  assert.equal(kept.status, 200);

  // A supervisor killed outright: every component gets its parent-death signal.
  const supervisor = readRunState(topo.dataDir).supervisorPid!;
  const components = (await topologyStatus(topo.dataDir)).components.map((c) => c.pid!);
  process.kill(supervisor, 'SIGKILL');
  for (let i = 0; i < 100 && processesOf(topo.dataDir).length > 0; i++) await sleep(100);
  assert.deepEqual(processesOf(topo.dataDir), []);
  for (const pid of components) assert.equal(isAlive(pid), false);
  const after = await runCli(['down', ...dd]);
  assert.equal(after.code, 0, after.out);

  // The same data dir with two shards would misplace every row: refused, nothing started.
  const resharded = await runCli(['up', topo.file, '--preset', 'sharded']);
  assert.equal(resharded.code, 1, resharded.out);
  assert.match(resharded.out, /holds the data of 1 shard\(s\), and this topology has 2/);
  assert.deepEqual(processesOf(topo.dataDir), []);
});
