// A cheap SQL lexer that settles the common statements without the full parser: a plain SELECT with no
// function calls, no locking clause and no INTO is read-only; INSERT/UPDATE/DELETE/MERGE/TRUNCATE are
// writes; COMMIT/ROLLBACK end a transaction. Anything else ("unsure") goes to libpg-query. The lexer
// may only answer "read-only" when that is certain: when in doubt it says "unsure".

export type LexVerdict =
  | { kind: 'read-only' }
  | { kind: 'write'; keyword: string }
  | { kind: 'end-transaction' }
  | { kind: 'unsure' };

const UNSURE: LexVerdict = { kind: 'unsure' };
const READ_ONLY: LexVerdict = { kind: 'read-only' };
const END_TX: LexVerdict = { kind: 'end-transaction' };

/** Keywords that may be followed by "(" without being a function call. */
const PAREN_KEYWORDS = new Set([
  'in',
  'exists',
  'any',
  'all',
  'some',
  'and',
  'or',
  'not',
  'on',
  'where',
  'from',
  'join',
  'select',
  'as',
  'when',
  'then',
  'else',
  'between',
  'like',
  'ilike',
  'case',
  'having',
  'by',
  'distinct',
  'using',
  'values',
  'over',
  'is',
  'union',
  'intersect',
  'except',
]);
/** Keywords that make a SELECT something the lexer will not judge. */
const SELECT_STOPWORDS = new Set([
  'for',
  'into',
  'insert',
  'update',
  'delete',
  'merge',
  'lateral',
  'tablesample',
  'with',
  'table',
  'only',
]);
const WRITE_KEYWORDS = new Set(['insert', 'update', 'delete', 'merge', 'truncate']);
const END_KEYWORDS = new Set(['commit', 'end', 'rollback', 'abort']);

const isIdentStart = (c: number): boolean =>
  (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;
const isIdentPart = (c: number): boolean => isIdentStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x24;

export function lexClassify(sql: string): LexVerdict {
  const n = sql.length;
  let i = 0;
  let first: string | undefined;
  let prevIdent: string | undefined; // lower-cased identifier just before the current token
  let sawEnd = false; // a ";" was seen: only whitespace/comments may follow
  while (i < n) {
    const c = sql.charCodeAt(i);
    // whitespace
    if (c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d || c === 0x0c) {
      i++;
      continue;
    }
    // -- comment
    if (c === 0x2d && sql.charCodeAt(i + 1) === 0x2d) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    // /* comment */ (nesting is legal in PostgreSQL: leave those to the parser)
    if (c === 0x2f && sql.charCodeAt(i + 1) === 0x2a) {
      const close = sql.indexOf('*/', i + 2);
      if (close < 0 || sql.lastIndexOf('/*', close) !== i) return UNSURE;
      i = close + 2;
      continue;
    }
    if (sawEnd) return UNSURE; // a second statement
    if (c === 0x3b) {
      sawEnd = true;
      i++;
      continue;
    }
    if (first === undefined) {
      if (!isIdentStart(c)) return UNSURE;
      let j = i + 1;
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
      first = sql.slice(i, j).toLowerCase();
      i = j;
      if (first !== 'select') {
        // Only the first keyword matters for these, but a later ";" must still be found: keep scanning
        // strings and comments properly, so fall through to the general loop below.
      }
      prevIdent = first;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
      // E'...' escape strings: let the parser handle backslash escapes.
      if (j === i + 1 && (c === 0x45 || c === 0x65) && sql.charCodeAt(j) === 0x27) return UNSURE;
      const word = sql.slice(i, j).toLowerCase();
      if (first === 'select' && SELECT_STOPWORDS.has(word)) return UNSURE;
      prevIdent = word;
      i = j;
      continue;
    }
    if (c === 0x27) {
      // 'string' with '' escapes
      let j = i + 1;
      while (true) {
        const q = sql.indexOf("'", j);
        if (q < 0) return UNSURE;
        if (sql.charCodeAt(q + 1) === 0x27) {
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      prevIdent = undefined;
      continue;
    }
    if (c === 0x22) {
      // "quoted identifier"
      let j = i + 1;
      while (true) {
        const q = sql.indexOf('"', j);
        if (q < 0) return UNSURE;
        if (sql.charCodeAt(q + 1) === 0x22) {
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      prevIdent = '"'; // a quoted name followed by "(" is a function call too
      continue;
    }
    if (c === 0x24) return UNSURE; // $1 is fine, but $tag$ dollar quoting is not worth lexing here
    if (c === 0x28) {
      if (prevIdent !== undefined && !PAREN_KEYWORDS.has(prevIdent) && first === 'select') return UNSURE;
      prevIdent = undefined;
      i++;
      continue;
    }
    if (c === 0x5c) return UNSURE; // backslash outside strings: psql meta or odd input
    prevIdent = undefined;
    i++;
  }
  if (first === undefined) return UNSURE;
  if (first === 'select') return READ_ONLY;
  if (WRITE_KEYWORDS.has(first)) return { kind: 'write', keyword: first.toUpperCase() };
  if (END_KEYWORDS.has(first)) return END_TX;
  return UNSURE;
}
