// The authoritative data: zones, their names (nodes) and record sets, and the lookup that turns a
// question into an answer, a CNAME chain, NODATA or NXDOMAIN (RFC 1034 4.3.2, minus delegations).
import { ZoneError, type ZoneRecord } from './zone-file.js';
import type { AddressRecordSet } from './record-set.js';
import { isSubdomain, keyToName, parentKey, RCODE, TYPE, TYPE_NAMES } from './wire.js';

interface Node {
  records: Map<number, ZoneRecord[]>;
  dynamic: Map<number, AddressRecordSet>;
}

const MAX_CNAME_CHAIN = 8;
const RFC8482_HINFO = Buffer.from('\x07RFC8482\x00', 'latin1');

export class Zone {
  readonly nodes = new Map<string, Node>();
  readonly soa: ZoneRecord;
  /** The SOA as sent in negative answers: its TTL is min(SOA TTL, SOA minimum) (RFC 2308 §3). */
  readonly negativeSoa: ZoneRecord;
  readonly name: string;

  constructor(
    readonly originKey: string,
    records: ZoneRecord[],
  ) {
    this.name = keyToName(originKey);
    const soas = records.filter((r) => r.type === TYPE.SOA);
    if (soas.length !== 1)
      throw new ZoneError(this.name, undefined, `needs exactly one SOA record, has ${soas.length}`);
    this.soa = soas[0]!;
    if (this.soa.ownerKey !== originKey) {
      throw new ZoneError(this.soa.source, this.soa.text, `SOA must be at the zone apex ${this.name}`);
    }
    const minimum = (this.soa.rdata[6] as Buffer).readUInt32BE(0);
    this.negativeSoa = { ...this.soa, ttl: Math.min(this.soa.ttl, minimum) };
    for (const r of records) this.add(r);
  }

  private node(key: string): Node {
    let node = this.nodes.get(key);
    if (!node) {
      node = { records: new Map(), dynamic: new Map() };
      this.nodes.set(key, node);
      // Empty non-terminals exist (NODATA, not NXDOMAIN), so create every ancestor up to the apex.
      const parent = parentKey(key);
      if (key !== this.originKey && parent !== undefined) this.node(parent);
    }
    return node;
  }

  add(r: ZoneRecord): void {
    if (!isSubdomain(r.ownerKey, this.originKey)) {
      throw new ZoneError(
        r.source,
        r.text,
        `owner ${keyToName(r.ownerKey)} is outside the zone ${this.name}`,
      );
    }
    const node = this.node(r.ownerKey);
    const hasOther = [...node.records.keys(), ...node.dynamic.keys()].some((t) => t !== r.type);
    if (r.type === TYPE.CNAME && (hasOther || node.records.has(TYPE.CNAME))) {
      throw new ZoneError(r.source, r.text, 'a CNAME must be the only record at its name (RFC 1034 3.6.2)');
    }
    if (r.type !== TYPE.CNAME && node.records.has(TYPE.CNAME)) {
      throw new ZoneError(r.source, r.text, `${keyToName(r.ownerKey)} already has a CNAME`);
    }
    if (r.type === TYPE.CNAME && r.ownerKey === this.originKey) {
      throw new ZoneError(r.source, r.text, 'a CNAME cannot be at the zone apex');
    }
    if (r.type === TYPE.SOA && node.records.has(TYPE.SOA)) {
      throw new ZoneError(r.source, r.text, 'second SOA record');
    }
    let list = node.records.get(r.type);
    if (!list) node.records.set(r.type, (list = []));
    // RFC 2181 5.2: all records of one RRset share one TTL; use the first one's.
    const ttl = list[0]?.ttl ?? r.ttl;
    if (!list.some((x) => sameRdata(x, r))) list.push({ ...r, ttl });
  }

  /** Adds a health-aware record set; it replaces static records of the same name and type. */
  addRecordSet(set: AddressRecordSet, where: string): void {
    const key = set.spec.ownerKey;
    if (!isSubdomain(key, this.originKey)) {
      throw new ZoneError(where, set.name, `is outside the zone ${this.name}`);
    }
    const node = this.node(key);
    if (node.records.has(TYPE.CNAME))
      throw new ZoneError(where, set.name, `${keyToName(key)} already has a CNAME`);
    if (node.dynamic.has(set.typeCode)) throw new ZoneError(where, set.name, 'record set defined twice');
    node.records.delete(set.typeCode);
    node.dynamic.set(set.typeCode, set);
  }

  recordSets(): AddressRecordSet[] {
    return [...this.nodes.values()].flatMap((n) => [...n.dynamic.values()]);
  }

