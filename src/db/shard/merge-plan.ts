// How a SELECT scattered to several shards is merged back into one answer, decided from its parse
// tree: plain rows (sorted again by ORDER BY, then LIMIT/OFFSET), or aggregates count/sum/min/max/avg
// (avg as sum/count, so it is sent as sum plus a hidden count column), grouped or not. Anything whose
// merge would not be exactly the single-server answer is refused with the reason.
import type { KeyRef } from './analyze.js';
import { valueOf } from './analyze.js';

type Node = Record<string, unknown>;

export type AggKind = 'count' | 'sum' | 'min' | 'max' | 'avg';

export interface SortKey {
  /** 1-based output position, or an output column name (resolved against the RowDescription). */
  readonly col: number | string;
  readonly desc: boolean;
  readonly nullsFirst: boolean;
}

export interface MergePlan {
  /** The SQL each shard runs (the client's, rewritten for LIMIT/OFFSET and avg). */
  readonly sql: string;
  /** Per output position: undefined for a plain (or grouping) column, else the aggregate. */
  readonly aggregates: (AggKind | undefined)[] | undefined;
  /** For each avg column (by position), the index of its hidden count column. */
  readonly avgCount: Map<number, number>;
  /** Hidden columns appended to the target list (dropped from the answer). */
  readonly hidden: number;
  readonly order: SortKey[];
  readonly limit?: KeyRef;
  readonly offset?: KeyRef;
}

const AGGREGATES = new Set<string>(['count', 'sum', 'min', 'max', 'avg']);

function arr(v: unknown): Node[] {
  return Array.isArray(v) ? (v as Node[]) : [];
}

function funcName(f: Node): string {
  const names = arr(f.funcname).map((n) => String((n.String as Node).sval));
  return names[names.length - 1] ?? '';
}

/** Does any node under `n` call an aggregate or a window function? */
function findAggregate(n: unknown): string | undefined {
  let found: string | undefined;
  const visit = (x: unknown): void => {
    if (found || x === null || typeof x !== 'object') return;
    if (Array.isArray(x)) return x.forEach(visit);
    const f = (x as Node).FuncCall as Node | undefined;
    if (f && (AGGREGATES.has(funcName(f)) || f.over)) found = funcName(f);
    for (const v of Object.values(x as Node)) visit(v);
  };
  visit(n);
  return found;
}

/** Index of the parenthesis closing the one at `open`, skipping quoted text. */
function closingParen(sql: string, open: number): number {
  let depth = 0;
  for (let i = open; i < sql.length; i++) {
    const ch = sql[i];
    if (ch === "'" || ch === '"') {
      const end = sql.indexOf(ch, i + 1);
      if (end < 0) return -1;
      i = end;
    } else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return i;
  }
  return -1;
}

const TOKEN = /^(\$\d+|\d+)/;

