import type { Command } from 'commander';

// Placeholder while `scaleout demo` is being written.
export function registerDemo(_program: Command): void {}
