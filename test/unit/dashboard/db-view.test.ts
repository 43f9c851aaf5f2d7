// DbScrape over the exact /status and /metrics shapes a sharded db-proxy serves (src/db/proxy.ts
// status(), src/db/shard/support.ts status(), src/db/metrics.ts), without two PostgreSQL clusters.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DbScrape } from '../../../src/dashboard/db-view.js';
import { parsePrometheusText } from '../../../src/dashboard/prometheus.js';

const server = (id: string, role: string, state = 'healthy') => ({
  server: id,
  role,
  state,
  reason: 'Target.Healthy',
});

function status(counts: [number, number]) {
  return {
    servers: [
      server('127.0.0.1:5001', 'primary'),
      server('127.0.0.1:5002', 'replica'),
      server('127.0.0.1:5003', 'primary', 'unhealthy'),
    ],
    shards: [
      {
        index: 0,
        name: 's0',
        statements: { single: counts[0], scatter: 2, all: 1 },
        servers: [server('127.0.0.1:5001', 'primary'), server('127.0.0.1:5002', 'replica')],
      },
      {
        index: 1,
        name: 's1',
        statements: { single: counts[1], scatter: 2, all: 1 },
        servers: [server('127.0.0.1:5003', 'primary', 'unhealthy')],
      },
    ],
    scatterQueries: 2,
    refusedStatements: 0,
  };
}

const metrics = (s0: number, s1: number, primary: number) => `
scaleout_db_statements_total{route="primary",reason="write"} ${primary}
scaleout_db_statements_total{route="replica",reason="read-only"} 10
scaleout_db_shard_statements_total{shard="s0",kind="single"} ${s0}
scaleout_db_shard_statements_total{shard="s0",kind="scatter"} 2
scaleout_db_shard_statements_total{shard="s1",kind="single"} ${s1}
`;

describe('database view of a sharded db-proxy', () => {
  it('gives per-shard rates, totals and servers, and tags each server with its shard', () => {
    const first = new DbScrape(status([10, 5]), parsePrometheusText(metrics(10, 5, 20)), 1000, undefined);
    const second = new DbScrape(status([30, 6]), parsePrometheusText(metrics(30, 6, 40)), 3000, first);
    const view = second.view('db-proxy', true);
    assert.deepEqual(
      view.shards!.map((s) => [s.name, s.rate, s.primary, s.replicas, s.unhealthy]),
      [
        ['s0', 10, '127.0.0.1:5001', 1, 0],
        ['s1', 0.5, '127.0.0.1:5003', 0, 1],
      ],
    );
    assert.deepEqual(view.shards![0]!.statements, { single: 30, scatter: 2, all: 1 });
    assert.equal(view.routes.primary, 10);
    assert.equal(view.routes.replica, 0);
    assert.equal(view.scatterQueries, 2);
    assert.deepEqual(
      view.servers.map((s) => s.shard),
      ['s0', 's0', 's1'],
    );
    assert.deepEqual(
      second.serverStates().map((s) => s.subject),
      [
        'shard s0 primary 127.0.0.1:5001',
        'shard s0 replica 127.0.0.1:5002',
        'shard s1 primary 127.0.0.1:5003',
      ],
    );
    assert.equal(second.historyPoint()['shard:s0'], 10);
  });

  it('an unsharded proxy has no shards and no shard figures', () => {
    const s = new DbScrape({ servers: [server('a:1', 'primary')] }, [], 1000, undefined);
    const view = s.view('db-proxy', true);
    assert.equal(view.shards, null);
    assert.equal(view.servers[0]!.shard, undefined);
    assert.equal(Object.keys(s.historyPoint()).filter((k) => k.startsWith('shard:')).length, 0);
  });
});
