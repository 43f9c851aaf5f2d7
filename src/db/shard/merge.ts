// Merging the answers of a scattered SELECT: concatenate, re-aggregate (count and sum add up, min and
// max compare, avg is the summed sum over the summed count), sort again by the ORDER BY keys and cut
// LIMIT/OFFSET. Values are compared and added as their PostgreSQL types would be (integers and numerics
// exactly, with BigInt; floats as numbers; text by bytes, which is the C collation).
import type { AggKind, MergePlan, SortKey } from './merge-plan.js';

export interface Field {
  name: string;
  tableOid: number;
  column: number;
  typeOid: number;
  typeLen: number;
  typeMod: number;
  format: number;
}

export type Row = (Buffer | null)[];

export class MergeError extends Error {}

const INT_TYPES = new Set([20, 21, 23, 26]); // int8, int2, int4, oid
const FLOAT_TYPES = new Set([700, 701]);
const NUMERIC = 1700;
const BOOL = 16;

export function parseRowDescription(body: Buffer): Field[] {
  const n = body.readInt16BE(5);
  const fields: Field[] = [];
  let pos = 7;
  for (let i = 0; i < n; i++) {
    const nul = body.indexOf(0, pos);
    const name = body.toString('utf8', pos, nul);
    pos = nul + 1;
    fields.push({
      name,
      tableOid: body.readInt32BE(pos),
      column: body.readInt16BE(pos + 4),
      typeOid: body.readInt32BE(pos + 6),
      typeLen: body.readInt16BE(pos + 10),
      typeMod: body.readInt32BE(pos + 12),
      format: body.readInt16BE(pos + 16),
    });
    pos += 18;
  }
  return fields;
}

export function encodeRowDescription(fields: Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    const b = Buffer.alloc(18);
    b.writeInt32BE(f.tableOid, 0);
    b.writeInt16BE(f.column, 4);
    b.writeInt32BE(f.typeOid, 6);
    b.writeInt16BE(f.typeLen, 10);
    b.writeInt32BE(f.typeMod, 12);
    b.writeInt16BE(f.format, 16);
    parts.push(Buffer.from(f.name + '\0'), b);
  }
  const body = Buffer.concat(parts);
  const out = Buffer.alloc(7 + body.length);
  out.write('T', 0, 'latin1');
  out.writeInt32BE(6 + body.length, 1);
  out.writeInt16BE(fields.length, 5);
  body.copy(out, 7);
  return out;
}

export function parseDataRow(body: Buffer): Row {
  const n = body.readInt16BE(5);
  const row: Row = [];
  let pos = 7;
  for (let i = 0; i < n; i++) {
    const len = body.readInt32BE(pos);
    pos += 4;
    if (len < 0) row.push(null);
    else {
      row.push(body.subarray(pos, pos + len));
      pos += len;
    }
  }
  return row;
}

export function encodeDataRow(row: Row): Buffer {
  let size = 7;
  for (const v of row) size += 4 + (v ? v.length : 0);
  const out = Buffer.allocUnsafe(size);
  out.write('D', 0, 'latin1');
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(row.length, 5);
  let pos = 7;
  for (const v of row) {
    if (!v) {
      out.writeInt32BE(-1, pos);
      pos += 4;
    } else {
      out.writeInt32BE(v.length, pos);
      v.copy(out, pos + 4);
      pos += 4 + v.length;
    }
  }
  return out;
}

// ---------------------------------------------------------------- exact decimals

/** A decimal as an integer and a scale: 12.50 = { n: 1250n, scale: 2 }. */
interface Decimal {
  n: bigint;
  scale: number;
}

function parseDecimal(text: string): Decimal {
  const t = text.trim();
  const neg = t.startsWith('-');
  const [int = '0', frac = ''] = t.replace(/^[+-]/, '').split('.');
  const n = BigInt(int + frac) * (neg ? -1n : 1n);
  return { n, scale: frac.length };
}

function align(a: Decimal, scale: number): bigint {
  return a.n * 10n ** BigInt(scale - a.scale);
}

function addDecimal(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(a.scale, b.scale);
  return { n: align(a, scale) + align(b, scale), scale };
}

