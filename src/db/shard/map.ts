// The shard map of a configuration: how many shards, their names, and where each table lives.
import type { DatabaseConfig, ShardKeyType } from '../config.js';
import { clusterSpecs } from '../config.js';

export type TablePlacement =
  | { kind: 'sharded'; table: string; key: string; type: ShardKeyType }
  | { kind: 'reference'; table: string }
  | { kind: 'default'; table: string };

export class ShardMap {
  readonly count: number;
  readonly names: string[];
  readonly defaultShard: number;
  readonly twoPhaseCommit: boolean;
  private readonly tables = new Map<string, TablePlacement>();
  /** The key type when every sharded table uses the same one (for SET scaleout.shard_key outside a statement). */
  readonly commonKeyType: ShardKeyType | undefined;

  constructor(config: DatabaseConfig) {
    const specs = clusterSpecs(config);
    this.count = specs.length;
    this.names = specs.map((s) => s.name);
    this.defaultShard = config.default_shard;
    this.twoPhaseCommit = config.two_phase_commit;
    for (const t of config.sharded_tables) this.tables.set(t.table, { kind: 'sharded', ...t });
    for (const t of config.reference_tables) this.tables.set(t, { kind: 'reference', table: t });
    const types = new Set(config.sharded_tables.map((t) => t.type));
    this.commonKeyType = types.size === 1 ? [...types][0] : undefined;
  }

  /** Where a table named in SQL lives; unqualified names and `public.` names are the same table. */
  lookup(schema: string | undefined, name: string): TablePlacement {
    const candidates = schema
      ? [`${schema}.${name}`, ...(schema === 'public' ? [name] : [])]
      : [name, `public.${name}`];
    for (const c of candidates) {
      const p = this.tables.get(c);
      if (p) return p;
    }
    return { kind: 'default', table: schema ? `${schema}.${name}` : name };
  }

  /** A shard given by index or by name (hints, SET scaleout.shard). */
  resolveShard(text: string): number | undefined {
    const t = text.trim();
    if (/^\d+$/.test(t)) {
      const n = Number(t);
      return n < this.count ? n : undefined;
    }
    const i = this.names.indexOf(t);
    return i < 0 ? undefined : i;
  }
}
