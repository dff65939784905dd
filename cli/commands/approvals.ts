import type { Command } from 'commander';
import type { Approval, ApprovalAction, ApprovalExecutor, ApprovalStatus } from '../../shared/approvals/index.js';
import type { GuardedLake } from '../../shared/auth/index.js';
import { AirlockError } from '../../shared/errors/index.js';
import type { Context, Output } from '../main.js';
import { act, common } from '../main.js';
import { textTable } from '../render.js';

const approvalsModule = () => import('../../shared/approvals/index.js');

const STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'executed', 'rejected', 'void', 'failed'];

/**
 * The lake's approvals as the CLI uses them: decisions audited by the service (approve and
 * reject do not pass through the guard, so nothing is audited twice), merges executed,
 * the webhook told; who may approve beyond the fixed rules is the guard's rule.
 */
/** The approvals service `airlock serve` offers under `/v1/approvals`, wired like the CLI's. */
export async function cliApprovals(ctx: Context) {
  return (await open(ctx)).approvals;
}

async function open(ctx: Context) {
  const { openApprovals } = await approvalsModule();
  const guard = (await ctx.guard()) as GuardedLake & {
    /** Executors of the actions the guard gates besides merge (grant, export…), when it offers them. */
    approvalExecutors?: () => Partial<Record<ApprovalAction, ApprovalExecutor>>;
  };
  return openApprovals(await ctx.lake(), {
    mayApprove: (approver, approval) => guard.mayApprove(approver, approval.target, approval.action),
    executors: guard.approvalExecutors?.() ?? {},
  });
}

const who = (a: Approval['requester']) => (a.agent ? `${a.person}/${a.agent}` : a.person);

function renderList(list: Approval[]): string {
  if (list.length === 0) return '(no approvals)';
  return textTable(
    ['ID', 'STATUS', 'ACTION', 'TARGET', 'REQUESTER', 'CREATED', 'SUMMARY'],
    list.map((a) => [a.id, a.status, a.action, a.target, who(a.requester), a.createdAt, a.summary]),
  );
}

async function renderApproval(a: Approval, moved?: string[]): Promise<string> {
  const { diffSummaryOf } = await approvalsModule();
  const lines = [
    `Approval ${a.id}: ${a.status}${a.reason ? ` (${a.reason})` : ''}`,
    `  ${a.action} → ${a.target}, requested by ${who(a.requester)} at ${a.createdAt}`,
    `  ${a.summary}`,
    `  bound to: ${Object.entries(a.binding)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  ];
  if (a.decidedBy) lines.push(`  decided by ${who(a.decidedBy)} at ${a.decidedAt}`);
  if (a.result) lines.push(`  result: ${JSON.stringify(a.result)}`);
  if (moved && moved.length > 0) lines.push(`  MOVED since the request (approving will void it): ${moved.join('; ')}`);
  else if (moved) lines.push('  still bound: nothing moved since the request');
  lines.push(
    'Diff:',
    ...diffSummaryOf(a)
      .split('\n')
      .map((l) => `  ${l}`),
  );
  if (a.status === 'pending') {
    lines.push(`Approve: airlock approvals approve ${a.id}`, `Reject:  airlock approvals reject ${a.id} --reason "…"`);
  }
  return lines.join('\n');
}

function statusOption(value: string): ApprovalStatus {
  if (!STATUSES.includes(value as ApprovalStatus)) {
    throw new AirlockError('USAGE', `unknown status '${value}' (one of ${STATUSES.join(', ')})`);
  }
  return value as ApprovalStatus;
}

/** Registers `approvals list|show|approve|reject|webhook`. */
export function registerApprovalsCommands(program: Command): void {
  const approvals = program
    .command('approvals')
    .description('requests for boundary-crossing actions (an agent merging into a protected branch, grants…)');

  act(
    common(
      approvals
        .command('list')
        .description('approvals, newest first')
        .option('--status <status>', `only this status (${STATUSES.join(', ')})`, statusOption),
    ),
    async (ctx, _args, o): Promise<Output> => {
      const list = await (await open(ctx)).approvals.list(o.status ? { status: o.status as ApprovalStatus } : {});
      return { value: list, text: renderList(list) };
    },
  );

  act(
    common(approvals.command('show <id>').description('one approval: what it binds, its exact diff, whether it moved')),
    async (ctx, [id]): Promise<Output> => {
      const { approvals: service } = await open(ctx);
      const approval = await service.get(id as string);
      let moved: string[] | undefined;
      if (approval.status === 'pending' && approval.action === 'merge') {
        const { mergeExecutor } = await approvalsModule();
        moved = await mergeExecutor((await ctx.lake()).catalog).moved(approval);
      }
      return { value: { ...approval, ...(moved ? { moved } : {}) }, text: await renderApproval(approval, moved) };
    },
  );

  act(
    common(
      approvals
        .command('approve <id>')
        .description(
          'approve and execute, exactly once (a person other than the requester; never an agent). Void if either side moved',
        ),
    ),
    async (ctx, [id]): Promise<Output> => {
      const approved = await (await open(ctx)).approvals.approve(await ctx.actor(), id as string);
      const text =
        approved.status === 'executed'
          ? `Approval ${approved.id} executed: ${JSON.stringify(approved.result)}`
          : `Approval ${approved.id} is ${approved.status}: another approver is executing it`;
      return { value: approved, text };
    },
  );

  act(
    common(
      approvals
        .command('reject <id>')
        .description('reject a pending approval')
        .requiredOption('--reason <text>', 'why (shown to the requester)'),
    ),
    async (ctx, [id], o): Promise<Output> => {
      const rejected = await (await open(ctx)).approvals.reject(await ctx.actor(), id as string, o.reason as string);
      return { value: rejected, text: `Approval ${rejected.id} rejected: ${rejected.reason}` };
    },
  );

  const webhook = approvals
    .command('webhook')
    .description("the lake's approval webhook: each new request is POSTed to it as JSON with a chat-ready text");
  act(common(webhook.command('show').description('the configured webhook')), async (ctx): Promise<Output> => {
    const current = await (await open(ctx)).webhook.get();
    return {
      value: current ?? { url: null },
      text: current ? `${current.url} (set by ${current.updatedBy} at ${current.updatedAt})` : '(no webhook set)',
    };
  });
  act(
    common(webhook.command('set <url>').description('POST each new approval request to this http(s) URL')),
    async (ctx, [url]): Promise<Output> => {
      const set = await (await open(ctx)).webhook.set(await ctx.actor(), url as string);
      return { value: set, text: `Approval requests will be POSTed to ${set.url}` };
    },
  );
  act(common(webhook.command('unset').description('stop notifying')), async (ctx): Promise<Output> => {
    const had = await (await open(ctx)).webhook.unset(await ctx.actor());
    return { value: { removed: had }, text: had ? 'Webhook removed' : '(no webhook was set)' };
  });
}
