import type { Command } from 'commander';
import type { DoctorReport } from '../../shared/doctor/index.js';
import { EXIT } from '../exitCodes.js';
import { act, common, list } from '../main.js';

const doctorModule = () => import('../../shared/doctor/index.js');

function render(report: DoctorReport): string {
  const lines = report.checks.map((c) => {
    const head = `${c.ok ? 'PASS' : 'FAIL'}  ${c.id.padEnd(18)} ${c.message}`;
    return c.fix ? `${head}\n      fix: ${c.fix.split('\n').join('\n           ')}` : head;
  });
  const failed = report.checks.filter((c) => !c.ok).length;
  lines.push(report.ok ? '\nAll checks pass.' : `\n${failed} of ${report.checks.length} checks fail.`);
  return lines.join('\n');
}

/** Registers `airlock doctor` and `airlock table tag` (the fix for untagged personal data). */
export function registerDoctorCommands(program: Command): void {
  act(
    common(
      program
        .command('doctor')
        .description('the pre-launch safety checklist: pass or fail per item, with a command that fixes it')
        .addHelpText(
          'after',
          '\nExit 0 when every item passes, 1 when any fails. --json prints {ok, checks:[{id, ok, message, fix?}]}.',
        ),
    ),
    async (ctx) => {
      const { doctorSourcesOf, runDoctor } = await doctorModule();
      const report = await runDoctor(doctorSourcesOf(await ctx.lake()));
      return { value: report, text: render(report), exitCode: report.ok ? EXIT.ok : EXIT.error };
    },
  );

  const table = program.commands.find((c) => c.name() === 'table') ?? program.command('table').description('tables');
  act(
    common(
      table
        .command('tag <table> <columns> <tag>')
        .description(
          'tag columns (comma-separated), e.g. as pii so they are masked; one schema commit, no data rewritten',
        )
        .requiredOption('--branch <branch>', 'branch to commit to (protected branches change only by merge)')
        .option('--remove', 'remove the tag instead (removing pii unmasks: admins only; an agent needs an approval)'),
    ),
    async (ctx, [name, columns, tag], o) => {
      const r = await (await ctx.guard()).tagColumns(await ctx.actor(), {
        branch: o.branch as string,
        table: name as string,
        columns: list(columns as string),
        tag: tag as string,
        ...(o.remove ? { remove: true } : {}),
      });
      return {
        value: { commit: r.commit.id, branch: o.branch, table: name, tag, removed: !!o.remove },
        text: `${r.commit.message} on ${o.branch} (${r.commit.id.slice(0, 12)})`,
      };
    },
  );
}
