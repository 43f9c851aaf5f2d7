// The demo app's data access: one table of short links, reached only through the db-proxy.
//
// Three habits make an app scale out behind scaleout's db-proxy:
//  1. Every point read and write names the shard key (`code`) in its WHERE or INSERT, so a sharding
//     proxy can send it to exactly one shard.
//  2. Keys are random (see codes.ts), so they are unique across instances and shards.
//  3. Read-your-writes: after a write we ask the proxy for its token (`SHOW scaleout.last_lsn`) on the
//     same connection, and before a later read of that user we hand it back (`SET scaleout.last_lsn`) on
//     the connection that runs the read. The proxy then reads from a replica only once the replica has
//     replayed the write, else from the primary. The token is opaque to us: we store and return it as is.
import pg from 'pg';
import type { Logger } from '../core/log.js';
import { newCode } from './codes.js';

export interface Link {
  code: string;
  url: string;
  created_at: string;
  /** The app instance that took the write. */
  created_by: string;
}

/** Idempotent, so every instance runs it at start. The key column is the shard key. */
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS links (
     code       text PRIMARY KEY,
     url        text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     created_by text NOT NULL
   )`,
  `CREATE INDEX IF NOT EXISTS links_created_at ON links (created_at DESC)`,
];

const COLUMNS = 'code, url, created_at, created_by';

/** pg returns timestamptz as a Date; the API speaks ISO strings. */
function toLink(row: Record<string, unknown>): Link {
  const created = row.created_at;
  return {
    code: String(row.code),
    url: String(row.url),
    created_at: created instanceof Date ? created.toISOString() : String(created),
    created_by: String(row.created_by),
  };
}

/** Errors that mean "the database (or the path to it) is not available right now": answered 503. */
export function isUnavailable(err: unknown): boolean {
  const code = errorCode(err) ?? '';
  const message = String((err as { message?: unknown }).message ?? '');
  return (
    code.startsWith('08') || // connection exceptions, including the proxy's "primary unavailable"
    code.startsWith('57P') || // server shutting down
    code === '53300' || // too many connections
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH'].includes(code) ||
    /timeout exceeded when trying to connect|Connection terminated/i.test(message)
  );
}

/** A proxy (or plain PostgreSQL) that does not know scaleout's settings answers 42704. */
const UNKNOWN_SETTING = '42704';
/** The proxy's answer to a token it cannot parse. */
const INVALID_VALUE = '22023';

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

export class LinkStore {
  private readonly pool: pg.Pool;
  /** A separate single connection for health checks, so a busy pool does not look like a dead database. */
  private readonly healthPool: pg.Pool;
  private tokensSupported = true;

  constructor(
    databaseUrl: string,
    private readonly instance: string,
    private readonly log: Logger,
    poolSize = 10,
  ) {
    const common = {
      connectionString: databaseUrl,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
    };
    this.pool = new pg.Pool({ ...common, max: poolSize });
    this.healthPool = new pg.Pool({ ...common, max: 1, connectionTimeoutMillis: 2000 });
    // An idle connection that drops (proxy restarted) must not crash the process: the pool replaces it.
    const onIdleError = (err: Error): void =>
      this.log.warn({ error: err.message }, 'idle database connection lost');
    this.pool.on('error', onIdleError);
    this.healthPool.on('error', onIdleError);
  }

  async createSchema(): Promise<void> {
    for (const sql of SCHEMA) await this.pool.query(sql);
  }

  /** true when a trivial query answers within the health pool's connect timeout. */
  async ping(): Promise<void> {
    await this.healthPool.query('SELECT 1');
  }

  /**
   * Inserts a link under a fresh random code and returns it with the read-your-writes token taken
   * on the same connection right after the commit (undefined if the proxy does not offer one).
   */
  async create(url: string): Promise<{ link: Link; token: string | undefined }> {
    return this.withClient(async (client) => {
      for (let attempt = 1; ; attempt++) {
        try {
          const res = await client.query(
            `INSERT INTO links (code, url, created_by) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
            [newCode(), url, this.instance],
          );
          return {
            link: toLink(res.rows[0] as Record<string, unknown>),
            token: await this.readToken(client),
          };
        } catch (err) {
          // 23505: the random code already exists (on its shard); draw another.
          if (errorCode(err) === '23505' && attempt < 5) continue;
          throw err;
        }
      }
    });
  }

  /** One link by its code (the shard key), seeing at least the write behind `token`. */
  async get(code: string, token: string | undefined): Promise<Link | undefined> {
    return this.read(token, async (client) => {
      const res = await client.query(`SELECT ${COLUMNS} FROM links WHERE code = $1`, [code]);
      const row = res.rows[0] as Record<string, unknown> | undefined;
      return row ? toLink(row) : undefined;
    });
  }

  /**
   * The newest links. A plain SELECT … ORDER BY … LIMIT with no shard key: a sharding proxy asks every
   * shard and merges. The limit is a validated integer written into the text, so the proxy sees it.
   */
  async latest(limit: number, token: string | undefined): Promise<Link[]> {
    const n = Math.max(1, Math.min(100, Math.trunc(limit)));
    return this.read(token, async (client) => {
      const res = await client.query(
        `SELECT ${COLUMNS} FROM links ORDER BY created_at DESC, code LIMIT ${n}`,
      );
      return res.rows.map((r) => toLink(r as Record<string, unknown>));
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.pool.end(), this.healthPool.end()]);
  }

  /** Runs a read on one checked-out connection, after handing the user's token to the proxy. */
  private async read<T>(token: string | undefined, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      if (token !== undefined && this.tokensSupported) await this.applyToken(client, token);
      return fn(client);
    });
  }

  /**
   * Runs `fn` on one checked-out connection. A connection that drops while checked out emits 'error'
   * (besides failing its query), and node-postgres only listens for that while the connection is idle
   * in the pool: without this listener the process would crash. The pool drops the broken connection.
   */
  private async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const onError = (err: Error): void => this.log.warn({ error: err.message }, 'database connection lost');
    client.on('error', onError);
    try {
      return await fn(client);
    } finally {
      client.off('error', onError);
      client.release();
    }
  }

  private async readToken(client: pg.PoolClient): Promise<string | undefined> {
    if (!this.tokensSupported) return undefined;
    try {
      const res = await client.query('SHOW scaleout.last_lsn');
      const value = (res.rows[0] as Record<string, unknown> | undefined)?.['scaleout.last_lsn'];
      return typeof value === 'string' && value !== '' ? value : undefined;
    } catch (err) {
      if (errorCode(err) === UNKNOWN_SETTING) this.disableTokens();
      // The write is committed: answer it, only without the guarantee (a 503 here would invite a
      // retry that creates the link twice).
      else this.log.warn({ error: (err as Error).message }, 'no read-your-writes token after a write');
      return undefined;
    }
  }

  private async applyToken(client: pg.PoolClient, token: string): Promise<void> {
    try {
      // SET takes no bind parameters: the token (user input, from a cookie) is quoted as a literal.
      await client.query(`SET scaleout.last_lsn = ${client.escapeLiteral(token)}`);
    } catch (err) {
      const code = errorCode(err);
      if (code === UNKNOWN_SETTING) this.disableTokens();
      // 22023: a malformed token (a tampered cookie) only costs that user the guarantee; the read goes on.
      else if (code === INVALID_VALUE)
        this.log.debug({ token }, 'ignored a malformed read-your-writes token');
      else throw err;
    }
  }

  /** Connected straight to PostgreSQL (no db-proxy), there is no token: stop asking for one. */
  private disableTokens(): void {
    if (this.tokensSupported)
      this.log.warn(
        'the database does not know scaleout.last_lsn (no db-proxy?): read-your-writes tokens are off',
      );
    this.tokensSupported = false;
  }
}