export function planMerge(body: Node, sql: string): MergePlan | { refuse: string } {
  const refuse = (why: string): { refuse: string } => ({ refuse: why });
  if (body.op && body.op !== 'SETOP_NONE') return refuse('UNION/INTERSECT/EXCEPT over a sharded table');
  if (body.distinctClause) return refuse('SELECT DISTINCT over a sharded table');
  if (body.havingClause) return refuse('HAVING over a sharded table');
  if (body.windowClause) return refuse('window functions over a sharded table');
  if (body.lockingClause) return refuse('FOR UPDATE/SHARE on every shard');
  if (body.intoClause) return refuse('SELECT INTO from a sharded table');
  if (body.limitOption === 'LIMIT_OPTION_WITH_TIES') return refuse('FETCH … WITH TIES');
  if (findAggregate(body.whereClause) || findAggregate(body.sortClause))
    return refuse('an aggregate or window function outside the select list');

  const edits: { start: number; end: number; text: string }[] = [];
  const targets = arr(body.targetList).map((t) => t.ResTarget as Node);
  const aggregates: (AggKind | undefined)[] = [];
  const hiddenCols: string[] = [];
  const avgCount = new Map<number, number>();
  let anyAggregate = false;
  for (const [i, t] of targets.entries()) {
    let val = t.val as Node;
    // A cast around count/sum/min/max merges the same way (the shards already cast their part).
    const castArg = (val.TypeCast as Node | undefined)?.arg as Node | undefined;
    const castFn = castArg?.FuncCall as Node | undefined;
    if (castFn && ['count', 'sum', 'min', 'max'].includes(funcName(castFn)) && !castFn.over) val = castArg!;
    const f = val.FuncCall as Node | undefined;
    const name = f ? funcName(f) : '';
    if (f && AGGREGATES.has(name) && !f.over) {
      if (f.agg_distinct) return refuse(`${name}(DISTINCT …) over a sharded table`);
      if (f.agg_order || f.agg_within_group) return refuse(`an ordered aggregate ${name}(… ORDER BY …)`);
      if (findAggregate(f.args)) return refuse('a nested aggregate');
      anyAggregate = true;
      aggregates.push(name as AggKind);
      if (name === 'avg') {
        const loc = Number(f.location);
        const open = sql.indexOf('(', loc);
        const close = open < 0 ? -1 : closingParen(sql, open);
        if (close < 0) return refuse('an avg() the proxy could not rewrite');
        const args = sql.slice(open + 1, close);
        edits.push({ start: loc, end: close + 1, text: `sum(${args})` });
        avgCount.set(i, targets.length + hiddenCols.length);
        hiddenCols.push(`count(${args}) AS "scaleout_avg_count_${i}"`);
      }
    } else {
      const agg = findAggregate(val);
      if (agg) return refuse(`an expression around ${agg}() (only bare count, sum, min, max and avg merge)`);
      if ((val.ColumnRef as Node | undefined) && arr((val.ColumnRef as Node).fields).some((x) => x.A_Star)) {
        aggregates.push(undefined);
        continue;
      }
      aggregates.push(undefined);
    }
  }
  const grouped = arr(body.groupClause).length > 0;
  if (grouped) {
    // Every grouping expression must be an output column, so equal groups from two shards can be found.
    for (const g of arr(body.groupClause)) {
      const pos = valueOf(g);
      if (pos && 'text' in pos && /^\d+$/.test(pos.text)) continue;
      const same = targets.some((t) => JSON.stringify(strip(t.val)) === JSON.stringify(strip(g)));
      if (!same) return refuse('GROUP BY an expression that is not in the select list');
    }
    if (!anyAggregate) return refuse('GROUP BY without an aggregate (use DISTINCT-free aggregates)');
  }
  if (anyAggregate && targets.some((t) => (t.val as Node).ColumnRef && !grouped))
    return refuse('a column next to aggregates without GROUP BY');

  const order: SortKey[] = [];
  for (const s of arr(body.sortClause)) {
    const sb = s.SortBy as Node;
    const node = sb.node as Node;
    const desc = sb.sortby_dir === 'SORTBY_DESC';
    const nullsFirst =
      sb.sortby_nulls === 'SORTBY_NULLS_FIRST'
        ? true
        : sb.sortby_nulls === 'SORTBY_NULLS_LAST'
          ? false
          : desc;
    if (sb.useOp) return refuse('ORDER BY … USING');
    const pos = valueOf(node);
    if (pos && 'text' in pos && /^\d+$/.test(pos.text)) {
      order.push({ col: Number(pos.text), desc, nullsFirst });
      continue;
    }
    const ref = node.ColumnRef as Node | undefined;
    const fields = ref ? arr(ref.fields).map((f) => String((f.String as Node | undefined)?.sval ?? '*')) : [];
    if (fields.length === 0 || fields.includes('*'))
      return refuse('ORDER BY an expression (name an output column or use its position)');
    order.push({ col: fields[fields.length - 1]!, desc, nullsFirst });
  }

  // LIMIT/OFFSET: each shard returns its first limit+offset rows (none skipped); grouped answers need
  // every group from every shard, so they get no limit at all.
  let limit: KeyRef | undefined;
  let offset: KeyRef | undefined;
  for (const [field, which] of [
    ['limitCount', 'limit'],
    ['limitOffset', 'offset'],
  ] as const) {
    const n = body[field] as Node | undefined;
    if (!n) continue;
    const v = valueOf(n);
    if (!v || ('text' in v && !/^\d+$/.test(v.text)))
      return refuse(`${which.toUpperCase()} with an expression (use a number or a parameter)`);
    if ('null' in v) continue;
    if (which === 'limit') limit = v;
    else offset = v;
  }
  const tokenAt = (node: Node): { start: number; end: number; text: string } | undefined => {
    const inner = ((node.TypeCast as Node | undefined)?.arg as Node | undefined) ?? node;
    const leaf = (inner.A_Const ?? inner.ParamRef) as Node | undefined;
    const loc = leaf ? Number(leaf.location) : -1;
    if (loc < 0) return undefined;
    const m = TOKEN.exec(sql.slice(loc));
    if (!m) return undefined;
    return { start: loc, end: loc + m[0].length, text: m[0] };
  };
  const asBigint = (t: string): string => (t.startsWith('$') ? `(${t})::bigint` : t);
  const limitTok = limit ? tokenAt(body.limitCount as Node) : undefined;
  const offsetTok = offset ? tokenAt(body.limitOffset as Node) : undefined;
  if ((limit && !limitTok) || (offset && !offsetTok))
    return refuse('a LIMIT/OFFSET the proxy could not rewrite');
  if (offsetTok)
    edits.push({
      ...offsetTok,
      text: offsetTok.text.startsWith('$') ? `(${asBigint(offsetTok.text)}*0)` : '0',
    });
  if (limitTok) {
    let text: string;
    if (anyAggregate)
      text = limitTok.text.startsWith('$') ? `(NULL::bigint+${asBigint(limitTok.text)}*0)` : 'ALL';
    else text = offsetTok ? `(${asBigint(limitTok.text)}+${asBigint(offsetTok.text)})` : limitTok.text;
    edits.push({ ...limitTok, text });
  }
  if (hiddenCols.length > 0) {
    const from = arr(body.fromClause)[0];
    const fromLoc = from ? firstLocation(from) : -1;
    const kw = fromLoc < 0 ? -1 : sql.slice(0, fromLoc).toLowerCase().lastIndexOf('from');
    if (kw < 0) return refuse('an avg() the proxy could not rewrite');
    edits.push({ start: kw, end: kw, text: `, ${hiddenCols.join(', ')} ` });
  }
  let rewritten = sql;
  for (const e of edits.sort((a, b) => b.start - a.start)) {
    rewritten = rewritten.slice(0, e.start) + e.text + rewritten.slice(e.end);
  }
  return {
    sql: rewritten,
    aggregates: anyAggregate ? aggregates : undefined,
    avgCount,
    hidden: hiddenCols.length,
    order,
    limit,
    offset,
  };
}

/** A node without its `location` fields, to compare two expressions. */
function strip(n: unknown): unknown {
  if (Array.isArray(n)) return n.map(strip);
  if (n === null || typeof n !== 'object') return n;
  const out: Node = {};
  for (const [k, v] of Object.entries(n as Node)) if (k !== 'location') out[k] = strip(v);
  return out;
}

function firstLocation(n: unknown): number {
  let best = -1;
  const visit = (x: unknown): void => {
    if (x === null || typeof x !== 'object') return;
    if (Array.isArray(x)) return x.forEach(visit);
    const loc = (x as Node).location;
    if (typeof loc === 'number' && loc >= 0 && (best < 0 || loc < best)) best = loc;
    for (const v of Object.values(x as Node)) visit(v);
  };
  visit(n);
  return best;
}