  /** Every static record, SOA first (for zone transfers). */
  allRecords(): ZoneRecord[] {
    const rest = [...this.nodes.values()]
      .flatMap((n) => [...n.records.values()].flat())
      .filter((r) => r.type !== TYPE.SOA);
    return [this.soa, ...rest];
  }

  counts(): { names: number; records: number; recordSets: number } {
    let records = 0;
    for (const n of this.nodes.values()) for (const l of n.records.values()) records += l.length;
    return { names: this.nodes.size, records, recordSets: this.recordSets().length };
  }

  get(key: string): Node | undefined {
    return this.nodes.get(key);
  }
}

function sameRdata(a: ZoneRecord, b: ZoneRecord): boolean {
  if (a.rdata.length !== b.rdata.length) return false;
  return a.rdata.every((p, i) => {
    const q = b.rdata[i]!;
    if (Buffer.isBuffer(p)) return Buffer.isBuffer(q) && p.equals(q);
    return !Buffer.isBuffer(q) && p.name === q.name;
  });
}

/** What a question resolves to, before encoding. */
export interface Resolution {
  rcode: number;
  zone: Zone | undefined;
  answer: ZoneRecord[];
  /** A health-aware set answered last, owned by `ownerKey` (the qname or the end of a CNAME chain). */
  dynamic: { set: AddressRecordSet; ownerKey: string } | undefined;
  authority: ZoneRecord[];
  /** Label for metrics: the name and type as found in the zone, or "(nxdomain)" / "(refused)". */
  kind: 'answer' | 'nodata' | 'nxdomain' | 'refused';
}

/** Every zone this server is authoritative for. */
export class ZoneSet {
  readonly zones = new Map<string, Zone>();

  add(zone: Zone): void {
    if (this.zones.has(zone.originKey)) throw new ZoneError(zone.name, undefined, 'zone loaded twice');
    this.zones.set(zone.originKey, zone);
  }

  /** The closest enclosing zone, walking up the name one label at a time. */
  findZone(key: string): Zone | undefined {
    let k: string | undefined = key;
    while (k !== undefined) {
      const z = this.zones.get(k);
      if (z) return z;
      k = parentKey(k);
    }
    return undefined;
  }

  recordSets(): AddressRecordSet[] {
    return [...this.zones.values()].flatMap((z) => z.recordSets());
  }

  resolve(qnameKey: string, qtype: number): Resolution {
    const zone = this.findZone(qnameKey);
    const res: Resolution = {
      rcode: RCODE.NOERROR,
      zone,
      answer: [],
      dynamic: undefined,
      authority: [],
      kind: 'answer',
    };
    if (!zone) {
      res.rcode = RCODE.REFUSED;
      res.kind = 'refused';
      return res;
    }
    let name = qnameKey;
    for (let hop = 0; hop <= MAX_CNAME_CHAIN; hop++) {
      const node = zone.get(name);
      if (!node) {
        // RFC 6604: the rcode describes the last name in the chain.
        res.rcode = RCODE.NXDOMAIN;
        res.kind = 'nxdomain';
        res.authority.push(zone.negativeSoa);
        return res;
      }
      const cname = node.records.get(TYPE.CNAME);
      if (cname && qtype !== TYPE.CNAME && qtype !== TYPE.ANY) {
        res.answer.push(cname[0]!);
        const target = (cname[0]!.rdata[0] as { name: string }).name;
        // Chase only inside this zone; a resolver follows the rest.
        if (!isSubdomain(target, zone.originKey)) return res;
        name = target;
        continue;
      }
      if (qtype === TYPE.ANY && (node.records.size > 0 || node.dynamic.size > 0)) {
        // RFC 8482: answer ANY with one synthesized HINFO instead of every RRset (no amplification).
        res.answer.push({
          ownerKey: name,
          type: TYPE.HINFO,
          ttl: 3600,
          rdata: [RFC8482_HINFO],
          source: '',
          text: '',
        });
        return res;
      }
      const dynamic = node.dynamic.get(qtype);
      if (dynamic) {
        res.dynamic = { set: dynamic, ownerKey: name };
        return res;
      }
      const records = node.records.get(qtype);
      if (records) {
        res.answer.push(...records);
        return res;
      }
      if (res.answer.length === 0) {
        res.kind = 'nodata';
        res.authority.push(zone.negativeSoa);
      }
      return res;
    }
    // A CNAME loop inside the zone: answer what we have, as BIND does after its chain limit.
    return res;
  }
}

export function typeLabel(qtype: number): string {
  return TYPE_NAMES[qtype] ?? 'other';
}
