// The fixed timeline and the order of request kinds: both pure, so they are unit-tested on their own.
import type { Mix, RequestKind } from './options.js';

/** When request `index` is due, in ms after the start: one every 1000/rate ms. */
export function scheduledAt(index: number, rate: number): number {
  return (index * 1000) / rate;
}

/** How many requests are due at `elapsedMs` after the start (the next index to send). */
export function dueCount(elapsedMs: number, rate: number, total: number): number {
  return Math.min(total, Math.floor((elapsedMs * rate) / 1000) + 1);
}

/**
 * Kinds in the mix's proportions, spread evenly rather than drawn at random (smooth weighted
 * round-robin, as nginx spreads weighted upstreams): read=90,write=10 gives exactly one write in every
 * ten requests, so every second of the timeline has the same mix and runs are repeatable.
 */
export function kindSequence(mix: Mix): () => RequestKind {
  const entries = (Object.entries(mix) as [RequestKind, number][]).filter(([, w]) => w > 0);
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  const current = new Map<RequestKind, number>(entries.map(([k]) => [k, 0]));
  return () => {
    let best: RequestKind = entries[0]![0];
    let bestValue = -Infinity;
    for (const [kind, weight] of entries) {
      const value = current.get(kind)! + weight;
      current.set(kind, value);
      if (value > bestValue) {
        best = kind;
        bestValue = value;
      }
    }
    current.set(best, bestValue - total);
    return best;
  };
}
