import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { AdminConfigError, LbAdmin } from '../../../src/admin/index.js';
import { configSchema } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/core/log.js';
import { LbMetrics } from '../../../src/lb/metrics.js';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { runCli } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/lb.js';
import { call, rawConfig, spread, startHarness, TOKEN, type Harness } from './harness.js';

const G = '/api/v1/target-groups/app';

/** The value of one exposition line whose name and labels contain every given fragment. */
function sample(text: string, name: string, ...fragments: string[]): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (fragments.every((f) => line.includes(f))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('admin API: metrics, access log, token, reload, state file', () => {
  let targets: TestTarget[] = [];
  let h: Harness | undefined;

  before(async () => {
    targets = await startTargets(2);
  });
  after(async () => stopTargets(targets));
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('serves Prometheus metrics for requests, latency, connections, health and the retry budget', async () => {
    h = await startHarness(targets);
    await spread(h.url, 10, '/api/x');
    await spread(h.url, 6, '/');
    targets[1]!.status = 503;
    await spread(h.url, 4, '/');
    targets[1]!.status = 200;
    const res = await call(h.api, 'GET', '/metrics');
    assert.equal(res.status, 200);
    const m = res.text;
    const t0 = `target="${targets[0]!.id}"`;
    const t1 = `target="${targets[1]!.id}"`;
    assert.equal(sample(m, 'scaleout_lb_requests_total', 'rule="api"', t0, 'status_class="2xx"'), 5);
    assert.equal(sample(m, 'scaleout_lb_requests_total', 'rule="default"', t1, 'status_class="2xx"'), 3);
    assert.equal(sample(m, 'scaleout_lb_requests_total', 'rule="default"', t1, 'status_class="5xx"'), 2);
    assert.match(m, /listener="web"/);
    // Latency histogram: the +Inf bucket and _count agree with the number of requests.
    assert.equal(
      sample(m, 'scaleout_lb_request_duration_seconds_count', 'listener="web"', 'target_group="app"', t0),
      10,
    );
    assert.equal(sample(m, 'scaleout_lb_request_duration_seconds_bucket', t0, 'le="+Inf"'), 10);
    assert.ok(sample(m, 'scaleout_lb_request_duration_seconds_bucket', t0, 'le="10"') === 10);
    assert.equal(sample(m, 'scaleout_lb_upstream_response_seconds_count', t0), 10);
    assert.ok(sample(m, 'scaleout_lb_downstream_connections_active', 'listener="web"') !== undefined);
    assert.ok(sample(m, 'scaleout_lb_upstream_connections_idle', 'listener="web"')! >= 1);
    assert.equal(sample(m, 'scaleout_lb_target_state', t0, 'state="healthy"'), 1);
    assert.equal(sample(m, 'scaleout_lb_target_state', t0, 'state="unhealthy"'), 0);
    assert.equal(sample(m, 'scaleout_lb_health_transitions_total', t0, 'to="healthy"'), 1);
    assert.ok(sample(m, 'scaleout_lb_retry_budget_remaining')! >= 1);
    assert.equal(sample(m, 'scaleout_lb_retry_budget_exhausted_total'), 0);
    assert.equal(sample(m, 'scaleout_lb_retries_total', 'listener="web"'), 0);

    // A target that fails its checks: the transition is counted and the state gauge follows.
    targets[0]!.healthStatus = 500;
    try {
      const rt = h.runtime.groups.get('app')!;
      assert.ok(await waitFor(() => rt.group.get(targets[0]!.id)!.state === 'unhealthy', 3000));
      const m2 = (await call(h.api, 'GET', '/metrics')).text;
      assert.equal(sample(m2, 'scaleout_lb_health_transitions_total', t0, 'to="unhealthy"'), 1);
      assert.equal(sample(m2, 'scaleout_lb_target_state', t0, 'state="unhealthy"'), 1);
    } finally {
      targets[0]!.healthStatus = 200;
    }
  });

  it("a cluster primary serves the sum of its workers' snapshots", async () => {
    h = await startHarness(targets);
    await spread(h.url, 6, '/api/x');
    const worker = h.admin.metrics!.snapshot();
    // As sent over IPC: plain JSON.
    const copy = JSON.parse(JSON.stringify(worker)) as typeof worker;
    const primary = new LbMetrics({ processMetrics: false });
    primary.mergeWorker(1, copy);
    primary.mergeWorker(2, copy);
    const m = await primary.registry.metrics();
    const t0 = `target="${targets[0]!.id}"`;
    assert.equal(sample(m, 'scaleout_lb_requests_total', 'rule="api"', t0, 'status_class="2xx"'), 6);
    assert.equal(sample(m, 'scaleout_lb_request_duration_seconds_count', t0), 6);
    assert.equal(sample(m, 'scaleout_lb_request_duration_seconds_bucket', t0, 'le="+Inf"'), 6);
    assert.equal(sample(m, 'scaleout_lb_upstream_response_seconds_count', t0), 6);
    assert.equal(sample(m, 'scaleout_lb_retries_total', 'listener="web"'), 0);
    assert.ok(sample(m, 'scaleout_lb_upstream_connections_idle', 'listener="web"')! >= 2);
    // The status view of a primary (no listeners of its own) takes listener counters from the workers.
    assert.equal(primary.workerListenerTotals().web!.idle, 2 * worker.listeners.web!.idle);
    primary.close();
  });

  it('writes one JSON access-log line per request with target, timings, status and reason', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const logFile = join(mkdtempSync(join(tmpdir(), 'scaleout-access-')), 'access.log');
    h = await startHarness(targets, { accessLog: logFile });
    await spread(h.url, 3, '/api/a?x=1');
    await request(`${h.url}/b`, { method: 'POST', body: 'hi' }).then((r) => r.body.text());
    // Lines are written asynchronously (and a request is logged just after its response): wait for them.
    const read = () => readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
    await waitFor(() => read().length >= 4, 2000);
    const lines = read().map((l) => JSON.parse(l));
    assert.equal(lines.length, 4);
    const first = lines.find((l) => l.method === 'GET');
    assert.equal(first.listener, 'web');
    assert.equal(first.rule, 'api');
    assert.equal(first.targetGroup, 'app');
    assert.ok(targets.some((t) => t.id === first.target));
    assert.equal(first.method, 'GET');
    assert.equal(first.path, '/api/a?x=1');
    assert.equal(first.status, 200);
    assert.equal(first.attempts, 1);
    assert.equal(first.reason, 'forward');
    assert.equal(typeof first.durationMs, 'number');
    assert.ok(first.upstreamMs >= 0 && first.upstreamMs <= first.durationMs + 0.01);
    assert.ok(!Number.isNaN(Date.parse(first.time)));
    const post = lines.find((l) => l.method === 'POST');
    assert.equal(post.rule, 'default');
    assert.equal(post.path, '/b');
  });

  it('refuses to listen beyond loopback without a token', async () => {
    const raw = rawConfig(targets, { adminListen: '0.0.0.0:0' });
    const parsed = configSchema.safeParse(raw);
    assert.equal(parsed.success, false);
    assert.match(JSON.stringify(parsed.error!.issues), /token is required/);
    // The admin module refuses too, should a config reach it without the schema's check.
    const config = configSchema.parse(rawConfig(targets, {}));
    config.admin!.listen = { host: '0.0.0.0', port: 0 };
    assert.throws(() => new LbAdmin(config, { log: silentLogger, accessLog: false }), AdminConfigError);
    // And the CLI exits with a clear error.
    const file = join(
      (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'scaleout-')),
      'c.yaml',
    );
    writeFileSync(file, JSON.stringify(raw));
    const { code, output } = await runCli(['lb', '--config', file]);
    assert.equal(code, 1);
    assert.match(output, /admin\.token.*token is required/s);
  });

  it('with a token (bound to 0.0.0.0, reached over 127.0.0.1): no or wrong token gets 401 and changes nothing', async () => {
    h = await startHarness(targets, { adminListen: '0.0.0.0:0', token: TOKEN });
    const id = encodeURIComponent(targets[0]!.id);
    for (const token of [undefined, 'wrong-token-0123456789', `${TOKEN}x`, '']) {
      for (const [method, path] of [
        ['GET', '/api/v1/status'],
        ['GET', '/metrics'],
        ['POST', `${G}/targets/${id}/disable`],
        ['DELETE', `${G}/targets/${id}`],
      ] as const) {
        const r = await call(h.api, method, path, undefined, token);
        assert.equal(r.status, 401, `${method} ${path} with token ${token}`);
        assert.equal(r.body.error.code, 'unauthorized');
      }
    }
    const t = h.runtime.groups.get('app')!.group.get(targets[0]!.id)!;
    assert.equal(t.adminDisabled, false);
    assert.equal(t.draining, false);
    assert.equal((await call(h.api, 'GET', '/api/v1/status', undefined, TOKEN)).status, 200);
    const ok = await call(h.api, 'POST', `${G}/targets/${id}/disable`, undefined, TOKEN);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(t.adminDisabled, true);
  });

  it('reloads the config file, with a dry run that shows the diff; a bad file is refused', async () => {
    const [extra] = await startTargets(1);
    try {
      h = await startHarness(targets);
      const raw = rawConfig(targets, {});
      const groups = raw.targetGroups as Record<string, { targets: string[] }>;
      groups.app!.targets = [targets[0]!.id, extra!.id];
      h.writeConfig(raw);
      const dry = await call(h.api, 'POST', '/api/v1/reload?dryRun=true');
      assert.equal(dry.status, 200, dry.text);
      assert.deepEqual(dry.body.diff.targetGroups.targets.app, {
        added: [extra!.id],
        removed: [targets[1]!.id],
        reweighted: [],
      });
      assert.equal(h.runtime.groups.get('app')!.group.get(extra!.id), undefined, 'dry run changed nothing');

      writeFileSync(h.configPath, 'listeners: [not, a, map]\n');
      const bad = await call(h.api, 'POST', '/api/v1/reload');
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'config_invalid');
      assert.ok(
        bad.body.error.details.some((d: string) => d.includes('listeners')),
        bad.text,
      );
      assert.equal(h.runtime.groups.get('app')!.group.list().length, 2);

      h.writeConfig(raw);
      const real = await call(h.api, 'POST', '/api/v1/reload');
      assert.equal(real.status, 200, real.text);
      const rt = h.runtime.groups.get('app')!;
      assert.ok(rt.group.get(extra!.id), 'the new target is registered');
      assert.equal(
        rt.group.get(targets[1]!.id)?.state ?? 'gone',
        rt.group.get(targets[1]!.id) ? 'draining' : 'gone',
      );
    } finally {
      await extra!.kill();
    }
  });

  it('reports an unwritable state file and keeps serving', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'scaleout-state-'));
    // A state file "inside" a regular file: every write fails with ENOTDIR, even as root.
    writeFileSync(join(dir, 'blocker'), 'x');
    h = await startHarness(targets, { stateFile: join(dir, 'blocker', 'state.json') });
    const id = encodeURIComponent(targets[0]!.id);
    const r = await call(h.api, 'POST', `${G}/targets/${id}/disable`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.persisted, false);
    assert.match(r.body.warning, /cannot write state file/);
    assert.equal(r.body.after.state, 'unused', 'the change is applied anyway');
    const status = await call(h.api, 'GET', '/api/v1/status');
    assert.match(status.body.stateFile.error, /cannot write state file/);
    const m = (await call(h.api, 'GET', '/metrics')).text;
    assert.equal(sample(m, 'scaleout_lb_state_file_error'), 1);
    const counts = await spread(h.url, 6);
    assert.deepEqual([...counts.keys()], [String(targets[1]!.port)], 'serving carries on');
  });
});
