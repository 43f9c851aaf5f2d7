// The load balancer's admin API routes. Every change goes through LbRuntime's admin operations (so it
// is kept in the state file and survives reloads); `?dryRun=true` returns the same answer without
// changing anything.
import { z } from 'zod';
import { ConfigError, readYamlConfig, validate } from '../config/load.js';
import { targetSchema } from '../config/lb-schema.js';
import { configSchema, type ScaleoutConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import type { GroupRuntime } from '../lb/group-runtime.js';
import type { LbMetrics } from '../lb/metrics.js';
import type { LbRuntime } from '../lb/runtime.js';
import type { Target } from '../registry/target.js';
import { diffConfigs } from './config-diff.js';
import { AdminHttpServer, ApiError, parseBody, type Reply, type Request } from './http.js';
import {
  groupView,
  listenersView,
  predictTarget,
  statusView,
  targetView,
  type TargetChange,
} from './views.js';

export interface LbApiOptions {
  log: Logger;
  metrics?: LbMetrics;
  /** The config file `POST /api/v1/reload` re-reads; without one, reload answers 409. */
  configPath?: string;
  stateFile?: string;
}

const weightSchema = z.object({ weight: z.number().min(1).max(1000) }).strict();

function isDryRun(req: Request): boolean {
  const v = req.query.get('dryRun');
  if (v === null || v === 'false' || v === '0') return false;
  if (v === '' || v === 'true' || v === '1') return true;
  throw new ApiError(400, 'bad_request', `dryRun must be true or false, not "${v}"`);
}

export function registerLbRoutes(server: AdminHttpServer, runtime: LbRuntime, options: LbApiOptions): void {
  const { log } = options;
  const base = '/api/v1';
  const fromWorkers = options.metrics ? () => options.metrics!.workerListenerTotals() : undefined;

  const group = (name: string): GroupRuntime => {
    const rt = runtime.groups.get(name);
    if (!rt) {
      const known = [...runtime.groups.keys()].join(', ') || 'none';
      throw new ApiError(404, 'unknown_target_group', `no target group named "${name}" (known: ${known})`);
    }
    return rt;
  };
  const target = (rt: GroupRuntime, id: string): Target => {
    const t = rt.group.get(id);
    if (!t) throw new ApiError(404, 'unknown_target', `target group "${rt.name}" has no target "${id}"`);
    return t;
  };

  /** Applies (or with dryRun only predicts) one change to one target and answers before/after. */
  const change = (
    req: Request,
    rt: GroupRuntime,
    current: Target | undefined,
    what: TargetChange,
    apply: () => void,
    describe: string,
  ): Reply => {
    const before = current ? targetView(current) : null;
    if (isDryRun(req)) {
      return {
        body: { dryRun: true, targetGroup: rt.name, before, after: predictTarget(rt, current, what) },
      };
    }
    apply();
    const id = what.kind === 'register' ? what.spec.id : current!.id;
    const now = rt.group.get(id);
    log.info({ targetGroup: rt.name, target: id, admin: req.remote }, `admin API: ${describe}`);
    const persistError = runtime.state.lastError;
    const body: Record<string, unknown> = {
      dryRun: false,
      targetGroup: rt.name,
      before,
      // A drain with nothing in flight removes the target at once.
      after: now ? targetView(now) : null,
      persisted: options.stateFile === undefined ? null : persistError === undefined,
    };
    if (persistError) body.warning = persistError;
    return { body };
  };

  server
    .route('GET', `${base}/status`, () => ({ body: statusView(runtime, options.stateFile, fromWorkers) }))
    .route('GET', `${base}/listeners`, () => ({ body: { listeners: listenersView(runtime, fromWorkers) } }))
    .route('GET', `${base}/target-groups`, () => ({
      body: { targetGroups: [...runtime.groups.values()].map(groupView) },
    }))
    .route('GET', `${base}/target-groups/:group`, (req) => ({ body: groupView(group(req.params.group!)) }))
    .route('GET', `${base}/target-groups/:group/targets/:id`, (req) => {
      const rt = group(req.params.group!);
      return { body: { targetGroup: rt.name, target: targetView(target(rt, req.params.id!)) } };
    })
    .route('POST', `${base}/target-groups/:group/targets`, async (req) => {
      const rt = group(req.params.group!);
      const spec = parseBody(targetSchema, await req.body());
      return change(
        req,
        rt,
        rt.group.get(spec.id),
        { kind: 'register', spec },
        () => runtime.register(rt.name, spec),
        `registered target ${spec.id} (weight ${spec.weight}) in ${rt.name}`,
      );
    })
    .route('DELETE', `${base}/target-groups/:group/targets/:id`, (req) => {
      const rt = group(req.params.group!);
      const id = req.params.id!;
      if (!rt.group.get(id) && runtime.state.group(rt.name).deregistered.includes(id)) {
        // Already deregistered and gone: nothing to do, and a retried drain should not fail.
        return {
          body: { dryRun: isDryRun(req), targetGroup: rt.name, before: null, after: null, drained: true },
        };
      }
      const t = target(rt, id);
      return change(
        req,
        rt,
        t,
        { kind: 'deregister' },
        () => runtime.deregister(rt.name, id),
        `deregistered target ${id} from ${rt.name} (draining ${t.outstanding} in flight, up to ${rt.settings.deregistrationDelay} ms)`,
      );
    })
    .route('POST', `${base}/target-groups/:group/targets/:id/disable`, (req) => {
      const rt = group(req.params.group!);
      const t = target(rt, req.params.id!);
      return change(
        req,
        rt,
        t,
        { kind: 'disable' },
        () => runtime.setDisabled(rt.name, t.id, true),
        `disabled target ${t.id} in ${rt.name}`,
      );
    })
    .route('POST', `${base}/target-groups/:group/targets/:id/enable`, (req) => {
      const rt = group(req.params.group!);
      const t = target(rt, req.params.id!);
      return change(
        req,
        rt,
        t,
        { kind: 'enable' },
        () => runtime.setDisabled(rt.name, t.id, false),
        `enabled target ${t.id} in ${rt.name}`,
      );
    })
    .route('PUT', `${base}/target-groups/:group/targets/:id/weight`, async (req) => {
      const rt = group(req.params.group!);
      const t = target(rt, req.params.id!);
      const { weight } = parseBody(weightSchema, await req.body());
      return change(
        req,
        rt,
        t,
        { kind: 'weight', weight },
        () => runtime.setWeight(rt.name, t.id, weight),
        `set weight of target ${t.id} in ${rt.name} to ${weight} (was ${t.configuredWeight})`,
      );
    })
    .route('GET', `${base}/target-groups/:group/targets/:id/drain`, (req) => {
      const rt = group(req.params.group!);
      const id = req.params.id!;
      const t = rt.group.get(id);
      if (!t) {
        if (runtime.state.group(rt.name).deregistered.includes(id))
          return { body: { targetGroup: rt.name, target: id, draining: false, drained: true, inFlight: 0 } };
        target(rt, id); // throws unknown_target
      }
      const deadline = rt.drainDeadlines.get(id);
      return {
        body: {
          targetGroup: rt.name,
          target: id,
          draining: t!.draining,
          drained: false,
          inFlight: t!.outstanding,
          since: t!.draining ? new Date(t!.drainingSince).toISOString() : null,
          cutAt: deadline === undefined ? null : new Date(deadline).toISOString(),
        },
      };
    })
    .route('POST', `${base}/reload`, async (req) => {
      const path = options.configPath;
      if (!path)
        throw new ApiError(
          409,
          'no_config_file',
          'this load balancer was started without --config: nothing to reload',
        );
      const dryRun = isDryRun(req);
      let config: ScaleoutConfig;
      try {
        config = validate(readYamlConfig(path), configSchema);
      } catch (err) {
        const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
        log.error(
          { configFile: path, problems },
          'config reload (admin API) refused: the running config stays',
        );
        throw new ApiError(400, 'config_invalid', `${path} is not valid; the running config stays`, problems);
      }
      const diff = diffConfigs(runtime.config, config);
      if (dryRun) return { body: { dryRun: true, configFile: path, diff } };
      try {
        await runtime.apply(config);
      } catch (err) {
        log.error(
          { configFile: path, err: (err as Error).message },
          'config reload (admin API) failed to apply',
        );
        throw new ApiError(
          500,
          'reload_failed',
          `the config could not be applied: ${(err as Error).message}`,
        );
      }
      options.metrics?.syncGroups();
      log.info({ configFile: path, admin: req.remote }, 'config reloaded (admin API)');
      return { body: { dryRun: false, configFile: path, diff } };
    });

  const metrics = options.metrics;
  if (metrics) {
    server.route('GET', '/metrics', async () => ({
      body: undefined,
      text: { contentType: metrics.registry.contentType, data: await metrics.registry.metrics() },
    }));
  }
}
