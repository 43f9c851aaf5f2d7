// Library entry point: the shared building blocks, for embedding scaleout's parts in other programs.
export * from './core/types.js';
export * from './balancing/index.js';
export * from './health/state-machine.js';
export { Target } from './registry/target.js';
export { TargetGroup } from './registry/target-group.js';
