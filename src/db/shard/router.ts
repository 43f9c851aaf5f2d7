// The shard decision for one unit of work: one shard (and why), every shard for a reference-table
// write or DDL, a scatter with its merge plan, or a refusal that says why and how to pin a shard.
// Nothing is ever sent to a shard by default when the proxy cannot tell: it refuses instead.
import type { Analysis, KeyRef, StatementShape } from './analyze.js';
import { KeyError, parseBinaryKey, parseKey, shardOf, type KeyValue } from './hash.js';
import type { ShardMap } from './map.js';
import type { MergePlan } from './merge-plan.js';

export type ShardDecision =
  /** `any`: the statement names no sharded table; it may run on whichever shard the session is on. */
  | { kind: 'shard'; shard: number; reason: string; any?: boolean }
  | { kind: 'all'; reason: string }
  | { kind: 'scatter'; shards: number[]; plan: MergePlan; reason: string }
  | { kind: 'refuse'; code: string; message: string; hint: string };

/** The bound parameters of a Bind: text or binary values by position. */
export interface BoundParams {
  formats: number[];
  values: (Buffer | null)[];
}

export interface SessionHints {
  /** SET scaleout.shard = N */
  shard?: number;
  /** SET scaleout.shard_key = '…' (text, hashed with the statement's key type). */
  shardKey?: string;
}

const PIN_HINT =
  "Pin one shard: filter on the shard key (WHERE key = …), or add /* scaleout:shard=N */, or SET scaleout.shard = N / SET scaleout.shard_key = '…'.";
const HINT_RE = /\/\*\s*scaleout:shard\s*=\s*([^*\s]+)\s*\*\//i;

function refuse(message: string, hint = PIN_HINT, code = '0A000'): ShardDecision {
  return { kind: 'refuse', code, message: `scaleout: ${message}`, hint };
}

export function paramText(params: BoundParams | undefined, n: number): string | null | undefined {
  if (!params) return undefined;
  const v = params.values[n - 1];
  if (v === undefined) return undefined;
  if (v === null) return null;
  const format = params.formats.length === 1 ? params.formats[0] : (params.formats[n - 1] ?? 0);
  return format === 0 ? v.toString('utf8') : undefined;
}

export class ShardRouter {
  constructor(readonly map: ShardMap) {}

  /** The shard of a key given as text for a key type, or an error message. */
  shardOfText(type: ShardMap['commonKeyType'], text: string): number | string {
    if (!type) return 'scaleout.shard_key needs the statement to name a sharded table (key types differ)';
    try {
      return shardOf(type, parseKey(type, text), this.map.count);
    } catch (err) {
      return (err as Error).message;
    }
  }

  decide(sql: string, analysis: Analysis, hints: SessionHints, params?: BoundParams): ShardDecision {
    const m = HINT_RE.exec(sql);
    if (m) {
      if (m[1]!.toLowerCase() === 'all') return { kind: 'all', reason: 'hint' };
      const shard = this.map.resolveShard(m[1]!);
      if (shard === undefined)
        return refuse(
          `unknown shard "${m[1]}" in the hint`,
          `Shards: 0…${this.map.count - 1} (${this.map.names.join(', ')}).`,
          '22023',
        );
      return { kind: 'shard', shard, reason: 'hint' };
    }
    if (hints.shard !== undefined) return { kind: 'shard', shard: hints.shard, reason: 'set-shard' };
    if (analysis.parseError) {
      // The server will say what is wrong with it; any shard says the same.
      return { kind: 'shard', shard: this.map.defaultShard, reason: 'parse-error', any: true };
    }
    let result: ShardDecision | undefined;
    for (const s of analysis.statements) {
      const d = this.decideStatement(s, hints, params);
      if (d.kind === 'refuse') return d;
      if (!result || (result.kind === 'shard' && result.any)) {
        result = d;
        continue;
      }
      if (d.kind === 'shard' && d.any) continue;
      if (d.kind === 'shard' && result.kind === 'shard' && d.shard === result.shard) continue;
      return refuse('the statements in this query string need different shards', 'Send them separately.');
    }
    return result ?? { kind: 'shard', shard: this.map.defaultShard, reason: 'no-table', any: true };
  }

