// The whole scaleout config file: one schema, one validation, one set of types.
import { z } from 'zod';
import { databaseSchema } from '../db/config.js';
import { dnsConfigSchema } from '../dns/config.js';
import { adminSchema, listenerSchema, targetGroupSchema } from './lb-schema.js';
import { topologySchema } from './topology-schema.js';

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export const configSchema = z
  .object({
    listeners: z.record(z.string(), listenerSchema).default({}),
    targetGroups: z.record(z.string(), targetGroupSchema).default({}),
    admin: adminSchema.optional(),
    /** The LB's JSON access log: true = stdout, false = off, or a file path. */
    accessLog: z.union([z.boolean(), z.string().min(1)]).default(false),
    dns: dnsConfigSchema.optional(),
    database: databaseSchema.optional(),
    /** What `scaleout up` runs on this machine. */
    topology: topologySchema.optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    const groups = Object.keys(config.targetGroups);
    const known = groups.length ? groups.join(', ') : 'none defined';
    const checkForward = (forward: Array<{ name: string }> | undefined, path: PropertyKey[]) => {
      forward?.forEach((f, i) => {
        if (!config.targetGroups[f.name]) {
          ctx.addIssue({
            code: 'custom',
            path: [...path, ...(forward.length > 1 ? ['targetGroups', i, 'name'] : ['targetGroup'])],
            message: `unknown target group "${f.name}" (known: ${known})`,
          });
        }
      });
    };
    for (const [name, listener] of Object.entries(config.listeners)) {
      const base = ['listeners', name];
      listener.rules.forEach((rule, i) => checkForward(rule.forward, [...base, 'rules', i, 'forward']));
      checkForward(listener.defaultAction.forward, [...base, 'defaultAction', 'forward']);
      if (
        (listener.protocol === 'https' || listener.protocol === 'tls') &&
        listener.certificates.length === 0
      ) {
        ctx.addIssue({
          code: 'custom',
          path: [...base, 'certificates'],
          message: `${listener.protocol} listeners need at least one certificate`,
        });
      }
      if (listener.protocol === 'tcp' || listener.protocol === 'tls') {
        if (listener.rules.length > 0) {
          ctx.addIssue({
            code: 'custom',
            path: [...base, 'rules'],
            message: `${listener.protocol} listeners have no rules: they forward byte streams`,
          });
        }
        if (!listener.defaultAction.forward || listener.defaultAction.forward.length !== 1) {
          ctx.addIssue({
            code: 'custom',
            path: [...base, 'defaultAction'],
            message: `${listener.protocol} listeners forward to exactly one target group`,
          });
        }
      } else if (listener.proxyProtocol) {
        ctx.addIssue({
          code: 'custom',
          path: [...base, 'proxyProtocol'],
          message: 'PROXY protocol is for tcp and tls listeners',
        });
      }
    }
    const seen = new Map<string, string>();
    for (const [name, listener] of Object.entries(config.listeners)) {
      const key = `${listener.listen.host}:${listener.listen.port}`;
      const other = seen.get(key);
      if (other && listener.listen.port !== 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['listeners', name, 'listen'],
          message: `${key} is already used by listener "${other}"`,
        });
      }
      seen.set(key, name);
    }
    if (config.admin && !isLoopback(config.admin.listen.host) && !config.admin.token) {
      ctx.addIssue({
        code: 'custom',
        path: ['admin', 'token'],
        message: `the admin API listens beyond loopback (${config.admin.listen.host}): a token is required`,
      });
    }
  });

export type ScaleoutConfig = z.output<typeof configSchema>;
