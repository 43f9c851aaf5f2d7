// The responder on its own (bytes in, bytes out), checked with dns-packet as an independent decoder.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket from 'dns-packet';
import { silentLogger } from '../../../src/core/log.js';
import { DnsMetrics } from '../../../src/dns/metrics.js';
import { Responder } from '../../../src/dns/responder.js';
import { AddressRecordSet } from '../../../src/dns/record-set.js';
import { Zone, ZoneSet } from '../../../src/dns/zone.js';
import { parseZoneFile } from '../../../src/dns/zone-file.js';
import { nameToKey } from '../../../src/dns/wire.js';

function setup(addresses: number) {
  const parsed = parseZoneFile(
    '$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 2 3 4 60\nalias CNAME www\n',
    'z',
  );
  const zone = new Zone(parsed.originKey, parsed.records);
  const set = new AddressRecordSet(
    {
      ownerKey: nameToKey('www.example.test.'),
      type: 'A',
      ttl: 30,
      policy: 'simple',
      addresses: Array.from({ length: addresses }, (_, i) => ({
        address: `10.0.${i >> 8}.${i & 255}`,
        weight: 1,
      })),
      upThreshold: 0.5,
      maxAnswers: 8,
    },
    silentLogger,
  );
  zone.addRecordSet(set, 'test');
  const zones = new ZoneSet();
  zones.add(zone);
  return {
    set,
    responder: new Responder(zones, new DnsMetrics(), { udpPayloadSize: 1232, allowTransfer: [] }),
  };
}

const ask = (r: Responder, name: string, extra: Partial<dnsPacket.Packet> = {}, tcp = false) =>
  dnsPacket.decode(
    r.respond(
      dnsPacket.encode({ type: 'query', id: 9, questions: [{ name, type: 'A', class: 'IN' }], ...extra }),
      '192.0.2.1',
      tcp,
    ) as Buffer,
  );

describe('dns responder', () => {
  it('points the addresses of a set reached through a CNAME at the CNAME target', () => {
    const { responder } = setup(2);
    const r = ask(responder, 'alias.example.test');
    assert.equal(r.answers!.length, 3);
    assert.equal(r.answers![0]!.type, 'CNAME');
    assert.deepEqual(
      r.answers!.slice(1).map((a) => [a.name, a.type, (a as { ttl?: number }).ttl]),
      [
        ['www.example.test', 'A', 30],
        ['www.example.test', 'A', 30],
      ],
    );
  });

  it('answers NODATA with the SOA when every address of a set is drained', () => {
    const { set, responder } = setup(2);
    for (const pool of set.pools)
      for (const t of pool.group.list()) {
        t.draining = true;
        pool.group.refresh(t);
      }
    const r = ask(responder, 'www.example.test');
    assert.equal((r as { rcode?: string }).rcode, 'NOERROR');
    assert.equal(r.answers!.length, 0);
    assert.equal(r.authorities![0]!.type, 'SOA');
    assert.equal((r.authorities![0] as { ttl?: number }).ttl, 60);
  });

  it('truncates a big set over UDP without EDNS, sends it whole over TCP or within the EDNS size', () => {
    const { responder } = setup(40); // 40 × 16 bytes + header and question > 512
    const udp = ask(responder, 'www.example.test');
    assert.equal(udp.flag_tc, true);
    assert.equal(udp.answers!.length, 0);
    assert.equal(udp.questions!.length, 1);
    const tcp = ask(responder, 'www.example.test', {}, true);
    assert.equal(tcp.flag_tc, false);
    assert.equal(tcp.answers!.length, 40);
    const opt = {
      type: 'OPT',
      name: '.',
      udpPayloadSize: 1232,
      flags: 0,
      options: [],
    } as unknown as dnsPacket.Answer;
    const edns = ask(responder, 'www.example.test', { additionals: [opt] });
    assert.equal(edns.answers!.length, 40);
    assert.equal(edns.additionals![0]!.type, 'OPT');
  });

  it('rotates a simple set by one each query', () => {
    const { responder } = setup(3);
    const firsts = [0, 1, 2, 3].map(
      () => (ask(responder, 'www.example.test').answers![0] as { data: string }).data,
    );
    assert.deepEqual(firsts, ['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.0']);
  });
});
