import { configSchema, type ScaleoutConfig } from '../config/schema.js';
import type { TargetSpec } from '../core/types.js';
import { formatHostPort } from '../core/types.js';

/** Raw (config-file shaped) settings for the one listener and one target group of the quick start. */
export interface QuickStart {
  listen: { host: string; port: number };
  targets: TargetSpec[];
  /** Any `targetGroups.<name>` keys besides targets (algorithm, hashOn, healthCheck, …). */
  targetGroup?: Record<string, unknown>;
  /** Any `listeners.<name>` keys besides listen and defaultAction (timeouts, limits, …). */
  listener?: Record<string, unknown>;
  /** The `admin` section (the admin API and /metrics), if wanted. */
  admin?: Record<string, unknown>;
}

/**
 * `scaleout lb --listen … --target …` without a config file is this config: one listener forwarding
 * everything to one target group, both named "default". Going through the schema gives the quick start
 * exactly the defaults and validation of the config file.
 */
export function quickStartConfig(q: QuickStart): ScaleoutConfig {
  return configSchema.parse({
    ...(q.admin ? { admin: q.admin } : {}),
    listeners: {
      default: {
        ...q.listener,
        listen: formatHostPort(q.listen.host, q.listen.port),
        defaultAction: { forward: { targetGroup: 'default' } },
      },
    },
    targetGroups: {
      default: {
        ...q.targetGroup,
        targets: q.targets.map((t) => ({
          address: formatHostPort(t.host, t.port),
          weight: t.weight,
          id: t.id,
        })),
      },
    },
  });
}
