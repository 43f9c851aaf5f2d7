import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { startLb, type TestLb } from '../../helpers/lb.js';
import { TestTarget } from '../../helpers/http-targets.js';

describe('WebSocket upgrades', () => {
  let server: http.Server;
  let lb: TestLb;

  before(async () => {
    // A real WebSocket echo target that also answers health checks.
    server = http.createServer((_req, res) => res.end('ok'));
    const wss = new WebSocketServer({ server });
    wss.on('connection', (socket, req) => {
      socket.on('message', (data, isBinary) =>
        socket.send(isBinary ? data : `echo:${data.toString()}:${req.headers['x-forwarded-for']}`),
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const target = new TestTarget();
    target.port = port;
    lb = await startLb([target]);
  });
  after(async () => {
    await lb.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('echoes text and binary frames through the LB', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${lb.port}/chat`);
    await once(ws, 'open');
    const replies: string[] = [];
    ws.on('message', (data) => replies.push(data.toString()));
    ws.send('hello');
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await new Promise((r) => setTimeout(r, 300));
    ws.send('bye');
    const deadline = Date.now() + 3000;
    while (replies.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    ws.close();
    assert.deepEqual(replies, ['echo:hello:127.0.0.1', '\u0001\u0002\u0003', 'echo:bye:127.0.0.1']);
  });

  it('keeps a long-lived connection open across many messages', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${lb.port}/stream`);
    await once(ws, 'open');
    let count = 0;
    ws.on('message', () => count++);
    for (let i = 0; i < 200; i++) ws.send(`m${i}`);
    const deadline = Date.now() + 3000;
    while (count < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    ws.close();
    assert.equal(count, 200);
  });
});
