import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { startLb, type TestLb } from '../../helpers/lb.js';
import { rawExchange, statusOf } from '../../helpers/raw-http.js';

describe('HTTP proxying', () => {
  let targets: TestTarget[];
  let lb: TestLb;
  const agent = new Agent({ connections: 4 });

  before(async () => {
    targets = await startTargets(2);
    lb = await startLb(targets, { targetGroup: { algorithm: 'round-robin' } });
  });
  after(async () => {
    await agent.close();
    await lb.stop();
    await stopTargets(targets);
  });

  it('forwards method, path, query and body, and preserves Host', async () => {
    const res = await request(`${lb.url}/some/path?q=1`, {
      method: 'POST',
      body: 'hello',
      headers: { host: 'shop.example', 'content-type': 'text/plain' },
      dispatcher: agent,
    });
    assert.equal(res.statusCode, 200);
    const text = await res.body.text();
    assert.match(text, /POST \/some\/path\?q=1 body=5/);
    const seen = targets.flatMap((t) => t.traffic()).find((r) => r.url === '/some/path?q=1')!;
    assert.equal(seen.headers.host, 'shop.example');
  });

  it('appends X-Forwarded-For/-Proto/-Port and drops spoofed ones from untrusted peers', async () => {
    const res = await request(`${lb.url}/xff`, {
      headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' },
      dispatcher: agent,
    });
    await res.body.text();
    const seen = targets.flatMap((t) => t.traffic()).find((r) => r.url === '/xff')!;
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-port'], String(lb.port));
  });

  it('removes hop-by-hop headers, including those named in Connection', async () => {
    const r = await rawExchange(
      lb.port,
      'GET /hop HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Kept: yes\r\n\r\n',
      500,
    );
    assert.equal(statusOf(r.text), 200);
    const seen = targets.flatMap((t) => t.traffic()).find((r) => r.url === '/hop')!;
    assert.equal(seen.headers['x-secret-hop'], undefined);
    assert.equal(seen.headers['keep-alive'], undefined);
    assert.equal(seen.headers.te, undefined);
    assert.equal(seen.headers['x-kept'], 'yes');
    // The target's own "Connection: keep-alive" does not leak to the client either.
    assert.doesNotMatch(r.text, /keep-alive: timeout/i);
  });

  it('streams chunked request and response bodies', async () => {
    const parts = ['alpha-', 'beta-', 'gamma'];
    const res = await request(`${lb.url}/echo`, {
      method: 'POST',
      body: Readable.from(parts.map((p) => Buffer.from(p))),
      dispatcher: agent,
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.equal(await res.body.text(), parts.join(''));
  });

  it('handles Expect: 100-continue', async () => {
    const r = await rawExchange(
      lb.port,
      'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n',
      400,
    );
    assert.equal(statusOf(r.text), 100, r.text);
    // Now send the body on a connection that waits for 100 first.
    const net = await import('node:net');
    const text = await new Promise<string>((resolve) => {
      const s = net.connect(lb.port, '127.0.0.1');
      let got = '';
      s.on('data', (c) => {
        got += c.toString();
        if (got.includes('100 Continue') && !got.includes('body=')) s.write('ping');
        if (got.includes('body=4')) {
          s.destroy();
          resolve(got);
        }
      });
      s.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
    });
    assert.match(text, /HTTP\/1\.1 100 Continue[\s\S]*HTTP\/1\.1 200 OK[\s\S]*body=4/);
  });

  it('answers pipelined requests in order on one connection', async () => {
    const r = await rawExchange(
      lb.port,
      'GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\nGET /p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      1500,
    );
    const order = [...r.text.matchAll(/GET (\/p\d)/g)].map((m) => m[1]);
    assert.deepEqual(order, ['/p1', '/p2', '/p3']);
    assert.equal(r.closed, true);
  });

  it('keeps upstream connections alive across requests', async () => {
    const before = targets.reduce((n, t) => n + t.connectionsAccepted, 0);
    for (let i = 0; i < 40; i++) {
      const res = await request(`${lb.url}/ka`, { dispatcher: agent });
      await res.body.text();
    }
    const opened = targets.reduce((n, t) => n + t.connectionsAccepted, 0) - before;
    // Health checks open one connection each by design; proxied traffic should reuse a handful.
    const healthChecks = targets.reduce(
      (n, t) => n + t.requests.filter((r) => r.url === '/healthz').length,
      0,
    );
    assert.ok(
      opened - healthChecks <= 6,
      `opened ${opened} connections (${healthChecks} health checks) for 40 requests`,
    );
  });

  it('answers HEAD without waiting for a body', async () => {
    const res = await request(`${lb.url}/head`, { method: 'HEAD', dispatcher: agent });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), '');
  });

  it('answers HTTP/1.0 clients and closes the connection', async () => {
    const r = await rawExchange(lb.port, 'GET /old HTTP/1.0\r\n\r\n', 1500);
    assert.equal(statusOf(r.text), 200);
    assert.match(r.text, /Connection: close/i);
    assert.equal(r.closed, true);
  });
});

describe('trusted proxies', () => {
  it('keeps and extends X-Forwarded-* from a trusted peer', async () => {
    const targets = await startTargets(1);
    const lb = await startLb(targets, { listener: { trustedProxies: ['127.0.0.0/8'] } });
    try {
      const res = await request(`${lb.url}/via-proxy`, {
        headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-port': '443' },
      });
      await res.body.text();
      const seen = targets[0]!.traffic().find((r) => r.url === '/via-proxy')!;
      assert.equal(seen.headers['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      assert.equal(seen.headers['x-forwarded-port'], '443');
    } finally {
      await lb.stop();
      await stopTargets(targets);
    }
  });
});

describe('HTTP/1.0 clients and chunked responses', () => {
  it('gets the body without chunk framing, ended by close', async () => {
    const targets = await startTargets(1);
    const lb = await startLb(targets);
    try {
      const r = await rawExchange(
        lb.port,
        'POST /echo HTTP/1.0\r\nContent-Length: 11\r\n\r\nhello world',
        1500,
      );
      assert.equal(statusOf(r.text), 200);
      assert.doesNotMatch(r.text, /transfer-encoding/i);
      assert.ok(r.text.endsWith('\r\n\r\nhello world'), JSON.stringify(r.text));
      assert.equal(r.closed, true);
    } finally {
      await lb.stop();
      await stopTargets(targets);
    }
  });
});

describe('regression: an exception while handling a request kills only that connection', () => {
  it('answers 500 to the request that hit the bug and keeps serving others', async () => {
    const targets = await startTargets(1);
    const lb = await startLb(targets);
    try {
      const listener = lb.runtime.listeners.get('default')!;
      // Reach into the listener to simulate a bug in routing for one path.
      const ctx = (
        listener as unknown as { ctx: { router: { route: (h: { target: string }, ip: string) => unknown } } }
      ).ctx;
      const real = ctx.router.route.bind(ctx.router);
      ctx.router = {
        route: (head, ip) => {
          if (head.target === '/boom') throw new Error('simulated bug');
          return real(head, ip);
        },
      };
      const boom = await rawExchange(lb.port, 'GET /boom HTTP/1.1\r\nHost: x\r\n\r\n', 1000);
      assert.equal(statusOf(boom.text), 500);
      const res = await request(`${lb.url}/fine`);
      assert.equal(res.statusCode, 200);
      await res.body.text();
    } finally {
      await lb.stop();
      await stopTargets(targets);
    }
  });
});
