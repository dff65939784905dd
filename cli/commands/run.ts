import { type Command, Option } from 'commander';
import { AirlockError } from '../../shared/errors/index.js';
import type { RunSummary, StoredRunEvent } from '../../shared/pipeline/run/index.js';
import { EXIT } from '../exitCodes.js';
import { type Context, act, common, positiveInt } from '../main.js';
import { short } from '../render.js';

/** `--param k=v`, repeatable. */
function param(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new AirlockError('USAGE', `--param expects name=value, got '${value}'`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

/** A run's exit code: 0 succeeded, 3 conflict, 5 awaiting approval, 1 failed (the contract's codes). */
function exitOf(run: RunSummary): number {
  if (run.status === 'succeeded') return EXIT.ok;
  if (run.status === 'conflict') return EXIT.conflict;
  if (run.status === 'awaiting_approval') return EXIT.awaitingApproval;
  return EXIT.error;
}

/** One progress line per run event, for people (stderr; silent under --json). */
function progress(ctx: Context): (e: StoredRunEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'started':
        ctx.note(`run ${e.runId}: ${e.steps.length} steps on ${e.runBranch} (from ${e.branch} @ ${short(e.base)})`);
        break;
      case 'resumed':
        ctx.note(`run resumed (attempt ${e.attempt})`);
        break;
      case 'step-started':
        ctx.note(`  … ${e.step}`);
        break;
      case 'step-succeeded':
        ctx.note(`  ✓ ${e.step} → ${e.table}: ${e.rows} rows in ${e.durationMs} ms`);
        break;
      case 'step-failed':
        ctx.note(`  ✗ ${e.step}: ${e.message}`);
        break;
      case 'finished':
        break;
    }
  };
}

/** The human rendering of a run. */
export function renderRun(run: RunSummary): string {
  const lines: string[] = [];
  const head =
    run.status === 'succeeded'
      ? run.published
        ? `published to ${run.branch}${run.commit ? ` at ${short(run.commit)}` : ''} (${run.mergeStatus})`
        : `dry run: nothing published (merge would be ${run.mergeStatus})`
      : run.status === 'conflict'
        ? `conflict: ${run.branch} is untouched`
        : run.status === 'failed'
          ? `failed: ${run.branch} is untouched; the run branch ${run.runBranch} is kept (airlock run resume ${run.runId})`
          : run.status === 'awaiting_approval'
            ? `every output is on ${run.runBranch}; publishing to ${run.branch} waits for approval ${run.approvalId} (a person: airlock approvals approve ${run.approvalId})`
            : 'running (or interrupted: airlock run resume <id> continues it)';
  lines.push(`run ${run.runId} ${run.status} — ${head}`);
  lines.push(`  pipeline ${run.pipeline} · isolation ${run.isolation} · attempts ${run.attempts}`);
  for (const s of run.steps) {
    const mark = { succeeded: '✓', failed: '✗', running: '…', pending: '·' }[s.status];
    const detail =
      s.status === 'succeeded'
        ? `${s.rows} rows, ${s.durationMs} ms`
        : s.status === 'failed'
          ? `${s.error?.reason}: ${s.error?.message}`
          : s.status;
    lines.push(`  ${mark} ${s.name} → ${s.output}  ${detail}`);
    if (s.status === 'failed' && s.logs.length > 0) {
      for (const l of s.logs.slice(-10)) lines.push(`      | ${l}`);
    }
  }
  if (run.error && !run.steps.some((s) => s.status === 'failed')) lines.push(`  ${run.error.message}`);
  return lines.join('\n');
}

function renderRuns(runs: RunSummary[]): string {
  if (runs.length === 0) return 'no runs yet (airlock run <pipeline-dir> --branch <branch>)';
  return runs
    .map((r) => {
      const ok = r.steps.filter((s) => s.status === 'succeeded').length;
      return `${r.runId}  ${r.status.padEnd(9)}  ${r.branch}  ${ok}/${r.steps.length} steps  ${r.started}${r.dryRun ? '  (dry run)' : ''}`;
    })
    .join('\n');
}

/** Registers `run`, `run resume` and `runs list|show`. */
export function registerRunCommands(program: Command): void {
  const run = act(
    common(
      program
        .command('run')
        .argument('<pipeline-dir>', 'folder of *.sql and *.ts/*.js/*.mjs step files')
        .description(
          'run a pipeline on a fresh branch run/<id> and publish all its outputs to --branch in one merge, or nothing',
        )
        .option('--branch <branch>', 'branch the run reads from and publishes to (required)')
        .option(
          '--param <name=value>',
          'a parameter bound to $name in SQL steps and passed to code steps (repeatable)',
          param,
        )
        .option('--dry-run', 'execute every step on the run branch, publish nothing')
        .addOption(
          new Option(
            '--isolation <level>',
            'snapshot: conflict only on tables both sides wrote; serializable: also when a table the run read changed on --branch',
          )
            .choices(['snapshot', 'serializable'])
            .default('snapshot'),
        )
        .option('--concurrency <n>', 'steps executed at once (independent steps only)', positiveInt('--concurrency'))
        .addHelpText(
          'after',
          '\nExit codes: 0 succeeded, 1 failed (the branch is untouched, the run branch kept), 3 conflict,\n' +
            "5 awaiting approval (an agent's run into a protected branch: a person approves the publish).\n" +
            'A failed or interrupted run continues with `airlock run resume <id>`; `airlock runs show <id>`\n' +
            "says which step failed and why, with the step's own log lines.",
        ),
    ),
    async (ctx, args, o) => {
      if (!o.branch)
        throw new AirlockError('USAGE', 'run needs --branch <branch>: the branch it reads from and publishes to');
      const result = await (await ctx.guard()).runPipeline(
        await ctx.actor(),
        {
          pipelineDir: args[0] as string,
          branch: o.branch as string,
          params: (o.param as Record<string, string> | undefined) ?? {},
          dryRun: !!o.dryRun,
          isolation: o.isolation as 'snapshot' | 'serializable',
        },
        { onEvent: progress(ctx), ...(o.concurrency ? { concurrency: o.concurrency as number } : {}) },
      );
      return { value: result, text: renderRun(result), exitCode: exitOf(result) };
    },
  );
  act(
    common(
      run
        .command('resume')
        .argument('<run-id>', 'the run to continue (see airlock runs list)')
        .description('re-execute only the unfinished steps of a failed or interrupted run, then publish'),
    ),
    async (ctx, args) => {
      const result = await (await ctx.guard()).resumeRun(
        await ctx.actor(),
        { runId: args[0] as string },
        { onEvent: progress(ctx) },
      );
      return { value: result, text: renderRun(result), exitCode: exitOf(result) };
    },
  );

  const runs = program.command('runs').description('pipeline runs: list them, or show one step by step');
  act(
    common(
      runs
        .command('list')
        .description('recent runs, newest first')
        .option('--limit <n>', 'how many runs', positiveInt('--limit'), 20),
    ),
    async (ctx, _args, o) => {
      const list = await (await ctx.guard()).listRuns(await ctx.actor(), { limit: o.limit as number });
      return { value: list, text: renderRuns(list) };
    },
  );
  act(
    common(
      runs
        .command('show')
        .argument('<run-id>')
        .description('a run: status, each step with timings, failures with their logs'),
    ),
    async (ctx, args) => {
      const result = await (await ctx.guard()).showRun(await ctx.actor(), { runId: args[0] as string });
      return { value: result, text: renderRun(result) };
    },
  );
}
