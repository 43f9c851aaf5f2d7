import type { Command } from 'commander';

// Placeholder until `scaleout db-proxy` lands (issue 4).
export function registerDbProxy(_program: Command): void {}