function compareDecimal(a: Decimal, b: Decimal): number {
  const scale = Math.max(a.scale, b.scale);
  const x = align(a, scale);
  const y = align(b, scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

function formatDecimal(d: Decimal): string {
  const neg = d.n < 0n;
  const digits = (neg ? -d.n : d.n).toString().padStart(d.scale + 1, '0');
  const int = digits.slice(0, digits.length - d.scale);
  const frac = digits.slice(digits.length - d.scale);
  return (neg ? '-' : '') + int + (d.scale > 0 ? '.' + frac : '');
}

/**
 * sum / count as PostgreSQL's numeric division shows it: at least 16 significant digits
 * (select_div_scale: 16 minus four digits per base-10000 weight of the quotient, never below the
 * operands' scales), rounded half away from zero.
 */
function divideDecimal(sum: Decimal, count: bigint): string {
  const weight = (d: Decimal): { w: number; first: number } => {
    const abs = d.n < 0n ? -d.n : d.n;
    if (abs === 0n) return { w: 0, first: 0 };
    const digits = abs.toString();
    const intDigits = digits.length - d.scale; // may be <= 0 for 0.00x
    // Base-10000 weight of the leading group and that group's value.
    const w = Math.floor((intDigits - 1) / 4);
    const lead = intDigits - w * 4; // digits in the leading group (1..4)
    const padded = lead <= 0 ? '0' : digits.slice(0, lead);
    return { w, first: Number(padded) || 0 };
  };
  const a = weight(sum);
  const b = weight({ n: count, scale: 0 });
  let qweight = a.w - b.w;
  if (a.first <= b.first) qweight--;
  let rscale = 16 - qweight * 4;
  rscale = Math.max(rscale, sum.scale, 0);
  rscale = Math.min(rscale, 1000);
  // Round half away from zero at rscale digits.
  const num = align(sum, sum.scale) * 10n ** BigInt(rscale - sum.scale + 1);
  let q = num / count; // one extra digit
  const neg = q < 0n;
  if (neg) q = -q;
  q = (q + 5n) / 10n;
  return formatDecimal({ n: neg ? -q : q, scale: rscale });
}

// ---------------------------------------------------------------- comparing and aggregating

function compareValues(type: number, a: Buffer, b: Buffer): number {
  if (INT_TYPES.has(type)) {
    const x = BigInt(a.toString('latin1'));
    const y = BigInt(b.toString('latin1'));
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (type === NUMERIC) {
    const x = a.toString('latin1');
    const y = b.toString('latin1');
    if (x === 'NaN' || y === 'NaN') return x === y ? 0 : x === 'NaN' ? 1 : -1;
    return compareDecimal(parseDecimal(x), parseDecimal(y));
  }
  if (FLOAT_TYPES.has(type)) {
    const x = Number(a.toString('latin1').replace('Infinity', 'Infinity'));
    const y = Number(b.toString('latin1'));
    if (Number.isNaN(x) || Number.isNaN(y))
      return Number.isNaN(x) === Number.isNaN(y) ? 0 : Number.isNaN(x) ? 1 : -1;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (type === BOOL) return a[0]! - b[0]!; // 'f' < 't'
  return Buffer.compare(a, b);
}

function sumValues(type: number, a: Buffer, b: Buffer): Buffer {
  if (INT_TYPES.has(type)) return Buffer.from((BigInt(a.toString()) + BigInt(b.toString())).toString());
  if (FLOAT_TYPES.has(type)) return Buffer.from(String(Number(a.toString()) + Number(b.toString())));
  return Buffer.from(formatDecimal(addDecimal(parseDecimal(a.toString()), parseDecimal(b.toString()))));
}

function combineAgg(kind: AggKind, type: number, a: Buffer | null, b: Buffer | null): Buffer | null {
  if (a === null) return b;
  if (b === null) return a;
  switch (kind) {
    case 'count':
    case 'sum':
    case 'avg': // the avg column carries sum() until the end
      return sumValues(type, a, b);
    case 'min':
      return compareValues(type, a, b) <= 0 ? a : b;
    case 'max':
      return compareValues(type, a, b) >= 0 ? a : b;
  }
}

export interface MergedAnswer {
  fields: Field[];
  rows: Row[];
}

/** The merged answer; `params` are the text values of the bound parameters (for LIMIT/OFFSET $n). */
export function mergeRows(
  plan: MergePlan,
  fields: Field[],
  shardRows: Row[][],
  params: (string | null)[] = [],
): MergedAnswer {
  if (fields.some((f) => f.format !== 0) && (plan.aggregates || plan.order.length > 0))
    throw new MergeError('binary result format cannot be merged (ask for text results)');
  let rows: Row[];
  let outFields = fields;
  if (plan.aggregates) {
    const aggs = plan.aggregates;
    const groups = new Map<string, Row>();
    for (const list of shardRows) {
      for (const row of list) {
        const key = JSON.stringify(
          row.slice(0, aggs.length).map((v, i) => (aggs[i] ? 0 : v === null ? null : v.toString('base64'))),
        );
        const acc = groups.get(key);
        if (!acc) {
          groups.set(key, row.slice());
          continue;
        }
        for (let i = 0; i < row.length; i++) {
          const kind = i < aggs.length ? aggs[i] : 'count'; // hidden columns are counts
          if (kind) acc[i] = combineAgg(kind, fields[i]!.typeOid, acc[i]!, row[i]!);
        }
      }
    }
    // Without GROUP BY an aggregate answers one row even over nothing: keep one if all shards said so.
    rows = [...groups.values()];
    outFields = fields.slice();
    for (const [pos, countAt] of plan.avgCount) {
      const sumType = fields[pos]!.typeOid;
      const isFloat = FLOAT_TYPES.has(sumType);
      outFields[pos] = {
        ...fields[pos]!,
        name: fields[pos]!.name === 'sum' ? 'avg' : fields[pos]!.name,
        typeOid: isFloat ? 701 : NUMERIC,
        typeLen: isFloat ? 8 : -1,
        typeMod: -1,
      };
      for (const row of rows) {
        const s = row[pos];
        const c = row[countAt];
        if (!s || !c || BigInt(c.toString()) === 0n) {
          row[pos] = null;
          continue;
        }
        row[pos] = isFloat
          ? Buffer.from(String(Number(s.toString()) / Number(c.toString())))
          : Buffer.from(divideDecimal(parseDecimal(s.toString()), BigInt(c.toString())));
      }
    }
  } else {
    rows = shardRows.flat();
  }
  if (plan.hidden > 0) {
    const visible = outFields.length - plan.hidden;
    outFields = outFields.slice(0, visible);
    rows = rows.map((r) => r.slice(0, visible));
  }
  if (plan.order.length > 0) {
    const keys = plan.order.map((k) => resolveSortKey(k, outFields));
    rows.sort((a, b) => {
      for (const k of keys) {
        const x = a[k.index] ?? null;
        const y = b[k.index] ?? null;
        let c: number;
        if (x === null || y === null) {
          if (x === y) continue;
          c = (x === null) === k.nullsFirst ? -1 : 1;
          return c;
        }
        c = compareValues(outFields[k.index]!.typeOid, x, y);
        if (c !== 0) return k.desc ? -c : c;
      }
      return 0;
    });
  }
  const num = (ref: MergePlan['limit']): number | undefined => {
    if (!ref) return undefined;
    if ('text' in ref) return Number(ref.text);
    if ('param' in ref) {
      const v = params[ref.param - 1];
      return v === null || v === undefined ? undefined : Number(v);
    }
    return undefined;
  };
  const offset = num(plan.offset) ?? 0;
  const limit = num(plan.limit);
  if (offset > 0 || limit !== undefined) {
    rows = rows.slice(offset, limit === undefined ? undefined : offset + limit);
  }
  return { fields: outFields, rows };
}

function resolveSortKey(k: SortKey, fields: Field[]): { index: number; desc: boolean; nullsFirst: boolean } {
  let index: number;
  if (typeof k.col === 'number') index = k.col - 1;
  else {
    const matches = fields.flatMap((f, i) => (f.name === k.col ? [i] : []));
    if (matches.length !== 1)
      throw new MergeError(
        `ORDER BY "${k.col}" must name exactly one output column to merge shards (found ${matches.length})`,
      );
    index = matches[0]!;
  }
  if (index < 0 || index >= fields.length)
    throw new MergeError(`ORDER BY position ${k.col} is not in the select list`);
  return { index, desc: k.desc, nullsFirst: k.nullsFirst };
}
