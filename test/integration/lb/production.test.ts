import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { configSchema } from '../../../src/config/schema.js';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { load, type LoadResult } from '../../helpers/load.js';
import { startLb, waitFor, type TestLb } from '../../helpers/lb.js';
import { startCli } from '../../helpers/cli.js';

async function get(url: string, headers: Record<string, string> = {}, agent?: Agent) {
  const res = await request(url, { headers, dispatcher: agent });
  await res.body.text();
  return {
    status: res.statusCode,
    target: res.headers['x-target'] as string | undefined,
    setCookie: res.headers['set-cookie'],
  };
}

describe('load balancer in production', () => {
  let targets: TestTarget[] = [];
  let lb: TestLb | undefined;
  afterEach(async () => {
    await lb?.stop();
    lb = undefined;
    await stopTargets(targets);
  });

  it('stickiness: a signed LB cookie pins a client, forged cookies are ignored, failover picks a new target', async () => {
    targets = await startTargets(3);
    lb = await startLb(targets, { targetGroup: { stickiness: { type: 'lb-cookie', duration: '1h' } } });
    const first = await get(`${lb.url}/s`);
    const cookie = String(first.setCookie).split(';')[0]!;
    assert.match(cookie, /^SCALEOUT_STICKY=/);
    for (let i = 0; i < 10; i++) assert.equal((await get(`${lb.url}/s`, { cookie })).target, first.target);

    // A forged cookie naming another target is not trusted: the client is balanced as usual.
    const other = targets.find((t) => String(t.port) !== first.target)!;
    const forged = `SCALEOUT_STICKY=${Buffer.from(other.id).toString('base64url')}.9999999999.AAAAAAAAAAAAAAAAAAAAAA`;
    const seen = new Set<string>();
    for (let i = 0; i < 9; i++) seen.add((await get(`${lb.url}/s`, { cookie: forged })).target!);
    assert.ok(seen.size > 1, 'a forged cookie does not pin');

    // The sticky target dies: the client is moved, and gets a new cookie for its new target.
    const sticky = targets.find((t) => String(t.port) === first.target)!;
    await sticky.kill();
    const moved = await get(`${lb.url}/s`, { cookie });
    assert.equal(moved.status, 200);
    assert.notEqual(moved.target, first.target);
    assert.match(String(moved.setCookie), /SCALEOUT_STICKY=/);
  });

  it('app-cookie stickiness pins a client once the application sets its cookie', async () => {
    targets = await startTargets(3);
    lb = await startLb(targets, {
      targetGroup: { stickiness: { type: 'app-cookie', cookieName: 'SESSION' } },
    });
    // No application cookie in the response: the LB sets none either.
    assert.equal((await get(`${lb.url}/a`)).setCookie, undefined);
    for (const t of targets) t.setCookie = 'SESSION=abc; Path=/';
    const first = await get(`${lb.url}/login`);
    const cookies = ([] as string[]).concat(first.setCookie ?? []);
    const lbCookie = cookies.find((c) => c.startsWith('SCALEOUT_APP_STICKY='));
    assert.ok(lbCookie, `cookies: ${cookies.join(' | ')}`);
    assert.ok(
      cookies.some((c) => c.startsWith('SESSION=abc')),
      'the application cookie passes through',
    );
    const pinned = `SESSION=abc; ${lbCookie.split(';')[0]}`;
    for (let i = 0; i < 9; i++)
      assert.equal((await get(`${lb.url}/cart`, { cookie: pinned })).target, first.target);
  });

  it('slow start: a recovered target gets a rising share', async () => {
    targets = await startTargets(3);
    lb = await startLb(targets, { targetGroup: { slowStart: '3s', algorithm: 'least-outstanding' } });
    const newcomer = targets[0]!;
    await newcomer.kill();
    const t = lb.group.get(newcomer.id)!;
    assert.ok(await waitFor(() => t.state === 'unhealthy', 2000));
    await newcomer.start(newcomer.port);
    assert.ok(await waitFor(() => t.state === 'healthy', 2000));
    const early = await load(`${lb.url}/ramp`, 2, 700, 400);
    await new Promise((r) => setTimeout(r, 1400));
    const late = await load(`${lb.url}/ramp`, 2, 700, 400);
    const share = (r: LoadResult) =>
      (r.byTarget.get(String(newcomer.port)) ?? 0) / [...r.byTarget.values()].reduce((a, b) => a + b, 0);
    assert.ok(share(early) < 0.2, `early share ${share(early).toFixed(2)}`);
    assert.ok(
      share(late) > share(early) + 0.05,
      `share rose from ${share(early).toFixed(2)} to ${share(late).toFixed(2)}`,
    );
    await waitFor(() => t.slowStartFactor >= 1, 3000);
    assert.equal(t.slowStartFactor, 1);
  });

  it('draining under load: zero failed requests, no new requests to the target, reported drained', async () => {
    targets = await startTargets(3);
    for (const t of targets) t.delayMs = 30;
    lb = await startLb(targets, { targetGroup: { deregistrationDelay: '5s' } });
    const running = load(`${lb.url}/drain`, 6, 2000, 3000);
    await new Promise((r) => setTimeout(r, 600));
    const victim = targets[0]!;
    const target = lb.group.get(victim.id)!;
    lb.runtime.deregister('default', victim.id);
    const drainedAt = Date.now();
    assert.equal(target.state, 'draining');
    assert.ok(
      await waitFor(() => lb!.group.get(victim.id) === undefined, 3000),
      'removed once in-flight requests finished',
    );
    const afterDrain = victim.traffic().length;
    const result = await running;
    assert.deepEqual([...result.statuses.keys()], [200], JSON.stringify([...result.statuses]));
    assert.ok(Date.now() - drainedAt >= 0);
    assert.equal(victim.traffic().length, afterDrain, 'no request reached the drained target');
  });

  it('runtime changes survive a reload and a restart (state file)', async () => {
    targets = await startTargets(3);
    const dir = mkdtempSync(join(tmpdir(), 'scaleout-state-'));
    const stateFile = join(dir, 'state.json');
    const config = configSchema.parse({
      listeners: { web: { listen: '127.0.0.1:0', defaultAction: { forward: { targetGroup: 'web' } } } },
      targetGroups: {
        web: {
          targets: targets.slice(0, 2).map((t) => t.id),
          healthCheck: { path: '/healthz', interval: 200, timeout: 150 },
          deregistrationDelay: 0,
        },
      },
    });
    lb = await startLb([], { config, stateFile });
    lb.runtime.deregister('web', targets[0]!.id);
    lb.runtime.register('web', { id: targets[2]!.id, host: '127.0.0.1', port: targets[2]!.port, weight: 2 });
    lb.runtime.setDisabled('web', targets[1]!.id, true);
    await lb.runtime.apply(config); // a reload of the same file
    const ids = () =>
      lb!.runtime
        .group('web')!
        .group.list()
        .map((t) => `${t.id}:${t.state}`)
        .sort();
    assert.ok(await waitFor(() => ids().includes(`${targets[2]!.id}:healthy`), 2000), ids().join(' '));
    assert.ok(
      !ids().some((i) => i.startsWith(`${targets[0]!.id}:`)),
      'the deregistered target stays gone after reload',
    );
    assert.ok(ids().includes(`${targets[1]!.id}:unused`), 'the disabled target stays disabled');
    await lb.stop();
    lb = await startLb([], { config, stateFile }); // a restart
    assert.ok(await waitFor(() => ids().includes(`${targets[2]!.id}:healthy`), 2000), ids().join(' '));
    assert.ok(!ids().some((i) => i.startsWith(`${targets[0]!.id}:`)));
    assert.ok(ids().includes(`${targets[1]!.id}:unused`));
    for (let i = 0; i < 5; i++) assert.equal((await get(`${lb.url}/r`)).target, String(targets[2]!.port));
  });

  it('reload under load: the config changes every second for 20 s with zero failed requests', async () => {
    targets = await startTargets(4);
    const dir = mkdtempSync(join(tmpdir(), 'scaleout-reload-'));
    const path = join(dir, 'scaleout.yaml');
    const write = (i: number) => {
      // Alternate target sets, weights, algorithms and a rule, so every kind of change happens.
      const set = i % 2 === 0 ? targets.slice(0, 3) : targets.slice(1, 4);
      const algorithm = ['weighted-round-robin', 'least-outstanding', 'power-of-two'][i % 3];
      writeFileSync(
        path,
        `listeners:
  web:
    listen: 127.0.0.1:0
    rules:
      - match: { pathPrefix: /v${i % 2}/ }
        forward: { targetGroup: web }
    defaultAction: { forward: { targetGroup: web } }
targetGroups:
  web:
    algorithm: ${algorithm}
    deregistrationDelay: 2s
    healthCheck: { path: /healthz, interval: 200ms, timeout: 150ms }
    targets: [${set.map((t, k) => `"${t.id}=${1 + ((i + k) % 3)}"`).join(', ')}]
`,
      );
    };
    write(0);
    const cli = startCli(['lb', '--config', path], { SCALEOUT_LOG_LEVEL: 'info' });
    try {
      const port = Number((await cli.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//))[1]);
      await cli.waitFor(/target group web/);
      let i = 0;
      const changer = setInterval(() => write(++i), 1000);
      const result = await load(`http://127.0.0.1:${port}/v1/x`, 4, 20_000, 40_000);
      clearInterval(changer);
      assert.deepEqual([...result.statuses.keys()], [200], JSON.stringify([...result.statuses]));
      assert.ok(result.sent > 500, `${result.sent} requests`);
      const reloads = cli.output().match(/config reloaded/g)?.length ?? 0;
      // Writes close together can coalesce into one reload (the watcher debounces 200 ms), and a busy
      // box delays the writer: require that reloads really happened all along, not one per write.
      assert.ok(reloads >= Math.min(10, i / 2), `${reloads} reloads seen in the log for ${i} writes`);
    } finally {
      await cli.stop();
    }
  });
});
