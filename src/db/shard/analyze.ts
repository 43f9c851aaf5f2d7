// What a statement means for sharding, read from the real PostgreSQL parse tree (libpg-query): which
// tables it touches and where they live, whether its WHERE (or its VALUES) pins the shard key to
// literals or bound parameters, and, for a SELECT that does not, how its rows could be merged when it
// is scattered to every shard. Results are cached by statement text; the parameter values are only
// looked at later (router.ts), so an extended-protocol statement is analysed once at Parse and routed
// at each Bind.
import { parseSync } from 'libpg-query';
import type { ShardKeyType } from '../config.js';
import { TextCache } from '../text-cache.js';
import type { ShardMap } from './map.js';
import { planMerge, type MergePlan } from './merge-plan.js';

type Node = Record<string, unknown>;

/** A shard-key value in the statement: a literal (as text), a bound parameter ($n), or NULL. */
export type KeyRef = { text: string } | { param: number } | { null: true };

/** One occurrence of a sharded table in the statement's top-level FROM (or the INSERT/UPDATE/DELETE target). */
export interface ShardedUse {
  readonly table: string;
  readonly type: ShardKeyType;
  /** The key values the statement is limited to; undefined when it is not pinned. */
  readonly keys: KeyRef[] | undefined;
}

export type StatementKind =
  'select' | 'insert' | 'update' | 'delete' | 'begin' | 'commit' | 'rollback' | 'transaction' | 'utility';

export interface StatementShape {
  readonly kind: StatementKind;
  readonly sharded: ShardedUse[];
  /** A sharded table inside a subquery, CTE or set operation: not routable by key, not mergeable. */
  readonly nestedSharded: string[];
  readonly reference: string[];
  readonly other: string[];
  /** The table an INSERT/UPDATE/DELETE/DDL writes, and where it lives. */
  readonly target?: { table: string; kind: 'sharded' | 'reference' | 'default' };
  /** Why the statement cannot be routed by its key even though it names the key (e.g. INSERT … SELECT). */
  readonly problem?: string;
  /** A schema change that every shard holding the table must make. */
  readonly ddl?: boolean;
  readonly copy?: 'from' | 'to';
  /** EXPLAIN or DECLARE CURSOR around the statement: it may go to one shard, never be scattered. */
  readonly wrapper?: string;
  /** For a SELECT that may be scattered: how to merge, or why it cannot be. */
  readonly merge?: MergePlan | { refuse: string };
}

export interface Analysis {
  readonly statements: StatementShape[];
  readonly parseError?: string;
}

export class Analyzer {
  private readonly cache: TextCache<Analysis>;

  constructor(
    private readonly map: ShardMap,
    cacheSize = 5000,
  ) {
    this.cache = new TextCache(cacheSize);
  }

  analyze(sql: string): Analysis {
    const hit = this.cache.get(sql);
    if (hit) return hit;
    let result: Analysis;
    try {
      const stmts = (parseSync(sql) as { stmts?: { stmt?: Node }[] }).stmts ?? [];
      result = { statements: stmts.map((s) => this.statement(s.stmt ?? {}, sql)) };
    } catch (err) {
      result = { statements: [], parseError: err instanceof Error ? err.message : String(err) };
    }
    return this.cache.add(sql, result);
  }

