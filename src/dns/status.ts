// The /status view: every record set, its addresses' health and drain state, and how answers were
// actually spread compared with what the policy intends.
import type { DnsService } from './service.js';

export interface AddressStatus {
  address: string;
  weight: number;
  state: string;
  reason: string;
  detail: string | undefined;
  eligible: boolean;
  draining: boolean;
  drainingSince: string | undefined;
  /** When the servers behind a drained address can stop: drain start + TTL + grace. */
  safeToStopAt: string | undefined;
  safeToStop: boolean | undefined;
  /** Share of answers this address should get first, given the policy and the eligible set. */
  expectedShare: number;
  answers: { total: number; lastMinute: number; share: number; shareLastMinute: number };
}

export interface PoolStatus {
  pool: string;
  failOpen: boolean;
  up: number;
  inService: number;
  addresses: AddressStatus[];
}

export interface RecordSetStatus {
  name: string;
  policy: string;
  ttl: number;
  failOpenThreshold: number;
  healthCheck: string;
  pools: PoolStatus[];
}

export interface DnsStatus {
  listen: string;
  zones: Array<{ name: string; names: number; records: number; recordSets: number }>;
  recordSets: RecordSetStatus[];
}

const round = (n: number) => Math.round(n * 10000) / 10000;

export function buildStatus(service: DnsService, now: number): DnsStatus {
  const grace = service.drainGraceSeconds * 1000;
  const recordSets = service.zones.recordSets().map((set): RecordSetStatus => {
    let total = 0;
    let totalWindow = 0;
    for (const pool of set.pools)
      for (const t of pool.group.targets.values()) {
        total += set.stats.totalOf(t);
        totalWindow += set.stats.windowCount(t);
      }
    const hc = set.spec.healthCheck;
    return {
      name: set.name,
      policy: set.spec.policy,
      ttl: set.ttl,
      failOpenThreshold: set.spec.upThreshold,
      healthCheck: hc
        ? `${hc.protocol} port ${hc.port}${hc.protocol === 'http' ? ` ${hc.path}` : ''}`
        : 'off',
      pools: set.pools.map((pool): PoolStatus => {
        const eligible = new Set(pool.balancer.eligible);
        const weightSum = [...eligible].reduce((s, t) => s + t.configuredWeight, 0);
        return {
          pool: pool.label,
          failOpen: pool.balancer.failOpen,
          up: pool.balancer.upCount,
          inService: pool.balancer.inServiceCount,
          addresses: pool.group.list().map((t): AddressStatus => {
            const n = set.stats.totalOf(t);
            const w = set.stats.windowCount(t);
            const isEligible = eligible.has(t);
            const expected = !isEligible
              ? 0
              : set.spec.policy === 'weighted'
                ? t.configuredWeight / weightSum
                : 1 / eligible.size;
            const safeAt = t.draining ? t.drainingSince + set.ttl * 1000 + grace : undefined;
            return {
              address: t.id,
              weight: t.configuredWeight,
              state: t.state,
              reason: t.reason,
              detail: t.detail,
              eligible: isEligible,
              draining: t.draining,
              drainingSince: t.draining ? new Date(t.drainingSince).toISOString() : undefined,
              safeToStopAt: safeAt !== undefined ? new Date(safeAt).toISOString() : undefined,
              safeToStop: safeAt !== undefined ? now >= safeAt : undefined,
              expectedShare: round(expected),
              answers: {
                total: n,
                lastMinute: w,
                share: total ? round(n / total) : 0,
                shareLastMinute: totalWindow ? round(w / totalWindow) : 0,
              },
            };
          }),
        };
      }),
    };
  });
  return {
    listen: service.listenAddress,
    zones: [...service.zones.zones.values()].map((z) => ({ name: z.name, ...z.counts() })),
    recordSets,
  };
}
