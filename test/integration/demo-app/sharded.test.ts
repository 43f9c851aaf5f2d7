// The demo app through a sharded db-proxy (two shards, each a primary + a streaming replica), as the
// `sharded` preset runs it: `links` split by the hash of `code`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { atFileEnd, startTestCluster, type PgCluster } from '../../helpers/postgres.js';
import { freePort } from '../../../src/topology/postgres.js';
import { runLoad } from '../../../src/loadgen/index.js';
import * as apps from './apps.js';
import { cli, sleep, type App } from './apps.js';

/** A demo-app instance that has its schema in place. */
async function startApp(database: string, instance: string): Promise<App> {
  const app = await apps.startApp(database, instance);
  await app.cli.waitFor(/demo app ready/, 20_000);
  return app;
}

async function post(app: App, url: string): Promise<{ code: string; cookie: string }> {
  const res = await fetch(`${app.url}/api/links`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const body = (await res.json()) as { link: { code: string } };
  return { code: body.link.code, cookie: res.headers.getSetCookie()[0]!.split(';')[0]! };
}

describe('scaleout demo-app on a sharded db-proxy', () => {
  let shards: PgCluster[];
  let database: string;
  let a: App;
  let b: App;

  before(async () => {
    shards = await Promise.all([0, 1].map(() => startTestCluster({ replicas: 1 })));
    const dir = mkdtempSync(join(tmpdir(), 'scaleout-demo-shard-'));
    atFileEnd(async () => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const config = join(dir, 'scaleout.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        database: {
          listen: `127.0.0.1:${port}`,
          shards: shards.map((c) => ({ primary: c.primary.url, replicas: c.replicas.map((r) => r.url) })),
          sharded_tables: [{ table: 'links', key: 'code', type: 'text' }],
          lag_check_interval_ms: 50,
          max_lag_ms: 60_000,
        },
      }),
    );
    const proxy = cli(['db-proxy', '--config', config]);
    await proxy.waitFor(/db-proxy listening/);
    database = `postgres://${shards[0]!.user}@127.0.0.1:${port}/${shards[0]!.database}`;
    [a, b] = await Promise.all([startApp(database, 'app-a'), startApp(database, 'app-b')]);
  });

  it('creates the table on every shard and spreads links over them by code', async () => {
    const codes: string[] = [];
    for (let i = 0; i < 30; i++) codes.push((await post(i % 2 ? a : b, `https://example.com/s/${i}`)).code);
    const perShard = await Promise.all(
      shards.map(async (s) => (await s.primary.psql('SELECT code FROM links')).split('\n').filter(Boolean)),
    );
    assert.ok(
      perShard.every((rows) => rows.length > 0),
      `both shards hold links: ${perShard.map((r) => r.length)}`,
    );
    assert.deepEqual(
      [...perShard[0]!, ...perShard[1]!].sort(),
      [...codes].sort(),
      'each link on exactly one shard',
    );
    for (const code of codes) assert.equal((await fetch(`${b.url}/api/links/${code}`)).status, 200);
  });

  it('the listing merges the newest links of every shard', async () => {
    await Promise.all(shards.map((s) => s.waitForReplication()));
    const res = await fetch(`${a.url}/api/links?limit=10`);
    assert.equal(res.status, 200);
    const listed = ((await res.json()) as { links: { code: string }[] }).links.map((l) => l.code);
    // The same question asked of both primaries directly, merged by hand.
    const rows = (
      await Promise.all(
        shards.map((s) =>
          s.primary.psql(
            `SELECT to_char(created_at, 'YYYYMMDDHH24MISSUS') || ' ' || code FROM links ORDER BY created_at DESC, code LIMIT 10`,
          ),
        ),
      )
    )
      .flatMap((out) => out.split('\n'))
      .map((line) => line.split(' ') as [string, string]);
    rows.sort((x, y) => (x[0] === y[0] ? (x[1] < y[1] ? -1 : 1) : x[0] < y[0] ? 1 : -1));
    assert.deepEqual(
      listed,
      rows.slice(0, 10).map((r) => r[1]),
    );
  });

  it('read-your-writes with the per-shard token, across instances, with both replicas delayed', async () => {
    const bystander = await startApp(database, 'app-c');
    await Promise.all(
      shards.map((s) => s.replicas[0]!.setAndReload({ recovery_min_apply_delay: "'1500ms'" })),
    );
    try {
      await sleep(200);
      let stale = 0;
      for (let i = 0; i < 8; i++) {
        const { code, cookie } = await post(a, `https://example.com/s-ryw/${i}`);
        // The token names every shard: "0:LSN,1:LSN" (percent-encoded in the cookie).
        assert.match(
          decodeURIComponent(cookie),
          /^scaleout_lsn=0:[0-9A-F]+\/[0-9A-F]+,1:[0-9A-F]+\/[0-9A-F]+$/,
        );
        const fresh = await fetch(`${b.url}/api/links/${code}`, { headers: { cookie } });
        assert.equal(fresh.status, 200, `read ${i} with the token`);
        if ((await fetch(`${bystander.url}/api/links/${code}`)).status === 404) stale++;
      }
      assert.ok(
        stale >= 4,
        `only ${stale} of 8 reads without the token were stale: the replicas were not behind`,
      );
    } finally {
      await Promise.all(shards.map((s) => s.replicas[0]!.setAndReload({ recovery_min_apply_delay: '0' })));
    }
  });

  it('a --mix load through the sharded proxy has no failures', async () => {
    const result = await runLoad({
      url: b.url,
      rate: 40,
      durationMs: 2000,
      connections: 8,
      mix: { read: 70, write: 20, list: 10 },
    });
    assert.equal(result.failed, 0, JSON.stringify([result.statusCodes, result.errors]));
    assert.deepEqual(result.statusCodes, { 200: 64, 201: 16 });
  });
});
