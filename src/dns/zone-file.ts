// RFC 1035 master files ("zone files"): $ORIGIN, $TTL, @, relative names, blank owners, ( ... ) over
// several lines, ; comments, quoted strings, TTL units (1h30m). Record types: SOA, NS, A, AAAA, CNAME,
// TXT, MX, SRV. Written by hand because no maintained npm package parses master files into wire-ready
// records; the grammar is small. Errors name the file, the line, the record and the problem.
import { isIPv4, isIPv6 } from 'node:net';
import dnsPacket from 'dns-packet';
import { nameToKey, TYPE, type RdataPart, type RR } from './wire.js';

export interface ZoneRecord extends RR {
  /** Where it came from, for error messages: "zones/example.test:12" or "--record". */
  source: string;
  /** The record as written, for error messages. */
  text: string;
}

export class ZoneError extends Error {
  constructor(
    readonly where: string,
    readonly record: string | undefined,
    readonly problem: string,
  ) {
    super(record ? `${where}: record "${record}": ${problem}` : `${where}: ${problem}`);
    this.name = 'ZoneError';
  }
}

const SUPPORTED_TYPES: Record<string, number> = {
  SOA: TYPE.SOA,
  NS: TYPE.NS,
  A: TYPE.A,
  AAAA: TYPE.AAAA,
  CNAME: TYPE.CNAME,
  TXT: TYPE.TXT,
  MX: TYPE.MX,
  SRV: TYPE.SRV,
};

/** "300", "1h", "1h30m", "2d" → seconds. */
export function parseTtl(token: string): number {
  if (/^\d+$/.test(token)) return checkTtl(Number(token), token);
  const m = /^(?:\d+[wdhms])+$/i.test(token) ? token.match(/\d+[wdhms]/gi) : null;
  if (!m) throw new Error(`"${token}" is not a TTL`);
  const unit: Record<string, number> = { w: 604800, d: 86400, h: 3600, m: 60, s: 1 };
  const total = m.reduce(
    (sum, part) => sum + Number(part.slice(0, -1)) * unit[part.slice(-1).toLowerCase()]!,
    0,
  );
  return checkTtl(total, token);
}

function checkTtl(n: number, token: string): number {
  if (!Number.isSafeInteger(n) || n > 0x7fffffff) throw new Error(`TTL "${token}" out of range`);
  return n;
}

interface Token {
  text: string;
  quoted: boolean;
  /** Raw bytes of a quoted string after unescaping (TXT needs bytes, not text). */
  bytes?: Buffer;
}

interface LogicalLine {
  line: number;
  startsWithSpace: boolean;
  tokens: Token[];
  text: string;
}

/** Splits a master file into logical lines (joining parentheses), with quoted strings unescaped. */
function tokenize(input: string, where: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  let current: LogicalLine | undefined;
  let depth = 0;
  const lines = input.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!;
    if (!current) current = { line: n + 1, startsWithSpace: /^[ \t]/.test(raw), tokens: [], text: '' };
    let i = 0;
    let textEnd = raw.length;
    while (i < raw.length) {
      const ch = raw[i]!;
      if (ch === ' ' || ch === '\t') {
        i++;
      } else if (ch === ';') {
        textEnd = i;
        break;
      } else if (ch === '(') {
        depth++;
        i++;
      } else if (ch === ')') {
        if (depth === 0) throw new ZoneError(`${where}:${n + 1}`, raw.trim(), 'unbalanced ")"');
        depth--;
        i++;
      } else if (ch === '"') {
        const bytes: number[] = [];
        i++;
        let closed = false;
        while (i < raw.length) {
          const c = raw[i]!;
          if (c === '"') {
            closed = true;
            i++;
            break;
          }
          if (c === '\\') {
            const digits = /^\d{3}/.exec(raw.slice(i + 1));
            if (digits) {
              bytes.push(Number(digits[0]) & 0xff);
              i += 4;
            } else {
              bytes.push(...Buffer.from(raw[i + 1] ?? '', 'utf8'));
              i += 2;
            }
          } else {
            bytes.push(...Buffer.from(c, 'utf8'));
            i++;
          }
        }
        if (!closed) throw new ZoneError(`${where}:${n + 1}`, raw.trim(), 'unterminated quoted string');
        const buf = Buffer.from(bytes);
        current.tokens.push({ text: buf.toString('utf8'), quoted: true, bytes: buf });
      } else {
        let j = i;
        while (j < raw.length && !' \t;()"'.includes(raw[j]!)) {
          if (raw[j] === '\\') j++;
          j++;
        }
        current.tokens.push({ text: raw.slice(i, j), quoted: false });
        i = j;
      }
    }
    current.text += (current.text ? ' ' : '') + raw.slice(0, textEnd).trim();
    if (depth === 0) {
      if (current.tokens.length > 0) out.push(current);
      current = undefined;
    }
  }
  if (depth !== 0 && current) throw new ZoneError(`${where}:${current.line}`, current.text, 'unclosed "("');
  return out;
}

