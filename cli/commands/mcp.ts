import type { Command } from 'commander';
import { Lake } from '../../shared/lake/Lake.js';
import { lakeLocation } from '../../shared/lake/openLake.js';
import { report } from '../main.js';

/**
 * Registers `airlock mcp`: the MCP server over stdio. Unlike other commands it prints
 * nothing of its own on stdout, which belongs to the protocol (even with `--json`, which
 * it accepts like every command); failures go to stderr and set the exit code.
 */
export function registerMcpCommand(program: Command): void {
  program
    .command('mcp')
    .description('serve MCP (Model Context Protocol) tools over stdio for an agent; stdout carries only the protocol')
    .option('--json', 'accepted like on every command; the MCP protocol is the only output')
    .option('--lake <dir>', 'lake directory (default: $AIRLOCK_LAKE or ./.airlock)')
    .option('--token <token>', 'act with this token (default: $AIRLOCK_TOKEN; none: the owner of an embedded lake)')
    .addHelpText(
      'after',
      '\nPoint an MCP client at it, e.g. {"command":"npx","args":["airlock","mcp","--lake","/path/to/lake"]}.\n' +
        'Tools: list_tables, describe_table, query, list_branches, create_branch, import_table,\n' +
        'run_pipeline, run_status, diff, propose_merge, log.',
    )
    .action(async (options: { lake?: string; token?: string }) => {
      let lake: Lake | undefined;
      try {
        lake = await Lake.open(lakeLocation(options.lake ? { lake: options.lake } : {}));
        const opened = lake;
        const [{ GuardedLake }, { openApprovals }, { serveMcpStdio }] = await Promise.all([
          import('../../shared/auth/index.js'),
          import('../../shared/approvals/index.js'),
          import('../../shared/mcp/index.js'),
        ]);
        // As the CLI: every operation through the guard, approvals as its gate.
        const guard: InstanceType<typeof GuardedLake> = new GuardedLake(opened, {
          approvals: openApprovals(opened, {
            audit: false,
            mayApprove: (approver, approval) => guard.mayApprove(approver, approval.target, approval.action),
          }).approvals,
        });
        const token = options.token ?? process.env.AIRLOCK_TOKEN;
        const actor = token ? await guard.authenticate(token) : guard.owner;
        const who = actor.agent ? `${actor.person} (agent ${actor.agent})` : actor.person;
        process.stderr.write(`airlock mcp: serving over stdio as ${who}\n`);
        await serveMcpStdio({ guard, actor, serverPaths: opened.stores.location.backend === 'local' });
      } catch (error) {
        report(error, false); // stdout carries only the protocol
      } finally {
        await lake?.close();
      }
    });
}
