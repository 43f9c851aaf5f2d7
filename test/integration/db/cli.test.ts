// `scaleout db-proxy` as a user runs it: the built CLI, its startup lines, its config errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { CLI, startCli } from '../../helpers/cli.js';
import { proxyUrlFor, startTestDbProxy } from '../../helpers/db-proxy.js';
import { atFileEnd, startTestCluster, type PgCluster } from '../../helpers/postgres.js';
import { freePort } from '../../../src/topology/postgres.js';
import { client } from './harness.js';

describe('scaleout db-proxy CLI', () => {
  let cluster: PgCluster;
  let dir: string;

  before(async () => {
    cluster = await startTestCluster({ replicas: 1 });
    dir = mkdtempSync(join(tmpdir(), 'scaleout-dbcli-'));
    atFileEnd(async () => rmSync(dir, { recursive: true, force: true }));
  });

  it('starts from flags, says what listens where and the state of every server, and proxies', async () => {
    const proxy = await startTestDbProxy(cluster);
    const replica = cluster.replicas[0]!;
    await proxy.cli.waitFor(new RegExp(`replica ${replica.host}:${replica.port}`), 15_000);
    const out = proxy.cli.output();
    assert.match(out, new RegExp(`db-proxy listening on 127.0.0.1:${proxy.port}`));
    assert.match(out, new RegExp(`primary 127.0.0.1:${cluster.primary.port}: healthy`));
    assert.match(out, new RegExp(`replica 127.0.0.1:${replica.port}: healthy`));
    const c = await client(proxy.url);
    assert.equal((await c.query('SELECT inet_server_port() AS port')).rows[0].port, replica.port);
    await c.end();
    assert.equal(await proxy.cli.stop(), 0);
  });

  it('config errors name the file, the key and the problem', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'database:\n  primary: mysql://x\n  pool_size: -1\n  bogus: 1\n');
    const r = spawnSync(process.execPath, [CLI, 'db-proxy', '--config', file], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${file}: database.primary: must be a URL like postgres://`));
    assert.match(r.stderr, new RegExp(`${file}: database.pool_size: `));
    assert.match(r.stderr, /bogus/);
    const none = spawnSync(process.execPath, [CLI, 'db-proxy'], { encoding: 'utf8' });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /db-proxy.primary/);
  });

  it('reads the database: section of a config file', async () => {
    const port = await freePort();
    const file = join(dir, 'ok.yaml');
    writeFileSync(
      file,
      `database:\n  listen: 127.0.0.1:${port}\n  primary: ${cluster.primary.url}\n  replicas:\n    - ${cluster.replicas[0]!.url}\n  pool_mode: session\n`,
    );
    const cli = startCli(['db-proxy', '--config', file]);
    atFileEnd(async () => void (await cli.stop()));
    await cli.waitFor(/listening/, 15_000);
    assert.match(cli.output(), /"poolMode":"session"/);
    const c = await client(proxyUrlFor(cluster, port));
    assert.equal((await c.query('SELECT 7 AS n')).rows[0].n, 7);
    await c.end();
    assert.equal(await cli.stop(), 0);
  });
});