  private statement(stmt: Node, sql: string): StatementShape {
    let kindName = Object.keys(stmt)[0] ?? '';
    let body = (stmt[kindName] ?? {}) as Node;
    // EXPLAIN and DECLARE … CURSOR go where their statement would go, but cannot be scattered.
    let wrapper: string | undefined;
    if (kindName === 'ExplainStmt' || kindName === 'DeclareCursorStmt') {
      wrapper = kindName === 'ExplainStmt' ? 'EXPLAIN' : 'DECLARE CURSOR';
      const inner = body.query as Node;
      kindName = Object.keys(inner)[0] ?? '';
      body = (inner[kindName] ?? {}) as Node;
      stmt = inner;
    }
    const cteNames = new Set<string>();
    walk(stmt, (n) => {
      const cte = n.CommonTableExpr as Node | undefined;
      if (cte?.ctename) cteNames.add(String(cte.ctename));
    });
    const top = new Set<Node>();
    const aliases = new Map<Node, string>();
    const addTop = (items: unknown): void => {
      for (const item of asArray(items)) {
        const n = item as Node;
        if (n.RangeVar) {
          top.add(n.RangeVar as Node);
        } else if (n.JoinExpr) {
          const j = n.JoinExpr as Node;
          addTop([j.larg, j.rarg]);
        }
      }
    };
    let kind: StatementKind = 'utility';
    let ddl = false;
    let copy: 'from' | 'to' | undefined;
    let targetRel: Node | undefined;
    switch (kindName) {
      case 'SelectStmt':
        kind = 'select';
        addTop(body.fromClause);
        break;
      case 'InsertStmt':
        kind = 'insert';
        targetRel = body.relation as Node;
        top.add(targetRel);
        break;
      case 'UpdateStmt':
        kind = 'update';
        targetRel = body.relation as Node;
        top.add(targetRel);
        addTop(body.fromClause);
        break;
      case 'DeleteStmt':
        kind = 'delete';
        targetRel = body.relation as Node;
        top.add(targetRel);
        addTop(body.usingClause);
        break;
      case 'TransactionStmt': {
        const k = String(body.kind);
        kind =
          k === 'TRANS_STMT_BEGIN' || k === 'TRANS_STMT_START'
            ? 'begin'
            : k === 'TRANS_STMT_COMMIT'
              ? 'commit'
              : k === 'TRANS_STMT_ROLLBACK'
                ? 'rollback'
                : 'transaction';
        break;
      }
      case 'DropStmt':
        // DROP TABLE names its tables as lists of strings, not RangeVars.
        if (body.removeType === 'OBJECT_TABLE') {
          for (const o of asArray(body.objects)) {
            const names = asArray(((o as Node).List as Node | undefined)?.items).map((x) =>
              String(((x as Node).String as Node).sval),
            );
            const name = names[names.length - 1]!;
            const schema = names.length > 1 ? names[names.length - 2] : undefined;
            const p = this.map.lookup(schema, name);
            if (!targetRel || p.kind !== 'default')
              targetRel = { relname: name, schemaname: schema, relpersistence: 'p' };
          }
        }
        ddl = true;
        break;
      default:
        // DDL and other utility statements: the table they act on, if any.
        walk(body, (n) => {
          if (!targetRel && isRangeVar(n)) targetRel = n;
        });
        ddl = DDL_STMTS.has(kindName);
        if (kindName === 'CopyStmt') copy = body.is_from ? 'from' : 'to';
    }
    const sharded: ShardedUse[] = [];
    const nestedSharded: string[] = [];
    const reference = new Set<string>();
    const other = new Set<string>();
    let problem: string | undefined;
    const where = (body.whereClause ?? undefined) as Node | undefined;
    walk(stmt, (n) => {
      // A RangeVar appears wrapped ({RangeVar: {…}}) in FROM lists and bare as a statement's relation.
      if (!isRangeVar(n)) return;
      const rv = n;
      const schema = rv.schemaname ? String(rv.schemaname) : undefined;
      const name = String(rv.relname);
      if (!schema && cteNames.has(name)) return;
      const p = this.map.lookup(schema, name);
      if (p.kind === 'reference') reference.add(p.table);
      else if (p.kind === 'default') other.add(p.table);
      else if (!top.has(rv)) nestedSharded.push(p.table);
      else {
        const alias = ((rv.alias as Node | undefined)?.aliasname as string | undefined) ?? name;
        aliases.set(rv, alias);
        let keys: KeyRef[] | undefined;
        if (kind === 'insert') {
          const r = insertKeys(body, p.key);
          keys = r.keys;
          problem = r.problem;
        } else {
          keys = where ? pinnedKeys(where, p.key, alias, name) : undefined;
          if (kind === 'update' && updatesColumn(body, p.key))
            problem = `UPDATE changes the shard key column "${p.key}" (a row would have to move to another shard)`;
        }
        sharded.push({ table: p.table, type: p.type, keys });
      }
    });
    let target: StatementShape['target'];
    if (targetRel) {
      const p = this.map.lookup(
        targetRel.schemaname ? String(targetRel.schemaname) : undefined,
        String(targetRel.relname),
      );
      target = { table: p.table, kind: p.kind };
    }
    const shape: StatementShape = {
      kind,
      sharded,
      nestedSharded,
      reference: [...reference],
      other: [...other],
      target,
      problem,
      ddl,
      copy,
      wrapper,
    };
    if (kind === 'select' && sharded.length === 1 && nestedSharded.length === 0) {
      return { ...shape, merge: planMerge(body, sql) };
    }
    return shape;
  }
}

/** Utility statements that change a table's definition: run on every shard that has the table. */
const DDL_STMTS = new Set([
  'CreateStmt',
  'AlterTableStmt',
  'TruncateStmt',
  'IndexStmt',
  'VacuumStmt',
  'RenameStmt',
  'CommentStmt',
  'GrantStmt',
  'CreateTrigStmt',
  'RuleStmt',
  'ClusterStmt',
  'ReindexStmt',
  'CreateStatsStmt',
  'AlterOwnerStmt',
]);

