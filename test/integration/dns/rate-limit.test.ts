// Response rate limiting: a flood from one source prefix is cut to the configured rate (the rest
// dropped, every 2nd limited answer sent truncated so real clients retry over TCP), while TCP and
// other prefixes are unaffected.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';
import { admin, dig, parseDig, sleep, startDns, type RunningDns } from './helpers.js';

async function flood(
  port: number,
  fromHost: string,
  count: number,
): Promise<{ answered: number; truncated: number }> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, fromHost);
  await once(socket, 'listening');
  let answered = 0;
  let truncated = 0;
  socket.on('message', (m) => {
    const d = dnsPacket.decode(m);
    if (d.flag_tc) truncated++;
    else answered++;
  });
  const packet = dnsPacket.encode({
    type: 'query',
    id: 1,
    questions: [{ name: 'www.example.test', type: 'A', class: 'IN' }],
  });
  for (let i = 0; i < count; i++) {
    socket.send(packet, port, '127.0.0.1');
    if (i % 10 === 9) await sleep(1); // gently: the kernel drops a burst that overflows the socket buffer
  }
  await sleep(300);
  socket.close();
  return { answered, truncated };
}

describe('scaleout dns response rate limiting', () => {
  let dns: RunningDns;

  before(async () => {
    dns = await startDns([
      '--zone',
      'example.test',
      '--record',
      'www A 127.0.0.2',
      '--rrl-rate',
      '20',
      '--rrl-exempt',
      '',
      '--admin',
      '127.0.0.1:0',
    ]);
  });

  after(async () => {
    await dns.stop();
  });

  it('limits a flood from one /24, slips every 2nd limited answer, spares TCP and other prefixes', async () => {
    const started = Date.now();
    const { answered, truncated } = await flood(dns.port, '127.0.0.1', 400);
    const seconds = (Date.now() - started) / 1000;
    // Burst 20 + 20/s while the flood lasted (well under a few seconds).
    assert.ok(
      answered >= 20 && answered <= 20 + Math.ceil(20 * seconds) + 5,
      `answered ${answered} in ${seconds}s`,
    );
    assert.ok(truncated > 0, 'some limited answers are sent truncated');
    // TCP is not limited (a spoofed source cannot complete a handshake).
    const tcp = parseDig(await dig(dns.port, '+tcp', 'www.example.test', 'A'));
    assert.equal(tcp.status, 'NOERROR');
    // Another /24 has its own budget.
    const other = await flood(dns.port, '127.0.9.1', 10);
    assert.equal(other.answered, 10);
    const metrics = (await admin(dns.adminPort!, '/metrics')).body;
    // slip 2: every 2nd limited response goes out truncated, the others are dropped.
    const dropped = Number(/scaleout_dns_rrl_total\{action="dropped"\} (\d+)/.exec(metrics)?.[1]);
    const slipped = Number(/scaleout_dns_rrl_total\{action="slipped"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(dropped > 100, `dropped ${dropped}`);
    assert.ok(Math.abs(dropped - slipped) <= 1, `dropped ${dropped}, slipped ${slipped}`);
    assert.ok(dropped + slipped + answered <= 400);
    assert.equal(dns.proc.exitCode, null);
  });
});