export interface ParseContext {
  /** Origin as a key; relative names are completed with it. */
  originKey: string | undefined;
  defaultTtl: number | undefined;
  /** Previous owner, for lines that start with a blank. */
  lastOwnerKey: string | undefined;
}

function toKey(text: string, ctx: ParseContext): string {
  if (text === '@') {
    if (!ctx.originKey) throw new Error('"@" used before $ORIGIN');
    return ctx.originKey;
  }
  if (text.endsWith('.') && !text.endsWith('\\.')) return nameToKey(text);
  if (!ctx.originKey) throw new Error(`relative name "${text}" with no $ORIGIN`);
  const rel = nameToKey(text);
  const key = rel.slice(0, -1) + ctx.originKey;
  if (key.length > 255) throw new Error(`name "${text}" is longer than 255 bytes`);
  return key;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function int(token: Token | undefined, what: string, max: number): number {
  if (!token || !/^\d+$/.test(token.text))
    throw new Error(`${what} must be a number, got "${token?.text ?? ''}"`);
  const n = Number(token.text);
  if (n > max) throw new Error(`${what} ${n} is larger than ${max}`);
  return n;
}

/** dns-packet's rdata encoders return rdlength + rdata; we keep the rdata. */
export function packetRdata(type: 'a' | 'aaaa' | 'txt' | 'srv', data: unknown): Buffer {
  // The rdata encoders are public in dns-packet but missing from its type definitions.
  const enc = (dnsPacket as unknown as Record<string, { encode(d: unknown): Buffer }>)[type]!;
  return Buffer.from(enc.encode(data).subarray(2));
}

function encodeRdata(type: number, args: Token[], ctx: ParseContext): RdataPart[] {
  const expect = (n: number) => {
    if (args.length !== n) throw new Error(`expected ${n} value${n === 1 ? '' : 's'}, got ${args.length}`);
  };
  const name = (t: Token | undefined, compress = true) => {
    if (!t) throw new Error('missing name');
    return { name: toKey(t.text, ctx), compress };
  };
  switch (type) {
    case TYPE.A:
      expect(1);
      if (!isIPv4(args[0]!.text)) throw new Error(`"${args[0]!.text}" is not an IPv4 address`);
      return [packetRdata('a', args[0]!.text)];
    case TYPE.AAAA:
      expect(1);
      if (!isIPv6(args[0]!.text)) throw new Error(`"${args[0]!.text}" is not an IPv6 address`);
      return [packetRdata('aaaa', args[0]!.text)];
    case TYPE.NS:
    case TYPE.CNAME:
      expect(1);
      return [name(args[0])];
    case TYPE.MX:
      expect(2);
      return [u16(int(args[0], 'MX preference', 0xffff)), name(args[1])];
    case TYPE.SRV:
      expect(4);
      // RFC 2782: the SRV target must not be compressed.
      return [
        packetRdata('srv', {
          priority: int(args[0], 'SRV priority', 0xffff),
          weight: int(args[1], 'SRV weight', 0xffff),
          port: int(args[2], 'SRV port', 0xffff),
          target: '.',
        }).subarray(0, 6),
        name(args[3], false),
      ];
    case TYPE.TXT: {
      if (args.length === 0) throw new Error('TXT needs at least one string');
      const strings = args.map((t) => t.bytes ?? Buffer.from(t.text, 'utf8'));
      for (const s of strings) if (s.length > 255) throw new Error('TXT string longer than 255 bytes');
      return [packetRdata('txt', strings)];
    }
    case TYPE.SOA: {
      expect(7);
      const times = args.slice(2).map((t, i) => {
        const what = ['serial', 'refresh', 'retry', 'expire', 'minimum'][i]!;
        if (i === 0) return int(t, 'SOA serial', 0xffffffff);
        try {
          return parseTtl(t.text);
        } catch {
          throw new Error(`SOA ${what} "${t.text}" is not a time`);
        }
      });
      return [name(args[0]), name(args[1]), ...times.map(u32)];
    }
    default:
      throw new Error(`unsupported record type ${type}`);
  }
}

/** Parses one record's tokens: [owner] [ttl] [class] type rdata... */
function parseRecordTokens(tokens: Token[], ownerGiven: boolean, ctx: ParseContext): ZoneRecord | undefined {
  let i = 0;
  let ownerKey: string;
  if (ownerGiven) {
    ownerKey = toKey(tokens[i++]!.text, ctx);
  } else {
    if (!ctx.lastOwnerKey) throw new Error('record with no owner name (line starts with a blank)');
    ownerKey = ctx.lastOwnerKey;
  }
  let ttl: number | undefined;
  for (let k = 0; k < 2 && i < tokens.length; k++) {
    const t = tokens[i]!.text;
    if (/^(IN)$/i.test(t)) i++;
    else if (/^(CH|HS|CS)$/i.test(t)) throw new Error(`class ${t.toUpperCase()} not supported (only IN)`);
    else if (ttl === undefined && /^\d/.test(t)) {
      ttl = parseTtl(t);
      i++;
    }
  }
  const typeToken = tokens[i++];
  if (!typeToken) throw new Error('missing record type');
  const typeName = typeToken.text.toUpperCase();
  const type = SUPPORTED_TYPES[typeName];
  if (type === undefined) {
    throw new Error(
      `unsupported record type "${typeToken.text}" (supported: ${Object.keys(SUPPORTED_TYPES).join(', ')})`,
    );
  }
  ctx.lastOwnerKey = ownerKey;
  const effectiveTtl = ttl ?? ctx.defaultTtl;
  if (effectiveTtl === undefined) throw new Error('no TTL given and no $TTL set');
  return {
    ownerKey,
    type,
    ttl: effectiveTtl,
    rdata: encodeRdata(type, tokens.slice(i), ctx),
    source: '',
    text: '',
  };
}

export interface ParsedZoneFile {
  originKey: string;
  records: ZoneRecord[];
}

/**
 * Parses a master file. `origin` (a name) is the starting $ORIGIN, e.g. from the config; the file's
 * own $ORIGIN wins. The zone's origin is the owner of its SOA record.
 */
export function parseZoneFile(
  text: string,
  where: string,
  options: { origin?: string; defaultTtl?: number } = {},
): ParsedZoneFile {
  const ctx: ParseContext = {
    originKey: options.origin ? nameToKey(options.origin) : undefined,
    defaultTtl: options.defaultTtl,
    lastOwnerKey: undefined,
  };
  const records: ZoneRecord[] = [];
  let soaOwner: string | undefined;
  for (const line of tokenize(text, where)) {
    const at = `${where}:${line.line}`;
    const first = line.tokens[0]!;
    try {
      if (!line.startsWithSpace && !first.quoted && first.text.startsWith('$')) {
        const directive = first.text.toUpperCase();
        const arg = line.tokens[1]?.text;
        if (!arg) throw new Error(`${directive} needs a value`);
        if (directive === '$ORIGIN') {
          ctx.originKey = toKey(arg.endsWith('.') ? arg : `${arg}.`, ctx);
        } else if (directive === '$TTL') {
          ctx.defaultTtl = parseTtl(arg);
        } else {
          throw new Error(`directive ${directive} not supported`);
        }
        continue;
      }
      const rr = parseRecordTokens(line.tokens, !line.startsWithSpace, ctx);
      if (!rr) continue;
      rr.source = at;
      rr.text = line.text;
      if (rr.type === TYPE.SOA) {
        if (soaOwner !== undefined) throw new Error('second SOA record (a zone file holds one zone)');
        soaOwner = rr.ownerKey;
        // RFC 2308: without $TTL, the SOA minimum field serves as the default TTL.
        if (ctx.defaultTtl === undefined) ctx.defaultTtl = (rr.rdata[6] as Buffer).readUInt32BE(0);
      }
      records.push(rr);
    } catch (err) {
      if (err instanceof ZoneError) throw err;
      throw new ZoneError(at, line.text, (err as Error).message);
    }
  }
  if (soaOwner === undefined) throw new ZoneError(where, undefined, 'no SOA record');
  return { originKey: soaOwner, records };
}

/** Parses one record line such as "www 300 A 192.0.2.1" relative to a zone (for --record and config). */
export function parseRecordLine(
  text: string,
  originKey: string,
  defaultTtl: number,
  where: string,
): ZoneRecord {
  const ctx: ParseContext = { originKey, defaultTtl, lastOwnerKey: undefined };
  try {
    const lines = tokenize(text, where);
    if (lines.length !== 1) throw new Error('expected exactly one record');
    const rr = parseRecordTokens(lines[0]!.tokens, true, ctx)!;
    rr.source = where;
    rr.text = text;
    return rr;
  } catch (err) {
    if (err instanceof ZoneError) throw err;
    throw new ZoneError(where, text, (err as Error).message);
  }
}
