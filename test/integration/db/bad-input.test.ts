// Bad input never reaches a server: each case gets a clear ErrorResponse, the proxy stays up and other
// clients carry on. Authentication (trust, md5, SCRAM-SHA-256 to clients; md5 and SCRAM to servers).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { MessageWriter, query } from '../../../src/db/protocol/messages.js';
import { startTestCluster, type PgCluster } from '../../helpers/postgres.js';
import { client, startProxy, type RunningProxy } from './harness.js';
import { exchange, sqlstate } from './raw.js';

const run = promisify(execFile);

describe('db-proxy bad input', () => {
  let cluster: PgCluster;
  let proxy: RunningProxy;
  let startup: { user: string; database: string };

  before(async () => {
    cluster = await startTestCluster({
      replicas: 1,
      hba: ['host all scram_srv 127.0.0.1/32 scram-sha-256', 'host all md5_srv 127.0.0.1/32 md5'],
    });
    await cluster.primary.psql(
      "CREATE TABLE marker (x int); CREATE ROLE scram_srv LOGIN SUPERUSER PASSWORD 'scram-pw'; " +
        "SET password_encryption = 'md5'; CREATE ROLE md5_srv LOGIN SUPERUSER PASSWORD 'md5-pw';",
    );
    await cluster.waitForReplication();
    proxy = await startProxy(cluster, { max_message_bytes: 1 << 20 });
    startup = { user: cluster.user, database: cluster.database };
  });

  /** After each bad input: the marker table is untouched and a normal client still works. */
  const assertNothingReachedServers = async (): Promise<void> => {
    assert.equal(await cluster.primary.psql('SELECT count(*) FROM marker'), '0');
    const c = await client(proxy.url);
    assert.equal((await c.query('SELECT 41 + 1 AS n')).rows[0].n, 42);
    await c.end();
  };

  const insertMarker = (): Buffer => query('INSERT INTO marker VALUES (1)');

  it('a malformed message (Parse whose counts do not add up)', async () => {
    const bad = new MessageWriter()
      .cstring('')
      .cstring('INSERT INTO marker VALUES (1)')
      .int16(3)
      .int32(23)
      .finish('P');
    const r = await exchange(proxy.port, Buffer.concat([bad, new MessageWriter().finish('S')]), { startup });
    assert.equal(sqlstate(r.messages[0]), '08P01');
    assert.ok(r.closed);
    await assertNothingReachedServers();
  });

  it('a truncated message (the client stops half-way and closes)', async () => {
    const whole = insertMarker();
    const r = await exchange(proxy.port, whole.subarray(0, whole.length - 6), { startup, end: true });
    assert.equal(sqlstate(r.messages[0]), '08P01');
    assert.match(r.messages[0]!.body.toString(), /truncated/);
    await assertNothingReachedServers();
  });

  it('a length that lies (shorter than the contents, longer than allowed, below 4)', async () => {
    const lie = insertMarker();
    lie.writeInt32BE(12, 1); // the query string is cut inside: no terminator
    const r1 = await exchange(proxy.port, lie, { startup });
    assert.equal(sqlstate(r1.messages[0]), '08P01');
    const huge = Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]);
    const r2 = await exchange(proxy.port, huge, { startup });
    assert.equal(sqlstate(r2.messages[0]), '54000');
    const tiny = Buffer.from([0x51, 0, 0, 0, 2]);
    const r3 = await exchange(proxy.port, tiny, { startup });
    assert.equal(sqlstate(r3.messages[0]), '08P01');
    await assertNothingReachedServers();
  });

  it('an unknown message type', async () => {
    const r = await exchange(
      proxy.port,
      Buffer.concat([new MessageWriter().cstring('x').finish('z'), insertMarker()]),
      {
        startup,
      },
    );
    assert.equal(sqlstate(r.messages[0]), '08P01');
    assert.match(r.messages[0]!.body.toString(), /invalid frontend message type/);
    await assertNothingReachedServers();
  });

  it('an oversized or broken startup packet', async () => {
    const big = Buffer.alloc(20_000);
    big.writeInt32BE(20_000, 0);
    big.writeInt32BE(196608, 4);
    const r1 = await exchange(proxy.port, big);
    assert.equal(sqlstate(r1.messages[0]), '08P01');
    const wrongVersion = new MessageWriter().int32(0x00020000).cstring('user').cstring('x').int8(0).finish(0);
    const r2 = await exchange(proxy.port, wrongVersion);
    assert.equal(sqlstate(r2.messages[0]), '0A000');
    const noUser = new MessageWriter().int32(196608).cstring('database').cstring('x').int8(0).finish(0);
    const r3 = await exchange(proxy.port, noUser);
    assert.equal(sqlstate(r3.messages[0]), '28000');
    await assertNothingReachedServers();
  });

  it('SSLRequest is refused cleanly when no certificate is configured', async () => {
    const ssl = new MessageWriter().int32(80877103).finish(0);
    const c = await new Promise<string>((resolve) => {
      import('node:net').then(({ connect }) => {
        const s = connect({ host: '127.0.0.1', port: proxy.port }, () => s.write(ssl));
        s.once('data', (d) => {
          resolve(d.toString());
          s.destroy();
        });
      });
    });
    assert.equal(c, 'N');
    // libpq's sslmode=prefer falls back to plain text after the N.
    const { stdout } = await run(
      '/usr/lib/postgresql/15/bin/psql',
      [
        '-X',
        '-At',
        '-h',
        '127.0.0.1',
        '-p',
        String(proxy.port),
        '-U',
        cluster.user,
        '-d',
        cluster.database,
        '-c',
        'SELECT 1',
      ],
      { env: { ...process.env, PGSSLMODE: 'prefer' } },
    );
    assert.equal(stdout.trim(), '1');
  });

  it('SSLRequest is served with TLS when a certificate is configured', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scaleout-tls-'));
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-days',
      '1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]);
    const tlsProxy = await startProxy(cluster, {
      tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
    });
    rmSync(dir, { recursive: true, force: true });
    const c = await client(tlsProxy.url, { ssl: { rejectUnauthorized: false } });
    assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
    const stream = (c as unknown as { connection: { stream: object } }).connection.stream;
    assert.ok(stream instanceof TLSSocket, 'the client connection is encrypted');
  });

  it('fuzzed message framing never takes the proxy down or reaches a server', async () => {
    const message = fc
      .record({
        type: fc.oneof(
          fc.constantFrom(...'QPBDECSHXdcfFpz\0'.split('').map((c) => c.charCodeAt(0))),
          fc.integer({ min: 0, max: 255 }),
        ),
        body: fc.uint8Array({ maxLength: 64 }),
        lengthDelta: fc.oneof(fc.constant(0), fc.integer({ min: -8, max: 8 })),
      })
      .map(({ type, body, lengthDelta }) => {
        const b = Buffer.alloc(5 + body.length);
        b[0] = type;
        b.writeInt32BE(4 + body.length + lengthDelta, 1);
        Buffer.from(body).copy(b, 5);
        return b;
      });
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 4 }), fc.boolean(), async (msgs, end) => {
        // Random framing: most of it is refused, well-formed pieces may pass; either way every reply
        // is a proper message and the proxy keeps serving (checked after the run).
        const r = await exchange(proxy.port, Buffer.concat(msgs), { startup, end, waitMs: 150 });
        for (const m of r.messages) assert.ok(/^[A-Za-z0-9]$/.test(m.type), `odd reply type ${m.type}`);
      }),
      { numRuns: 120 },
    );
    await assertNothingReachedServers();
  });
});

