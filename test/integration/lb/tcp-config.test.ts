import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { configSchema } from '../../../src/config/schema.js';
import { startLb, type TestLb } from '../../helpers/lb.js';

// The TCP listener itself is tested in test/integration/lb-tcp; this checks the config wiring:
// a `protocol: tcp` listener from the config file, with PROXY protocol v1 towards the target.
describe('tcp listener from the config file', () => {
  let target: net.Server;
  let lb: TestLb;
  const firstLines: string[] = [];

  before(async () => {
    // An echo target that records the PROXY protocol line and echoes what follows it.
    target = net.createServer((socket) => {
      let header = true;
      let buf = '';
      socket.on('data', (chunk) => {
        if (!header) return void socket.write(chunk);
        buf += chunk.toString('latin1');
        const eol = buf.indexOf('\r\n');
        if (eol === -1) return;
        firstLines.push(buf.slice(0, eol));
        header = false;
        if (buf.length > eol + 2) socket.write(buf.slice(eol + 2), 'latin1');
      });
    });
    target.listen(0, '127.0.0.1');
    await once(target, 'listening');
    const port = (target.address() as AddressInfo).port;
    const config = configSchema.parse({
      listeners: {
        raw: {
          listen: '127.0.0.1:0',
          protocol: 'tcp',
          proxyProtocol: 'v1',
          defaultAction: { forward: { targetGroup: 'echo' } },
        },
      },
      targetGroups: {
        echo: { targets: [`127.0.0.1:${port}`], healthCheck: { protocol: 'tcp', interval: 200 } },
      },
    });
    lb = await startLb([], { config });
  });
  after(async () => {
    await lb.stop();
    target.close();
  });

  it('forwards a byte stream with a PROXY v1 header', async () => {
    const socket = net.connect(lb.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('hello over tcp');
    const [data] = (await once(socket, 'data')) as [Buffer];
    assert.equal(data.toString(), 'hello over tcp');
    assert.match(
      firstLines[0]!,
      new RegExp(`^PROXY TCP4 127\\.0\\.0\\.1 127\\.0\\.0\\.1 ${socket.localPort} ${lb.port}$`),
    );
    socket.destroy();
  });
});
