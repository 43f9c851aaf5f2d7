import type { Command } from 'commander';

// Placeholder while `scaleout lb` is being written.
export function registerLb(_program: Command): void {}
