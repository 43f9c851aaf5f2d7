// A bounded map from statement text to what was worked out from it (classification, shard analysis),
// so each distinct statement is parsed once. When full, the oldest entry goes: cheaper than an LRU and
// enough for the few hundred statement texts an application sends.
export class TextCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly size: number) {}

  get(sql: string): V | undefined {
    return this.entries.get(sql);
  }

  /** Stores `value` for `sql` (dropping the oldest entry when full) and returns it. */
  add(sql: string, value: V): V {
    if (this.entries.size >= this.size) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(sql, value);
    return value;
  }
}
