import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process logger: JSON lines (pino) on stdout. `SCALEOUT_LOG_LEVEL` sets the level; `silent`
 * turns logs off (tests that only read startup lines use it).
 */
export function createLogger(name: string, level = process.env.SCALEOUT_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that drops everything, for library use without a configured logger. */
export const silentLogger: Logger = pino({ level: 'silent' });
