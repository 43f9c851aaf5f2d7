// DNS metrics. The hot path bumps plain numbers in pre-resolved cells (one `cell.n++` per query);
// prom-client reads them only when /metrics is scraped, because its labelled inc() hashes the labels
// on every call, which would cost a noticeable share of a query's budget.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AddressRecordSet } from './record-set.js';

export class StatCell {
  n = 0;
  constructor(readonly labels: Record<string, string>) {}
}

class CellFamily {
  private readonly cells = new Map<string, StatCell>();

  get(labels: Record<string, string>): StatCell {
    const key = Object.values(labels).join('\u0000');
    let cell = this.cells.get(key);
    if (!cell) this.cells.set(key, (cell = new StatCell(labels)));
    return cell;
  }

  values(): IterableIterator<StatCell> {
    return this.cells.values();
  }
}

export class DnsMetrics {
  readonly registry = new Registry();
  readonly queries = new CellFamily();
  readonly dropped = new CellFamily();
  readonly rrl = new CellFamily();
  readonly truncated = new StatCell({});
  tcpConnections = 0;
  recordSets: () => AddressRecordSet[] = () => [];

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'scaleout_dns_' });
    this.counterFrom(
      'scaleout_dns_queries_total',
      'Queries answered, by zone, name, type and response code',
      ['zone', 'name', 'type', 'rcode'],
      this.queries,
    );
    this.counterFrom(
      'scaleout_dns_dropped_total',
      'Packets dropped without an answer, by reason',
      ['reason'],
      this.dropped,
    );
    this.counterFrom(
      'scaleout_dns_rrl_total',
      'Responses limited by response rate limiting, by action (dropped or slipped as truncated)',
      ['action'],
      this.rrl,
    );
    const truncated = this.truncated;
    new Counter({
      name: 'scaleout_dns_truncated_total',
      help: 'UDP answers sent truncated (TC) because they did not fit',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(truncated.n);
      },
    });
    const openTcp = () => this.tcpConnections;
    const sets = () => this.recordSets();
    new Gauge({
      name: 'scaleout_dns_tcp_connections',
      help: 'Open TCP connections',
      registers: [this.registry],
      collect() {
        this.set(openTcp());
      },
    });
    new Counter({
      name: 'scaleout_dns_answers_total',
      help: 'Answers by the address given first, per record set and pool (the spread of answers)',
      labelNames: ['record_set', 'pool', 'address'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const set of sets()) {
          for (const pool of set.pools) {
            for (const t of pool.group.targets.values()) {
              const n = set.stats.totalOf(t);
              if (n > 0) this.inc({ record_set: set.name, pool: pool.label, address: t.id }, n);
            }
          }
        }
      },
    });
    new Gauge({
      name: 'scaleout_dns_target_state',
      help: 'State of each address (1 for its current state)',
      labelNames: ['record_set', 'pool', 'address', 'state'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const set of sets())
          for (const pool of set.pools)
            for (const t of pool.group.targets.values())
              this.set({ record_set: set.name, pool: pool.label, address: t.id, state: t.state }, 1);
      },
    });
    new Gauge({
      name: 'scaleout_dns_fail_open',
      help: '1 while a pool answers with all its addresses because too few are up',
      labelNames: ['record_set', 'pool'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const set of sets())
          for (const pool of set.pools)
            this.set({ record_set: set.name, pool: pool.label }, pool.balancer.failOpen ? 1 : 0);
      },
    });
  }

  private counterFrom(name: string, help: string, labelNames: string[], family: CellFamily): void {
    new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const cell of family.values()) if (cell.n > 0) this.inc(cell.labels, cell.n);
      },
    });
  }
}
