// Decides whether a statement is provably read-only (may run on a replica) or must go to the primary,
// and why. The cheap lexer settles the common cases; everything else goes through the real PostgreSQL
// parser (libpg-query), with results cached by statement text. Safe by default: a statement that
// cannot be parsed, or that the rules below do not prove read-only, goes to the primary.
import { loadModule, parseSync } from 'libpg-query';
import { TextCache } from './text-cache.js';
import { lexClassify } from './lexer.js';

export type RouteReason =
  | 'read-only'
  | 'write'
  | 'locking-clause'
  | 'volatile-function'
  | 'select-into'
  | 'temp-table'
  | 'ddl'
  | 'lock'
  | 'multi-statement'
  | 'parse-error'
  | 'transaction-control'
  | 'session-state'
  | 'hint'
  | 'copy-from'
  | 'empty';

export interface Classification {
  /** Provably read-only: may run on a replica. */
  readonly readOnly: boolean;
  readonly reason: RouteReason;
  readonly detail?: string;
  /** May have changed data: after it commits, the session's read-your-writes position moves. */
  readonly write: boolean;
  /** Changes session state (SET, PREPARE, LISTEN, temp tables, advisory locks…): pins the session. */
  readonly sessionState: boolean;
  /** BEGIN / START TRANSACTION, and whether it is READ ONLY. */
  readonly begin?: 'read-write' | 'read-only';
}

/** Functions that read but never write, callable on a replica. Extend with `safe_functions` in config. */
export const DEFAULT_SAFE_FUNCTIONS = [
  'count',
  'sum',
  'avg',
  'min',
  'max',
  'bool_and',
  'bool_or',
  'every',
  'array_agg',
  'string_agg',
  'json_agg',
  'jsonb_agg',
  'json_object_agg',
  'jsonb_object_agg',
  'stddev',
  'variance',
  'row_number',
  'rank',
  'dense_rank',
  'lag',
  'lead',
  'first_value',
  'last_value',
  'ntile',
  'lower',
  'upper',
  'length',
  'char_length',
  'octet_length',
  'substring',
  'substr',
  'trim',
  'btrim',
  'ltrim',
  'rtrim',
  'replace',
  'split_part',
  'position',
  'strpos',
  'left',
  'right',
  'lpad',
  'rpad',
  'concat',
  'concat_ws',
  'format',
  'md5',
  'starts_with',
  'regexp_replace',
  'regexp_match',
  'abs',
  'round',
  'floor',
  'ceil',
  'ceiling',
  'trunc',
  'mod',
  'power',
  'sqrt',
  'greatest',
  'least',
  'now',
  'date_trunc',
  'date_part',
  'extract',
  'to_char',
  'to_date',
  'to_timestamp',
  'age',
  'timezone',
  'make_date',
  'make_interval',
  'to_json',
  'to_jsonb',
  'json_build_object',
  'jsonb_build_object',
  'json_build_array',
  'jsonb_build_array',
  'jsonb_array_elements',
  'json_array_elements',
  'jsonb_each',
  'jsonb_set',
  'array_length',
  'cardinality',
  'unnest',
  'generate_series',
  'version',
  'inet_server_port',
  'inet_server_addr',
  'current_setting',
  'pg_is_in_recovery',
  'pg_last_wal_replay_lsn',
  'pg_backend_pid',
];

const SESSION_FUNCTIONS = new Set([
  'set_config',
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
  'pg_advisory_unlock',
  'pg_advisory_unlock_shared',
  'pg_advisory_unlock_all',
]);

const WRITE_NODES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);
const SESSION_STMTS = new Set([
  'PrepareStmt',
  'ExecuteStmt',
  'DeallocateStmt',
  'ListenStmt',
  'UnlistenStmt',
  'DiscardStmt',
  'LoadStmt',
]);

const c = (
  readOnly: boolean,
  reason: RouteReason,
  extra: Partial<Omit<Classification, 'readOnly' | 'reason'>> = {},
): Classification => ({ readOnly, reason, write: !readOnly, sessionState: false, ...extra });

const READ_ONLY = c(true, 'read-only');
const END_TX = c(false, 'transaction-control', { write: false });
const HINT = c(false, 'hint', { write: true });

let parserLoaded = false;
export async function loadParser(): Promise<void> {
  if (!parserLoaded) {
    await loadModule();
    parserLoaded = true;
  }
}

type Node = Record<string, unknown>;

export class Classifier {
  private readonly cache: TextCache<Classification>;
  private readonly safe: Set<string>;
  /** Counters for EXPLAIN ROUTE and metrics. */
  lexerHits = 0;
  cacheHits = 0;
  parses = 0;

  constructor(extraSafeFunctions: readonly string[] = [], cacheSize = 10_000) {
    this.cache = new TextCache(cacheSize);
    this.safe = new Set([...DEFAULT_SAFE_FUNCTIONS, ...extraSafeFunctions.map((f) => f.toLowerCase())]);
  }

  classify(sql: string): Classification {
    if (sql.includes('scaleout:primary')) return HINT;
    const lex = lexClassify(sql);
    switch (lex.kind) {
      case 'read-only':
        this.lexerHits++;
        return READ_ONLY;
      case 'write':
        this.lexerHits++;
        return c(false, 'write', { detail: lex.keyword });
      case 'end-transaction':
        this.lexerHits++;
        return END_TX;
    }
    const cached = this.cache.get(sql);
    if (cached) {
      this.cacheHits++;
      return cached;
    }
    this.parses++;
    return this.cache.add(sql, this.classifyWithParser(sql));
  }

