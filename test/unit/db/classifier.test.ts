import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Classifier, loadParser } from '../../../src/db/classifier.js';
import { lexClassify } from '../../../src/db/lexer.js';

describe('statement classifier', () => {
  let k: Classifier;
  before(async () => {
    await loadParser();
    k = new Classifier(['my_safe_fn']);
  });

  const cases: [string, boolean, string][] = [
    ['SELECT abalance FROM pgbench_accounts WHERE aid = 7;', true, 'read-only'],
    ['select count(*), max(x) from t where y in (1, 2)', true, 'read-only'],
    ['WITH a AS (SELECT 1) SELECT * FROM a', true, 'read-only'],
    ['WITH a AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM a', false, 'write'],
    ['WITH a AS (SELECT 1) UPDATE t SET x = 1', false, 'write'],
    ['SELECT * FROM t FOR UPDATE', false, 'locking-clause'],
    ['SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED', false, 'locking-clause'],
    ['SELECT * FROM (SELECT * FROM t FOR SHARE) s', false, 'locking-clause'],
    ["SELECT nextval('s')", false, 'volatile-function'],
    ["SELECT setval('s', 1)", false, 'volatile-function'],
    ['SELECT random()', false, 'volatile-function'],
    ['SELECT my_safe_fn(1)', true, 'read-only'],
    ['SELECT other.my_safe_fn(1)', false, 'volatile-function'],
    ['SELECT * INTO t2 FROM t', false, 'select-into'],
    ['CREATE TEMP TABLE x (a int)', false, 'temp-table'],
    ['LOCK TABLE t', false, 'lock'],
    ['CREATE INDEX ON t (x)', false, 'ddl'],
    ['SELECT 1; SELECT 2', false, 'multi-statement'],
    ['SELEC 1', false, 'parse-error'],
    ['SET search_path = x', false, 'session-state'],
    ['SELECT pg_advisory_lock(1)', false, 'volatile-function'],
    ['COPY t FROM STDIN', false, 'copy-from'],
    ['COPY t TO STDOUT', true, 'read-only'],
    ['/* scaleout:primary */ SELECT 1', false, 'hint'],
    ['EXPLAIN SELECT 1', true, 'read-only'],
    ['EXPLAIN ANALYZE DELETE FROM t', false, 'write'],
    ['SHOW work_mem', true, 'read-only'],
  ];
  for (const [sql, readOnly, reason] of cases) {
    it(`${sql} → ${readOnly ? 'replica' : 'primary'} (${reason})`, () => {
      const c = k.classify(sql);
      assert.equal(c.readOnly, readOnly);
      assert.equal(c.reason, reason);
    });
  }

  it('flags session state and transaction starts', () => {
    assert.equal(k.classify('SET search_path = x').sessionState, true);
    assert.equal(k.classify('SET LOCAL work_mem = 1').sessionState, false);
    assert.equal(k.classify('CREATE TEMP TABLE y (a int)').sessionState, true);
    assert.equal(k.classify('SELECT pg_advisory_lock(1)').sessionState, true);
    assert.equal(k.classify('PREPARE p AS SELECT 1').sessionState, true);
    assert.equal(k.classify('BEGIN').begin, 'read-write');
    assert.equal(k.classify('BEGIN READ ONLY').begin, 'read-only');
    assert.equal(
      k.classify('START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY').begin,
      'read-only',
    );
    assert.equal(k.classify('BEGIN READ WRITE').begin, 'read-write');
  });

  it('the lexer never calls read-only what the parser does not', () => {
    const words = [
      'SELECT',
      'a',
      'FROM',
      't',
      'WHERE',
      '=',
      '1',
      "'x;y'",
      '"Q"',
      '(',
      ')',
      ',',
      ';',
      'FOR',
      'UPDATE',
      'nextval',
      'INTO',
      'WITH',
      'INSERT',
      '--c\n',
      '/* c */',
      "E'\\'",
      '$1',
      'f(',
      'AND',
      '*',
      'lower(',
      'in (1)',
    ];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...words), { minLength: 1, maxLength: 12 }), (parts) => {
        const sql = ['SELECT', ...parts].join(' ');
        if (lexClassify(sql).kind !== 'read-only') return;
        const full = new Classifier();
        // Bypass the lexer: the parser's own verdict for the same text.
        const verdict = (
          full as unknown as { classifyWithParser(s: string): { readOnly: boolean; reason: string } }
        ).classifyWithParser(sql);
        // Grammar is not the lexer's job: an invalid SELECT fails on the replica just as it would on
        // the primary. What matters is that nothing the parser reads as a write, lock or unsafe call
        // slips through.
        if (verdict.reason !== 'parse-error') assert.equal(verdict.readOnly, true, sql);
      }),
      { numRuns: 2000 },
    );
  });
});
