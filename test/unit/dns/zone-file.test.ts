import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseRecordLine, parseTtl, parseZoneFile } from '../../../src/dns/zone-file.js';
import { Zone } from '../../../src/dns/zone.js';
import { keyToName, nameToKey, TYPE } from '../../../src/dns/wire.js';

describe('zone file parser', () => {
  it('reads $ORIGIN, $TTL, @, relative and blank owners, parentheses, comments and every type', () => {
    const z = parseZoneFile(
      `$ORIGIN example.test.
$TTL 1h
@   IN  SOA ns1 hostmaster ( 7 ; serial
        2h 1h 2w 5m )
    IN  NS  ns1.example.test.
@       MX  10 mail
ns1 60 IN A 192.0.2.1
        AAAA 2001:db8::1
txt     TXT "semi;colon" "quote\\"d" "\\065BC"
_s._tcp SRV 1 2 53 ns1
c       CNAME ns1
`,
      'example.zone',
    );
    assert.equal(keyToName(z.originKey), 'example.test.');
    const byType = (t: number) => z.records.filter((r) => r.type === t);
    assert.equal(byType(TYPE.SOA)[0]!.ttl, 3600);
    assert.equal((byType(TYPE.SOA)[0]!.rdata[6] as Buffer).readUInt32BE(0), 300);
    assert.equal(byType(TYPE.NS)[0]!.ownerKey, z.originKey, 'blank owner continues the previous one');
    assert.equal(byType(TYPE.AAAA)[0]!.ownerKey, nameToKey('ns1.example.test.'));
    assert.equal(byType(TYPE.AAAA)[0]!.ttl, 3600);
    assert.equal(byType(TYPE.A)[0]!.ttl, 60);
    const txt = byType(TYPE.TXT)[0]!.rdata[0] as Buffer;
    assert.deepEqual(txt, Buffer.from('\x0asemi;colon\x07quote"d\x03ABC', 'latin1'));
    assert.equal(byType(TYPE.SRV).length, 1);
    assert.equal(byType(TYPE.CNAME).length, 1);
  });

  it('names the file, line, record and problem in errors', () => {
    const bad = (text: string, re: RegExp) =>
      assert.throws(() => parseZoneFile(`$ORIGIN t.\n$TTL 60\n@ SOA a b 1 2 3 4 5\n${text}\n`, 'z.zone'), re);
    bad('www A 1.2.3', /^ZoneError: z\.zone:4: record "www A 1\.2\.3": "1\.2\.3" is not an IPv4 address$/);
    bad('www AAAA 1.2.3.4', /z\.zone:4: .*not an IPv6 address/);
    bad('www PTR x', /z\.zone:4: record "www PTR x": unsupported record type "PTR"/);
    bad('www MX mail', /expected 2 values/);
    bad('www TXT "open', /unterminated quoted string/);
    bad('www CH A 1.2.3.4', /class CH not supported/);
    bad('$INCLUDE other', /directive \$INCLUDE not supported/);
    bad('@ SOA a b 1 2 3 4 5', /second SOA/);
    assert.throws(() => parseZoneFile('$ORIGIN t.\nwww 60 A 1.2.3.4\n', 'n.zone'), /n\.zone: no SOA record/);
    assert.throws(
      () => parseZoneFile('$ORIGIN t.\n@ 60 SOA a b ( 1 2 3\n', 'p.zone'),
      /p\.zone:2: .*unclosed "\("/,
    );
  });

  it('rejects zone content that breaks DNS rules, naming the record', () => {
    const z = (extra: string) => {
      const p = parseZoneFile(`$ORIGIN t.\n$TTL 60\n@ SOA a b 1 2 3 4 5\n${extra}\n`, 'z.zone');
      return new Zone(p.originKey, p.records);
    };
    assert.throws(
      () => z('c CNAME x\nc A 1.2.3.4'),
      /z\.zone:5: record "c A 1\.2\.3\.4": c\.t\. already has a CNAME/,
    );
    assert.throws(() => z('c A 1.2.3.4\nc CNAME x'), /only record at its name/);
    assert.throws(() => z('www.other. A 1.2.3.4'), /outside the zone/);
    assert.throws(() => z('@ CNAME x'), /CNAME/);
  });

  it('parses TTL units and single record lines', () => {
    assert.equal(parseTtl('1w2d3h4m5s'), 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
    assert.throws(() => parseTtl('1x'), /not a TTL/);
    const r = parseRecordLine('mail 120 MX 5 mx1', nameToKey('t.'), 300, '--record');
    assert.equal(r.ttl, 120);
    assert.equal(r.type, TYPE.MX);
  });
});
