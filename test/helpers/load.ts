// A bounded load loop for LB tests: GETs from `concurrency` workers until `durationMs` passes or
// `maxRequests` were sent, counting statuses (-1 = connection error) and which target answered.
import { Agent, request } from 'undici';

export interface LoadResult {
  statuses: Map<number, number>;
  byTarget: Map<string, number>;
  sent: number;
}

export async function load(
  url: string,
  concurrency: number,
  durationMs: number,
  maxRequests = 5000,
): Promise<LoadResult> {
  const agent = new Agent({ connections: concurrency });
  const statuses = new Map<number, number>();
  const byTarget = new Map<string, number>();
  const deadline = Date.now() + durationMs;
  let sent = 0;
  const one = async () => {
    const res = await request(url, { dispatcher: agent });
    await res.body.text();
    return { status: res.statusCode, target: res.headers['x-target'] as string | undefined };
  };
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline && sent < maxRequests) {
        sent++;
        const r = await one().catch(() => ({ status: -1, target: undefined }));
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.target) byTarget.set(r.target, (byTarget.get(r.target) ?? 0) + 1);
      }
    }),
  );
  await agent.close();
  return { statuses, byTarget, sent };
}
