// Small parsers for CLI option values: each throws an Error naming the option and what is wrong,
// which commander prints as "error: option '--x' argument 'y' is invalid. <message>".
import { InvalidArgumentError } from 'commander';
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

/** A duration: "500ms", "2s", "1m" or a bare number of milliseconds. */
export function duration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('expected a duration such as 500ms, 2s or 1m');
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return Math.round(unit === 'ms' ? n : unit === 's' ? n * 1000 : n * 60_000);
}

export function hostPort(value: string): { host: string; port: number } {
  try {
    return parseHostPort(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}
