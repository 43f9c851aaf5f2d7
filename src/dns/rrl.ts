// Response rate limiting (after BIND's and NSD's RRL): a token bucket per source prefix (/24 for IPv4,
// /56 for IPv6), so a spoofed flood cannot turn this server into an amplifier aimed at one network.
// Limited responses are dropped, except every `slip`-th, which is sent truncated (TC, no answer):
// a real client behind that prefix then retries over TCP, which cannot be spoofed.
import { BlockList, isIPv4 } from 'node:net';

export interface RrlConfig {
  /** Responses per second per prefix; 0 turns limiting off. */
  responsesPerSecond: number;
  /** Extra responses a prefix may send at once. Defaults to one second's worth. */
  burst: number;
  /** Every slip-th limited response is sent truncated; 0 drops them all. */
  slip: number;
  ipv4PrefixLength: number;
  ipv6PrefixLength: number;
  /** Sources never limited (CIDRs). Loopback by default: it cannot be spoofed from outside. */
  exempt: string[];
}

export const DEFAULT_RRL: RrlConfig = {
  responsesPerSecond: 200,
  burst: 200,
  slip: 2,
  ipv4PrefixLength: 24,
  ipv6PrefixLength: 56,
  exempt: ['127.0.0.0/8', '::1/128'],
};

export type RrlVerdict = 'ok' | 'drop' | 'slip';

interface Bucket {
  tokens: number;
  last: number;
  limited: number;
}

/** Cap on tracked sources, so a spoofed flood from many addresses cannot grow memory without bound. */
const MAX_TRACKED = 100_000;

export class RateLimiter {
  private readonly exempt = new BlockList();
  /** source address → its prefix bucket, or null when exempt. */
  private readonly byAddress = new Map<string, Bucket | null>();
  private readonly byPrefix = new Map<string, Bucket>();

  constructor(readonly config: RrlConfig) {
    for (const cidr of config.exempt) addCidr(this.exempt, cidr);
  }

  get enabled(): boolean {
    return this.config.responsesPerSecond > 0;
  }

  check(address: string, now = Date.now()): RrlVerdict {
    let bucket = this.byAddress.get(address);
    if (bucket === undefined) bucket = this.lookup(address);
    if (bucket === null) return 'ok';
    const { responsesPerSecond: rate, burst } = this.config;
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.last) * rate) / 1000);
    bucket.last = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 'ok';
    }
    bucket.limited++;
    const slip = this.config.slip;
    return slip > 0 && bucket.limited % slip === 0 ? 'slip' : 'drop';
  }

  private lookup(address: string): Bucket | null {
    if (this.byAddress.size >= MAX_TRACKED) this.byAddress.clear();
    const v4 = isIPv4(address);
    if (this.exempt.check(address, v4 ? 'ipv4' : 'ipv6')) {
      this.byAddress.set(address, null);
      return null;
    }
    const prefix = prefixOf(address, v4 ? this.config.ipv4PrefixLength : this.config.ipv6PrefixLength, v4);
    let bucket = this.byPrefix.get(prefix);
    if (!bucket) {
      if (this.byPrefix.size >= MAX_TRACKED) this.sweep(Date.now());
      bucket = { tokens: this.config.burst, last: Date.now(), limited: 0 };
      this.byPrefix.set(prefix, bucket);
    }
    this.byAddress.set(address, bucket);
    return bucket;
  }

  /** Forgets prefixes whose bucket has refilled (they hold no state worth keeping). */
  sweep(now = Date.now()): void {
    const full = (this.config.burst * 1000) / Math.max(this.config.responsesPerSecond, 1);
    for (const [k, b] of this.byPrefix) if (now - b.last > full) this.byPrefix.delete(k);
    this.byAddress.clear();
  }
}

function addCidr(list: BlockList, cidr: string): void {
  const [addr, bits] = cidr.split('/');
  const v4 = isIPv4(addr ?? '');
  list.addSubnet(addr!, bits === undefined ? (v4 ? 32 : 128) : Number(bits), v4 ? 'ipv4' : 'ipv6');
}

/** "192.0.2.77" with 24 → "192.0.2.0/24"; IPv6 is expanded to 16 bytes first. */
export function prefixOf(address: string, bits: number, v4 = isIPv4(address)): string {
  const bytes = v4 ? address.split('.').map(Number) : ipv6Bytes(address);
  const out = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
  return `${out.join(v4 ? '.' : ',')}/${bits}`;
}

function ipv6Bytes(address: string): number[] {
  const clean = address.replace(/%.*$/, '');
  const [head, tail] = clean.includes('::') ? clean.split('::') : [clean, undefined];
  const parse = (s: string | undefined) => (s ? s.split(':') : []);
  let groups = parse(head);
  const tailGroups = parse(tail);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const fix = (g: string[]) =>
    g.flatMap((x) => {
      if (!x.includes('.')) return [x];
      const [a, b, c, d] = x.split('.').map(Number);
      return [((a! << 8) | b!).toString(16), ((c! << 8) | d!).toString(16)];
    });
  groups = fix(groups);
  const t = fix(tailGroups);
  const fill = tail === undefined ? [] : new Array<string>(8 - groups.length - t.length).fill('0');
  const all = [...groups, ...fill, ...t];
  return all.flatMap((g) => {
    const n = parseInt(g || '0', 16);
    return [(n >> 8) & 0xff, n & 0xff];
  });
}
