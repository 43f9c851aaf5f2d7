// Writes docs/configuration.md from the config schema (src/config/schema.ts), so the reference can
// never drift from what the loader accepts. `npm run docs:config` rewrites it; a unit test checks it.
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.js';

type Json = Record<string, unknown>;

function typeOf(node: Json): string {
  if (Array.isArray(node.anyOf)) return (node.anyOf as Json[]).map(typeOf).join(' or ');
  if (Array.isArray(node.oneOf)) return (node.oneOf as Json[]).map(typeOf).join(' or ');
  if (node.enum) return (node.enum as unknown[]).map((v) => JSON.stringify(v)).join(' \\| ');
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (node.type === 'array') return `list of ${typeOf((node.items as Json) ?? {})}`;
  if (node.type === 'object' && node.additionalProperties && !node.properties) return 'map of name → object';
  if (node.type === 'integer' || node.type === 'number') {
    const lo = node.minimum ?? node.exclusiveMinimum;
    const hi = node.maximum;
    return `${node.type}${lo !== undefined || hi !== undefined ? ` (${lo ?? ''}…${hi ?? ''})` : ''}`;
  }
  return String(node.type ?? 'any');
}

function rows(node: Json, path: string, out: string[]): void {
  const variants = (node.anyOf ?? node.oneOf) as Json[] | undefined;
  if (variants && variants.some((v) => v.type === 'object' && v.properties)) {
    for (const v of variants) if (v.properties) rows(v, path, out);
    return;
  }
  if (
    node.type === 'object' &&
    node.additionalProperties &&
    typeof node.additionalProperties === 'object' &&
    !node.properties
  ) {
    rows(node.additionalProperties as Json, `${path}.<name>`, out);
    return;
  }
  if (node.type === 'array' && (node.items as Json)?.type === 'object') {
    rows(node.items as Json, `${path}[]`, out);
    return;
  }
  const props = node.properties as Record<string, Json> | undefined;
  if (!props) return;
  const required = new Set((node.required as string[]) ?? []);
  for (const [key, child] of Object.entries(props)) {
    const p = path ? `${path}.${key}` : key;
    const def =
      child.default === undefined
        ? required.has(key)
          ? 'required'
          : ''
        : `\`${JSON.stringify(child.default)}\``;
    out.push(`| \`${p}\` | ${typeOf(child)} | ${def} |`);
    rows(child, p, out);
  }
}

export function configReference(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Json;
  const out = [
    '# Configuration reference',
    '',
    'Generated from `src/config/schema.ts` by `npm run docs:config`; do not edit by hand.',
    '',
    '`scaleout lb --config FILE` reads YAML. Durations are milliseconds or strings such as `500ms`, `2s`,',
    '`5m`, `1h`. Any string may contain `${env:NAME}`, replaced by that environment variable (for secrets).',
    '`scaleout config check FILE` lists every problem as `file:line:column: key.path: what is wrong`.',
    '',
  ];
  for (const [section, node] of Object.entries((schema.properties ?? {}) as Record<string, Json>)) {
    out.push(`## \`${section}\``, '', '| key | type | default |', '|---|---|---|');
    rows(node, section, out);
    out.push('');
  }
  return out.join('\n');
}

if (process.argv[1]?.endsWith('config-reference.ts')) {
  writeFileSync(new URL('../docs/configuration.md', import.meta.url), configReference());
  console.log('docs/configuration.md written');
}
