// Small parsers for CLI option values: each throws an Error naming the option and what is wrong,
// which commander prints as "error: option '--x' argument 'y' is invalid. <message>".
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../core/net.js';
import { parseHostPort } from '../core/types.js';

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** A duration: "500ms", "2s", "1m", "1h" or a bare number of milliseconds. */
export function duration(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as 500ms, 2s or 1m');
  return ms;
}

export function hostPort(value: string): { host: string; port: number } {
  try {
    return parseHostPort(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}
