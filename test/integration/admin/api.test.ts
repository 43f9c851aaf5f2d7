import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { waitFor } from '../../helpers/lb.js';
import { call, spread, startHarness, type Harness } from './harness.js';

const G = '/api/v1/target-groups/app';
const enc = (id: string) => encodeURIComponent(id);

/** The facts of every target that an admin call could change. */
function snapshot(h: Harness) {
  return h.runtime.groups
    .get('app')!
    .group.list()
    .map((t) => ({ id: t.id, w: t.configuredWeight, off: t.adminDisabled, drain: t.draining }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

describe('admin API: targets', () => {
  let targets: TestTarget[] = [];
  let spare: TestTarget;
  let h: Harness;

  before(async () => {
    targets = await startTargets(2);
    spare = (await startTargets(1))[0]!;
  });
  after(async () => stopTargets([...targets, spare]));
  afterEach(async () => h?.stop());

  it('lists listeners, rules, target groups and targets with state, reason and history', async () => {
    h = await startHarness(targets);
    const { status, body } = await call(h.api, 'GET', '/api/v1/status');
    assert.equal(status, 200);
    const web = body.listeners.find((l: { name: string }) => l.name === 'web');
    assert.equal(web.running, true);
    assert.deepEqual(
      web.rules.map((r: { name: string }) => r.name),
      ['api'],
    );
    const app = body.targetGroups.find((g: { name: string }) => g.name === 'app');
    assert.equal(app.algorithm, 'weighted-round-robin');
    assert.deepEqual(app.targets.map((t: { id: string }) => t.id).sort(), targets.map((t) => t.id).sort());
    for (const t of app.targets) {
      assert.equal(t.state, 'healthy');
      assert.equal(t.reason, 'Target.Healthy');
      assert.ok(
        t.history.some((x: { to: string }) => x.to === 'healthy'),
        'history records the health change',
      );
    }
    // One group and one target by name, with raw and percent-encoded ids.
    assert.equal((await call(h.api, 'GET', G)).body.name, 'app');
    const raw = await call(h.api, 'GET', `${G}/targets/${targets[0]!.id}`);
    const encoded = await call(h.api, 'GET', `${G}/targets/${enc(targets[0]!.id)}`);
    assert.equal(raw.body.target.id, targets[0]!.id);
    assert.equal(encoded.body.target.id, targets[0]!.id);
  });

  it('registers, disables, enables and re-weights targets, and traffic follows', async () => {
    h = await startHarness(targets);
    const reg = await call(h.api, 'POST', `${G}/targets`, { address: spare.id, weight: 1 });
    assert.equal(reg.status, 200, reg.text);
    assert.equal(reg.body.before, null);
    assert.equal(reg.body.after.id, spare.id);
    assert.ok(
      await waitFor(() => h.runtime.groups.get('app')!.group.get(spare.id)?.state === 'healthy', 3000),
    );
    let counts = await spread(h.url, 30);
    assert.ok((counts.get(String(spare.port)) ?? 0) >= 5, `the new target takes traffic: ${[...counts]}`);

    const dis = await call(h.api, 'POST', `${G}/targets/${enc(spare.id)}/disable`);
    assert.equal(dis.status, 200, dis.text);
    assert.equal(dis.body.after.state, 'unused');
    assert.equal(dis.body.after.reason, 'Target.AdminDisabled');
    counts = await spread(h.url, 20);
    assert.equal(counts.get(String(spare.port)) ?? 0, 0, 'a disabled target gets nothing');

    const en = await call(h.api, 'POST', `${G}/targets/${spare.id}/enable`);
    assert.equal(en.body.after.state, 'healthy');

    // Weights: spare 8, the others 1 each → spare takes 80%.
    const w = await call(h.api, 'PUT', `${G}/targets/${enc(spare.id)}/weight`, { weight: 8 });
    assert.equal(w.status, 200, w.text);
    assert.equal(w.body.before.configuredWeight, 1);
    assert.equal(w.body.after.configuredWeight, 8);
    counts = await spread(h.url, 50);
    const share = (counts.get(String(spare.port)) ?? 0) / 50;
    assert.ok(share > 0.65 && share < 0.95, `weight 8 of 10 gets about 80%: ${share}`);
  });

  it('deregisters a target, drains it, and tells when it is fully drained', async () => {
    h = await startHarness(targets);
    const victim = targets[0]!;
    victim.delayMs = 600;
    // A slow request in flight to the victim (round robin: try until one lands there).
    let slow: Promise<unknown> | undefined;
    for (let i = 0; i < 4 && !slow; i++) {
      const p = request(`${h.url}/slow`).then((r) => r.body.text());
      await waitFor(() => h.runtime.groups.get('app')!.group.get(victim.id)!.outstanding > 0, 100);
      if (h.runtime.groups.get('app')!.group.get(victim.id)!.outstanding > 0) slow = p;
      else await p;
    }
    assert.ok(slow, 'a request is in flight to the victim');
    const del = await call(h.api, 'DELETE', `${G}/targets/${enc(victim.id)}`);
    assert.equal(del.status, 200, del.text);
    assert.equal(del.body.after.state, 'draining');
    const during = await call(h.api, 'GET', `${G}/targets/${enc(victim.id)}/drain`);
    assert.equal(during.body.drained, false);
    assert.equal(during.body.draining, true);
    assert.equal(during.body.inFlight, 1);
    // New requests avoid it while it drains.
    victim.delayMs = 0;
    const counts = await spread(h.url, 10);
    assert.equal(counts.get(String(victim.port)) ?? 0, 0);
    await slow;
    assert.ok(
      await waitFor(() => h.runtime.groups.get('app')!.group.get(victim.id) === undefined, 2000),
      'the drained target leaves the group',
    );
    const done = await call(h.api, 'GET', `${G}/targets/${enc(victim.id)}/drain`);
    assert.equal(done.status, 200);
    assert.equal(done.body.drained, true);
    // Draining again is not an error.
    const again = await call(h.api, 'DELETE', `${G}/targets/${enc(victim.id)}`);
    assert.equal(again.status, 200);
    assert.equal(again.body.drained, true);
  });

  it('dry runs show the change and change nothing', async () => {
    h = await startHarness(targets);
    const before = snapshot(h);
    const id = enc(targets[0]!.id);
    const cases: Array<
      [string, string, unknown, (after: { state: string; configuredWeight: number }) => void]
    > = [
      ['POST', `${G}/targets/${id}/disable`, undefined, (a) => assert.equal(a.state, 'unused')],
      ['DELETE', `${G}/targets/${id}`, undefined, (a) => assert.equal(a.state, 'draining')],
      ['PUT', `${G}/targets/${id}/weight`, { weight: 7 }, (a) => assert.equal(a.configuredWeight, 7)],
      ['POST', `${G}/targets`, { address: spare.id, weight: 3 }, (a) => assert.equal(a.state, 'initial')],
    ];
    for (const [method, path, body, check] of cases) {
      const r = await call(h.api, method, `${path}?dryRun=true`, body);
      assert.equal(r.status, 200, `${method} ${path}: ${r.text}`);
      assert.equal(r.body.dryRun, true);
      check(r.body.after);
    }
    assert.deepEqual(snapshot(h), before, 'nothing changed');
    assert.equal(h.runtime.groups.get('app')!.group.get(spare.id), undefined);
    const counts = await spread(h.url, 10);
    assert.equal(counts.size, 2, 'both targets still serve');
  });

  it('bad bodies, unknown groups and targets, and unknown routes get clear errors and change nothing', async () => {
    h = await startHarness(targets);
    const before = snapshot(h);
    const id = enc(targets[0]!.id);
    const cases: Array<[string, string, unknown, number, string, RegExp?]> = [
      ['PUT', `${G}/targets/${id}/weight`, '{"weight": ', 400, 'invalid_json'],
      ['PUT', `${G}/targets/${id}/weight`, { weight: 0 }, 400, 'invalid_body', /weight/],
      ['PUT', `${G}/targets/${id}/weight`, { weight: 'heavy' }, 400, 'invalid_body', /weight/],
      ['PUT', `${G}/targets/${id}/weight`, { weight: 2, extra: 1 }, 400, 'invalid_body'],
      ['PUT', `${G}/targets/${id}/weight`, undefined, 400, 'invalid_body', /body is required/],
      ['POST', `${G}/targets`, { address: 'not-an-address' }, 400, 'invalid_body', /host:port/],
      ['POST', `${G}/targets`, { address: '127.0.0.1:99999' }, 400, 'invalid_body', /port/],
      ['POST', `${G}/targets`, [1, 2], 400, 'invalid_body'],
      ['PUT', `${G}/targets/127.0.0.1%3A1/weight`, { weight: 2 }, 404, 'unknown_target', /127\.0\.0\.1:1/],
      ['POST', `${G}/targets/nope/disable`, undefined, 404, 'unknown_target'],
      ['DELETE', `${G}/targets/nope`, undefined, 404, 'unknown_target'],
      ['GET', `${G}/targets/nope/drain`, undefined, 404, 'unknown_target'],
      [
        'POST',
        '/api/v1/target-groups/ghost/targets',
        { address: spare.id },
        404,
        'unknown_target_group',
        /ghost/,
      ],
      ['POST', `${G}/targets/${id}/disable?dryRun=maybe`, undefined, 400, 'bad_request', /dryRun/],
      ['GET', '/api/v1/nothing-here', undefined, 404, 'not_found'],
      ['PATCH', `${G}/targets/${id}/weight`, { weight: 2 }, 405, 'method_not_allowed', /PUT/],
      [
        'PUT',
        `${G}/targets/${id}/weight`,
        JSON.stringify({ weight: 2, pad: 'x'.repeat(70_000) }),
        413,
        'body_too_large',
      ],
    ];
    for (const [method, path, body, status, code, message] of cases) {
      const r = await call(h.api, method, path, body);
      assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
      assert.equal(r.body.error.code, code, `${method} ${path}: ${r.text}`);
      assert.ok(r.body.error.message.length > 10, 'a readable message');
      if (message) assert.match(r.body.error.message, message);
    }
    assert.deepEqual(snapshot(h), before, 'nothing changed');
    // The admin API and the LB still serve.
    assert.equal((await call(h.api, 'GET', '/api/v1/status')).status, 200);
    assert.equal((await spread(h.url, 4)).size, 2);
  });
});
