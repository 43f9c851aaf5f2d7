// A bounded history of numeric series sampled once per tick: one shared time axis, and per series a few
// named fields (rps, err, p50, …), all kept aligned so a chart can take them as they are.

export type Point = Record<string, number | null>;

export interface HistoryView {
  /** Seconds since the epoch, one per tick. */
  times: number[];
  series: Record<string, Record<string, Array<number | null>>>;
}

export class History {
  private readonly times: number[] = [];
  private readonly series = new Map<
    string,
    { fields: Map<string, Array<number | null>>; lastSeen: number }
  >();
  private pending = new Map<string, Point>();

  constructor(readonly capacity: number) {}

  /** Sets the values of one series for the tick that `commit` will close. */
  record(key: string, point: Point): void {
    this.pending.set(key, point);
  }

  /** Closes the tick at `atMs`: every series gets a value (null where it had none), old ticks drop off. */
  commit(atMs: number): void {
    const tick = this.times.length;
    this.times.push(atMs / 1000);
    for (const [key, point] of this.pending) {
      let s = this.series.get(key);
      if (!s) {
        s = { fields: new Map(), lastSeen: tick };
        this.series.set(key, s);
      }
      s.lastSeen = tick;
      for (const field of Object.keys(point)) {
        if (!s.fields.has(field)) s.fields.set(field, new Array<number | null>(tick).fill(null));
      }
    }
    for (const [key, s] of this.series) {
      const point = this.pending.get(key);
      for (const [field, values] of s.fields) values.push(point?.[field] ?? null);
    }
    this.pending = new Map();
    if (this.times.length > this.capacity) {
      const drop = this.times.length - this.capacity;
      this.times.splice(0, drop);
      for (const [key, s] of this.series) {
        for (const values of s.fields.values()) values.splice(0, drop);
        s.lastSeen -= drop;
        // A series not seen in the whole window (a removed target) is forgotten.
        if (s.lastSeen < 0) this.series.delete(key);
      }
    }
  }

  get length(): number {
    return this.times.length;
  }

  keys(): string[] {
    return [...this.series.keys()];
  }

  /** The last `n` values of one field of one series (for sparklines). */
  tail(key: string, field: string, n: number): Array<number | null> {
    return this.series.get(key)?.fields.get(field)?.slice(-n) ?? [];
  }

  /** The chosen series (all when `keys` is undefined), over the last `seconds` ticks when given. */
  view(keys?: string[], seconds?: number): HistoryView {
    const from = seconds === undefined ? 0 : Math.max(0, this.times.length - seconds);
    const series: HistoryView['series'] = {};
    for (const key of keys ?? this.series.keys()) {
      const s = this.series.get(key);
      if (!s) continue;
      const fields: Record<string, Array<number | null>> = {};
      for (const [field, values] of s.fields) fields[field] = values.slice(from);
      series[key] = fields;
    }
    return { times: this.times.slice(from), series };
  }
}
