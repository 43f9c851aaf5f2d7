// The dashboard server over real sockets, watching two real `scaleout lb` processes: the page and its
// assets, state, history and live events, actions forwarded to every LB, errors, and the token.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startDashboard, type Dashboard } from '../../../src/dashboard/index.js';
import { RemoteControlPlane } from '../../../src/dashboard/remote.js';
import { runCli } from '../../helpers/cli.js';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { call, readStates, startLbProcess, TOKEN, type LbProcess } from './harness.js';

const enc = encodeURIComponent;

describe('dashboard server', () => {
  let targets: TestTarget[] = [];
  let lbs: LbProcess[] = [];
  let dash: Dashboard;

  /** The target as one LB's admin API reports it (null when it is gone). */
  async function lbTarget(lb: LbProcess, id: string) {
    const r = await call('GET', `${lb.adminUrl}/api/v1/target-groups/default/targets/${enc(id)}`);
    return r.status === 404 ? null : r.body.target;
  }

  before(async () => {
    targets = await startTargets(3);
    lbs = await Promise.all([startLbProcess(targets), startLbProcess(targets)]);
    dash = await startDashboard({
      listen: '127.0.0.1:0',
      control: new RemoteControlPlane({ name: 'test', lb: lbs.map((l) => l.adminUrl) }),
      intervalMs: 200,
    });
  });
  after(async () => {
    await dash?.close();
    await Promise.all(lbs.map((l) => l.stop()));
    await stopTargets(targets);
  });

  it('serves the page, its scripts and uPlot from node_modules; unknown paths get a JSON 404', async () => {
    const page = await call('GET', dash.url);
    assert.equal(page.status, 200);
    assert.match(page.body, /<title>scaleout dashboard<\/title>/);
    for (const asset of [
      'static/app.js',
      'static/topology.js',
      'static/style.css',
      'vendor/uPlot.iife.min.js',
      'vendor/uPlot.min.css',
    ]) {
      const r = await call('GET', `${dash.url}${asset}`);
      assert.equal(r.status, 200, asset);
      assert.ok(String(r.body).length > 100, asset);
    }
    const missing = await call('GET', `${dash.url}nope`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'not_found');
  });

  it('gives the state, the history of chosen series, and live states by server-sent events', async () => {
    const state = await call('GET', `${dash.url}api/state`);
    assert.equal(state.status, 200);
    assert.equal(state.body.name, 'test');
    assert.equal(state.body.canControl, false);
    assert.deepEqual(
      state.body.components.map((c: { name: string }) => c.name),
      ['lb-1', 'lb-2'],
    );
    assert.ok(
      state.body.components.every((c: object) => !('adminToken' in c)),
      'admin tokens never reach the page',
    );
    const ids = state.body.lb.groups[0].targets.map((t: { id: string }) => t.id).sort();
    assert.deepEqual(ids, targets.map((t) => t.id).sort());
    assert.ok(
      state.body.lb.groups[0].targets.every((t: { perLb: unknown[] }) => t.perLb.length === 2),
      'both LBs seen',
    );

    const states = (await readStates(`${dash.url}api/events`, 3)) as Array<{ at: number }>;
    assert.equal(states.length, 3);
    assert.ok(states[2]!.at > states[1]!.at && states[1]!.at >= states[0]!.at, 'each event is a newer state');

    const history = await call('GET', `${dash.url}api/history?series=group:default,nope&seconds=5`);
    assert.equal(history.status, 200);
    assert.ok(
      history.body.times.length >= 1 && history.body.times.length <= 5,
      `at most 5 seconds: ${history.body.times.length}`,
    );
    assert.deepEqual(Object.keys(history.body.series), []); // no traffic yet: no series, and no error for "nope"
    const bad = await call('GET', `${dash.url}api/history?seconds=-3`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'bad_request');
  });

  it('disable, enable and drain reach every load balancer', async () => {
    const id = targets[0]!.id;
    const path = `${dash.url}api/targets/default/${enc(id)}`;
    const disabled = await call('POST', `${path}/disable`);
    assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    assert.equal(disabled.body.results.length, 2);
    for (const lb of lbs) {
      const t = await lbTarget(lb, id);
      assert.equal(t.state, 'unused');
      assert.equal(t.reason, 'Target.AdminDisabled');
    }
    assert.equal((await call('POST', `${path}/enable`)).status, 200);
    for (const lb of lbs) assert.equal((await lbTarget(lb, id)).adminDisabled, false);

    // Requests in flight on a slow target keep it draining until they finish.
    const slow = targets[2]!;
    slow.delayMs = 1500;
    const inFlight = lbs.flatMap((lb) => Array.from({ length: 6 }, () => call('GET', `${lb.url}/`)));
    const busy = async () =>
      (await Promise.all(lbs.map((lb) => lbTarget(lb, slow.id)))).every((t) => t.inFlight > 0);
    for (let i = 0; i < 50 && !(await busy()); i++) await new Promise((r) => setTimeout(r, 20));
    const drained = await call('POST', `${dash.url}api/targets/default/${slow.id}/drain`); // raw ':' works too
    assert.equal(drained.status, 200, JSON.stringify(drained.body));
    for (const r of drained.body.results) assert.equal(r.body.after.state, 'draining');
    for (const lb of lbs) {
      const t = await lbTarget(lb, slow.id);
      assert.equal(t.state, 'draining');
      assert.equal(t.draining, true);
    }
    // Undrain registers it again on every LB, which takes it back.
    const undrained = await call('POST', `${dash.url}api/targets/default/${enc(slow.id)}/undrain`);
    assert.equal(undrained.status, 200, JSON.stringify(undrained.body));
    for (const lb of lbs) assert.equal((await lbTarget(lb, slow.id)).draining, false, 'back in service');
    const answers = await Promise.all(inFlight);
    assert.ok(
      answers.every((a) => a.status === 200),
      'the drain let in-flight requests finish',
    );
    const s = await dash.collector.current();
    assert.ok(
      s.timeline.some((e) => e.subject === `default/${slow.id}` && e.to === 'draining'),
      'the drain is in the timeline',
    );
  });

  it('answers bad actions with clear JSON errors and changes nothing', async () => {
    const before = await Promise.all(lbs.map((lb) => lbTarget(lb, targets[1]!.id)));
    const cases: Array<[string, string, unknown, number, string]> = [
      ['POST', 'api/targets/default/127.0.0.1%3A1/disable', {}, 404, 'unknown_target'],
      ['POST', `api/targets/nogroup/${enc(targets[1]!.id)}/disable`, {}, 404, 'unknown_target_group'],
      ['POST', `api/targets/default/${enc(targets[1]!.id)}/explode`, {}, 404, 'not_found'],
      ['POST', 'api/targets/default/%E0%A4%A/disable', {}, 400, 'bad_request'],
      ['POST', 'api/components/nope/kill', {}, 404, 'unknown_component'],
      ['POST', 'api/components/lb-1/kill', {}, 409, 'no_control'],
      ['POST', 'api/components/lb-1/explode', {}, 404, 'not_found'],
      ['POST', 'api/scale', { tier: 'app', count: 3 }, 409, 'no_control'],
      ['POST', 'api/scale', { tier: 'db', count: 3 }, 400, 'invalid_body'],
      ['POST', 'api/scale', { tier: 'app', count: 2.5 }, 400, 'invalid_body'],
      ['POST', 'api/scale', { tier: 'app', count: 0 }, 400, 'invalid_body'],
      ['POST', 'api/scale', { tier: 'app', count: 65 }, 400, 'invalid_body'],
      ['POST', 'api/scale', '{not json', 400, 'invalid_json'],
      ['GET', 'api/nothing', undefined, 404, 'not_found'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const r = await call(method as 'GET' | 'POST', `${dash.url}${path}`, { body });
      assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code, `${method} ${path}`);
      assert.ok(r.body.error.message.length > 0, `${method} ${path} has a message`);
    }
    const unknown = await call('POST', `${dash.url}api/targets/default/127.0.0.1%3A1/drain`);
    assert.match(unknown.body.error.message, /127\.0\.0\.1:1/);
    // A form or text/plain POST (what another site's page could send) is refused.
    const form = await call('POST', `${dash.url}api/targets/default/${enc(targets[1]!.id)}/disable`, {
      contentType: 'text/plain',
    });
    assert.equal(form.status, 415);
    assert.deepEqual(
      await Promise.all(lbs.map((lb) => lbTarget(lb, targets[1]!.id))).then((ts) => ts.map((t) => t.state)),
      before.map((t) => t.state),
    );
  });

  it('an LB that does not answer makes a target action a 502 naming it', async () => {
    const dead = await startDashboard({
      listen: '127.0.0.1:0',
      control: new RemoteControlPlane({ lb: [lbs[0]!.adminUrl, 'http://127.0.0.1:1'] }),
      intervalMs: 200,
    });
    try {
      const r = await call('POST', `${dead.url}api/targets/default/${enc(targets[1]!.id)}/disable`);
      assert.equal(r.status, 502);
      assert.equal(r.body.error.code, 'load_balancer_failed');
      assert.match(r.body.error.message, /lb-2: unreachable/);
    } finally {
      await call('POST', `${dead.url}api/targets/default/${enc(targets[1]!.id)}/enable`);
      await dead.close();
    }
  });
});

