// Offline resharding from N to M shards. Nothing the proxy serves changes until every row is copied
// and checked:
//   1. copy: on every shard of the new layout, an empty copy of each sharded table is made in schema
//      scaleout_reshard; every old shard sends each new shard the rows whose hash remainder (modulus M)
//      is that shard's index (the server's own satisfies_hash_partition picks them); shards that are
//      new also get a full copy of each reference table;
//   2. verify: on every new shard, the row count equals what was sent to it, no row fails
//      satisfies_hash_partition(M, index), and the totals equal the old totals;
//   3. switch (only after 2): on each shard, in one transaction, the served table moves to schema
//      scaleout_old and the new copy takes its place; the caller rewrites the config to M shards.
// The old layout stays in scaleout_old (and the old config in a backup) until `finish` drops it;
// `rollback` moves it back.
import pg from 'pg';
import { SQL_TYPE_OF_KEY, type DatabaseConfig, type ShardKeyType } from '../config.js';

const NEW = 'scaleout_reshard';
const OLD = 'scaleout_old';
const BATCH = 2000;

export interface ReshardPlan {
  /** Primary URLs of the old layout, in shard order. */
  from: string[];
  /** Primary URLs of the new layout, in shard order (the first min(N, M) are the old ones). */
  to: string[];
  sharded: { table: string; key: string; type: ShardKeyType }[];
  reference: string[];
}

export interface ReshardProgress {
  phase: 'count' | 'copy' | 'verify' | 'switch';
  table?: string;
  done: number;
  total: number;
}

export interface ShardSummary {
  shard: number;
  url: string;
  /** Rows of sharded tables before (old layout; 0 for a new shard) and after. */
  before: number;
  after: number;
}

export class ReshardError extends Error {}

function split(table: string): { schema: string; name: string; qualified: string } {
  const [a, b] = table.includes('.') ? table.split('.') : ['public', table];
  return { schema: a!, name: b!, qualified: `"${a}"."${b}"` };
}

function redact(url: string): string {
  const u = new URL(url);
  u.password = '';
  return `${u.hostname}:${u.port || 5432}/${u.pathname.slice(1)}`;
}

async function open(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: 'scaleout-reshard' });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    throw new ReshardError(`cannot connect to ${redact(url)}: ${(err as Error).message}`);
  }
  return c;
}

export function planFromConfig(
  config: DatabaseConfig,
  from: number,
  to: number,
  newShards: string[],
): ReshardPlan {
  const shards = config.shards ?? [];
  if (shards.length !== from)
    throw new ReshardError(`--from ${from}: the config lists ${shards.length} shards (the layout in use)`);
  if (to < 1) throw new ReshardError('--to must be at least 1');
  if (to === from) throw new ReshardError('--from and --to are equal: nothing to do');
  const old = shards.map((s) => s.primary);
  if (to > from && newShards.length !== to - from)
    throw new ReshardError(
      `growing to ${to} shards needs ${to - from} --new-shard URL(s), got ${newShards.length}`,
    );
  if (to < from && newShards.length > 0) throw new ReshardError('--new-shard only applies when growing');
  if (config.default_shard >= to)
    throw new ReshardError(
      `default_shard ${config.default_shard} would not exist with ${to} shards; change it first`,
    );
  return {
    from: old,
    to: to > from ? [...old, ...newShards] : old.slice(0, to),
    sharded: config.sharded_tables,
    reference: config.reference_tables,
  };
}

