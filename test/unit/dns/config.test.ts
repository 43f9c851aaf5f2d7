import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDnsConfigFile, validateDnsConfig } from '../../../src/dns/config.js';

describe('dns config section', () => {
  it('fills defaults', () => {
    const c = validateDnsConfig(
      { zones: [{ name: 'example.test', recordSets: [{ name: 'www', addresses: ['192.0.2.1'] }] }] },
      'x.yaml',
    );
    assert.equal(c.listen, '127.0.0.1:5353');
    assert.equal(c.udpPayloadSize, 1232);
    assert.equal(c.rateLimit.responsesPerSecond, 200);
    assert.equal(c.zones[0]!.recordSets[0]!.policy, 'simple');
    assert.equal(c.zones[0]!.recordSets[0]!.ttl, 30);
  });

  it('names the file, the key path and the problem', () => {
    const err = (dns: unknown, re: RegExp) =>
      assert.throws(() => validateDnsConfig(dns, 'scaleout.yaml'), re);
    err(
      { zones: [{ name: 'a.test', recordSets: [{ name: 'www', addresses: ['192.0.2.1', '300.1.1.1'] }] }] },
      /^ConfigError: scaleout\.yaml: dns\.zones\[0\]\.recordSets\[0\]\.addresses\[1\]: "300\.1\.1\.1" is not an IPv4 address$/,
    );
    err(
      {
        zones: [
          { name: 'a.test', recordSets: [{ name: 'w', policy: 'failover', addresses: ['192.0.2.1'] }] },
        ],
      },
      /dns\.zones\[0\]\.recordSets\[0\]\.secondary: policy failover needs a secondary/,
    );
    err(
      {
        zones: [{ name: 'a.test', recordSets: [{ name: 'w', policy: 'nearest', addresses: ['192.0.2.1'] }] }],
      },
      /dns\.zones\[0\]\.recordSets\[0\]\.policy: /,
    );
    err({ zones: [] }, /dns\.zones: needs at least one zone/);
    err({ listen: 'nowhere', zones: [{ name: 'a.test' }] }, /dns\.listen: expected host:port/);
    err(
      { zones: [{ name: 'a.test' }], rateLimit: { exempt: ['10.0.0.0/40'] } },
      /dns\.rateLimit\.exempt\[0\]: expected an address or CIDR/,
    );
    err({ zones: [{ name: 'a.test' }], colour: 'blue' }, /scaleout\.yaml: dns: Unrecognized key: "colour"/);
  });

  it('loads a YAML file and reports a missing section', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dns-config-'));
    try {
      writeFileSync(join(dir, 'a.yaml'), 'dns:\n  zones:\n    - name: a.test\n');
      assert.equal(loadDnsConfigFile(join(dir, 'a.yaml')).zones.length, 1);
      writeFileSync(join(dir, 'b.yaml'), 'lb: {}\n');
      assert.throws(() => loadDnsConfigFile(join(dir, 'b.yaml')), /b\.yaml: dns: missing section/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
