// The demo app as `scaleout up` runs it: the built CLI, against real PostgreSQL (a primary and a
// streaming replica) through a real `scaleout db-proxy` process.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { before, describe, it } from 'node:test';
import { atFileEnd, startTestCluster, type PgCluster } from '../../helpers/postgres.js';
import { proxyUrlFor, startTestDbProxy, type TestDbProxy } from '../../helpers/db-proxy.js';
import { freePort } from '../../../src/topology/postgres.js';
import { runLoad } from '../../../src/loadgen/index.js';
import * as apps from './apps.js';
import { sleep, type App } from './apps.js';

/** Every process logs at debug level, for the output a failing test prints. */
const DEBUG = { SCALEOUT_LOG_LEVEL: 'debug' };
const cli = (args: string[]) => apps.cli(args, DEBUG);
const startApp = (database: string, instance: string) => apps.startApp(database, instance, DEBUG);

/** A db-proxy that checks replica lag often (tests wait on replication) and logs at debug level. */
function startProxy(cluster: PgCluster, port?: number): Promise<TestDbProxy> {
  return startTestDbProxy(cluster, {
    port,
    args: ['--lag-check-ms', '50', '--max-lag-ms', '60000'],
    env: DEBUG,
  });
}

async function waitHealthy(app: App): Promise<void> {
  await app.cli.waitFor(/demo app ready/, 20_000);
  assert.equal((await fetch(`${app.url}/healthz`)).status, 200);
}

interface LinkJson {
  code: string;
  url: string;
  created_at: string;
  created_by: string;
}
interface Body {
  instance: string;
  status?: string;
  error?: string;
  link: LinkJson;
  links: LinkJson[];
}

async function json(res: Response): Promise<Body> {
  return (await res.json()) as Body;
}