/** Steps 1 and 2; throws (after cleaning up) if verification fails. Returns the per-shard summary. */
export async function copyAndVerify(
  plan: ReshardPlan,
  progress: (p: ReshardProgress) => void = () => {},
): Promise<ShardSummary[]> {
  const urls = [...new Set([...plan.from, ...plan.to])];
  const clients = new Map<string, pg.Client>();
  try {
    for (const url of urls) clients.set(url, await open(url));
    const c = (url: string): pg.Client => clients.get(url)!;
    for (const url of urls) {
      const r = await c(url).query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [OLD]);
      if (r.rows.length > 0)
        throw new ReshardError(
          `${redact(url)} still keeps the layout of an earlier reshard (schema ${OLD}): run --finish or --rollback first`,
        );
    }
    const M = plan.to.length;
    const types = [...new Set(plan.sharded.map((t) => t.type))];
    // Work schema with an empty copy of each table and one hash-partitioned helper per key type.
    for (const url of urls) {
      await c(url).query(`DROP SCHEMA IF EXISTS ${NEW} CASCADE`);
      await c(url).query(`CREATE SCHEMA ${NEW}`);
      for (const type of types)
        await c(url).query(
          `CREATE TABLE ${NEW}.hp_${type} (k ${SQL_TYPE_OF_KEY[type]}) PARTITION BY HASH (k)`,
        );
    }
    const source = c(plan.from[0]!);
    const newOnly = plan.to.filter((u) => !plan.from.includes(u));
    for (const t of plan.sharded) {
      const ddl = await tableDdl(source, t.table);
      for (const url of plan.to) await c(url).query(ddl);
    }
    for (const t of plan.reference) {
      const ddl = await tableDdl(source, t);
      for (const url of newOnly) await c(url).query(ddl);
    }
    // Count, for the progress bar and the totals check.
    const before = new Map<string, number>();
    let total = 0;
    for (const url of plan.from) {
      let n = 0;
      for (const t of plan.sharded) {
        const r = await c(url).query(`SELECT count(*)::bigint AS n FROM ${split(t.table).qualified}`);
        n += Number(r.rows[0].n);
      }
      before.set(url, n);
      total += n;
    }
    for (const t of plan.reference) {
      const r = await source.query(`SELECT count(*)::bigint AS n FROM ${split(t).qualified}`);
      total += Number(r.rows[0].n) * newOnly.length;
    }
    progress({ phase: 'count', done: 0, total });
    let done = 0;
    const expected = new Map<string, number>(); // url|table → rows sent
    const copy = async (
      from: string,
      to: string,
      table: string,
      where: string,
      params: unknown[],
    ): Promise<void> => {
      const q = split(table);
      const src = c(from);
      await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      try {
        await src.query(
          `DECLARE scaleout_rows NO SCROLL CURSOR FOR SELECT row_to_json(t)::text AS j FROM ${q.qualified} t WHERE ${where}`,
          params,
        );
        for (;;) {
          const r = await src.query(`FETCH ${BATCH} FROM scaleout_rows`);
          if (r.rows.length === 0) break;
          const json = '[' + r.rows.map((x: { j: string }) => x.j).join(',') + ']';
          await c(to).query(
            `INSERT INTO ${NEW}."${q.name}" SELECT * FROM json_populate_recordset(NULL::${NEW}."${q.name}", $1::json)`,
            [json],
          );
          const key = `${to}|${table}`;
          expected.set(key, (expected.get(key) ?? 0) + r.rows.length);
          done += r.rows.length;
          progress({ phase: 'copy', table, done, total });
        }
      } finally {
        await src.query('COMMIT');
      }
    };
    for (const t of plan.sharded) {
      for (const from of plan.from)
        for (const [r, to] of plan.to.entries())
          await copy(
            from,
            to,
            t.table,
            `satisfies_hash_partition('${NEW}.hp_${t.type}'::regclass, ${M}, ${r}, t."${t.key}")`,
            [],
          );
    }
    for (const t of plan.reference) for (const to of newOnly) await copy(plan.from[0]!, to, t, 'true', []);
    // Verify every shard of the new layout.
    const summary: ShardSummary[] = [];
    let after = 0;
    for (const [r, url] of plan.to.entries()) {
      let n = 0;
      for (const t of plan.sharded) {
        const q = split(t.table);
        const res = await c(url).query(
          `SELECT count(*)::bigint AS n,
                  count(*) FILTER (WHERE NOT satisfies_hash_partition('${NEW}.hp_${t.type}'::regclass, ${M}, ${r}, "${t.key}"))::bigint AS wrong
             FROM ${NEW}."${q.name}"`,
        );
        const got = Number(res.rows[0].n);
        const want = expected.get(`${url}|${t.table}`) ?? 0;
        if (got !== want)
          throw new ReshardError(`verify: shard ${r} has ${got} rows of ${t.table}, ${want} were sent`);
        if (Number(res.rows[0].wrong) !== 0)
          throw new ReshardError(
            `verify: shard ${r} holds ${res.rows[0].wrong} rows of ${t.table} that belong elsewhere`,
          );
        n += got;
      }
      for (const t of newOnly.includes(url) ? plan.reference : []) {
        const res = await c(url).query(`SELECT count(*)::bigint AS n FROM ${NEW}."${split(t).name}"`);
        const want = Number(
          (await source.query(`SELECT count(*)::bigint AS n FROM ${split(t).qualified}`)).rows[0].n,
        );
        if (Number(res.rows[0].n) !== want)
          throw new ReshardError(
            `verify: reference table ${t} on shard ${r} has ${res.rows[0].n} rows, not ${want}`,
          );
      }
      after += n;
      progress({ phase: 'verify', done: r + 1, total: plan.to.length });
      summary.push({ shard: r, url: redact(url), before: before.get(url) ?? 0, after: n });
    }
    const old = [...before.values()].reduce((a, b) => a + b, 0);
    if (after !== old)
      throw new ReshardError(`verify: ${after} rows in the new layout, ${old} in the old one`);
    return summary;
  } catch (err) {
    for (const cl of clients.values()) await cl.query(`DROP SCHEMA IF EXISTS ${NEW} CASCADE`).catch(() => {});
    throw err;
  } finally {
    for (const cl of clients.values()) await cl.end().catch(() => {});
  }
}