describe('db-proxy authentication', () => {
  let cluster: PgCluster;

  before(async () => {
    cluster = await startTestCluster({
      replicas: 0,
      hba: ['host all scram_srv 127.0.0.1/32 scram-sha-256', 'host all md5_srv 127.0.0.1/32 md5'],
    });
    await cluster.primary.psql(
      "CREATE ROLE scram_srv LOGIN PASSWORD 'scram-pw'; SET password_encryption = 'md5'; CREATE ROLE md5_srv LOGIN PASSWORD 'md5-pw';",
    );
  });

  for (const method of ['scram-sha-256', 'md5'] as const) {
    it(`clients authenticate with ${method}; a wrong password gets 28P01`, async () => {
      const p = await startProxy(cluster, { auth: method, users: [{ name: 'app', password: 's3cret' }] });
      const base = `postgres://app:%s@127.0.0.1:${p.port}/${cluster.database}`;
      const good = await client(base.replace('%s', 's3cret'));
      assert.equal((await good.query('SELECT current_user AS u')).rows[0].u, cluster.user);
      await assert.rejects(
        client(base.replace('%s', 'wrong')),
        (err: Error & { code?: string }) => err.code === '28P01',
      );
      await assert.rejects(
        client(`postgres://nobody:s3cret@127.0.0.1:${p.port}/${cluster.database}`),
        (err: Error & { code?: string }) => err.code === '28P01',
      );
      assert.equal((await good.query('SELECT 2 AS two')).rows[0].two, 2);
    });
  }

  for (const [user, password] of [
    ['scram_srv', 'scram-pw'],
    ['md5_srv', 'md5-pw'],
  ] as const) {
    it(`the proxy authenticates to servers as ${user}`, async () => {
      const url = `postgres://${user}:${password}@127.0.0.1:${cluster.primary.port}/${cluster.database}`;
      const p = await startProxy(cluster, { primary: url, replicas: [] });
      const c = await client(`postgres://${user}@127.0.0.1:${p.port}/${cluster.database}`);
      assert.equal((await c.query('SELECT current_user AS u')).rows[0].u, user);
    });
  }
});
