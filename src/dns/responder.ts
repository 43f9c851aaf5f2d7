// Turns one query packet into its response packet(s). No sockets here: the server hands in bytes and
// the client's address and sends back what this returns, so tests and the fuzzer can drive it directly.
//
// Speed: every answer is pre-encoded once per (name, type) as a template holding the bytes that follow
// the question, with names compressed against the question's position (which depends only on the
// question name's length, not its case). A query then costs a Map lookup and a few buffer copies: the
// ID, flags and question are patched in, and a health-aware record set appends its chosen addresses,
// each a pre-encoded 2-byte owner pointer + fixed record tail.
import { BlockList, isIPv4 } from 'node:net';
import type { Target } from '../registry/target.js';
import { StatCell, type DnsMetrics } from './metrics.js';
import type { AddressPool, AddressRecordSet } from './record-set.js';
import { RateLimiter } from './rrl.js';
import { typeLabel, type Resolution, type Zone, type ZoneSet } from './zone.js';
import type { ZoneRecord } from './zone-file.js';
import {
  CLASS_IN,
  decodeQuery,
  FLAG_AA,
  FLAG_QR,
  FLAG_TC,
  keyToName,
  keyToWire,
  MessageWriter,
  OPCODE_QUERY,
  OPT_CODE_ECS,
  RCODE,
  RCODE_NAMES,
  TYPE,
  type Query,
} from './wire.js';

export interface ResponderOptions {
  /** Our EDNS UDP payload size (advertised, and the most we send over UDP). */
  udpPayloadSize: number;
  /** CIDRs allowed to transfer zones (AXFR/IXFR over TCP); empty = nobody. */
  allowTransfer: string[];
}

interface Template {
  /** Flags to OR into QR + the query's opcode and RD: AA and the rcode's low 4 bits. */
  flags: number;
  /** Extended rcode bits (for BADVERS), sent in the OPT record. */
  extRcode: number;
  ancount: number;
  nscount: number;
  /** Everything after the question, except health-aware addresses and OPT. */
  body: Buffer;
  dynamic: { set: AddressRecordSet; owner: Buffer } | undefined;
  /** Sent instead when a health-aware set has no address left to give (all drained): NODATA. */
  empty: Template | undefined;
  stat: StatCell;
}

/** Cache bounds: templates exist per existing name and type, so only odd qtypes could grow them. */
const MAX_TEMPLATES = 50_000;
const TRANSFER_CHUNK = 16_000;
const OPT_FIXED = 11;

export class Responder {
  /** name key → qtype → template (two levels: no string building per query). */
  private readonly templates = new Map<string, Map<number, Template>>();
  private templateCount = 0;
  private readonly negative = new Map<string, Template>();
  private readonly allowTransfer = new BlockList();
  private readonly formerrStat: StatCell;
  private readonly notimpStat: StatCell;

  constructor(
    private readonly zones: ZoneSet,
    private readonly metrics: DnsMetrics,
    private readonly options: ResponderOptions,
    private readonly rrl: RateLimiter | undefined = undefined,
  ) {
    for (const cidr of options.allowTransfer) {
      const [addr, bits] = cidr.split('/');
      const v4 = isIPv4(addr ?? '');
      this.allowTransfer.addSubnet(
        addr!,
        bits === undefined ? (v4 ? 32 : 128) : Number(bits),
        v4 ? 'ipv4' : 'ipv6',
      );
    }
    this.formerrStat = metrics.queries.get({
      zone: '',
      name: '(malformed)',
      type: 'other',
      rcode: 'FORMERR',
    });
    this.notimpStat = metrics.queries.get({ zone: '', name: '(opcode)', type: 'other', rcode: 'NOTIMP' });
  }

  /** Drops cached answers (after zones or record sets change). */
  invalidate(): void {
    this.templates.clear();
    this.templateCount = 0;
    this.negative.clear();
  }

