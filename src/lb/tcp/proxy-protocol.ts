// PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2), sent to a target before the
// client's bytes so it learns the real client address. Written by hand: the encoder is a few dozen
// lines, and the npm packages for it are parsers first, unmaintained, or pull in more than they save.
import net from 'node:net';

/** The two ends of a client connection as the load balancer saw them. */
export interface ProxyAddresses {
  sourceIp: string;
  sourcePort: number;
  destinationIp: string;
  destinationPort: number;
}

export type ProxyProtocolVersion = 'v1' | 'v2';

/** The 12-byte signature that starts every version 2 header. */
export const PROXY_V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);

const V2_VERSION_PROXY = 0x21; // version 2 in the high nibble, command PROXY in the low one
const V2_TCP_OVER_IPV4 = 0x11;
const V2_TCP_OVER_IPV6 = 0x21;
const V2_UNSPEC = 0x00;

/**
 * An address as the balancers and the PROXY header should see it: IPv4-mapped IPv6 ("::ffff:10.0.0.1",
 * what a dual-stack socket reports for an IPv4 peer) becomes plain IPv4, and an IPv6 zone ("%eth0") is
 * dropped. Returns undefined for anything that is not an IP address (a closed socket has none).
 */
export function normalizeIp(address: string | undefined): string | undefined {
  if (!address) return undefined;
  let ip = address;
  const zone = ip.indexOf('%');
  if (zone !== -1) ip = ip.slice(0, zone);
  if (ip.length > 7 && ip.slice(0, 7).toLowerCase() === '::ffff:' && net.isIPv4(ip.slice(7)))
    ip = ip.slice(7);
  return net.isIP(ip) ? ip : undefined;
}

/** 16 bytes of an IPv6 address in text form ("::" compression and a trailing dotted quad allowed). */
export function ipv6ToBytes(text: string): Buffer {
  if (!net.isIPv6(text)) throw new Error(`"${text}" is not an IPv6 address`);
  const out = Buffer.alloc(16);
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const words: number[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const [a, b, c, d] = piece.split('.').map(Number) as [number, number, number, number];
        words.push((a << 8) | b, (c << 8) | d);
      } else words.push(parseInt(piece, 16));
    }
    return words;
  };
  const gap = text.indexOf('::');
  const head = groups(gap === -1 ? text : text.slice(0, gap));
  const tail = gap === -1 ? [] : groups(text.slice(gap + 2));
  const words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

function ipv4ToBytes(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

/**
 * Both addresses in one family, as the header requires: IPv4 when both are IPv4, otherwise IPv6 with
 * any IPv4 address written as IPv4-mapped. Undefined when either address is missing or unparseable.
 */
function sameFamily(a: ProxyAddresses): { family: 4 | 6; source: string; destination: string } | undefined {
  const source = normalizeIp(a.sourceIp);
  const destination = normalizeIp(a.destinationIp);
  if (!source || !destination) return undefined;
  if (net.isIPv4(source) && net.isIPv4(destination)) return { family: 4, source, destination };
  const mapped = (ip: string) => (net.isIPv4(ip) ? `::ffff:${ip}` : ip);
  return { family: 6, source: mapped(source), destination: mapped(destination) };
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

/** Version 1: one text line, e.g. "PROXY TCP4 192.0.2.1 198.51.100.2 51234 443\r\n". */
export function encodeProxyV1(a: ProxyAddresses): Buffer {
  const pair = sameFamily(a);
  if (!pair || !validPort(a.sourcePort) || !validPort(a.destinationPort))
    return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const proto = pair.family === 4 ? 'TCP4' : 'TCP6';
  return Buffer.from(
    `PROXY ${proto} ${pair.source} ${pair.destination} ${a.sourcePort} ${a.destinationPort}\r\n`,
    'latin1',
  );
}

/** Version 2: the binary form (signature, version/command, family, length, addresses; no TLVs). */
export function encodeProxyV2(a: ProxyAddresses): Buffer {
  const pair = sameFamily(a);
  if (!pair || !validPort(a.sourcePort) || !validPort(a.destinationPort)) {
    // UNSPEC with no address block: the target should use the connection's own addresses.
    const header = Buffer.alloc(16);
    PROXY_V2_SIGNATURE.copy(header, 0);
    header[12] = V2_VERSION_PROXY;
    header[13] = V2_UNSPEC;
    return header;
  }
  const addrLength = pair.family === 4 ? 4 : 16;
  const blockLength = addrLength * 2 + 4;
  const header = Buffer.alloc(16 + blockLength);
  PROXY_V2_SIGNATURE.copy(header, 0);
  header[12] = V2_VERSION_PROXY;
  header[13] = pair.family === 4 ? V2_TCP_OVER_IPV4 : V2_TCP_OVER_IPV6;
  header.writeUInt16BE(blockLength, 14);
  const toBytes = pair.family === 4 ? ipv4ToBytes : ipv6ToBytes;
  toBytes(pair.source).copy(header, 16);
  toBytes(pair.destination).copy(header, 16 + addrLength);
  header.writeUInt16BE(a.sourcePort, 16 + addrLength * 2);
  header.writeUInt16BE(a.destinationPort, 18 + addrLength * 2);
  return header;
}

export function encodeProxyHeader(version: ProxyProtocolVersion, a: ProxyAddresses): Buffer {
  return version === 'v1' ? encodeProxyV1(a) : encodeProxyV2(a);
}
