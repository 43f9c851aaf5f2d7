// Health from the load balancer's live state, for when `scaleout dns` and `scaleout lb` run in one
// process (`scaleout up`): a DNS address that fronts an LB target group is up while that group has a
// healthy target, and withdrawn (draining) while every target of the group is draining. The
// group's own checks stay the only writer of target health; this only reads it.
import type { TargetGroup } from '../registry/target-group.js';
import type { AddressRecordSet } from './record-set.js';

/**
 * Makes `address` of `set` follow `group`. Returns a function that stops following. The set should
 * have no active checks of its own (the LB's checks are the source of truth).
 */
export function followTargetGroup(set: AddressRecordSet, address: string, group: TargetGroup): () => void {
  const found = set.targetsFor(address);
  if (found.length === 0) throw new Error(`${address} is not an address of ${set.name}`);
  const sync = () => {
    const targets = group.list();
    const inService = targets.filter((t) => t.isInService());
    const anyHealthy = inService.some((t) => t.health.state === 'healthy' && !t.isEjected(Date.now()));
    const allInitial = inService.length > 0 && inService.every((t) => t.health.state === 'initial');
    const draining = targets.length > 0 && inService.length === 0;
    for (const { pool, target } of found) {
      if (draining && !target.draining) {
        target.draining = true;
        target.drainingSince = Date.now();
      } else if (!draining && target.draining) {
        target.draining = false;
        target.drainingSince = 0;
      }
      if (anyHealthy)
        target.health.force('healthy', 'Target.Healthy', `target group ${group.name} has a healthy target`);
      else if (allInitial)
        target.health.force('initial', 'Elb.InitialHealthChecking', `target group ${group.name} is checking`);
      else
        target.health.force(
          'unhealthy',
          'Target.FailedHealthChecks',
          `no healthy target in target group ${group.name}`,
        );
      pool.group.refresh(target);
    }
  };
  const onTransition = () => sync();
  group.on('transition', onTransition);
  sync();
  return () => group.off('transition', onTransition);
}
