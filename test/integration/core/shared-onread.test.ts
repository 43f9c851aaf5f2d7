import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { rewrapWithOnread } from '../../../src/core/shared-onread.js';

/** An echo server whose accepted sockets are rewrapped; reports how each was read. */
async function echoServer(): Promise<{ server: net.Server; port: number; rewrapped: boolean[] }> {
  const rewrapped: boolean[] = [];
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (accepted) => {
    let socket: net.Socket | undefined;
    socket = rewrapWithOnread(accepted, server, true, (chunk) => socket!.write(chunk));
    rewrapped.push(socket !== undefined);
    if (!socket) {
      socket = accepted;
      accepted.on('data', (chunk) => accepted.write(chunk));
      accepted.resume();
    }
    socket.on('end', () => socket!.end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, rewrapped };
}

describe('accepted sockets read through onread', () => {
  it('echoes every byte, in order, over many connections at once', async () => {
    const { server, port, rewrapped } = await echoServer();
    const payloads = Array.from({ length: 20 }, (_, i) => Buffer.alloc(100_000 + i * 1000, i + 1));
    const echoed = await Promise.all(
      payloads.map(async (payload) => {
        const client = net.connect(port, '127.0.0.1');
        const chunks: Buffer[] = [];
        client.on('data', (c: Buffer) => chunks.push(c));
        client.end(payload);
        await once(client, 'close');
        return Buffer.concat(chunks);
      }),
    );
    for (let i = 0; i < payloads.length; i++) assert.ok(echoed[i]!.equals(payloads[i]!), `connection ${i}`);
    // This Node supports the rewrap (if a future Node does not, the fallback keeps working, but we want
    // to know).
    assert.deepEqual(new Set(rewrapped), new Set([true]));
    // The server's connection count stays right: close() completes once the clients are gone.
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  });

  it('keeps the server open while a rewrapped connection lives', async () => {
    const { server, port } = await echoServer();
    const client = net.connect(port, '127.0.0.1');
    client.write('ping');
    await once(client, 'data');
    let closed = false;
    server.close(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, false, 'close() waits for the open connection');
    client.end();
    await once(client, 'close');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, true);
  });
});
