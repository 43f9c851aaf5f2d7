// Kill, restart and scale from the dashboard, through a ControlPlane written here that really runs
// small app processes: the dashboard's side of the contract with `scaleout up`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'undici';
import type { ComponentInfo, ControlPlane, TopologySnapshot } from '../../../src/dashboard/control-plane.js';
import { startDashboard, type Dashboard } from '../../../src/dashboard/index.js';
import { call, dyingWithUs } from './harness.js';

const APP = `const s = require('node:http').createServer((q, r) => r.end('app ' + process.pid));
s.listen(Number(process.argv[1]), '127.0.0.1', () => console.log('port ' + s.address().port));`;

/** Small app processes on loopback ports, as a supervisor would run them. */
class ProcessControlPlane implements ControlPlane {
  readonly canControl = true;
  private readonly apps = new Map<string, { info: ComponentInfo; child?: ChildProcess }>();
  private next = 1;

  snapshot(): TopologySnapshot {
    return { name: 'process test', components: [...this.apps.values()].map((a) => ({ ...a.info })) };
  }

  private async spawnApp(name: string, port = 0): Promise<void> {
    const [command, args] = dyingWithUs(process.execPath, ['-e', APP, String(port)]);
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const bound = await new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        const m = /port (\d+)/.exec(d.toString());
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`app exited with ${code}`)));
    });
    const existing = this.apps.get(name);
    const info: ComponentInfo = {
      name,
      kind: 'app',
      status: 'running',
      address: `127.0.0.1:${bound}`,
      pid: child.pid,
      restarts: existing ? existing.info.restarts + 1 : 0,
      since: Date.now(),
    };
    const app = { info, child };
    this.apps.set(name, app);
    child.once('exit', () => {
      if (app.info.status === 'stopping') return;
      app.info = { ...app.info, status: 'crashed', pid: undefined, since: Date.now() };
    });
  }

  async scale(_tier: 'app', count: number): Promise<void> {
    while (this.apps.size < count) await this.spawnApp(`app-${this.next++}`);
    for (const name of [...this.apps.keys()].reverse()) {
      if (this.apps.size <= count) break;
      const app = this.apps.get(name)!;
      app.info = { ...app.info, status: 'stopping' };
      await stop(app.child);
      this.apps.delete(name);
    }
  }

  async kill(name: string): Promise<void> {
    const app = this.apps.get(name);
    if (!app) throw new Error(`no component "${name}"`);
    const exited = new Promise((r) => app.child!.once('exit', r));
    app.child!.kill('SIGKILL');
    await exited;
  }

  async restart(name: string): Promise<void> {
    const app = this.apps.get(name);
    if (!app) throw new Error(`no component "${name}"`);
    if (app.info.status === 'running') throw new Error(`${name} is running`);
    await this.spawnApp(name, Number(app.info.address!.split(':')[1]));
  }

  async stopAll(): Promise<void> {
    await this.scale('app', 0);
  }
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function answers(address: string): Promise<string | null> {
  try {
    const res = await request(`http://${address}/`, { headersTimeout: 2000, bodyTimeout: 2000 });
    return await res.body.text();
  } catch {
    return null;
  }
}

describe('dashboard actions on processes (kill, restart, scale)', () => {
  let control: ProcessControlPlane;
  let dash: Dashboard;

  before(async () => {
    control = new ProcessControlPlane();
    await control.scale('app', 2);
    dash = await startDashboard({ listen: '127.0.0.1:0', control, intervalMs: 200 });
  });
  after(async () => {
    await dash?.close();
    await control?.stopAll();
  });

  const component = (name: string) => control.snapshot().components.find((c) => c.name === name)!;

  it('kill really kills the process; restart brings it back on the same address', async () => {
    const before = component('app-1');
    assert.equal(before.status, 'running');
    assert.match((await answers(before.address!))!, /^app \d+/);
    const killed = await call('POST', `${dash.url}api/components/app-1/kill`);
    assert.equal(killed.status, 200, JSON.stringify(killed.body));
    assert.equal(alive(before.pid!), false, 'the process is gone');
    assert.equal(await answers(before.address!), null, 'nothing answers on its address');
    await dash.collector.tick();
    let state = (await call('GET', `${dash.url}api/state`)).body;
    assert.equal(state.components.find((c: ComponentInfo) => c.name === 'app-1').status, 'crashed');
    assert.ok(
      state.timeline.some(
        (e: { subject: string; from: string; to: string }) =>
          e.subject === 'app-1' && e.from === 'running' && e.to === 'crashed',
      ),
      'the timeline has the crash',
    );

    const restarted = await call('POST', `${dash.url}api/components/app-1/restart`);
    assert.equal(restarted.status, 200, JSON.stringify(restarted.body));
    const after = component('app-1');
    assert.equal(after.status, 'running');
    assert.equal(after.address, before.address);
    assert.notEqual(after.pid, before.pid);
    assert.equal(after.restarts, 1);
    assert.equal(await answers(after.address!), `app ${after.pid}`);
    await dash.collector.tick();
    state = (await call('GET', `${dash.url}api/state`)).body;
    assert.ok(
      state.timeline.some(
        (e: { subject: string; to: string; from: string }) =>
          e.subject === 'app-1' && e.from === 'crashed' && e.to === 'running',
      ),
      'the timeline has the restart',
    );
  });

  it('a failing supervisor call is a 500 that says what failed; unknown components are 404', async () => {
    const r = await call('POST', `${dash.url}api/components/app-2/restart`);
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, 'action_failed');
    assert.match(r.body.error.message, /restart app-2 failed: app-2 is running/);
    const unknown = await call('POST', `${dash.url}api/components/app-9/kill`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error.message, /no component "app-9"; known: app-1, app-2/);
  });

  it('scale adds and removes app processes', async () => {
    const up = await call('POST', `${dash.url}api/scale`, { body: { tier: 'app', count: 4 } });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    let apps = control.snapshot().components;
    assert.equal(apps.length, 4);
    for (const a of apps) assert.match((await answers(a.address!))!, /^app \d+/);
    await dash.collector.tick(); // the dashboard has seen all four
    const removed = apps.filter((a) => a.name !== 'app-1');
    const down = await call('POST', `${dash.url}api/scale`, { body: { tier: 'app', count: 1 } });
    assert.equal(down.status, 200);
    apps = control.snapshot().components;
    assert.deepEqual(
      apps.map((a) => a.name),
      ['app-1'],
    );
    for (const a of removed) assert.equal(alive(a.pid!), false, `${a.name} stopped`);
    await dash.collector.tick();
    const state = (await call('GET', `${dash.url}api/state`)).body;
    assert.equal(state.canControl, true);
    assert.deepEqual(
      state.components.map((c: ComponentInfo) => c.name),
      ['app-1'],
    );
    assert.ok(
      state.timeline.some(
        (e: { subject: string; to: string }) => e.subject === 'app-4' && e.to === 'removed',
      ),
      'the timeline has the removal',
    );
  });
});
