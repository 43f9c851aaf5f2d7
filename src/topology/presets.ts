// The scale-out steps as ready-made topologies: the same demo app on a bigger system each time, so the
// difference can be measured (docs/scale-out-steps.md).
import type { TopologyInput } from '../config/topology-schema.js';

export const PRESETS = ['single', 'split', 'replicas', 'sharded', 'balanced'] as const;
export type PresetName = (typeof PRESETS)[number];

const presets: Record<PresetName, TopologyInput> = {
  // One box: one app instance, one PostgreSQL; the app reaches it through the db-proxy. No LB, no DNS.
  single: {
    lb: { instances: 0 },
    app: { instances: 1 },
    database: { shards: 1, replicas: 0 },
    dns: { enabled: false },
  },
  // Tiers split: a load balancer (web tier) in front of two app instances, the database on its own.
  split: {
    lb: { instances: 1 },
    app: { instances: 2 },
    database: { shards: 1, replicas: 0 },
    dns: { enabled: false },
  },
  // Reads spread over streaming replicas: primary + 2 replicas behind the db-proxy.
  replicas: {
    lb: { instances: 1 },
    app: { instances: 2 },
    database: { shards: 1, replicas: 2 },
    dns: { enabled: false },
  },
  // Writes spread over two clusters, each a primary + 1 replica.
  sharded: {
    lb: { instances: 1 },
    app: { instances: 2 },
    database: { shards: 2, replicas: 1 },
    dns: { enabled: false },
  },
  // The whole picture: DNS hands out two LB instances, three app instances, primary + 2 replicas.
  balanced: {
    lb: { instances: 2 },
    app: { instances: 3 },
    database: { shards: 1, replicas: 2 },
    dns: { enabled: true },
  },
};

export function presetTopology(name: PresetName): TopologyInput {
  return { name, ...structuredClone(presets[name]) };
}
