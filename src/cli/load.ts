// `scaleout load URL --rate R --duration D`: the open-loop load generator (docs/load-generator.md).
import { writeFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { latencyChart } from '../loadgen/chart.js';
import {
  LoadOptionsError,
  parseLoadDuration,
  parseMix,
  parseRate,
  runLoad,
  type LoadOptions,
  type Mix,
} from '../loadgen/index.js';
import { progressLine, summaryText } from '../loadgen/report.js';
import { duration, integer } from './options.js';

/** Turns a LoadOptionsError into commander's "option '--x' argument 'y' is invalid. …". */
function flag<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (err) {
      if (err instanceof LoadOptionsError)
        throw new InvalidArgumentError(err.message.replace(/^--[a-z]+: /, ''));
      throw err;
    }
  };
}

function httpUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError('not a URL (e.g. http://127.0.0.1:8080/)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidArgumentError('the URL must start with http:// or https://');
  return text;
}

function svgFile(text: string): string {
  if (!text.toLowerCase().endsWith('.svg'))
    throw new InvalidArgumentError('the chart is SVG: give a FILE.svg');
  return text;
}

interface Flags {
  rate: number;
  duration: number;
  mix?: Mix;
  connections: number;
  timeout: number;
  json?: string;
  chart?: string;
}

export function registerLoad(program: Command): void {
  program
    .command('load')
    .description(
      'open-loop HTTP load at a fixed rate, with HDR latency percentiles (coordinated omission corrected)',
    )
    .argument('<url>', 'what to load: GET this URL, or with --mix the demo app at this base URL', httpUrl)
    .requiredOption('--rate <r>', 'requests per second (fixed schedule)', flag(parseRate))
    .requiredOption('--duration <d>', 'how long to send, e.g. 30s or 5m', flag(parseLoadDuration))
    .option(
      '--mix <kinds>',
      "the demo app's endpoints in proportion, e.g. read=90,write=10 (kinds: read, write, list)",
      flag(parseMix),
    )
    .option('--connections <n>', 'connections to the target', integer(1, 10_000), 64)
    .addOption(
      new Option('--timeout <d>', 'a request unanswered this long fails as timeout')
        .argParser(duration)
        .default(10_000, '10s'),
    )
    .option('--json <file>', 'save the full result as JSON')
    .option('--chart <file.svg>', 'write an SVG latency chart', svgFile)
    .action(async (url: string, flags: Flags) => {
      const stop = new AbortController();
      let interrupted = false;
      process.on('SIGINT', () => {
        if (interrupted) process.exit(130);
        interrupted = true;
        process.stderr.write('\nstopping: waiting for the requests in flight (Ctrl-C again to quit now)\n');
        stop.abort();
      });
      const tty = process.stderr.isTTY;
      const options: LoadOptions = {
        url,
        rate: flags.rate,
        durationMs: flags.duration,
        mix: flags.mix,
        connections: flags.connections,
        timeoutMs: flags.timeout,
        signal: stop.signal,
      };
      let result;
      try {
        result = await runLoad(options, {
          onProgress: tty ? (p) => process.stderr.write(`\r${progressLine(p)}\x1b[K`) : undefined,
        });
      } catch (err) {
        if (tty) process.stderr.write('\n');
        console.error(`scaleout load: ${(err as Error).message}`);
        process.exit(1);
      }
      if (tty) process.stderr.write('\n');
      process.stdout.write(summaryText(result));
      if (flags.json) {
        writeFileSync(flags.json, JSON.stringify(result, null, 2) + '\n');
        console.log(`result saved to ${flags.json}`);
      }
      if (flags.chart) {
        writeFileSync(flags.chart, latencyChart(result));
        console.log(`chart saved to ${flags.chart}`);
      }
    });
}