  /**
   * The answer to one packet: a buffer, several (zone transfer over TCP), or null to send nothing.
   * Never throws for bad input: malformed packets are dropped or answered FORMERR.
   */
  respond(msg: Buffer, clientAddress: string, tcp: boolean): Buffer | Buffer[] | null {
    const decoded = decodeQuery(msg);
    if (!decoded.ok) {
      if (decoded.kind === 'drop') {
        this.metrics.dropped.get({ reason: 'malformed' }).n++;
        return null;
      }
      if (!tcp && this.limited(clientAddress) === 'drop') return null;
      this.formerrStat.n++;
      return headerOnly(decoded.id, msg.length >= 4 ? msg.readUInt16BE(2) : 0, RCODE.FORMERR);
    }
    const q = decoded.query;
    const limit = tcp
      ? 65535
      : q.edns
        ? Math.max(512, Math.min(q.edns.udpSize, this.options.udpPayloadSize))
        : 512;
    if (!tcp && this.rrl?.enabled) {
      const verdict = this.limited(clientAddress);
      if (verdict === 'drop') return null;
      if (verdict === 'slip') return this.truncated(msg, q, 0);
    }
    if (q.opcode !== OPCODE_QUERY) {
      this.notimpStat.n++;
      return this.simple(msg, q, RCODE.NOTIMP);
    }
    if (q.edns && q.edns.version !== 0) return this.simple(msg, q, RCODE.BADVERS);
    if (q.qtype === TYPE.AXFR || q.qtype === TYPE.IXFR) return this.transfer(msg, q, clientAddress, tcp);
    const tpl = q.qclass === CLASS_IN ? this.template(q) : this.refusedTemplate(q.qtype);
    return this.build(msg, q, tpl, clientAddress, limit);
  }

  private limited(address: string): 'ok' | 'drop' | 'slip' {
    if (!this.rrl?.enabled) return 'ok';
    const verdict = this.rrl.check(address);
    if (verdict !== 'ok') this.metrics.rrl.get({ action: verdict === 'drop' ? 'dropped' : 'slipped' }).n++;
    return verdict;
  }

  private template(q: Query): Template {
    const hit = this.templates.get(q.qnameKey)?.get(q.qtype);
    if (hit) return hit;
    const res = this.zones.resolve(q.qnameKey, q.qtype);
    if (res.kind === 'refused') return this.refusedTemplate(q.qtype);
    if (res.kind === 'nxdomain' && res.answer.length === 0) {
      // Not cached per name (a flood of random names must not fill memory): the SOA's encoding depends
      // only on where the zone apex sits in the question, so cache by zone and that offset.
      const zone = res.zone!;
      const apexAt = 12 + q.qnameKey.length - zone.originKey.length;
      const nkey = `${zone.originKey}|${apexAt}|${q.qtype}`;
      let tpl = this.negative.get(nkey);
      if (!tpl) {
        tpl = this.encode(
          res,
          q,
          apexAt,
          this.metrics.queries.get({
            zone: zone.name,
            name: '(nxdomain)',
            type: typeLabel(q.qtype),
            rcode: 'NXDOMAIN',
          }),
        );
        if (this.negative.size >= MAX_TEMPLATES) this.negative.clear();
        this.negative.set(nkey, tpl);
      }
      return tpl;
    }
    const stat = this.metrics.queries.get({
      zone: res.zone!.name,
      name: keyToName(q.qnameKey),
      type: typeLabel(q.qtype),
      rcode: RCODE_NAMES[res.rcode]!,
    });
    const tpl = this.encode(res, q, -1, stat);
    if (this.templateCount >= MAX_TEMPLATES) this.invalidate();
    let byType = this.templates.get(q.qnameKey);
    if (!byType) this.templates.set(q.qnameKey, (byType = new Map()));
    byType.set(q.qtype, tpl);
    this.templateCount++;
    return tpl;
  }

  private refusedTemplate(qtype: number): Template {
    const key = `refused|${qtype}`;
    let tpl = this.negative.get(key);
    if (!tpl) {
      const stat = this.metrics.queries.get({
        zone: '',
        name: '(refused)',
        type: typeLabel(qtype),
        rcode: 'REFUSED',
      });
      tpl = {
        flags: RCODE.REFUSED,
        extRcode: 0,
        ancount: 0,
        nscount: 0,
        body: Buffer.alloc(0),
        dynamic: undefined,
        empty: undefined,
        stat,
      };
      this.negative.set(key, tpl);
    }
    return tpl;
  }

