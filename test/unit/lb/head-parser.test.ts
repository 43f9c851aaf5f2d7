import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  findHeadEnd,
  HttpParseError,
  parseRequestHead,
  parseResponseHead,
  HOP_BY_HOP,
} from '../../../src/lb/http/head-parser.js';
import { ChunkedScanner } from '../../../src/lb/http/chunked.js';
import { buildClientResponseHead, buildUpstreamRequestHead } from '../../../src/lb/http/forward-head.js';

const LIMITS = { maxHeaderBytes: 8192, maxHeaderCount: 50 };

function request(text: string) {
  const buf = Buffer.from(text, 'latin1');
  const end = findHeadEnd(buf, LIMITS, true);
  assert.ok(end > 0, 'head complete');
  return parseRequestHead(buf, end, LIMITS);
}

function refusal(text: string): number {
  try {
    request(text);
  } catch (err) {
    if (err instanceof HttpParseError) return err.status;
    throw err;
  }
  return 0;
}

describe('request head parser', () => {
  it('parses framing facts', () => {
    const h = request(
      'POST /a?b=1 HTTP/1.1\r\nHost: example\r\nContent-Length: 12\r\nConnection: close\r\n\r\n',
    );
    assert.equal(h.method, 'POST');
    assert.equal(h.target, '/a?b=1');
    assert.equal(h.host, 'example');
    assert.equal(h.contentLength, 12);
    assert.equal(h.connectionClose, true);
    assert.equal(h.chunked, false);
  });

  it('accepts agreeing duplicate Content-Lengths and chunked alone', () => {
    assert.equal(
      request('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n').contentLength,
      5,
    );
    assert.equal(request('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n').chunked, true);
  });

  it('recognises upgrades only when Connection lists upgrade', () => {
    assert.equal(
      request('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n').upgrade,
      'websocket',
    );
    assert.equal(request('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n').upgrade, undefined);
  });

  it('refuses ambiguous framing and bad characters', () => {
    assert.equal(
      refusal('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'),
      400,
    );
    assert.equal(
      refusal('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'),
      400,
    );
    assert.equal(refusal('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n'), 400);
    assert.equal(refusal('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'), 501);
    assert.equal(refusal('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n'), 501);
    assert.equal(refusal('GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n'), 400);
    assert.equal(refusal('GET / HTTP/1.1\r\nHost: x\r\nX: a\tb\r\n\r\n'), 0, 'HTAB is allowed in values');
    assert.equal(refusal('GET / HTTP/2.0\r\nHost: x\r\n\r\n'), 400);
  });

  it('limits head size and header count with 431', () => {
    const big = Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(9000)}`);
    assert.throws(
      () => findHeadEnd(big, LIMITS, true),
      (e: HttpParseError) => e.status === 431,
    );
    const many = `GET / HTTP/1.1\r\nHost: x\r\n${'X: 1\r\n'.repeat(60)}\r\n`;
    assert.equal(refusal(many), 431);
  });

  it('never throws anything but HttpParseError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const buf = Buffer.concat([Buffer.from(bytes), Buffer.from('\r\n\r\n')]);
        try {
          const end = findHeadEnd(buf, LIMITS, true);
          if (end > 0) parseRequestHead(buf, end, LIMITS);
        } catch (err) {
          if (!(err instanceof HttpParseError)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('response head parser', () => {
  it('parses status and framing; a response with TE ignores Content-Length', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n';
    const buf = Buffer.from(text);
    const head = parseResponseHead(buf, findHeadEnd(buf, LIMITS, false), LIMITS);
    assert.equal(head.status, 200);
    assert.equal(head.chunked, true);
    assert.equal(head.contentLength, -1);
  });

  it('maps a malformed response to 502', () => {
    const buf = Buffer.from('HTTP/1.1 2000 Nope\r\n\r\n');
    assert.throws(
      () => parseResponseHead(buf, buf.length, LIMITS),
      (e: HttpParseError) => e.status === 502,
    );
  });
});

describe('chunked scanner', () => {
  const body = '5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n';

  it('finds the end of a chunked body and leaves the next request alone', () => {
    const buf = Buffer.from(body + 'GET /next');
    assert.equal(new ChunkedScanner().scan(buf), body.length);
  });

  it('finds the same end however the bytes are split', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: body.length - 1 }), { maxLength: 6 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const scanner = new ChunkedScanner();
        const buf = Buffer.from(body);
        let start = 0;
        let endAt = -1;
        for (const p of [...points, body.length]) {
          const r = scanner.scan(buf.subarray(start, p));
          if (r !== -1) {
            endAt = start + r;
            break;
          }
          start = p;
        }
        assert.equal(endAt, body.length);
      }),
    );
  });

  for (const bad of ['zz\r\n', '-1\r\n', '5\r\nhelloXX', '5\nhello', '1234567890abc\r\n', ' 5\r\n']) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => new ChunkedScanner().scan(Buffer.from(bad)), HttpParseError);
    });
  }
});

describe('forwarded heads', () => {
  const req = request(
    'GET /x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Forwarded-For: 1.1.1.1\r\nX-Keep: 2\r\n\r\n',
  );

  it('replaces X-Forwarded-* from untrusted peers and appends for trusted ones', () => {
    const base = { clientIp: '10.0.0.9', proto: 'http' as const, listenerPort: 80, defaultHost: 'lb:80' };
    const untrusted = buildUpstreamRequestHead(req, { ...base, trustedPeer: false }).toString('latin1');
    assert.match(untrusted, /X-Forwarded-For: 10\.0\.0\.9\r\n/);
    assert.doesNotMatch(untrusted, /1\.1\.1\.1/);
    const trusted = buildUpstreamRequestHead(req, { ...base, trustedPeer: true }).toString('latin1');
    assert.match(trusted, /X-Forwarded-For: 1\.1\.1\.1, 10\.0\.0\.9\r\n/);
    assert.doesNotMatch(trusted, /X-Hop|Connection/);
    assert.match(trusted, /X-Keep: 2/);
  });

  it('tells the client whether the connection stays open', () => {
    const buf = Buffer.from(
      'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n',
    );
    const res = parseResponseHead(buf, buf.length, LIMITS);
    assert.equal(
      buildClientResponseHead(res, true, 1).toString('latin1'),
      'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
    );
    assert.match(buildClientResponseHead(res, false, 1).toString('latin1'), /Connection: close/);
    assert.match(buildClientResponseHead(res, true, 0).toString('latin1'), /Connection: keep-alive/);
  });
});

describe('forwarded heads, whatever the headers', () => {
  const base = { clientIp: '10.0.0.9', proto: 'http' as const, listenerPort: 80, defaultHost: 'lb:80' };
  // The byte-level classifier must agree with the list the HTTP/2 path uses.
  const HOP = [...HOP_BY_HOP];
  const FORWARDED = ['X-Forwarded-For', 'X-Forwarded-Proto', 'X-Forwarded-Port', 'X-Forwarded-Host'];
  const PLAIN = ['Content-Type', 'X-Custom', 'Cache-Control', 'Set-Cookie', 'Date'];
  const anyCase = (name: string) => fc.constantFrom(name, name.toLowerCase(), name.toUpperCase());
  const line = fc.oneof(
    fc.record({
      name: anyCase('Connection'),
      value: fc.constantFrom('keep-alive', 'close', 'X-Custom, Date'),
    }),
    fc.record({
      name: fc.constantFrom(...HOP.filter((h) => h !== 'connection'), ...FORWARDED, ...PLAIN).chain(anyCase),
      value: fc.stringMatching(/^[!-~][ -~]{0,10}[!-~]$/),
    }),
  );
  const lower = (l: { name: string }) => l.name.toLowerCase();
  const isHop = (l: { name: string }) => HOP.some((h) => h.toLowerCase() === lower(l));
  const text = (lines: Array<{ name: string; value: string }>) =>
    lines.map((l) => `${l.name}: ${l.value}\r\n`).join('');
  /** Plain headers that a Connection line names are hop-by-hop too. */
  const named = (lines: Array<{ name: string; value: string }>) =>
    new Set(
      lines
        .filter((l) => lower(l) === 'connection')
        .flatMap((l) =>
          l.value
            .toLowerCase()
            .split(',')
            .map((t) => t.trim()),
        ),
    );

  it('a response loses exactly its hop-by-hop lines, and keeps the rest byte for byte', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 10 }), fc.boolean(), (lines, http10) => {
        const buf = Buffer.from(`HTTP/1.${http10 ? 0 : 1} 200 OK\r\n${text(lines)}\r\n`, 'latin1');
        const res = parseResponseHead(buf, buf.length, LIMITS);
        const tokens = named(lines);
        const kept = lines.filter(
          (l) => !isHop(l) && !(PLAIN.some((p) => p.toLowerCase() === lower(l)) && tokens.has(lower(l))),
        );
        assert.equal(
          buildClientResponseHead(res, true, 1).toString('latin1'),
          `HTTP/1.1 200 OK\r\n${text(kept)}\r\n`,
        );
      }),
      { numRuns: 500 },
    );
  });

  it('a request loses its hop-by-hop lines and, from an untrusted peer, every X-Forwarded-*', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 10 }), fc.boolean(), (lines, trustedPeer) => {
        const buf = Buffer.from(`GET /p HTTP/1.1\r\nHost: h\r\n${text(lines)}\r\n`, 'latin1');
        const end = findHeadEnd(buf, LIMITS, true);
        const req = parseRequestHead(buf, end, LIMITS);
        const tokens = named(lines);
        const xff = lines.filter((l) => lower(l) === 'x-forwarded-for').map((l) => l.value);
        const kept = lines.filter(
          (l) =>
            !isHop(l) &&
            !(PLAIN.some((p) => p.toLowerCase() === lower(l)) && tokens.has(lower(l))) &&
            !(lower(l).startsWith('x-forwarded-') && (!trustedPeer || lower(l) !== 'x-forwarded-host')),
        );
        const proto = trustedPeer
          ? lines.filter((l) => lower(l) === 'x-forwarded-proto').at(-1)?.value
          : undefined;
        const port = trustedPeer
          ? lines.filter((l) => lower(l) === 'x-forwarded-port').at(-1)?.value
          : undefined;
        const chain = trustedPeer && xff.length > 0 ? `${xff.join(', ')}, 10.0.0.9` : '10.0.0.9';
        assert.equal(
          buildUpstreamRequestHead(req, { ...base, trustedPeer }).toString('latin1'),
          `GET /p HTTP/1.1\r\nHost: h\r\n${text(kept)}X-Forwarded-For: ${chain}\r\n` +
            `X-Forwarded-Proto: ${proto ?? 'http'}\r\nX-Forwarded-Port: ${port ?? 80}\r\n\r\n`,
        );
      }),
      { numRuns: 500 },
    );
  });

  it('an HTTP/1.0 request gets an HTTP/1.1 request line and a Host', () => {
    const buf = Buffer.from('\r\nGET /a HTTP/1.0\r\nX-A: 1\r\n\r\n', 'latin1');
    const req = parseRequestHead(buf, findHeadEnd(buf, LIMITS, true), LIMITS);
    assert.equal(
      buildUpstreamRequestHead(req, { ...base, trustedPeer: false }).toString('latin1'),
      'GET /a HTTP/1.1\r\nHost: lb:80\r\nX-A: 1\r\nX-Forwarded-For: 10.0.0.9\r\n' +
        'X-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\n\r\n',
    );
    assert.deepEqual(req.headers, ['X-A', '1']);
  });

  it('a response head goes out in one buffer with the body after it', () => {
    const buf = Buffer.from('HTTP/1.0 404 Not Found\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\n\r\n', 'latin1');
    const res = parseResponseHead(buf, buf.length, LIMITS);
    assert.equal(res.reason, 'Not Found');
    assert.equal(
      buildClientResponseHead(res, false, 1, 'Set-Cookie: s=1\r\n', Buffer.from('body')).toString('latin1'),
      'HTTP/1.1 404 Not Found\r\nX-A: 1\r\nSet-Cookie: s=1\r\nConnection: close\r\n\r\nbody',
    );
  });
});
