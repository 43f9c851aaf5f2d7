// Dashboard actions on targets, forwarded to the admin API of every load balancer of the topology:
// each LB keeps its own target registry, so a drain must reach all of them.
import { Agent, request } from 'undici';
import { ApiError as DashboardError } from '../admin/http.js';
import type { ComponentInfo } from './control-plane.js';

/** An error the dashboard API reports as {error: {code, message, details?}}: the admin API's own. */
export { DashboardError };

export const TARGET_ACTIONS = ['drain', 'undrain', 'disable', 'enable'] as const;
export type TargetAction = (typeof TARGET_ACTIONS)[number];

export interface LbResult {
  lb: string;
  status: number;
  body: unknown;
}

/** What `undrain` re-registers: the target as the dashboard last saw it. */
export interface KnownTarget {
  address: string;
  configuredWeight: number;
}

function callFor(action: TargetAction, group: string, id: string, known: KnownTarget | undefined) {
  const base = `api/v1/target-groups/${encodeURIComponent(group)}/targets`;
  const target = `${base}/${encodeURIComponent(id)}`;
  switch (action) {
    case 'drain':
      return { method: 'DELETE' as const, path: target };
    case 'disable':
    case 'enable':
      return { method: 'POST' as const, path: `${target}/${action}` };
    case 'undrain':
      // Registering a draining target again takes it back (see docs/admin-api.md).
      if (!known)
        throw new DashboardError(404, 'unknown_target', `no target "${id}" in target group "${group}"`);
      return {
        method: 'POST' as const,
        path: base,
        body: { address: known.address, weight: known.configuredWeight, id },
      };
  }
}

export class TargetActions {
  private readonly agent = new Agent({ connections: 4 });

  constructor(private readonly timeoutMs = 5000) {}

  /**
   * Applies the action on every LB. All succeed: 200 with each LB's answer. All refuse the same way
   * (an unknown target): that status and error. Otherwise 502 with each LB's answer.
   */
  async run(
    lbs: ComponentInfo[],
    action: TargetAction,
    group: string,
    id: string,
    known: KnownTarget | undefined,
  ): Promise<{ action: TargetAction; targetGroup: string; target: string; results: LbResult[] }> {
    const withAdmin = lbs.filter((c) => c.adminUrl);
    if (withAdmin.length === 0)
      throw new DashboardError(
        409,
        'no_load_balancer',
        'no load balancer with an admin API in this topology',
      );
    const call = callFor(action, group, id, known);
    const results = await Promise.all(withAdmin.map((lb) => this.send(lb, call)));
    if (results.every((r) => r.status >= 200 && r.status < 300))
      return { action, targetGroup: group, target: id, results };
    const first = results[0]!;
    const error = (first.body as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (results.every((r) => r.status === first.status) && first.status >= 400 && first.status < 500 && error)
      throw new DashboardError(first.status, error.code ?? 'refused', error.message ?? 'refused', results);
    throw new DashboardError(
      502,
      'load_balancer_failed',
      `${action} of ${group}/${id} did not succeed on every load balancer: ${results
        .map((r) => `${r.lb}: ${r.status || 'unreachable'}`)
        .join(', ')}`,
      results,
    );
  }

  private async send(
    lb: ComponentInfo,
    call: { method: 'GET' | 'POST' | 'DELETE'; path: string; body?: unknown },
  ): Promise<LbResult> {
    const base = lb.adminUrl!.endsWith('/') ? lb.adminUrl! : `${lb.adminUrl}/`;
    try {
      const res = await request(new URL(call.path, base), {
        method: call.method,
        dispatcher: this.agent,
        headers: {
          ...(lb.adminToken ? { authorization: `Bearer ${lb.adminToken}` } : {}),
          ...(call.body ? { 'content-type': 'application/json' } : {}),
        },
        body: call.body ? JSON.stringify(call.body) : undefined,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const text = await res.body.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON: keep the text.
      }
      return { lb: lb.name, status: res.statusCode, body };
    } catch (err) {
      return {
        lb: lb.name,
        status: 0,
        body: { error: { code: 'unreachable', message: (err as Error).message } },
      };
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
