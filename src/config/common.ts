// zod building blocks shared by every section of the scaleout config file.
import { isIP, isIPv4 } from 'node:net';
import { z } from 'zod';
import { parseDuration } from '../core/net.js';
import { parseHostPort } from '../core/types.js';

/** A duration: a number of milliseconds, or "500ms", "2s", "5m", "1h". Parsed to milliseconds. */
export const duration = z.union([z.number().int().min(0), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (e.g. 500ms, 2s, 5m, 1h)` });
    return z.NEVER;
  }
  return ms;
});

export const hostPort = z.string().transform((value, ctx) => {
  try {
    return parseHostPort(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

export const cidr = z.string().refine(
  (s) => {
    const [addr, bits, extra] = s.split('/');
    if (extra !== undefined || !addr || !isIP(addr)) return false;
    if (bits === undefined) return true;
    return /^\d+$/.test(bits) && Number(bits) <= (isIPv4(addr) ? 32 : 128);
  },
  { message: 'expected an IP address or CIDR such as 10.0.0.0/8' },
);

export const port = z.number().int().min(1).max(65535);
