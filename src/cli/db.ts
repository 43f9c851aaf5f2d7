// `scaleout db …`: database maintenance commands. `db reshard` moves a sharded layout from N to M
// shards offline (see src/db/shard/reshard.ts for the steps and docs/sharding.md for the procedure).
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { parseDocument } from 'yaml';
import { ConfigError, loadDatabaseConfigFile, type DatabaseConfig } from '../db/config.js';
import {
  copyAndVerify,
  dropOldLayout,
  planFromConfig,
  ReshardError,
  restoreOldLayout,
  switchLayout,
  type ReshardPlan,
  type ReshardProgress,
} from '../db/shard/reshard.js';
import { collect } from './options.js';

const int = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`"${value}" is not an integer`);
  return n;
};

interface ReshardFlags {
  config: string;
  from?: number;
  to?: number;
  newShard?: string[];
  finish?: boolean;
  rollback?: boolean;
}

/** The reshard record kept next to the config until --finish or --rollback. */
interface Record_ {
  plan: ReshardPlan;
  backup: string;
}
const recordPath = (config: string): string => `${config}.reshard.json`;

/** A progress bar on stderr (redrawn in place on a terminal, a line per 10% otherwise). */
function progressBar(): (p: ReshardProgress) => void {
  let lastTenth = -1;
  const tty = process.stderr.isTTY;
  return (p) => {
    if (p.phase === 'count') {
      process.stderr.write(`copying ${p.total} rows\n`);
      return;
    }
    const frac = p.total === 0 ? 1 : p.done / p.total;
    const width = 30;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const line = `${p.phase.padEnd(6)} [${bar}] ${String(Math.round(frac * 100)).padStart(3)}% ${p.done}/${p.total}${p.table ? ` ${p.table}` : ''}`;
    if (tty) process.stderr.write(`\r${line}${frac >= 1 ? '\n' : ''}`);
    else if (Math.floor(frac * 10) !== lastTenth || frac >= 1) {
      lastTenth = Math.floor(frac * 10);
      process.stderr.write(line + '\n');
    }
  };
}

function writeShards(configPath: string, config: DatabaseConfig, plan: ReshardPlan): void {
  const doc = parseDocument(readFileSync(configPath, 'utf8'));
  const old = config.shards ?? [];
  const shards = plan.to.map((url, i) => {
    const kept = old[i];
    return kept && kept.primary === url ? { ...kept, replicas: kept.replicas } : { primary: url };
  });
  doc.setIn(['database', 'shards'], shards);
  writeFileSync(configPath, doc.toString());
}

async function reshard(flags: ReshardFlags): Promise<void> {
  const record = recordPath(flags.config);
  if (flags.finish || flags.rollback) {
    if (!existsSync(record))
      throw new ReshardError(`no reshard to ${flags.finish ? 'finish' : 'roll back'} (${record} is missing)`);
    const r = JSON.parse(readFileSync(record, 'utf8')) as Record_;
    const urls = [...new Set([...r.plan.from, ...r.plan.to])];
    if (flags.finish) {
      await dropOldLayout(urls);
      console.log(
        `old layout dropped on ${urls.length} servers; the config stays at ${r.plan.to.length} shards`,
      );
    } else {
      await restoreOldLayout(r.plan);
      copyFileSync(r.backup, flags.config);
      console.log(`rolled back to ${r.plan.from.length} shards; config restored from ${r.backup}`);
    }
    writeFileSync(record + '.done', readFileSync(record));
    rmSync(record);
    return;
  }
  if (flags.from === undefined || flags.to === undefined) throw new ReshardError('give --from N and --to M');
  if (existsSync(record))
    throw new ReshardError(`a reshard is waiting for --finish or --rollback (${record})`);
  const config = loadDatabaseConfigFile(flags.config);
  const plan = planFromConfig(config, flags.from, flags.to, flags.newShard ?? []);
  console.log(
    `resharding ${plan.sharded.map((t) => t.table).join(', ')} from ${plan.from.length} to ${plan.to.length} shards (offline: stop writes first)`,
  );
  const summary = await copyAndVerify(plan, progressBar());
  console.log('verified: every row is on the shard its hash gives, and the counts add up');
  await switchLayout(plan);
  const backup = `${flags.config}.before-reshard`;
  copyFileSync(flags.config, backup);
  writeShards(flags.config, config, plan);
  writeFileSync(record, JSON.stringify({ plan, backup } satisfies Record_, null, 2));
  console.log('');
  console.log('shard  server                          rows before  rows after');
  for (const s of summary)
    console.log(
      `${String(s.shard).padEnd(6)} ${s.url.padEnd(31)} ${String(s.before).padStart(11)}  ${String(s.after).padStart(10)}`,
    );
  const total = summary.reduce((a, s) => a + s.after, 0);
  console.log(`total  ${''.padEnd(31)} ${String(total).padStart(11)}  ${String(total).padStart(10)}`);
  console.log('');
  console.log(
    `switched: ${flags.config} now lists ${plan.to.length} shards (backup: ${backup}); restart db-proxy.`,
  );
  console.log('The old layout is kept (schema scaleout_old on each server) until you run');
  console.log(`  scaleout db reshard --config ${flags.config} --finish     (drop it)  or`);
  console.log(
    `  scaleout db reshard --config ${flags.config} --rollback   (go back to ${plan.from.length} shards)`,
  );
}

export function registerDb(program: Command): void {
  const db = program.command('db').description('database maintenance (sharding)');
  db.command('reshard')
    .description('move sharded tables from N to M shards, offline: copy, verify, then switch')
    .requiredOption('-c, --config <file>', 'scaleout config file whose database: section lists the shards')
    .option('--from <n>', 'shards in the current layout (must match the config)', int)
    .option('--to <m>', 'shards in the new layout', int)
    .option('--new-shard <url>', 'primary of a shard added when growing (repeat, in order)', collect)
    .option('--finish', 'drop the old layout kept by the last reshard')
    .option('--rollback', 'go back to the layout before the last reshard')
    .action(async (flags: ReshardFlags) => {
      try {
        await reshard(flags);
      } catch (err) {
        if (err instanceof ReshardError || err instanceof ConfigError) {
          console.error(`scaleout db reshard: ${err.message}`);
          process.exit(2);
        }
        throw err;
      }
    });
}
