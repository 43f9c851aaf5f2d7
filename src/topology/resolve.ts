// Which topology `scaleout up` runs: a preset, the `topology:` section of a file (laid over the preset
// when both are given), and --data-dir on top. Errors name the file, line and key.
import { ConfigError, formatKeyPath, readYamlConfig, validate } from '../config/load.js';
import { topologySchema, type TopologyConfig } from '../config/topology-schema.js';
import { presetTopology, PRESETS, type PresetName } from './presets.js';

export interface ResolveOptions {
  file?: string;
  preset?: string;
  dataDir?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Values of b over a, objects merged key by key (lists are replaced). */
function merge(a: unknown, b: unknown): unknown {
  if (!isObject(a) || !isObject(b)) return b === undefined ? a : b;
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = merge(a[k], v);
  return out;
}

export function resolveTopology(options: ResolveOptions): { topology: TopologyConfig; name: string } {
  if (options.preset !== undefined && !(PRESETS as readonly string[]).includes(options.preset)) {
    throw new ConfigError([`--preset: unknown preset "${options.preset}" (known: ${PRESETS.join(', ')})`]);
  }
  const preset = (options.preset ?? (options.file ? undefined : 'balanced')) as PresetName | undefined;
  const base = preset ? presetTopology(preset) : {};
  const overrides = options.dataDir ? { dataDir: options.dataDir } : {};
  if (!options.file) {
    const result = topologySchema.safeParse(merge(base, overrides));
    if (!result.success) {
      throw new ConfigError(
        result.error.issues.map(
          (i) => `preset ${preset}: ${formatKeyPath(['topology', ...i.path])}: ${i.message}`,
        ),
      );
    }
    return { topology: result.data, name: preset! };
  }
  const loaded = readYamlConfig(options.file);
  const section = isObject(loaded.data) ? loaded.data.topology : undefined;
  if (section === undefined) throw new ConfigError([`${options.file}: topology: section is missing`]);
  if (!isObject(section)) throw new ConfigError([`${options.file}: topology: must be a mapping`]);
  const topology = validate(loaded, topologySchema, merge(merge(base, section), overrides), ['topology']);
  return { topology, name: preset ?? options.file };
}