  private classifyWithParser(sql: string): Classification {
    if (!parserLoaded) return c(false, 'parse-error', { detail: 'parser not loaded' });
    let stmts: { stmt?: Node }[];
    try {
      stmts = (parseSync(sql) as { stmts?: { stmt?: Node }[] }).stmts ?? [];
    } catch (err) {
      return c(false, 'parse-error', { detail: err instanceof Error ? err.message : String(err) });
    }
    if (stmts.length === 0) return c(true, 'empty', { write: false });
    if (stmts.length > 1) {
      const parts = stmts.map((s) => this.classifyStatement(s.stmt ?? {}));
      return c(false, 'multi-statement', {
        write: true,
        sessionState: parts.some((p) => p.sessionState),
        detail: `${stmts.length} statements`,
      });
    }
    return this.classifyStatement(stmts[0]!.stmt ?? {});
  }

  private classifyStatement(stmt: Node): Classification {
    const kind = Object.keys(stmt)[0] ?? '';
    const body = (stmt[kind] ?? {}) as Node;
    switch (kind) {
      case 'SelectStmt':
        return this.classifyQuery(stmt);
      case 'ExplainStmt':
        return this.classifyStatement((body.query ?? {}) as Node);
      case 'VariableShowStmt':
        return READ_ONLY;
      case 'VariableSetStmt': {
        if (body.kind === 'VAR_SET_MULTI' || body.is_local) {
          return c(false, 'transaction-control', { write: false, detail: 'SET LOCAL / SET TRANSACTION' });
        }
        return c(false, 'session-state', {
          write: false,
          sessionState: true,
          detail: `SET ${String(body.name ?? '')}`,
        });
      }
      case 'TransactionStmt': {
        const k = String(body.kind);
        if (k === 'TRANS_STMT_BEGIN' || k === 'TRANS_STMT_START') {
          return c(false, 'transaction-control', {
            write: false,
            begin: isReadOnlyTransaction(body) ? 'read-only' : 'read-write',
          });
        }
        return END_TX;
      }
      case 'DeclareCursorStmt': {
        const inner = this.classifyStatement((body.query ?? {}) as Node);
        // CURSOR_OPT_HOLD (0x20): a WITH HOLD cursor outlives the transaction.
        const hold = (Number(body.options ?? 0) & 0x20) !== 0;
        return hold ? { ...inner, readOnly: false, reason: 'session-state', sessionState: true } : inner;
      }
      case 'CopyStmt': {
        if (body.is_from) return c(false, 'copy-from');
        if (body.query) return this.classifyStatement(body.query as Node);
        return READ_ONLY;
      }
      case 'CreateStmt':
      case 'CreateTableAsStmt': {
        const rel = (kind === 'CreateStmt' ? body.relation : (body.into as Node | undefined)?.rel) as
          Node | undefined;
        if (rel?.relpersistence === 't') return c(false, 'temp-table', { sessionState: true });
        return c(false, 'ddl', { detail: kind });
      }
      case 'LockStmt':
        return c(false, 'lock');
      default:
        if (SESSION_STMTS.has(kind)) return c(false, 'session-state', { sessionState: true, detail: kind });
        if (WRITE_NODES.has(kind))
          return c(false, 'write', { detail: kind.replace('Stmt', '').toUpperCase() });
        return c(false, 'ddl', { detail: kind });
    }
  }

  /** A SELECT (possibly with CTEs): read-only unless something inside it writes, locks or calls an unsafe function. */
  private classifyQuery(stmt: Node): Classification {
    let verdict: Classification | undefined;
    let session = false;
    const visit = (value: unknown): void => {
      if (verdict && verdict.reason === 'write') return;
      if (Array.isArray(value)) {
        for (const v of value) visit(v);
        return;
      }
      if (!value || typeof value !== 'object') return;
      for (const [key, child] of Object.entries(value as Node)) {
        if (WRITE_NODES.has(key)) {
          verdict = c(false, 'write', {
            detail: `${key.replace('Stmt', '').toUpperCase()} inside the query`,
          });
          return;
        }
        if (key === 'lockingClause' && Array.isArray(child) && child.length > 0) {
          verdict ??= c(false, 'locking-clause', { write: false });
        } else if (key === 'intoClause' && child) {
          const temp = ((child as Node).rel as Node | undefined)?.relpersistence === 't';
          verdict ??= c(false, temp ? 'temp-table' : 'select-into', { sessionState: temp });
          if (temp) session = true;
        } else if (key === 'FuncCall') {
          const name = functionName(child as Node);
          if (SESSION_FUNCTIONS.has(name.replace(/^pg_catalog\./, ''))) session = true;
          if (!this.isSafeFunction(name)) verdict ??= c(false, 'volatile-function', { detail: name });
        }
        visit(child);
      }
    };
    visit(stmt);
    if (!verdict) return READ_ONLY;
    return session ? { ...verdict, sessionState: true } : verdict;
  }

  private isSafeFunction(qualified: string): boolean {
    const dot = qualified.lastIndexOf('.');
    if (dot >= 0 && qualified.slice(0, dot) !== 'pg_catalog') return this.safe.has(qualified);
    return this.safe.has(qualified.slice(dot + 1));
  }
}

function functionName(call: Node): string {
  const parts = (call.funcname as Node[] | undefined) ?? [];
  return parts
    .map((p) => String(((p.String as Node | undefined)?.sval as string | undefined) ?? '').toLowerCase())
    .join('.');
}

function isReadOnlyTransaction(body: Node): boolean {
  for (const opt of (body.options as Node[] | undefined) ?? []) {
    const def = opt.DefElem as Node | undefined;
    if (def?.defname !== 'transaction_read_only') continue;
    const arg = JSON.stringify(def.arg ?? {});
    // A_Const { ival: { ival: 1 } } for READ ONLY, ival {} (0) for READ WRITE.
    return /"ival":\{"ival":1\}/.test(arg);
  }
  return false;
}