async function createLink(
  app: App,
  url: string,
): Promise<{ code: string; cookie: string | undefined; res: Response }> {
  const res = await fetch(`${app.url}/api/links`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const body = await json(res);
  const cookie = res.headers.getSetCookie()[0]?.split(';')[0];
  return { code: body.link.code as string, cookie, res };
}

describe('scaleout demo-app', () => {
  let cluster: PgCluster;
  let proxyUrl: string;
  let a: App;
  let b: App;

  before(async () => {
    cluster = await startTestCluster({ replicas: 1 });
    const proxyPort = await freePort();
    proxyUrl = proxyUrlFor(cluster, proxyPort);
    // Instance a starts before the proxy exists: it must listen, say it is not ready and keep retrying.
    a = await startApp(proxyUrl, 'app-a');
    await a.cli.waitFor(/database not reachable yet.*retrying/);
    const starting = await fetch(`${a.url}/healthz`);
    assert.equal(starting.status, 503);
    assert.equal((await json(starting)).status, 'starting');
    assert.equal((await fetch(`${a.url}/api/links`)).status, 503);
    await startProxy(cluster, proxyPort);
    await waitHealthy(a);
    b = await startApp(proxyUrl, 'app-b');
    await waitHealthy(b);
  });

  it('creates its schema through the proxy on the primary, and it replicates', async () => {
    await cluster.waitForReplication();
    const cols = await cluster.replicas[0]!.psql(
      "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'links'",
    );
    assert.equal(cols, 'code,url,created_at,created_by');
  });

  it('serves the API and names the answering instance in a header and in the body', async () => {
    const created = await createLink(a, 'https://example.com/a');
    assert.equal(created.res.headers.get('x-scaleout-instance'), 'app-a');
    assert.match(created.code, /^[0-9A-Za-z]{8}$/);
    assert.equal(created.res.headers.get('location'), `/api/links/${created.code}`);
    assert.match(created.cookie ?? '', /^scaleout_lsn=[0-9A-F]+%2F[0-9A-F]+$/);

    const got = await fetch(`${b.url}/api/links/${created.code}`, { headers: { cookie: created.cookie! } });
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('x-scaleout-instance'), 'app-b');
    const body = await json(got);
    assert.equal(body.instance, 'app-b');
    assert.deepEqual(
      { code: body.link.code, url: body.link.url, by: body.link.created_by },
      { code: created.code, url: 'https://example.com/a', by: 'app-a' },
    );

    const redirect = await fetch(`${a.url}/r/${created.code}`, {
      redirect: 'manual',
      headers: { cookie: created.cookie! },
    });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), 'https://example.com/a');

    await cluster.waitForReplication();
    const list = await json(await fetch(`${b.url}/api/links?limit=5`));
    assert.equal(list.instance, 'app-b');
    assert.ok(list.links.length >= 1 && list.links.length <= 5);
    assert.ok(list.links.some((l: { code: string }) => l.code === created.code));
    const times = list.links.map((l: { created_at: string }) => Date.parse(l.created_at));
    assert.deepEqual(
      times,
      [...times].sort((x, y) => y - x),
      'newest first',
    );

    const health = await fetch(`${b.url}/healthz`);
    assert.deepEqual(await json(health), { instance: 'app-b', status: 'ok' });
    assert.equal(health.headers.get('x-scaleout-instance'), 'app-b');
  });

  it('answers bad requests with clear 4xx errors and stays up', async () => {
    const post = (body: string) =>
      fetch(`${a.url}/api/links`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    for (const [body, status] of [
      ['not json', 400],
      ['[1]', 400],
      ['{"url": "ftp://example.com"}', 400],
      ['{"url": 5}', 400],
      [JSON.stringify({ url: `https://example.com/${'x'.repeat(3000)}` }), 400],
      [JSON.stringify({ url: `https://example.com/${'x'.repeat(9000)}` }), 413],
    ] as const) {
      const res = await post(body);
      assert.equal(res.status, status, body.slice(0, 40));
      assert.equal(typeof (await json(res)).error, 'string');
    }
    assert.equal((await fetch(`${a.url}/api/links/nosuchcode`)).status, 404);
    assert.equal(
      (await fetch(`${a.url}/api/links/${encodeURIComponent("x'; DROP TABLE links; --")}`)).status,
      404,
    );
    assert.equal((await fetch(`${a.url}/api/links/%ZZ`)).status, 404);
    assert.equal((await fetch(`${a.url}/r/%E0%A4%A`)).status, 404);
    assert.equal((await fetch(`${a.url}/api/links?limit=0`)).status, 400);
    assert.equal((await fetch(`${a.url}/api/links?limit=abc`)).status, 400);
    assert.equal((await fetch(`${a.url}/nowhere`)).status, 404);
    const wrong = await fetch(`${a.url}/api/links`, { method: 'DELETE' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET, POST');
    // A tampered token cookie costs only the guarantee: the read still answers.
    const created = await createLink(a, 'https://example.com/tampered');
    await cluster.waitForReplication();
    for (const cookie of ["scaleout_lsn=x'%3B%20SELECT%201", 'scaleout_lsn=%ZZ', 'scaleout_lsn=']) {
      const res = await fetch(`${b.url}/api/links/${created.code}`, { headers: { cookie } });
      assert.equal(res.status, 200, cookie);
    }
    assert.equal((await fetch(`${a.url}/healthz`)).status, 200);
  });

  it('read-your-writes across instances: the cookie makes a delayed replica wait, without it the read is stale', async () => {
    // A bystander instance that never sees a token: its reads go to the replica whatever was written.
    const bystander = await startApp(proxyUrl, 'app-bystander');
    await waitHealthy(bystander);
    await cluster.replicas[0]!.setAndReload({ recovery_min_apply_delay: "'1500ms'" });
    try {
      await sleep(200);
      let stale = 0;
      for (let i = 0; i < 10; i++) {
        // Written through one instance, read at once through the other (as a load balancer would).
        const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
        const { code, cookie } = await createLink(writer, `https://example.com/ryw/${i}`);
        assert.ok(cookie, 'a write hands out the token');
        const fresh = await fetch(`${reader.url}/api/links/${code}`, { headers: { cookie } });
        assert.equal(fresh.status, 200, `read ${i} with the token must see the write`);
        if ((await fetch(`${bystander.url}/api/links/${code}`)).status === 404) stale++;
      }
      // The replica was really behind: reads without the token missed most of those writes.
      assert.ok(stale >= 5, `only ${stale} of 10 reads without the token were stale`);
    } finally {
      await cluster.replicas[0]!.setAndReload({ recovery_min_apply_delay: '0' });
    }
  });

  it('scaleout load --mix drives its API; reads of fresh links never fail with a delayed replica', async () => {
    await cluster.replicas[0]!.setAndReload({ recovery_min_apply_delay: "'500ms'" });
    try {
      const result = await runLoad({
        url: a.url,
        rate: 50,
        durationMs: 2000,
        connections: 8,
        mix: { read: 70, write: 20, list: 10 },
      });
      assert.equal(result.failed, 0, JSON.stringify([result.statusCodes, result.errors]));
      const sent = Object.fromEntries(Object.entries(result.kinds).map(([k, v]) => [k, v.sent]));
      assert.deepEqual(sent, { read: 70, write: 20, list: 10 });
      assert.deepEqual(result.statusCodes, { 200: 80, 201: 20 });
      assert.deepEqual(result.instances, { 'app-a': 100 });
      assert.deepEqual(
        result.timeline.map((s) => s.kinds.write),
        [
          { ok: 10, failed: 0 },
          { ok: 10, failed: 0 },
        ],
      );
    } finally {
      await cluster.replicas[0]!.setAndReload({ recovery_min_apply_delay: '0' });
    }
  });

  it('works straight against PostgreSQL too (no proxy: no token, no cookie)', async () => {
    const direct = await startApp(cluster.primary.url, 'app-direct');
    await waitHealthy(direct);
    const { code, cookie } = await createLink(direct, 'https://example.com/direct');
    assert.equal(cookie, undefined);
    assert.equal((await fetch(`${direct.url}/api/links/${code}`)).status, 200);
    await direct.cli.waitFor(/read-your-writes tokens are off/);
    assert.equal(await direct.cli.stop('SIGTERM'), 0);
  });

  it('SIGTERM: stops accepting, finishes the request in flight, exits 0', async () => {
    const app = await startApp(proxyUrl, 'app-term');
    await waitHealthy(app);
    const port = Number(new URL(app.url).port);
    // A POST whose body is still arriving when the signal comes.
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/api/links',
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      req.write('{"url": "https://example.com/');
      setTimeout(async () => {
        app.cli.child.kill('SIGTERM');
        await app.cli.waitFor(/shutting down/);
        // New connections are refused (soon after the signal) while the old request is still open.
        const refused = async (): Promise<boolean> =>
          new Promise<boolean>((r) => {
            const s = net.connect(port, '127.0.0.1');
            s.on('connect', () => (s.destroy(), r(false)));
            s.on('error', () => r(true));
          });
        let closed = false;
        for (let i = 0; i < 100 && !(closed = await refused()); i++) await sleep(50);
        assert.ok(closed, `no new connections after SIGTERM\n${app.cli.output()}`);
        req.end('in-flight"}');
      }, 300);
    });
    const res = await answer;
    assert.equal(res.status, 201, res.body);
    assert.equal(JSON.parse(res.body).link.url, 'https://example.com/in-flight');
    assert.equal(await app.cli.stop('SIGCONT'), 0); // SIGCONT: only waits for the exit
    assert.match(app.cli.output(), /demo app stopped/);
  });

  it('bad command lines get clear errors', async () => {
    const bad = cli(['demo-app', '--database', 'mysql://x@y/z']);
    assert.equal(await bad.stop('SIGCONT'), 1);
    assert.match(bad.output(), /--database.*expected a postgres:\/\/ URL/);
    const busy = await new Promise<net.Server>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => r(s));
    });
    atFileEnd(async () => busy.close());
    const port = (busy.address() as net.AddressInfo).port;
    const inUse = cli(['demo-app', '--listen', `127.0.0.1:${port}`, '--database', proxyUrl]);
    assert.equal(await inUse.stop('SIGCONT'), 1);
    assert.match(inUse.output(), new RegExp(`cannot listen on 127.0.0.1:${port}: address in use`));
  });
});