/** CREATE TABLE for the work copy: the columns, NOT NULLs and primary key of the served table. */
async function tableDdl(c: pg.Client, table: string): Promise<string> {
  const q = split(table);
  const exists = await c.query('SELECT to_regclass($1) AS r', [q.qualified]);
  if (!exists.rows[0].r) throw new ReshardError(`table ${table} (in the config) does not exist on shard 0`);
  const cols = await c.query(
    `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull
       FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [q.qualified],
  );
  if (cols.rows.length === 0) throw new ReshardError(`table ${table} has no columns on the first shard`);
  const pk = await c.query(
    `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
    [q.qualified],
  );
  const parts = cols.rows.map(
    (r: { attname: string; type: string; attnotnull: boolean }) =>
      `"${r.attname}" ${r.type}${r.attnotnull ? ' NOT NULL' : ''}`,
  );
  if (pk.rows.length > 0)
    parts.push(`PRIMARY KEY (${pk.rows.map((r: { attname: string }) => `"${r.attname}"`).join(', ')})`);
  return `CREATE TABLE ${NEW}."${q.name}" (${parts.join(', ')})`;
}

/** Step 3: on every shard of both layouts, the served tables move to scaleout_old, the copies take their place. */
export async function switchLayout(plan: ReshardPlan): Promise<void> {
  const tables = [...plan.sharded.map((t) => t.table), ...plan.reference];
  await inTransactionOnEach(plan, 'switch', async (c, url) => {
    await c.query(`DROP SCHEMA IF EXISTS ${OLD} CASCADE`);
    await c.query(`CREATE SCHEMA ${OLD}`);
    for (const t of tables) {
      const q = split(t);
      const served = await c.query('SELECT to_regclass($1) AS r', [q.qualified]);
      const copy = await c.query('SELECT to_regclass($1) AS r', [`${NEW}."${q.name}"`]);
      const inNew = plan.to.includes(url);
      const sharded = plan.sharded.some((s) => s.table === t);
      // Reference tables stay where they are on shards that keep serving; new shards get their copy.
      if (!sharded && inNew && !copy.rows[0].r) continue;
      if (served.rows[0].r) await c.query(`ALTER TABLE ${q.qualified} SET SCHEMA ${OLD}`);
      if (copy.rows[0].r && inNew) await c.query(`ALTER TABLE ${NEW}."${q.name}" SET SCHEMA "${q.schema}"`);
    }
    await c.query(`DROP SCHEMA ${NEW} CASCADE`);
  });
}

/** After the user confirmed: the old layout is dropped everywhere. */
export async function dropOldLayout(urls: string[]): Promise<void> {
  for (const url of urls) {
    const c = await open(url);
    try {
      await c.query(`DROP SCHEMA IF EXISTS ${OLD} CASCADE`);
    } finally {
      await c.end().catch(() => {});
    }
  }
}

/** Undo a switch: the tables kept in scaleout_old come back (rows written since the switch are lost). */
export async function restoreOldLayout(plan: ReshardPlan): Promise<void> {
  const tables = [...plan.sharded.map((t) => t.table), ...plan.reference];
  await inTransactionOnEach(plan, 'rollback', async (c, url) => {
    for (const t of tables) {
      const q = split(t);
      const kept = await c.query('SELECT to_regclass($1) AS r', [`${OLD}."${q.name}"`]);
      if (kept.rows[0].r) {
        await c.query(`DROP TABLE IF EXISTS ${q.qualified}`);
        await c.query(`ALTER TABLE ${OLD}."${q.name}" SET SCHEMA "${q.schema}"`);
      } else if (!plan.from.includes(url)) {
        await c.query(`DROP TABLE IF EXISTS ${q.qualified}`); // a shard that only the new layout had
      }
    }
    await c.query(`DROP SCHEMA IF EXISTS ${OLD} CASCADE`);
  });
}

/** Runs `step` in one transaction on every shard of both layouts, in turn; the first failure stops it. */
async function inTransactionOnEach(
  plan: ReshardPlan,
  what: string,
  step: (c: pg.Client, url: string) => Promise<void>,
): Promise<void> {
  for (const url of [...new Set([...plan.from, ...plan.to])]) {
    const c = await open(url);
    try {
      await c.query('BEGIN');
      await step(c, url);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw new ReshardError(`${what} failed on ${redact(url)}: ${(err as Error).message}`);
    } finally {
      await c.end().catch(() => {});
    }
  }
}
