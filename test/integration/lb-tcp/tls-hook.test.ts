import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { once } from 'node:events';
import { startEchoTarget, startTcpLb } from './harness.js';

/** A throw-away self-signed certificate for CN=localhost (needs the openssl CLI). */
function selfSigned(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'scaleout-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-days',
        '1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the server factory hook (TLS termination before TCP forwarding)', () => {
  it('forwards the decrypted stream of a tls.Server to a plain TCP target', async () => {
    const { key, cert } = selfSigned();
    const target = await startEchoTarget('plain');
    const lb = await startTcpLb([target], {
      createServer: (onConnection) => tls.createServer({ key, cert, allowHalfOpen: true }, onConnection),
    });
    try {
      const socket = tls.connect({ host: '127.0.0.1', port: lb.port, ca: cert });
      await once(socket, 'secureConnect');
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.end('secret bytes');
      await once(socket, 'end');
      assert.equal(Buffer.concat(chunks).toString(), 'secret bytes');
      assert.equal(lb.listener.stats.bytesIn, 'secret bytes'.length);
    } finally {
      await lb.stop();
      await target.close();
    }
  });
});
