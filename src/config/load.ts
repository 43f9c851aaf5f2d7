import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';

/** A config problem, already formatted as "FILE:LINE:COL: key.path: what is wrong" lines. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

export interface LoadedYaml {
  path: string;
  doc: Document;
  lineCounter: LineCounter;
  /** The document as plain data, with ${env:NAME} references replaced. */
  data: unknown;
}

/** "listeners.web.rules[0].match" from a zod/yaml path. */
export function formatKeyPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out || '(top level)';
}

/** The closest YAML node for a key path, to point at a line. */
function nodeAt(doc: Document, path: ReadonlyArray<PropertyKey>): Node | undefined {
  let node: unknown = doc.contents;
  let found: Node | undefined = node as Node;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
      if (!pair) break;
      found = (pair.value ?? pair.key) as Node;
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
      if (!node) break;
      found = node as Node;
    } else break;
  }
  return found;
}

export function locate(loaded: LoadedYaml, path: ReadonlyArray<PropertyKey>): string {
  const node = nodeAt(loaded.doc, path);
  const offset = node?.range?.[0];
  if (offset === undefined) return loaded.path;
  const { line, col } = loaded.lineCounter.linePos(offset);
  return `${loaded.path}:${line}:${col}`;
}

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Replaces ${env:NAME} in every string (for secrets kept out of the file); collects missing names. */
function substituteEnv(
  value: unknown,
  path: PropertyKey[],
  missing: Array<{ path: PropertyKey[]; name: string }>,
): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string) => {
      const v = process.env[name];
      if (v === undefined) {
        missing.push({ path, name });
        return '';
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, [...path, i], missing));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, [...path, k], missing)]),
    );
  }
  return value;
}

/** Reads and parses a YAML config file; syntax errors and missing env references are ConfigErrors. */
export function readYamlConfig(path: string): LoadedYaml {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([
      `${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    ]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${path}${pos ? `:${pos.line}:${pos.col}` : ''}: YAML syntax: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const loaded: LoadedYaml = { path, doc, lineCounter, data: undefined };
  const missing: Array<{ path: PropertyKey[]; name: string }> = [];
  loaded.data = substituteEnv(doc.toJS() ?? {}, [], missing);
  if (missing.length > 0) {
    throw new ConfigError(
      missing.map(
        (m) =>
          `${locate(loaded, m.path)}: ${formatKeyPath(m.path)}: environment variable ${m.name} is not set`,
      ),
    );
  }
  return loaded;
}

/** Validates data against a schema; every issue becomes one "FILE:LINE:COL: key: message" line. */
export function validate<S extends z.ZodType>(
  loaded: LoadedYaml,
  schema: S,
  data: unknown = loaded.data,
  prefix: PropertyKey[] = [],
): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const path = [...prefix, ...issue.path];
      return `${locate(loaded, path)}: ${formatKeyPath(path)}: ${issue.message}`;
    }),
  );
}
