// The DNS part of the dashboard: the admin /status (addresses, states, intended and actual shares)
// plus answer rates from /metrics.
import type { DnsStatus } from '../dns/status.js';
import { counterDelta, type Sample } from './prometheus.js';

export interface DnsAddressView {
  address: string;
  weight: number;
  state: string;
  reason: string;
  eligible: boolean;
  draining: boolean;
  /** The share of first places the policy intends (by weight among eligible addresses). */
  expectedShare: number;
  /** The share it got over the last minute. */
  share: number;
  answersPerSec: number | null;
}

export interface DnsView {
  component: string;
  ok: boolean;
  qps: number | null;
  recordSets: Array<{
    name: string;
    policy: string;
    ttl: number;
    pools: Array<{
      pool: string;
      failOpen: boolean;
      up: number;
      inService: number;
      addresses: DnsAddressView[];
    }>;
  }>;
}

const key = (set: string, pool: string, address: string) => `${set}/${pool}/${address}`;

/** One poll of a DNS admin endpoint, with rates against the poll before. */
export class DnsScrape {
  readonly answers = new Map<string, number>();
  readonly answerRates = new Map<string, number>();
  readonly queries: number;
  readonly qps: number | null;

  constructor(
    readonly status: DnsStatus,
    samples: Sample[],
    readonly at: number,
    previous: DnsScrape | undefined,
  ) {
    let queries = 0;
    for (const s of samples) {
      if (s.name === 'scaleout_dns_queries_total') queries += s.value;
      else if (s.name === 'scaleout_dns_answers_total')
        this.answers.set(
          key(s.labels.record_set ?? '', s.labels.pool ?? '', s.labels.address ?? ''),
          s.value,
        );
    }
    this.queries = queries;
    const dt = previous ? (at - previous.at) / 1000 : 0;
    this.qps = previous && dt > 0 ? counterDelta(previous.queries, queries) / dt : null;
    if (previous && dt > 0)
      for (const [k, n] of this.answers)
        this.answerRates.set(k, counterDelta(previous.answers.get(k) ?? 0, n) / dt);
  }

  /** Every address with its state, for the timeline. */
  addresses(): Array<{ subject: string; state: string; reason: string; detail: string | null }> {
    return (this.status.recordSets ?? []).flatMap((set) =>
      set.pools.flatMap((pool) =>
        pool.addresses.map((a) => ({
          subject: `${set.name}/${pool.pool}/${a.address}`,
          state: a.draining ? 'draining' : a.state,
          reason: a.reason,
          detail: a.detail ?? null,
        })),
      ),
    );
  }

  view(component: string, ok: boolean): DnsView {
    const r = (n: number) => Math.round(n * 100) / 100;
    return {
      component,
      ok,
      qps: this.qps === null ? null : r(this.qps),
      recordSets: (this.status.recordSets ?? []).map((set) => ({
        name: set.name,
        policy: set.policy,
        ttl: set.ttl,
        pools: set.pools.map((pool) => ({
          pool: pool.pool,
          failOpen: pool.failOpen,
          up: pool.up,
          inService: pool.inService,
          addresses: pool.addresses.map((a) => {
            const rate = this.answerRates.get(key(set.name, pool.pool, a.address));
            return {
              address: a.address,
              weight: a.weight,
              state: a.state,
              reason: a.reason,
              eligible: a.eligible,
              draining: a.draining,
              expectedShare: a.expectedShare,
              share: a.answers.shareLastMinute,
              answersPerSec: rate === undefined ? null : r(rate),
            };
          }),
        })),
      })),
    };
  }
}
