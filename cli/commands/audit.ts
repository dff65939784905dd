import type { Command } from 'commander';
import type { AuditEntry, AuditVerification } from '../../shared/audit/index.js';
import { EXIT } from '../exitCodes.js';
import { act, common, positiveInt } from '../main.js';
import { textTable } from '../render.js';

const audit = () => import('../../shared/audit/index.js');

const short = (hash: string) => hash.slice(0, 12);

function renderVerification(result: AuditVerification): string {
  const rate = `${result.entriesPerSecond.toLocaleString('en-US')} entries/s`;
  const anchor = result.lastAnchor
    ? `last anchor at entry ${result.lastAnchor.seq} (${result.lastAnchor.time})`
    : 'no anchor written yet';
  if (result.ok) {
    const head = result.head ? `, head ${result.head.seq} ${short(result.head.hash)}` : '';
    return `Audit chain intact: ${result.entries} entries verified${head}; ${result.anchors} anchors, ${anchor} (${(result.ms / 1000).toFixed(2)} s, ${rate})`;
  }
  const { kind, seq, message } = result.problem;
  return (
    `Audit chain BROKEN at entry ${seq} (${kind}): ${message}\n` +
    `${result.entries} entries before it verified; ${result.anchors} anchors, ${anchor}`
  );
}

function renderEntries(entries: AuditEntry[]): string {
  if (entries.length === 0) return '(no matching audit entries)';
  const rows = entries.map((e) => [
    String(e.seq),
    e.time,
    e.agent ? `${e.person}/${e.agent}` : e.person,
    e.action,
    e.target,
    e.outcome,
    e.details ? JSON.stringify(e.details).slice(0, 120) : '',
  ]);
  return textTable(['SEQ', 'TIME', 'ACTOR', 'ACTION', 'TARGET', 'OUTCOME', 'DETAILS'], rows);
}

/**
 * Registers `airlock audit verify | log | anchor`: reading and checking the tamper-evident
 * audit trail of the lake. Thin: parses, calls the audit service, renders.
 *
 * @example
 * registerAuditCommands(program);
 */
export function registerAuditCommands(program: Command): void {
  const group = program
    .command('audit')
    .description('verify and read the tamper-evident audit trail (every request, including reads and denials)');

  act(
    common(
      group
        .command('verify')
        .description('recompute the hash chain from entry 1 and check it against the anchors')
        .addHelpText(
          'after',
          '\nExit 0 when the chain is intact; exit 1 naming the first altered, deleted, inserted or\n' +
            'reordered entry, or a truncation detected against the last anchor.\n\n' +
            'Examples:\n  airlock audit verify\n  airlock audit verify --json',
        ),
    ),
    async (ctx) => {
      const result = await (await ctx.guard()).auditVerify(await ctx.actor());
      return { value: result, text: renderVerification(result), exitCode: result.ok ? EXIT.ok : EXIT.error };
    },
  );

  act(
    common(
      group
        .command('log')
        .description('why did this happen: audit entries, newest first')
        .option('--since <time>', 'entries at or after an ISO-8601 time or a duration ago (15m, 2h, 7d)')
        .option('--actor <person[/agent]>', "a person's entries (with any agent), or one agent's")
        .option('--action <action>', 'one action (query, merge…), or a prefix ending in * (branch.*)')
        .option('--outcome <outcome>', 'one outcome (ok, denied, approval_required, error…)')
        .option('--limit <n>', 'at most this many entries', positiveInt('--limit'), 50)
        .addHelpText(
          'after',
          '\nExamples:\n  airlock audit log --since 2h --actor ann/bot\n  airlock audit log --outcome denied --limit 20 --json',
        ),
    ),
    async (ctx, _args, o) => {
      const { parseActor, parseSince } = await audit();
      const entries = await (await ctx.guard()).auditLog(await ctx.actor(), {
        ...(o.since ? { since: parseSince(o.since as string) } : {}),
        ...(o.actor ? { actor: parseActor(o.actor as string) } : {}),
        ...(o.action ? { action: o.action as string } : {}),
        ...(o.outcome ? { outcome: o.outcome as string } : {}),
        limit: o.limit as number,
      });
      return { value: entries, text: renderEntries(entries) };
    },
  );

  act(
    common(
      group
        .command('anchor')
        .description(
          'write the current chain head to the object store now (anchors are also written every 1000 entries)',
        ),
    ),
    async (ctx) => {
      const anchor = await (await ctx.guard()).auditAnchor(await ctx.actor());
      return {
        value: anchor ?? null,
        text: anchor
          ? `Anchored the audit chain at entry ${anchor.seq} (${short(anchor.hash)}, ${anchor.time})`
          : 'The audit chain is empty; nothing to anchor',
      };
    },
  );
}
