// `scaleout db-proxy` as a user runs it: the built CLI, its startup lines, its config errors.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { atFileEnd, startTestCluster, type PgCluster } from '../../helpers/postgres.js';
import { freePort } from '../../../src/topology/postgres.js';
import { client } from './harness.js';

const CLI = join(process.cwd(), 'dist', 'cli.js');

describe('scaleout db-proxy CLI', () => {
  let cluster: PgCluster;
  let dir: string;

  before(async () => {
    cluster = await startTestCluster({ replicas: 1 });
    dir = mkdtempSync(join(tmpdir(), 'scaleout-dbcli-'));
    atFileEnd(async () => rmSync(dir, { recursive: true, force: true }));
  });

  it('starts from flags, says what listens where and the state of every server, and proxies', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        CLI,
        'db-proxy',
        '--listen',
        `127.0.0.1:${port}`,
        '--primary',
        cluster.primary.url,
        '--replica',
        cluster.replicas[0]!.url,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    atFileEnd(async () => {
      child.kill('SIGTERM');
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const deadline = Date.now() + 15_000;
    while (
      !out.includes(`replica ${cluster.replicas[0]!.host}:${cluster.replicas[0]!.port}`) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(out, new RegExp(`db-proxy listening on 127.0.0.1:${port}`));
    assert.match(out, new RegExp(`primary 127.0.0.1:${cluster.primary.port}: healthy`));
    assert.match(out, new RegExp(`replica 127.0.0.1:${cluster.replicas[0]!.port}: healthy`));
    const c = await client(`postgres://${cluster.user}@127.0.0.1:${port}/${cluster.database}`);
    assert.equal(
      (await c.query('SELECT inet_server_port() AS port')).rows[0].port,
      cluster.replicas[0]!.port,
    );
    await c.end();
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0);
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
    const child = spawn(process.execPath, [CLI, 'db-proxy', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    atFileEnd(async () => {
      child.kill('SIGTERM');
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    while (!out.includes('listening')) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /"poolMode":"session"/);
    const c = await client(`postgres://${cluster.user}@127.0.0.1:${port}/${cluster.database}`);
    assert.equal((await c.query('SELECT 7 AS n')).rows[0].n, 7);
    await c.end();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });
});
