// Prometheus metrics of the db-proxy. Label children are cached so counting a statement on the hot
// path is a map lookup and an increment.
import { Counter, Gauge, Registry } from 'prom-client';

export class DbMetrics {
  readonly registry = new Registry();
  private readonly statements = new Counter({
    name: 'scaleout_db_statements_total',
    help: 'Statements (or extended-protocol batches) routed, by route and reason',
    labelNames: ['route', 'reason'] as const,
    registers: [this.registry],
  });
  private readonly statementChildren = new Map<string, { inc(): void }>();
  readonly retries = new Counter({
    name: 'scaleout_db_retries_total',
    help: 'Reads retried on another server before any row reached the client, by cause',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });
  readonly misrouted = new Counter({
    name: 'scaleout_db_misclassified_total',
    help: 'Statements a replica refused as writes (SQLSTATE 25006): classifier bugs, re-run on the primary',
    registers: [this.registry],
  });
  readonly bans = new Counter({
    name: 'scaleout_db_server_bans_total',
    help: 'Times a server was banned after a connection failure',
    labelNames: ['server'] as const,
    registers: [this.registry],
  });
  readonly clients = new Gauge({
    name: 'scaleout_db_client_connections',
    help: 'Open client connections',
    registers: [this.registry],
  });
  readonly clientErrors = new Counter({
    name: 'scaleout_db_client_protocol_errors_total',
    help: 'Client connections closed for bad input (framing, auth, startup)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly poolConnections = new Gauge({
    name: 'scaleout_db_pool_connections',
    help: 'Server connections per server and state',
    labelNames: ['server', 'role', 'state'] as const,
    registers: [this.registry],
  });
  readonly lagBytes = new Gauge({
    name: 'scaleout_db_replica_lag_bytes',
    help: 'Replay lag of each replica behind the primary, in bytes of WAL',
    labelNames: ['server'] as const,
    registers: [this.registry],
  });
  readonly lagSeconds = new Gauge({
    name: 'scaleout_db_replica_lag_seconds',
    help: 'Replay lag of each replica in seconds (0 when it has replayed everything)',
    labelNames: ['server'] as const,
    registers: [this.registry],
  });
  readonly serverUp = new Gauge({
    name: 'scaleout_db_server_eligible',
    help: '1 when the server may take traffic of its role (healthy, not banned, not lagging)',
    labelNames: ['server', 'role'] as const,
    registers: [this.registry],
  });

  statement(route: 'primary' | 'replica', reason: string): void {
    const key = route + '|' + reason;
    let child = this.statementChildren.get(key);
    if (!child) {
      child = this.statements.labels(route, reason);
      this.statementChildren.set(key, child);
    }
    child.inc();
  }
}
