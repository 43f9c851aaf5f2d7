import type { Command } from 'commander';

// Placeholder until `scaleout dns` lands (issue 6).
export function registerDns(_program: Command): void {}