  /** Encodes a resolution. `apexAt` >= 0: compress only against the zone apex inside the question. */
  private encode(res: Resolution, q: Query, apexAt: number, stat: StatCell): Template {
    const w = new MessageWriter(q.questionEnd);
    if (apexAt >= 0) w.seedName(res.zone!.originKey, apexAt);
    else w.seedName(q.qnameKey, 12);
    for (const rr of res.answer) w.writeRR(rr);
    let dynamic: Template['dynamic'];
    if (res.dynamic) {
      const off = w.offsetOf(res.dynamic.ownerKey);
      const owner =
        off !== undefined ? Buffer.from([0xc0 | (off >> 8), off & 0xff]) : keyToWire(res.dynamic.ownerKey);
      dynamic = { set: res.dynamic.set, owner };
    }
    for (const rr of res.authority) w.writeRR(rr);
    const tpl: Template = {
      flags: FLAG_AA | res.rcode,
      extRcode: 0,
      ancount: res.answer.length,
      nscount: res.authority.length,
      body: w.bytes(q.questionEnd),
      dynamic,
      empty: undefined,
      stat,
    };
    if (res.dynamic) {
      const nodata: Resolution = {
        ...res,
        dynamic: undefined,
        authority: [res.zone!.negativeSoa],
        kind: 'nodata',
      };
      tpl.empty = this.encode(nodata, q, -1, stat);
    }
    return tpl;
  }

  private build(msg: Buffer, q: Query, template: Template, clientAddress: string, limit: number): Buffer {
    let tpl = template;
    let targets: Target[] | undefined;
    let pool: AddressPool | undefined;
    if (tpl.dynamic) {
      const picked = tpl.dynamic.set.pick({ address: clientAddress, ecs: q.edns?.ecs });
      if (picked.targets.length === 0) tpl = tpl.empty!;
      else {
        targets = picked.targets;
        pool = picked.pool;
      }
    }
    tpl.stat.n++;
    const scoped = tpl.dynamic?.set.scoped ?? false;
    const optLen = q.edns ? OPT_FIXED + ecsLength(q) : 0;
    let dynLen = 0;
    let tails: Buffer[] | undefined;
    if (targets) {
      const ownerLen = tpl.dynamic!.owner.length;
      tails = new Array<Buffer>(targets.length);
      for (let i = 0; i < targets.length; i++) {
        const tail = pool!.tails.get(targets[i]!)!;
        tails[i] = tail;
        dynLen += ownerLen + tail.length;
      }
    }
    const total = q.questionEnd + tpl.body.length + dynLen + optLen;
    if (total > limit) {
      if (limit === 65535) return this.simple(msg, q, RCODE.SERVFAIL);
      this.metrics.truncated.n++;
      return this.truncated(msg, q, tpl.flags);
    }
    const out = Buffer.allocUnsafe(total);
    writeHeader(out, q, tpl.flags, tpl.ancount + (targets?.length ?? 0), tpl.nscount, optLen > 0 ? 1 : 0);
    put(out, 12, msg, 12, q.questionEnd);
    // Answer records: static part (e.g. a CNAME chain), then the chosen addresses, then authority.
    // A template with addresses never has an authority section, so the body can be split simply.
    let pos = q.questionEnd;
    if (targets) {
      pos += put(out, pos, tpl.body);
      const owner = tpl.dynamic!.owner;
      for (const tail of tails!) {
        pos += put(out, pos, owner);
        pos += put(out, pos, tail);
      }
    } else {
      pos += put(out, pos, tpl.body);
    }
    if (optLen > 0) writeOpt(out, pos, q, this.options.udpPayloadSize, tpl.extRcode, scoped);
    return out;
  }

  /** Header + question (+ OPT), with an rcode and no records. */
  private simple(msg: Buffer, q: Query, rcode: number): Buffer {
    const optLen = q.edns ? OPT_FIXED + ecsLength(q) : 0;
    const out = Buffer.allocUnsafe(q.questionEnd + optLen);
    writeHeader(out, q, rcode & 0xf, 0, 0, optLen > 0 ? 1 : 0);
    msg.copy(out, 12, 12, q.questionEnd);
    if (optLen > 0) writeOpt(out, q.questionEnd, q, this.options.udpPayloadSize, rcode >> 4, false);
    return out;
  }

  /** The answer did not fit (or RRL slipped it): TC set, question and OPT kept, no records. */
  private truncated(msg: Buffer, q: Query, flags: number): Buffer {
    const out = this.simple(msg, q, 0);
    out.writeUInt16BE(out.readUInt16BE(2) | FLAG_TC | (flags & (FLAG_AA | 0xf)), 2);
    return out;
  }