describe('dashboard token and listen address', () => {
  let lb: LbProcess;
  let targets: TestTarget[] = [];
  let dash: Dashboard;

  before(async () => {
    targets = await startTargets(1);
    lb = await startLbProcess(targets);
    dash = await startDashboard({
      listen: '127.0.0.1:0',
      token: TOKEN,
      control: new RemoteControlPlane({ lb: [lb.adminUrl] }),
      intervalMs: 200,
    });
  });
  after(async () => {
    await dash?.close();
    await lb?.stop();
    await stopTargets(targets);
  });

  it('with a token, every API call needs it; the page shell (no data) does not', async () => {
    assert.equal((await call('GET', dash.url)).status, 200);
    const none = await call('GET', `${dash.url}api/state`);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'unauthorized');
    assert.equal(
      (await call('GET', `${dash.url}api/state`, { token: 'wrong-token-wrong-token' })).status,
      401,
    );
    assert.equal((await call('GET', `${dash.url}api/state`, { token: TOKEN })).status, 200);
    await assert.rejects(readStates(`${dash.url}api/events`, 1), /HTTP 401/);
    assert.equal((await readStates(`${dash.url}api/events`, 1, TOKEN)).length, 1);
    const id = enc(targets[0]!.id);
    const refused = await call('POST', `${dash.url}api/targets/default/${id}/disable`);
    assert.equal(refused.status, 401);
    const t = await call('GET', `${lb.adminUrl}/api/v1/target-groups/default/targets/${id}`);
    assert.equal(t.body.target.adminDisabled, false, 'a refused action changes nothing');
    assert.equal(
      (await call('POST', `${dash.url}api/targets/default/${id}/disable`, { token: TOKEN })).status,
      200,
    );
    assert.equal(
      (await call('POST', `${dash.url}api/targets/default/${id}/enable`, { token: TOKEN })).status,
      200,
    );
  });

  it('refuses to listen beyond loopback without a token, a short token, or a port in use', async () => {
    const control = new RemoteControlPlane({ lb: [lb.adminUrl] });
    await assert.rejects(
      startDashboard({ listen: '0.0.0.0:0', control }),
      /beyond loopback.*token is required/,
    );
    await assert.rejects(
      startDashboard({ listen: '127.0.0.1:0', token: 'short', control }),
      /at least 16 characters/,
    );
    const busy = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    const port = (busy.address() as { port: number }).port;
    try {
      await assert.rejects(
        startDashboard({ listen: `127.0.0.1:${port}`, control }),
        /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/,
      );
    } finally {
      busy.close();
    }
  });

  it('scaleout dashboard: clear errors for missing URLs and an open address without a token', async () => {
    const none = await runCli(['dashboard']);
    assert.notEqual(none.code, 0);
    assert.match(none.output, /give at least one --lb, --dns or --db-proxy admin URL/);
    const open = await runCli(['dashboard', '--listen', '0.0.0.0:0', '--lb', lb.adminUrl]);
    assert.notEqual(open.code, 0);
    assert.match(open.output, /a token is required/);
  });
});