  private decideStatement(s: StatementShape, hints: SessionHints, params?: BoundParams): ShardDecision {
    const write = s.kind === 'insert' || s.kind === 'update' || s.kind === 'delete' || s.kind === 'utility';
    if (hints.shardKey !== undefined) {
      const type = s.sharded[0]?.type ?? this.map.commonKeyType;
      const shard = this.shardOfText(type, hints.shardKey);
      if (typeof shard === 'string') return refuse(`SET scaleout.shard_key: ${shard}`, PIN_HINT, '22P02');
      return { kind: 'shard', shard, reason: 'set-shard-key' };
    }
    const placed = s.target && s.target.kind !== 'default';
    if (s.copy && (placed || s.sharded.length + s.nestedSharded.length > 0)) {
      if (s.copy === 'to' && s.target?.kind === 'reference' && s.nestedSharded.length === 0)
        return { kind: 'shard', shard: this.map.defaultShard, reason: 'reference-read', any: true };
      return refuse(
        `COPY ${s.copy.toUpperCase()} a ${s.target?.kind ?? 'sharded'} table cannot be routed by key`,
        'Pin one shard with /* scaleout:shard=N */ (COPY … FROM: only the rows of that shard), or use INSERT.',
      );
    }
    // DDL on a sharded or reference table runs on every shard; other utility statements on them are refused.
    if (s.kind === 'utility' && placed) {
      if (s.ddl) return { kind: 'all', reason: `${s.target!.kind}-table-ddl` };
      return refuse(
        `this statement on ${s.target!.kind} table ${s.target!.table} cannot be routed`,
        'Pin one shard with /* scaleout:shard=N */, or every shard with /* scaleout:shard=all */.',
      );
    }
    if (s.sharded.length === 0 && s.nestedSharded.length === 0) {
      if (s.target?.kind === 'reference' && write) {
        if (s.other.length > 0)
          return refuse(
            `a write to reference table ${s.target.table} reads ${s.other.join(', ')}, which lives only on the default shard`,
          );
        return { kind: 'all', reason: 'reference-write' };
      }
      if (s.other.length > 0) return { kind: 'shard', shard: this.map.defaultShard, reason: 'default-shard' };
      if (s.reference.length > 0)
        return { kind: 'shard', shard: this.map.defaultShard, reason: 'reference-read', any: true };
      return { kind: 'shard', shard: this.map.defaultShard, reason: 'no-table', any: true };
    }
    if (s.problem) return refuse(s.problem);
    if (s.target?.kind === 'reference')
      return refuse(`a write to reference table ${s.target.table} that reads a sharded table`);
    if (s.nestedSharded.length > 0)
      return refuse(
        `sharded table ${s.nestedSharded[0]} inside a subquery, CTE or set operation cannot be routed or merged`,
      );
    // Every sharded table must be pinned, all to the same shard.
    const shards = new Set<number>();
    let unpinned: string | undefined;
    for (const use of s.sharded) {
      if (!use.keys) {
        unpinned = use.table;
        continue;
      }
      for (const k of use.keys) {
        const r = this.keyShard(use.type, k, params);
        if (typeof r === 'object') return r;
        shards.add(r);
      }
    }
    if (unpinned) {
      if (s.sharded.length > 1)
        return refuse(`a join of several sharded tables where ${unpinned} is not pinned to one shard`);
      if (s.kind !== 'select')
        return refuse(
          `${s.kind.toUpperCase()} on sharded table ${unpinned} without its shard key would touch every shard`,
        );
      if (s.wrapper)
        return refuse(
          `${s.wrapper} of a statement without its shard key cannot be scattered`,
          'Use EXPLAIN ROUTE to see the scatter, or pin one shard.',
        );
      if (!s.merge || 'refuse' in s.merge)
        return refuse(
          `this SELECT on sharded table ${unpinned} has no shard key and cannot be merged across shards: ${s.merge && 'refuse' in s.merge ? s.merge.refuse : 'not a plain SELECT'}`,
        );
      if (s.other.length > 0)
        return refuse(
          `a scatter over ${unpinned} joins ${s.other.join(', ')}, which lives only on the default shard`,
        );
      return {
        kind: 'scatter',
        shards: [...Array(this.map.count).keys()],
        plan: s.merge,
        reason: 'no-shard-key',
      };
    }
    const list = [...shards].sort((a, b) => a - b);
    if (s.other.length > 0 && (list.length !== 1 || list[0] !== this.map.defaultShard))
      return refuse(`the statement joins ${s.other.join(', ')} (default shard) with rows on another shard`);
    if (list.length === 1)
      return { kind: 'shard', shard: list[0]!, reason: s.kind === 'insert' ? 'insert-key' : 'shard-key' };
    if (s.kind === 'select' && !s.wrapper && s.merge && !('refuse' in s.merge) && s.sharded.length === 1)
      return { kind: 'scatter', shards: list, plan: s.merge, reason: 'keys-on-several-shards' };
    if (s.kind === 'insert')
      return refuse(
        `this multi-row INSERT has keys on shards ${list.join(', ')}`,
        'Insert the rows of each shard in their own statement (the proxy does not split one INSERT).',
      );
    return refuse(`the shard keys in this statement are on shards ${list.join(', ')}`);
  }

  /** The shard of one key reference (a parameter is read from the Bind), or a refusal. */
  private keyShard(
    type: ShardMap['commonKeyType'] & string,
    k: KeyRef,
    params?: BoundParams,
  ): number | ShardDecision {
    let value: KeyValue;
    try {
      if ('null' in k) return refuse('the shard key is NULL', 'Give every row a shard key.', '23502');
      if ('text' in k) value = parseKey(type, k.text);
      else {
        const raw = params?.values[k.param - 1];
        if (raw === undefined)
          return refuse(`shard key parameter $${k.param} is not bound`, PIN_HINT, '08P01');
        if (raw === null) return refuse('the shard key is NULL', 'Give every row a shard key.', '23502');
        const format =
          params!.formats.length === 1 ? params!.formats[0] : (params!.formats[k.param - 1] ?? 0);
        value = format === 0 ? parseKey(type, raw.toString('utf8')) : parseBinaryKey(type, raw);
      }
    } catch (err) {
      if (err instanceof KeyError)
        return refuse(`shard key: ${err.message}`, `The shard key has type ${type}.`, '22P02');
      throw err;
    }
    return shardOf(type, value, this.map.count);
  }
}

/** Reads the parameters of a Bind message (validated by the framer already). */
export function parseBind(raw: Buffer): BoundParams {
  let pos = raw.indexOf(0, 5) + 1; // portal
  pos = raw.indexOf(0, pos) + 1; // statement
  const nf = raw.readInt16BE(pos);
  pos += 2;
  const formats: number[] = [];
  for (let i = 0; i < nf; i++, pos += 2) formats.push(raw.readInt16BE(pos));
  const np = raw.readInt16BE(pos);
  pos += 2;
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < np; i++) {
    const len = raw.readInt32BE(pos);
    pos += 4;
    if (len < 0) values.push(null);
    else {
      values.push(raw.subarray(pos, pos + len));
      pos += len;
    }
  }
  return { formats, values };
}
