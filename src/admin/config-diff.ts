// What a config reload would change, for `POST /api/v1/reload?dryRun=true`.
import type { ScaleoutConfig } from '../config/schema.js';

export interface ConfigDiff {
  listeners: { added: string[]; removed: string[]; changed: string[] };
  targetGroups: {
    added: string[];
    removed: string[];
    /** Settings other than the target list changed (algorithm, health check, stickiness, …). */
    changed: string[];
    targets: Record<
      string,
      { added: string[]; removed: string[]; reweighted: Array<{ id: string; from: number; to: number }> }
    >;
  };
  unchanged: boolean;
}

function keyDiff<T>(before: Record<string, T>, after: Record<string, T>) {
  const added = Object.keys(after).filter((k) => !(k in before));
  const removed = Object.keys(before).filter((k) => !(k in after));
  const changed = Object.keys(after).filter(
    (k) => k in before && JSON.stringify(before[k]) !== JSON.stringify(after[k]),
  );
  return { added, removed, changed };
}

export function diffConfigs(before: ScaleoutConfig | undefined, after: ScaleoutConfig): ConfigDiff {
  const listeners = keyDiff(before?.listeners ?? {}, after.listeners);
  const strip = (c: ScaleoutConfig | undefined) =>
    Object.fromEntries(
      Object.entries(c?.targetGroups ?? {}).map(([name, g]) => [name, { ...g, targets: undefined }]),
    );
  const groups = keyDiff(strip(before), strip(after));
  const targets: ConfigDiff['targetGroups']['targets'] = {};
  for (const [name, g] of Object.entries(after.targetGroups)) {
    const old = new Map((before?.targetGroups[name]?.targets ?? []).map((t) => [t.id, t.weight]));
    const now = new Map(g.targets.map((t) => [t.id, t.weight]));
    const added = [...now.keys()].filter((id) => !old.has(id));
    const removed = [...old.keys()].filter((id) => !now.has(id));
    const reweighted = [...now]
      .filter(([id, w]) => old.has(id) && old.get(id) !== w)
      .map(([id, to]) => ({ id, from: old.get(id)!, to }));
    if (added.length || removed.length || reweighted.length) targets[name] = { added, removed, reweighted };
  }
  for (const name of groups.removed) {
    targets[name] = {
      added: [],
      removed: (before?.targetGroups[name]?.targets ?? []).map((t) => t.id),
      reweighted: [],
    };
  }
  const unchanged =
    [listeners, groups].every((d) => !d.added.length && !d.removed.length && !d.changed.length) &&
    Object.keys(targets).length === 0;
  return { listeners, targetGroups: { ...groups, targets }, unchanged };
}
