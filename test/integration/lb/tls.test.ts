import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { configSchema } from '../../../src/config/schema.js';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { makeTestCa, type TestCa } from '../../helpers/certs.js';
import { startLb, type TestLb } from '../../helpers/lb.js';

function peerCertificate(port: number, servername: string, ca: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

describe('TLS termination (https listener)', () => {
  let ca: TestCa;
  let targets: TestTarget[];
  let lb: TestLb;
  let certA: { cert: string; key: string };

  before(async () => {
    ca = makeTestCa();
    certA = ca.issue('a', ['a.test']);
    const certB = ca.issue('b', ['b.test', '*.b.test']);
    targets = await startTargets(2);
    const config = configSchema.parse({
      listeners: {
        secure: {
          listen: '127.0.0.1:0',
          protocol: 'https',
          certificates: [certA, certB],
          defaultAction: { forward: { targetGroup: 'web' } },
        },
      },
      targetGroups: {
        web: { targets: targets.map((t) => t.id), healthCheck: { path: '/healthz', interval: 200 } },
      },
    });
    lb = await startLb([], { config });
  });
  after(async () => {
    await lb.stop();
    await stopTargets(targets);
  });

  it('chooses the certificate by SNI, with wildcards and a default', async () => {
    assert.equal((await peerCertificate(lb.port, 'a.test', ca.caPem)).subject.CN, 'a.test');
    assert.equal((await peerCertificate(lb.port, 'b.test', ca.caPem)).subject.CN, 'b.test');
    assert.equal((await peerCertificate(lb.port, 'www.b.test', ca.caPem)).subject.CN, 'b.test');
    const fallback = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: lb.port, rejectUnauthorized: false }, () => {
        resolve(String(s.getPeerCertificate().subject.CN));
        s.end();
      });
      s.on('error', reject);
    });
    assert.equal(fallback, 'a.test', 'no SNI gets the first certificate');
  });

  it('proxies HTTP/1.1 over TLS with X-Forwarded-Proto https', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(
          {
            host: '127.0.0.1',
            port: lb.port,
            path: '/over-tls',
            servername: 'a.test',
            ca: ca.caPem,
            headers: { host: 'a.test' },
          },
          (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve(`${res.statusCode} ${text}`));
          },
        )
        .on('error', reject);
    });
    assert.match(body, /^200 target \d+ GET \/over-tls/);
    const seen = targets.flatMap((t) => t.traffic()).find((r) => r.url === '/over-tls')!;
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
  });

  it('speaks HTTP/2 to clients and HTTP/1.1 to targets', async () => {
    const client = http2.connect(`https://a.test:${lb.port}`, {
      ca: ca.caPem,
      host: '127.0.0.1',
      servername: 'a.test',
      lookup: (_h: string, _o: unknown, cb: (e: null, a: string, f: number) => void) =>
        cb(null, '127.0.0.1', 4),
    } as never);
    try {
      const results = await Promise.all(
        [1, 2, 3].map(
          (i) =>
            new Promise<string>((resolve, reject) => {
              const req = client.request({ ':path': `/h2-${i}`, ':method': 'POST' });
              let text = '';
              let status = 0;
              req.on('response', (h) => (status = Number(h[':status'])));
              req.on('data', (c) => (text += c));
              req.on('end', () => resolve(`${status} ${text}`));
              req.on('error', reject);
              req.end(`body-${i}`);
            }),
        ),
      );
      for (const [i, r] of results.entries())
        assert.match(r, new RegExp(`^200 target \\d+ POST /h2-${i + 1} body=6`));
    } finally {
      client.close();
    }
  });

  it('reloads a replaced certificate without a restart', async () => {
    const before = await peerCertificate(lb.port, 'a.test', ca.caPem);
    ca.issue('a', ['a.test', 'renewed.a.test']); // new files at the same paths
    let after = before;
    const deadline = Date.now() + 3000;
    while (after.serialNumber === before.serialNumber && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      after = await peerCertificate(lb.port, 'a.test', ca.caPem);
    }
    assert.notEqual(after.serialNumber, before.serialNumber, 'a new connection gets the renewed certificate');
    assert.match(after.subjectaltname ?? '', /renewed\.a\.test/);
  });
});
