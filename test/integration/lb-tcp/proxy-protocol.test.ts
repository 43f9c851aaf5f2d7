import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { connect, readAll, startEchoTarget, startTcpLb } from './harness.js';

interface SeenHeader {
  family: string;
  sourceIp: string;
  destinationIp: string;
  sourcePort: number;
  destinationPort: number;
  /** The client bytes that followed the header. */
  rest: string;
}

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** The test target's own reader, written independently of the encoder under test. */
function parseHeader(buf: Buffer): { header: Omit<SeenHeader, 'rest'>; length: number } | undefined {
  if (buf.length >= 16 && buf.subarray(0, 12).equals(V2_SIGNATURE)) {
    const length = 16 + buf.readUInt16BE(14);
    if (buf.length < length) return undefined;
    assert.equal(buf[12], 0x21, 'version 2, PROXY command');
    const fam = buf[13];
    const ip = (b: Buffer) =>
      b.length === 4
        ? [...b].join('.')
        : Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
    const n = fam === 0x11 ? 4 : fam === 0x21 ? 16 : assert.fail(`family byte ${fam}`);
    return {
      length,
      header: {
        family: fam === 0x11 ? 'TCP4' : 'TCP6',
        sourceIp: ip(buf.subarray(16, 16 + n)),
        destinationIp: ip(buf.subarray(16 + n, 16 + 2 * n)),
        sourcePort: buf.readUInt16BE(16 + 2 * n),
        destinationPort: buf.readUInt16BE(18 + 2 * n),
      },
    };
  }
  const end = buf.indexOf('\r\n');
  if (end === -1) return undefined;
  const [proxy, family, src, dst, sport, dport] = buf.subarray(0, end).toString('latin1').split(' ');
  assert.equal(proxy, 'PROXY');
  return {
    length: end + 2,
    header: {
      family: family!,
      sourceIp: src!,
      destinationIp: dst!,
      sourcePort: Number(sport),
      destinationPort: Number(dport),
    },
  };
}

/** A target that reads the PROXY header plus everything after it, then answers with what it saw. */
function headerTarget() {
  return startEchoTarget('pp', '127.0.0.1', 0, (socket) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => (buf = Buffer.concat([buf, c])));
    socket.on('end', () => {
      const parsed = parseHeader(buf);
      if (!parsed) return socket.end(JSON.stringify({ error: 'no header', raw: buf.toString('hex') }));
      const seen: SeenHeader = { ...parsed.header, rest: buf.subarray(parsed.length).toString() };
      socket.end(JSON.stringify(seen));
    });
  });
}

async function sendThrough(socket: net.Socket, text: string): Promise<SeenHeader> {
  const reply = readAll(socket);
  socket.end(text);
  return JSON.parse((await reply).toString()) as SeenHeader;
}

describe('PROXY protocol towards targets', () => {
  for (const version of ['v1', 'v2'] as const) {
    it(`${version}: the target learns the client address and port, then gets the client bytes`, async () => {
      const target = await headerTarget();
      const lb = await startTcpLb([target], { proxyProtocol: version });
      try {
        const socket = await connect(lb.port, '127.0.0.2');
        const clientPort = socket.localPort!;
        const seen = await sendThrough(socket, 'hello after the header');
        assert.deepEqual(seen, {
          family: 'TCP4',
          sourceIp: '127.0.0.2',
          destinationIp: '127.0.0.1',
          sourcePort: clientPort,
          destinationPort: lb.port,
          rest: 'hello after the header',
        });
      } finally {
        await lb.stop();
        await target.close();
      }
    });

    it(`${version}: an IPv6 client gets a TCP6 header`, async (t) => {
      const probe = net.createServer().listen(0, '::1');
      const ok = await once(probe, 'listening').then(
        () => true,
        () => false,
      );
      probe.close();
      if (!ok) return t.skip('no IPv6 loopback on this machine');
      const target = await headerTarget();
      const lb = await startTcpLb([target], { proxyProtocol: version, host: '::1' });
      try {
        const socket = await connect(lb.port, undefined, '::1');
        const clientPort = socket.localPort!;
        const seen = await sendThrough(socket, 'six');
        // v1 carries the text form; our v2 reader prints all eight groups.
        const loopback = version === 'v1' ? '::1' : '0:0:0:0:0:0:0:1';
        assert.deepEqual(seen, {
          family: 'TCP6',
          sourceIp: loopback,
          destinationIp: loopback,
          sourcePort: clientPort,
          destinationPort: lb.port,
          rest: 'six',
        });
      } finally {
        await lb.stop();
        await target.close();
      }
    });
  }

  it('sends no header when PROXY protocol is off', async () => {
    const target = await startEchoTarget('plain');
    const lb = await startTcpLb([target], { proxyProtocol: false });
    try {
      const socket = await connect(lb.port);
      const reply = readAll(socket);
      socket.end('just bytes');
      assert.equal((await reply).toString(), 'just bytes');
    } finally {
      await lb.stop();
      await target.close();
    }
  });
});
