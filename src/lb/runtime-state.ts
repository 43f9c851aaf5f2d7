import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../core/log.js';
import type { TargetSpec } from '../core/types.js';

/** Changes made through the admin API to one target group, laid over the config on every apply. */
export interface GroupOverlay {
  registered: TargetSpec[];
  deregistered: string[];
  disabled: string[];
  weights: Record<string, number>;
}

interface StateFile {
  version: 1;
  groups: Record<string, GroupOverlay>;
}

function emptyOverlay(): GroupOverlay {
  return { registered: [], deregistered: [], disabled: [], weights: {} };
}

/**
 * Runtime changes (register, deregister, disable, weight) kept in a JSON file, so a drained target
 * does not come back by surprise after a reload or a restart. Writes go to a temp file renamed over the
 * old one (atomic on POSIX). A failed write is logged and reported, and serving carries on.
 */
export class RuntimeState {
  private data: StateFile = { version: 1, groups: {} };
  /** The last persistence error, for the admin API; undefined when the file is up to date. */
  lastError: string | undefined;

  constructor(
    private readonly path: string | undefined,
    private readonly log: Logger,
  ) {
    if (!path) return;
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.fail(`cannot read state file ${path}: ${(err as Error).message}`);
      return;
    }
    try {
      const parsed = JSON.parse(text) as StateFile;
      if (parsed.version !== 1 || typeof parsed.groups !== 'object') throw new Error('unknown format');
      this.data = parsed;
      log.info({ stateFile: path }, `runtime changes loaded from ${path}`);
    } catch (err) {
      this.fail(
        `state file ${path} is not valid (${(err as Error).message}); starting from the config alone`,
      );
    }
  }

  group(name: string): GroupOverlay {
    return { ...emptyOverlay(), ...this.data.groups[name] };
  }

  snapshot(): StateFile {
    return structuredClone(this.data);
  }

  update(groupName: string, change: (g: GroupOverlay) => void): void {
    const g = this.group(groupName);
    change(g);
    this.data.groups[groupName] = g;
    this.persist();
  }

  private persist(): void {
    if (!this.path) return;
    const tmp = `${this.path}.tmp-${process.pid}`;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      writeFileSync(tmp, `${JSON.stringify(this.data, null, 2)}\n`);
      renameSync(tmp, this.path);
      this.lastError = undefined;
    } catch (err) {
      this.fail(
        `cannot write state file ${this.path}: ${(err as Error).message}; the change is applied but will not survive a restart`,
      );
    }
  }

  private fail(message: string): void {
    this.lastError = message;
    this.log.error({ stateFile: this.path }, message);
  }
}
