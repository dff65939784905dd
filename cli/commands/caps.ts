import type { Command } from 'commander';
import { AirlockError } from '../../shared/errors/index.js';
import type { CapName, EffectiveCaps } from '../../shared/query/index.js';
import type { Context, Output } from '../main.js';
import { textTable } from '../render.js';

/** The query engine's cap helpers, loaded when a caps command runs (they come with DuckDB). */
const query = () => import('../../shared/query/index.js');

type Handler = (ctx: Context, args: string[], options: Record<string, unknown>) => Promise<Output>;

/** What `cli/main.ts` lends a command file: its option set and its one way of running handlers. */
export interface CommandWiring {
  /** Adds the options every command accepts (`--json`, `--lake`). */
  common(cmd: Command): Command;
  /** Runs a handler: opens the lake, prints the result or the error, sets the exit code. */
  act(cmd: Command, handler: Handler): Command;
}

/** Each cap's option on the command line (`--max-rows`…), its option key, and what it takes. */
const CAP_FLAGS: ReadonlyArray<{ cap: CapName; flag: string; key: string; arg: string; help: string }> = [
  { cap: 'maxRows', flag: 'max-rows', key: 'maxRows', arg: '<n>', help: 'most rows a query returns' },
  {
    cap: 'maxBytesScanned',
    flag: 'max-bytes-scanned',
    key: 'maxBytesScanned',
    arg: '<size>',
    help: 'most bytes one query may scan, checked before it runs (e.g. 500MB, 10GiB)',
  },
  {
    cap: 'timeoutMs',
    flag: 'timeout',
    key: 'timeout',
    arg: '<ms|duration>',
    help: 'wall-clock limit of a query (e.g. 30000, 30s, 2m)',
  },
  {
    cap: 'maxConcurrent',
    flag: 'max-concurrent',
    key: 'maxConcurrent',
    arg: '<n>',
    help: 'most queries one person (with all their agents) runs at once',
  },
  {
    cap: 'dailyBytes',
    flag: 'daily-bytes',
    key: 'dailyBytes',
    arg: '<size>',
    help: 'most bytes one person (with all their agents) scans per UTC day (e.g. 200GiB)',
  },
];

const RESOLUTION =
  'A query gets, cap by cap, the person override if set, else the lake setting, else the safe default.\n' +
  "Agents get the caps of the person they act for and share that person's concurrency and daily budget.\n" +
  'Every cap is a whole number ≥ 1: there is no "unlimited".';

/** The cap named on the command line: `maxRows`, `max-rows` or `--max-rows` (and `timeout`). */
function capNamed(text: string): CapName {
  const bare = text.replace(/^--/, '');
  const match = CAP_FLAGS.find((c) => c.cap === bare || c.flag === bare);
  if (!match) {
    throw new AirlockError(
      'USAGE',
      `unknown cap '${text}'; name one of ${CAP_FLAGS.map((c) => `${c.flag} (${c.cap})`).join(', ')}`,
    );
  }
  return match.cap;
}

/** `airlock caps show` as text: one line per cap with its value, source and option. */
async function render(effective: EffectiveCaps): Promise<string> {
  const { formatCapValue } = await query();
  const heading =
    effective.person === null
      ? 'Lake-wide query caps (lake setting ▸ default; a person override beats them):'
      : `Query caps of ${effective.person} and their agents (person override ▸ lake setting ▸ default):`;
  const rows = CAP_FLAGS.map(({ cap, flag }) => [
    cap,
    formatCapValue(cap, effective.caps[cap]),
    effective.sources[cap],
    `--${flag}`,
  ]);
  return `${heading}\n${textTable(['CAP', 'VALUE', 'SOURCE', 'SET WITH'], rows)}`;
}

/**
 * Registers `airlock caps show | set | unset`: query caps per lake and per person, kept
 * in the lake's catalog store (so they hold for the CLI, the HTTP API and every process).
 * Thin: parses, calls the lake, renders.
 *
 * @example
 * registerCapsCommand(program, { act, common });
 */
export function registerCapsCommand(program: Command, { act, common }: CommandWiring): void {
  const caps = program
    .command('caps')
    .description('show and set query caps, lake-wide and per person (rows, bytes scanned, time, concurrency, budget)')
    .addHelpText('after', `\n${RESOLUTION}`);

  act(
    common(
      caps
        .command('show')
        .description('the effective caps and where each comes from (person, lake or default)')
        .option('--person <person>', "a person's caps (default: the lake-wide caps)")
        .addHelpText(
          'after',
          `\n${RESOLUTION}\n\nExamples:\n  airlock caps show\n  airlock caps show --person ann --json`,
        ),
    ),
    async (ctx, _args, o) => {
      const guard = await ctx.guard();
      const effective = await guard.showCaps(await ctx.actor(), o.person ? { person: o.person as string } : {});
      return { value: effective, text: await render(effective) };
    },
  );

  const set = caps
    .command('set')
    .description('set caps lake-wide, or for one person with --person (other caps are kept)')
    .option('--person <person>', "set this person's overrides (default: the lake-wide setting)");
  for (const c of CAP_FLAGS) set.option(`--${c.flag} ${c.arg}`, c.help);
  set.addHelpText(
    'after',
    `\n${RESOLUTION}\nSizes: 1048576, 500MB (10^6), 10GiB (2^30). Durations: 30000 (ms), 500ms, 30s, 2m, 1h.\n` +
      'Only an admin (a person, not an agent) may change caps.\n\n' +
      'Examples:\n  airlock caps set --max-bytes-scanned 50GiB --daily-bytes 1TiB\n' +
      '  airlock caps set --person ann --max-rows 500 --timeout 30s',
  );
  act(common(set), async (ctx, _args, o) => {
    const { parseCapValue } = await query();
    const changes: Partial<Record<CapName, number>> = {};
    for (const c of CAP_FLAGS) {
      const text = o[c.key];
      if (text !== undefined) changes[c.cap] = parseCapValue(c.cap, String(text));
    }
    if (Object.keys(changes).length === 0) {
      throw new AirlockError(
        'USAGE',
        `give at least one cap to set: ${CAP_FLAGS.map((c) => `--${c.flag} ${c.arg}`).join(', ')}`,
      );
    }
    const scope = o.person ? { person: o.person as string } : {};
    const effective = await (await ctx.guard()).setCaps(await ctx.actor(), scope, changes);
    const what = Object.keys(changes).join(', ');
    return {
      value: effective,
      text: `Set ${what} for ${effective.person ?? 'the lake'}.\n${await render(effective)}`,
    };
  });

  act(
    common(
      caps
        .command('unset [caps...]')
        .description(
          "remove caps so they fall back: a person's to the lake setting, the lake's to the default (no names: all)",
        )
        .option('--person <person>', "remove this person's overrides (default: the lake-wide setting)")
        .addHelpText(
          'after',
          `\nCaps are named like their options (max-rows, max-bytes-scanned, timeout, max-concurrent,\ndaily-bytes) or as in errors (maxRows, …).\n\nExamples:\n  airlock caps unset --person ann max-rows\n  airlock caps unset --person ann          # every override of ann`,
        ),
    ),
    async (ctx, names, o) => {
      const scope = o.person ? { person: o.person as string } : {};
      const effective = await (await ctx.guard()).unsetCaps(await ctx.actor(), scope, names.map(capNamed));
      const what = names.length > 0 ? names.map(capNamed).join(', ') : 'every cap';
      return {
        value: effective,
        text: `Unset ${what} for ${effective.person ?? 'the lake'}.\n${await render(effective)}`,
      };
    },
  );
}