describe('scaleout demo-app when the db-proxy dies', () => {
  it('stays up with requests in flight (503s), reports unhealthy, and recovers when the proxy is back', async () => {
    const cluster = await startTestCluster({ replicas: 1 });
    let proxy = await startProxy(cluster);
    const app = await startApp(proxy.url, 'app-y');
    await waitHealthy(app);
    const { code, cookie } = await createLink(app, 'https://example.com/proxy-dies');
    // A stream of reads and writes keeps every pooled connection busy while the proxy is killed.
    let stop = false;
    const statuses: number[] = [];
    const worker = async (): Promise<void> => {
      while (!stop) {
        const res = await fetch(`${app.url}/api/links/${code}`, { headers: { cookie: cookie! } }).catch(
          () => undefined,
        );
        statuses.push(res?.status ?? -1);
        await res?.arrayBuffer();
      }
    };
    const workers = Array.from({ length: 12 }, worker);
    await sleep(300);
    proxy.cli.child.kill('SIGKILL');
    await sleep(500);
    stop = true;
    await Promise.all(workers);
    assert.equal(app.cli.child.exitCode, null, `the app died:\n${app.cli.output()}`);
    assert.ok(statuses.includes(503), 'reads failed with 503 while the proxy was gone');
    assert.ok(!statuses.includes(-1), 'the app always answered');
    assert.equal((await fetch(`${app.url}/healthz`)).status, 503);
    proxy = await startProxy(cluster, proxy.port);
    let health = 0;
    for (let i = 0; i < 100 && health !== 200; i++) {
      health = (await fetch(`${app.url}/healthz`)).status;
      if (health !== 200) await sleep(100);
    }
    assert.equal(health, 200);
    for (let i = 0; i < 20; i++) assert.equal((await fetch(`${app.url}/api/links/${code}`)).status, 200);
  });
});

