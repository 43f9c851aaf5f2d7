// Bad zone files and config stop `scaleout dns` at start with an error that names the record or key;
// random packets sent to a running server do not stop it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dgram from 'node:dgram';
import fc from 'fast-check';
import { dig, parseDig, sleep, startDns } from './helpers.js';

const run = promisify(execFile);

async function failingStart(args: string[]): Promise<string> {
  try {
    await run(process.execPath, ['dist/cli.js', 'dns', '--listen', '127.0.0.1:0', ...args], {
      timeout: 10_000,
    });
  } catch (err) {
    const e = err as { code: number; stderr: string };
    assert.equal(e.code, 1);
    return e.stderr;
  }
  assert.fail('scaleout dns started despite bad input');
}

describe('scaleout dns bad input', () => {
  it('names the file, line, record and problem of a zone-file error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dns-bad-'));
    try {
      const zone = join(dir, 'bad.zone');
      writeFileSync(zone, '$ORIGIN bad.test.\n$TTL 60\n@ SOA ns hostmaster 1 2 3 4 5\nwww A 10.0.0.300\n');
      const stderr = await failingStart(['--zone-file', zone]);
      assert.match(
        stderr,
        /bad\.zone:4: record "www A 10\.0\.0\.300": "10\.0\.0\.300" is not an IPv4 address/,
      );
      writeFileSync(
        join(dir, 'c.yaml'),
        'dns:\n  zones:\n    - name: a.test\n      recordSets:\n        - { name: www, policy: weighted, addresses: [10.0.0.1, nope] }\n',
      );
      const cfg = await failingStart(['--config', join(dir, 'c.yaml')]);
      assert.match(
        cfg,
        /c\.yaml: dns\.zones\[0\]\.recordSets\[0\]\.addresses\[1\]: "nope" is not an IPv4 address/,
      );
      const rec = await failingStart(['--zone', 'a.test', '--record', 'www A 10.0.0.1 ::1']);
      assert.match(
        rec,
        /command line: dns\.zones\[0\]\.recordSets\[0\]\.addresses\[1\]: "::1" is not an IPv4 address/,
      );
      const health = await failingStart([
        '--zone',
        'a.test',
        '--record',
        'www A 10.0.0.1',
        '--health-path',
        '/up',
      ]);
      assert.match(health, /--health-path needs --health-port/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps answering while random packets arrive', async () => {
    const dns = await startDns(['--zone', 'a.test', '--record', 'www A 10.0.0.1', '--rrl-rate', '0']);
    const socket = dgram.createSocket('udp4');
    try {
      const packets = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 300 }), { numRuns: 1000, seed: 42 });
      for (let i = 0; i < packets.length; i++) {
        socket.send(Buffer.from(packets[i]!), dns.port, '127.0.0.1');
        if (i % 20 === 19) await sleep(1);
      }
      await sleep(200);
      const out = parseDig(await dig(dns.port, 'www.a.test', 'A'));
      assert.equal(out.status, 'NOERROR');
      assert.equal(dns.proc.exitCode, null);
    } finally {
      socket.close();
      await dns.stop();
    }
  });
});
