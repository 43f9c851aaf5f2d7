// The zone every server in the DNS benchmark serves, and the dnsperf query mix. Deterministic (fixed
// seed), so every run and every server sees the same data. Same shape as the reference harness in
// ../shared/bench/dns, so the figures can be compared with its RESULTS.md.
import { writeFileSync } from 'node:fs';

export const ORIGIN = 'example.test';
export const WWW_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const HOSTS = 100;

export function zoneText(): string {
  const lines = [
    `; ${ORIGIN}: served by every server in bench/dns (written by bench/dns/zone.ts).`,
    `$ORIGIN ${ORIGIN}.`,
    '$TTL 300',
    `@ IN SOA ns1.${ORIGIN}. hostmaster.${ORIGIN}. 2024010101 7200 3600 1209600 300`,
    `@ IN NS ns1.${ORIGIN}.`,
    '@ IN TXT "v=spf1 -all"',
    'ns1 IN A 127.0.0.1',
    ...WWW_ADDRESSES.map((a) => `www IN A ${a}`),
    'www IN AAAA ::1',
    'alias IN CNAME www',
  ];
  for (let i = 1; i <= HOSTS; i++) lines.push(`h${String(i).padStart(3, '0')} IN A 127.1.0.${i}`);
  return lines.join('\n') + '\n';
}

/** xorshift32: tiny, seeded, good enough to shuffle a query list reproducibly. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/**
 * 100,000 queries: 60% www A, 25% one of the 100 hNNN names or alias (A), 10% distinct non-existent
 * names (NXDOMAIN), 2.5% www AAAA, 2.5% apex TXT. Expected: 90% NOERROR, 10% NXDOMAIN.
 */
export function queryLines(count = 100_000, seed = 20261126): string[] {
  const random = rng(seed);
  const out: string[] = [];
  const n = (share: number) => Math.round(count * share);
  for (let i = 0; i < n(0.6); i++) out.push(`www.${ORIGIN} A`);
  for (let i = 0; i < n(0.25); i++) {
    const k = Math.floor(random() * (HOSTS + 1));
    out.push(k === HOSTS ? `alias.${ORIGIN} A` : `h${String(k + 1).padStart(3, '0')}.${ORIGIN} A`);
  }
  for (let i = 0; i < n(0.1); i++)
    out.push(
      `nx-${Math.floor(random() * 0xffffffff)
        .toString(16)
        .padStart(8, '0')}-${i}.${ORIGIN} A`,
    );
  for (let i = 0; i < n(0.025); i++) out.push(`www.${ORIGIN} AAAA`);
  while (out.length < count) out.push(`${ORIGIN} TXT`);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export function writeBenchFiles(zoneFile: string, queryFile: string): void {
  writeFileSync(zoneFile, zoneText());
  writeFileSync(queryFile, queryLines().join('\n') + '\n');
}