describe('scaleout demo-app with the primary down', () => {
  it('writes answer 503, reads and /healthz carry on from the replica, writes work again once it is back', async () => {
    const cluster = await startTestCluster({ replicas: 1 });
    const proxy = await startProxy(cluster);
    const app = await startApp(proxy.url, 'app-x');
    await waitHealthy(app);
    const links: Awaited<ReturnType<typeof createLink>>[] = [];
    for (let i = 0; i < 5; i++) links.push(await createLink(app, `https://example.com/outage/${i}`));
    await cluster.waitForReplication();
    await cluster.primary.stop('immediate');
    try {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${app.url}/api/links`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ url: 'https://example.com/during-outage' }),
        });
        assert.equal(res.status, 503);
        assert.equal((await json(res)).error, 'database unavailable');
      }
      // Every pooled connection (those that just failed a write too) still reads.
      for (let round = 0; round < 4; round++) {
        const reads = links.flatMap(({ code, cookie }) => [
          fetch(`${app.url}/api/links/${code}`, { headers: { cookie: cookie! } }),
          fetch(`${app.url}/api/links/${code}`),
        ]);
        reads.push(fetch(`${app.url}/api/links?limit=3`));
        for (const res of await Promise.all(reads)) assert.equal(res.status, 200, await res.text());
      }
      assert.equal((await fetch(`${app.url}/healthz`)).status, 200);
    } finally {
      await cluster.primary.start();
    }
    let status = 0;
    for (let i = 0; i < 100 && status !== 201; i++) {
      const res = await fetch(`${app.url}/api/links`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: 'https://example.com/after-outage' }),
      });
      status = res.status;
      if (status !== 201) await sleep(100);
    }
    assert.equal(status, 201);
  });
});