  /** AXFR (and IXFR, answered with the full zone as RFC 1995 allows): TCP only, allowed clients only. */
  private transfer(msg: Buffer, q: Query, clientAddress: string, tcp: boolean): Buffer | Buffer[] {
    const zone = this.zones.zones.get(q.qnameKey);
    const v4 = isIPv4(clientAddress.replace(/^::ffff:/, ''));
    const allowed = this.allowTransfer.check(clientAddress.replace(/^::ffff:/, ''), v4 ? 'ipv4' : 'ipv6');
    if (!zone || !allowed) {
      this.metrics.queries.get({
        zone: zone?.name ?? '',
        name: '(transfer)',
        type: typeLabel(q.qtype),
        rcode: 'REFUSED',
      }).n++;
      return this.simple(msg, q, RCODE.REFUSED);
    }
    if (!tcp) return this.truncated(msg, q, FLAG_AA);
    this.metrics.queries.get({
      zone: zone.name,
      name: '(transfer)',
      type: typeLabel(q.qtype),
      rcode: 'NOERROR',
    }).n++;
    return transferMessages(msg, q, zone);
  }
}

function transferRecords(zone: Zone): ZoneRecord[] {
  const records = zone.allRecords();
  for (const set of zone.recordSets()) {
    for (const address of set.allAddresses()) {
      const pool = set.pools.find((p) => p.group.get(address))!;
      const tail = pool.tails.get(pool.group.get(address)!)!;
      records.push({
        ownerKey: set.spec.ownerKey,
        type: set.typeCode,
        ttl: set.ttl,
        rdata: [tail.subarray(10)],
        source: '',
        text: '',
      });
    }
  }
  records.push(zone.soa);
  return records;
}

function transferMessages(msg: Buffer, q: Query, zone: Zone): Buffer[] {
  const out: Buffer[] = [];
  let w: MessageWriter | undefined;
  let count = 0;
  const flush = () => {
    if (!w) return;
    const buf = w.bytes(0);
    writeHeader(buf, q, FLAG_AA, count, 0, 0);
    msg.copy(buf, 12, 12, q.questionEnd);
    out.push(buf);
    w = undefined;
  };
  for (const rr of transferRecords(zone)) {
    if (!w) {
      w = new MessageWriter(q.questionEnd);
      w.seedName(q.qnameKey, 12);
      count = 0;
    }
    w.writeRR(rr);
    count++;
    if (w.length > TRANSFER_CHUNK) flush();
  }
  flush();
  return out;
}

// Hot-path byte helpers: Buffer#copy and #writeUInt16BE validate their arguments on every call,
// which costs more than the copy itself for these few-byte writes; offsets here are ours, not input.
function put16(out: Buffer, pos: number, v: number): void {
  out[pos] = v >>> 8;
  out[pos + 1] = v & 0xff;
}

function put(out: Buffer, pos: number, src: Uint8Array, start = 0, end = src.length): number {
  out.set(start === 0 && end === src.length ? src : src.subarray(start, end), pos);
  return end - start;
}

function writeHeader(out: Buffer, q: Query, flags: number, an: number, ns: number, ar: number): void {
  put16(out, 0, q.id);
  // QR, the query's opcode and RD; never RA (no recursion here).
  put16(out, 2, FLAG_QR | (q.flags & 0x7900) | flags);
  put16(out, 4, 1);
  put16(out, 6, an);
  put16(out, 8, ns);
  put16(out, 10, ar);
}

function headerOnly(id: number, queryFlags: number, rcode: number): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(FLAG_QR | (queryFlags & 0x7900) | rcode, 2);
  return out;
}

function ecsLength(q: Query): number {
  const ecs = q.edns?.ecs;
  return ecs ? 4 + 4 + ecs.address.length : 0;
}

/** Our OPT record: payload size, extended rcode, no DO (no DNSSEC), and the client subnet echoed. */
function writeOpt(
  out: Buffer,
  pos: number,
  q: Query,
  payload: number,
  extRcode: number,
  scoped: boolean,
): void {
  out[pos] = 0;
  out.writeUInt16BE(TYPE.OPT, pos + 1);
  out.writeUInt16BE(payload, pos + 3);
  out[pos + 5] = extRcode;
  out[pos + 6] = 0;
  out.writeUInt16BE(0, pos + 7);
  const ecs = q.edns!.ecs;
  if (!ecs) {
    out.writeUInt16BE(0, pos + 9);
    return;
  }
  const len = 4 + ecs.address.length;
  out.writeUInt16BE(4 + len, pos + 9);
  out.writeUInt16BE(OPT_CODE_ECS, pos + 11);
  out.writeUInt16BE(len, pos + 13);
  out.writeUInt16BE(ecs.family, pos + 15);
  out[pos + 17] = ecs.sourcePrefix;
  // RFC 7871 scope: how much of the address the answer depended on (0 = not at all).
  out[pos + 18] = scoped ? ecs.sourcePrefix : 0;
  ecs.address.copy(out, pos + 19);
}
