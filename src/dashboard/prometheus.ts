// Reading the Prometheus text exposition format that our own admin endpoints serve, and the two
// derivations the dashboard needs from it: counter deltas and quantiles from histogram buckets.
//
// Written by hand on purpose: we only need `name{labels} value` samples (no types, help or exemplars),
// the format is a few lines of grammar, and the npm parsers for it are unmaintained or pull in far more.

export type Labels = Record<string, string>;

export interface Sample {
  name: string;
  labels: Labels;
  value: number;
}

/** Parses exposition text into samples; comment, blank and malformed lines are skipped. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sample = parseLine(line);
    if (sample) samples.push(sample);
  }
  return samples;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseLine(line: string): Sample | undefined {
  const nameMatch = NAME.exec(line);
  if (!nameMatch) return undefined;
  const name = nameMatch[0];
  let i = name.length;
  const labels: Labels = {};
  if (line[i] === '{') {
    i++;
    while (true) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const labelMatch = LABEL_NAME.exec(line.slice(i));
      if (!labelMatch) return undefined;
      i += labelMatch[0].length;
      if (line[i] !== '=' || line[i + 1] !== '"') return undefined;
      i += 2;
      let value = '';
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\') {
          const next = line[i + 1];
          value += next === 'n' ? '\n' : (next ?? '');
          i += 2;
        } else value += line[i++];
      }
      if (line[i] !== '"') return undefined;
      i++;
      labels[labelMatch[0]] = value;
    }
  }
  // The value, then an optional timestamp we do not need.
  const valueText = line.slice(i).trim().split(/\s+/)[0];
  if (valueText === undefined || valueText === '') return undefined;
  const value = parseValue(valueText);
  return Number.isNaN(value) && valueText !== 'NaN' ? undefined : { name, labels, value };
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

/** Growth of a counter between two readings; a smaller reading means the process restarted. */
export function counterDelta(previous: number | undefined, current: number): number {
  if (previous === undefined) return 0;
  return current >= previous ? current - previous : current;
}

/** Cumulative histogram buckets: upper bounds (ascending, last may be Infinity) and counts. */
export interface Buckets {
  le: number[];
  counts: number[];
}

/**
 * The q-quantile (0..1) of the observations in cumulative buckets, interpolating linearly inside the
 * bucket as Prometheus' histogram_quantile does. Undefined when there are no observations; an answer in
 * the +Inf bucket is reported as the highest finite bound.
 */
export function histogramQuantile(q: number, buckets: Buckets): number | undefined {
  const n = buckets.counts.length;
  const total = n ? buckets.counts[n - 1]! : 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  for (let i = 0; i < n; i++) {
    const count = buckets.counts[i]!;
    if (count < rank) continue;
    const upper = buckets.le[i]!;
    const lower = i === 0 ? 0 : buckets.le[i - 1]!;
    if (upper === Infinity) return lower;
    const below = i === 0 ? 0 : buckets.counts[i - 1]!;
    const inBucket = count - below;
    if (inBucket <= 0) return upper;
    return lower + (upper - lower) * ((rank - below) / inBucket);
  }
  return buckets.le[n - 1] === Infinity ? buckets.le[n - 2] : buckets.le[n - 1];
}

/**
 * Bucket-wise growth between two readings of the same histogram. No earlier reading means the series
 * is new since the last poll (prom-client shows a label set from its first observation): all growth.
 */
export function bucketsDelta(previous: Buckets | undefined, current: Buckets): Buckets {
  if (!previous) return current;
  if (previous.le.length !== current.le.length)
    return { le: current.le, counts: current.counts.map(() => 0) };
  const total = current.counts[current.counts.length - 1] ?? 0;
  const prevTotal = previous.counts[previous.counts.length - 1] ?? 0;
  // A restarted process starts from zero: its whole reading is the growth.
  if (total < prevTotal) return current;
  return { le: current.le, counts: current.counts.map((c, i) => c - (previous.counts[i] ?? 0)) };
}

/** Adds histogram b into a (same bounds), in place; returns a. */
export function addBuckets(a: Buckets, b: Buckets): Buckets {
  for (let i = 0; i < a.counts.length; i++) a.counts[i] = (a.counts[i] ?? 0) + (b.counts[i] ?? 0);
  return a;
}