function isRangeVar(n: Node): boolean {
  return typeof n.relname === 'string' && typeof n.relpersistence === 'string';
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
}

/** Visits every object node of a parse tree. */
export function walk(node: unknown, visit: (n: Node) => void): void {
  if (Array.isArray(node)) {
    for (const x of node) walk(x, visit);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  visit(node as Node);
  for (const v of Object.values(node as Node)) if (v !== null && typeof v === 'object') walk(v, visit);
}

/** The value of a literal or parameter node (a cast around it is looked through). */
export function valueOf(n: Node | undefined): KeyRef | undefined {
  if (!n) return undefined;
  if (n.TypeCast) return valueOf((n.TypeCast as Node).arg as Node);
  if (n.ParamRef) return { param: Number((n.ParamRef as Node).number) };
  const c = n.A_Const as Node | undefined;
  if (!c) return undefined;
  if (c.isnull) return { null: true };
  if (c.ival !== undefined) return { text: String((c.ival as Node).ival ?? 0) };
  if (c.fval !== undefined) return { text: String((c.fval as Node).fval) };
  if (c.sval !== undefined) return { text: String((c.sval as Node).sval ?? '') };
  if (c.boolval !== undefined) return { text: (c.boolval as Node).boolval ? 'true' : 'false' };
  return undefined;
}

function isKeyColumn(n: Node | undefined, key: string, alias: string, relname: string): boolean {
  const ref = n?.ColumnRef as Node | undefined;
  if (!ref) return false;
  const fields = asArray(ref.fields).map((f) => String(((f as Node).String as Node | undefined)?.sval ?? ''));
  if (fields[fields.length - 1] !== key) return false;
  if (fields.length === 1) return true;
  const q = fields[fields.length - 2];
  return q === alias || q === relname;
}

/** Keys a WHERE limits the table to: `key = v` or `key IN (v, …)` in its top-level AND. */
function pinnedKeys(where: Node, key: string, alias: string, relname: string): KeyRef[] | undefined {
  const conjuncts: Node[] = [];
  const flatten = (n: Node): void => {
    const b = n.BoolExpr as Node | undefined;
    if (b?.boolop === 'AND_EXPR') for (const a of asArray(b.args)) flatten(a as Node);
    else conjuncts.push(n);
  };
  flatten(where);
  for (const c of conjuncts) {
    const e = c.A_Expr as Node | undefined;
    if (!e) continue;
    const op = String(((asArray(e.name)[0] as Node | undefined)?.String as Node | undefined)?.sval ?? '');
    if (op !== '=') continue;
    const l = e.lexpr as Node | undefined;
    const r = e.rexpr as Node | undefined;
    if (e.kind === 'AEXPR_OP') {
      if (isKeyColumn(l, key, alias, relname)) {
        const v = valueOf(r);
        if (v) return [v];
      }
      if (isKeyColumn(r, key, alias, relname)) {
        const v = valueOf(l);
        if (v) return [v];
      }
    } else if (e.kind === 'AEXPR_IN' && isKeyColumn(l, key, alias, relname)) {
      const values = asArray((r?.List as Node | undefined)?.items ?? r).map((x) => valueOf(x as Node));
      if (values.length > 0 && values.every((v) => v !== undefined)) return values as KeyRef[];
    }
  }
  return undefined;
}

function insertKeys(body: Node, key: string): { keys?: KeyRef[]; problem?: string } {
  const cols = asArray(body.cols).map((c) => String(((c as Node).ResTarget as Node).name));
  if (cols.length === 0)
    return {
      problem: 'an INSERT into a sharded table must name its columns (INSERT INTO t (key, …) VALUES …)',
    };
  const at = cols.indexOf(key);
  if (at < 0) return { problem: `the INSERT does not give the shard key column "${key}"` };
  const select = ((body.selectStmt as Node | undefined)?.SelectStmt ?? {}) as Node;
  const rows = asArray(select.valuesLists);
  if (rows.length === 0 || select.fromClause)
    return { problem: 'INSERT … SELECT into a sharded table cannot be routed by key' };
  const keys: KeyRef[] = [];
  for (const row of rows) {
    const v = valueOf(asArray(((row as Node).List as Node).items)[at] as Node);
    if (!v) return { problem: `the shard key "${key}" must be a literal or a parameter in every row` };
    keys.push(v);
  }
  return { keys };
}

function updatesColumn(body: Node, key: string): boolean {
  return asArray(body.targetList).some((t) => ((t as Node).ResTarget as Node).name === key);
}
