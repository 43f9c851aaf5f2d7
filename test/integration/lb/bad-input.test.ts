import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { request } from 'undici';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { startLb, type TestLb } from '../../helpers/lb.js';
import { rawExchange, statusOf } from '../../helpers/raw-http.js';

// Each case must get a clear 4xx and never reach a target (checked in the targets' own request logs).
const CASES: Array<{ name: string; payload: string; status: number }> = [
  {
    name: 'Content-Length and Transfer-Encoding together',
    payload:
      'POST /smuggle-clte HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG',
    status: 400,
  },
  {
    name: 'two different Content-Lengths',
    payload: 'POST /smuggle-clcl HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde',
    status: 400,
  },
  {
    name: 'a Content-Length list that disagrees',
    payload: 'POST /smuggle-cllist HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 5\r\n\r\nabcde',
    status: 400,
  },
  {
    name: 'a non-numeric Content-Length',
    payload: 'POST /bad-cl HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nabcde',
    status: 400,
  },
  {
    name: 'an invalid chunk size',
    payload:
      'POST /bad-chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    status: 400,
  },
  {
    name: 'a chunk size with a sign',
    payload:
      'POST /bad-chunk-sign HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n',
    status: 400,
  },
  {
    name: 'an obfuscated Transfer-Encoding',
    payload: 'POST /te-obf HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
    status: 400,
  },
  {
    name: 'whitespace before the header colon',
    payload: 'POST /ws-colon HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    status: 400,
  },
  {
    name: 'obsolete line folding',
    payload: 'GET /fold HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n',
    status: 400,
  },
  {
    name: 'a control character in a header value',
    payload: 'GET /ctl HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n',
    status: 400,
  },
  {
    name: 'a NUL in a header value',
    payload: 'GET /nul HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n',
    status: 400,
  },
  {
    name: 'a bare LF line ending',
    payload: 'GET /lf HTTP/1.1\nHost: x\r\n\r\n',
    status: 400,
  },
  {
    name: 'a malformed request line',
    payload: 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 400,
  },
  {
    name: 'HTTP/1.1 without Host',
    payload: 'GET /nohost HTTP/1.1\r\nX-A: 1\r\n\r\n',
    status: 400,
  },
  {
    name: 'two Host headers',
    payload: 'GET /twohost HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    status: 400,
  },
  {
    name: 'an oversized header section',
    payload: `GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    status: 431,
  },
  {
    name: 'too many headers',
    payload: `GET /many HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 150 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`,
    status: 431,
  },
];

describe('bad input is refused before it reaches a target', () => {
  let targets: TestTarget[];
  let lb: TestLb;

  before(async () => {
    targets = await startTargets(2);
    lb = await startLb(targets, { listener: { timeouts: { header: 500, clientIdle: 5000 } } });
  });
  after(async () => {
    await lb.stop();
    await stopTargets(targets);
  });

  for (const c of CASES) {
    it(`${c.name} → ${c.status}`, async () => {
      const r = await rawExchange(lb.port, c.payload, 1500);
      assert.equal(statusOf(r.text), c.status, r.text.slice(0, 200));
      assert.equal(r.closed, true, 'the connection is closed after a refused request');
      const path = /^(?:GET|POST) (\S+)/.exec(c.payload)![1]!;
      for (const t of targets) {
        assert.equal(
          t.traffic().some((req) => req.url.startsWith(path.split(' ')[0]!)),
          false,
          `${path} reached target ${t.id}`,
        );
      }
    });
  }

  it('a smuggled second request inside a CL+TE body never reaches a target', async () => {
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    const payload = `POST /front HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: ${4 + smuggled.length}\r\n\r\n0\r\n\r\n${smuggled}`;
    const r = await rawExchange(lb.port, payload, 1000);
    assert.equal(statusOf(r.text), 400);
    for (const t of targets)
      assert.equal(
        t.traffic().some((req) => req.url === '/smuggled'),
        false,
      );
  });

  it('cuts off a slow client that never finishes its headers (408)', async () => {
    const started = Date.now();
    const r = await rawExchange(lb.port, 'GET /slow HTTP/1.1\r\nHost: x\r\nX-Partial: ', 3000);
    assert.equal(statusOf(r.text), 408, r.text);
    assert.equal(r.closed, true);
    assert.ok(Date.now() - started < 2500, 'closed well before the client gave up');
  });

  it('keeps serving other clients while bad ones are refused, and stays up', async () => {
    const slowloris = Array.from({ length: 20 }, () => {
      const s = net.connect(lb.port, '127.0.0.1');
      s.on('error', () => {});
      s.write('GET / HTTP/1.1\r\nHost: x\r\n');
      return s;
    });
    const bad = Array.from({ length: 20 }, () =>
      rawExchange(lb.port, 'GET /ctl HTTP/1.1\r\nHost: x\r\nX: \x7f\r\n\r\n', 500),
    );
    const good = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const res = await request(`${lb.url}/good-${i}`);
        await res.body.text();
        return res.statusCode;
      }),
    );
    await Promise.all(bad);
    for (const s of slowloris) s.destroy();
    assert.deepEqual(good, Array(20).fill(200));
  });
});
