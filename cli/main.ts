import { Command, CommanderError, Option } from 'commander';
import { type AuthActor, GuardedLake } from '../shared/auth/index.js';
import { AirlockError, isAirlockError, isApprovalRequired } from '../shared/errors/index.js';
import { Lake } from '../shared/lake/Lake.js';
import type { CodeStepExecutor } from '../shared/pipeline/run/index.js';
import type { RowFormat } from '../shared/query/index.js';
import { lakeLocation, protectedBranchesFromEnv } from '../shared/lake/openLake.js';
import { logEntryView, tableView } from '../shared/lake/views.js';
import { cliApprovals, registerApprovalsCommands } from './commands/approvals.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerDoctorCommands } from './commands/doctor.js';
import { approvalGate, registerAuthCommands } from './commands/auth.js';
import { registerPolicyCommands } from './commands/policy.js';
import { registerRunCommands } from './commands/run.js';
import { registerCapsCommand } from './commands/caps.js';
import { registerIngestCommands, startServeIngestion } from './commands/ingest.js';
import { registerMcpCommand } from './commands/mcp.js';
import { runDemo } from './demo.js';
import { EXIT, errorBody, exitCodeOf } from './exitCodes.js';
import { renderBranches, renderDiff, renderLog, renderMerge, renderTable, renderTables, short } from './render.js';

/** What a command produced: the `--json` value, the human text, and an exit code. */
export interface Output {
  value: unknown;
  text: string;
  exitCode?: number;
}

/** What every command handler receives. */
export interface Context {
  /** The opened lake (opened on first use, closed after the command). */
  lake(): Promise<Lake>;
  /**
   * The acting person/agent: from `--token` or `AIRLOCK_TOKEN` (DENIED when the token is
   * malformed, unknown, expired or revoked); with no token, the lake's owner.
   */
  actor(): Promise<AuthActor>;
  /** The one enforcement point: every lake operation goes through it with {@link actor}. */
  guard(): Promise<GuardedLake>;
  /** The code-step executor of the guard's runs, when a command sets one before its first {@link guard} (`serve`'s pool). */
  executor?: CodeStepExecutor;
  json: boolean;
  /** Progress and notes for people, on stderr (silent under --json). */
  note(message: string): void;
}

interface CommonOptions {
  json?: boolean;
  lake?: string;
  token?: string;
}

export type Handler = (ctx: Context, args: string[], options: Record<string, unknown>) => Promise<Output>;

/** Adds the options every command accepts. */
export function common(cmd: Command): Command {
  return cmd
    .option('--json', 'print exactly one JSON value on stdout (errors as {"error":{code,message}})')
    .option('--lake <dir>', 'lake directory (default: $AIRLOCK_LAKE or ./.airlock)')
    .option('--token <token>', 'act with this token (default: $AIRLOCK_TOKEN; none: the lake owner)');
}

/**
 * Wires a handler: builds the context, runs it, prints the result, sets the exit code.
 * The only place that prints results or errors, so every command behaves the same.
 */
export function act(cmd: Command, handler: Handler): Command {
  return cmd.action(async (...raw: unknown[]) => {
    const command = raw[raw.length - 1] as Command;
    const options = command.optsWithGlobals() as Record<string, unknown> & CommonOptions;
    const args = raw.slice(0, -2).flatMap((a) => (Array.isArray(a) ? a : [a])) as string[];
    const json = !!options.json;
    let lake: Lake | undefined;
    let guard: GuardedLake | undefined;
    let actor: Promise<AuthActor> | undefined;
    const token = options.token ?? process.env.AIRLOCK_TOKEN;
    const ctx: Context = {
      json,
      lake: async () => {
        lake ??= await Lake.open(lakeLocation({ ...(options.lake ? { lake: options.lake } : {}) }));
        return lake;
      },
      guard: async () => {
        guard ??= new GuardedLake(await ctx.lake(), {
          ...(await approvalGate(ctx)),
          ...(ctx.executor ? { executor: ctx.executor } : {}),
        });
        return guard;
      },
      actor: () => {
        actor ??= token
          ? ctx.guard().then((g) => g.authenticate(token))
          : ctx.lake().then((l) => ({ person: l.owner }));
        return actor;
      },
      note: (message) => {
        if (!json) process.stderr.write(`${message}\n`);
      },
    };
    try {
      const out = await handler(ctx, args, options);
      process.stdout.write(json ? `${JSON.stringify(out.value, jsonSafe)}\n` : out.text ? `${out.text}\n` : '');
      process.exitCode = out.exitCode ?? EXIT.ok;
    } catch (error) {
      report(error, json);
    } finally {
      await lake?.close();
    }
  });
}

/** BigInt-safe JSON: safe integers as numbers, others as strings (public contract). */
export function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  return value;
}

/** Prints a command's error (JSON on stdout under --json, else a line on stderr) and sets the exit code. */
export function report(error: unknown, json: boolean): void {
  if (json && isApprovalRequired(error)) {
    // The public contract of an action waiting for a person: status + approval id, exit 5.
    const { approvalId, ...rest } = error.details;
    process.stdout.write(
      `${JSON.stringify({ status: 'awaiting_approval', approvalId, ...rest, message: error.message })}\n`,
    );
  } else if (json) process.stdout.write(`${JSON.stringify(errorBody(error))}\n`);
  else {
    const message = isAirlockError(error)
      ? error.message
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error);
    process.stderr.write(`error: ${message}\n`);
  }
  process.exitCode = exitCodeOf(error);
}

export function list(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

export function positiveInt(name: string) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n <= 0)
      throw new AirlockError('USAGE', `${name} must be a positive whole number, got '${value}'`);
    return n;
  };
}

/** Builds the `airlock` program. */
export function buildProgram(): Command {
  const program = new Command('airlock')
    .description(
      'Airlock: a transactional, event-sourced lakehouse catalog. Tables are versioned like code:\n' +
        'every change is a commit on a branch, merges publish atomically, every action is audited.',
    )
    .version('0.1.0')
    .showSuggestionAfterError()
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 error, 2 usage, 3 conflict, 4 permission denied, 5 waiting for approval.\n' +
        'Lake: --lake DIR or AIRLOCK_LAKE (default ./.airlock); AIRLOCK_BACKEND=aws with\n' +
        'AIRLOCK_DYNAMODB_TABLE and AIRLOCK_BUCKET for DynamoDB + S3.',
    );

  act(
    common(
      program
        .command('init')
        .description('create a lake with a protected main branch (idempotent)')
        .option(
          '--protect <patterns>',
          'also protect these branches: names or prefix* patterns, comma-separated (default: $AIRLOCK_PROTECTED_BRANCHES); protection is only ever added',
          list,
        ),
    ),
    async (_ctx, _a, o) => {
      const { lake, created, head, protectedBranches } = await Lake.init(
        lakeLocation({ ...(o.lake ? { lake: o.lake as string } : {}) }),
        { protectedBranches: (o.protect as string[] | undefined) ?? protectedBranchesFromEnv() },
      );
      await lake.close();
      return {
        value: { created, head, branch: 'main', protectedBranches },
        text: `${created ? 'Initialised lake' : 'Lake already initialised'}; main is at ${short(head)}; protected: ${protectedBranches.join(', ')}`,
      };
    },
  );

  act(
    common(
      program
        .command('demo')
        .description('tell the end-to-end story on a fresh lake: import, branch, diff, merge, time travel, revert'),
    ),
    async (ctx, _a, o) => runDemo({ json: ctx.json, ...(o.lake ? { lake: o.lake as string } : {}) }),
  );

  // ------------------------------------------------------------ branches and tags
  const branch = program.command('branch').description('create, list, delete and restore branches');
  act(
    common(
      branch
        .command('create <name>')
        .description('create a branch (O(1), copies no data)')
        .option('--from <ref>', 'where the branch starts', 'main'),
    ),
    async (ctx, [name], o) => {
      const event = await (await ctx.guard()).createBranch(await ctx.actor(), {
        name: name as string,
        from: o.from as string,
      });
      return {
        value: { name, head: event.commit, from: o.from },
        text: `Created branch '${name}' at ${short(event.commit)} (from ${o.from})`,
      };
    },
  );
  act(common(branch.command('list').description('list live branches')), async (ctx) => {
    const branches = await (await ctx.guard()).listBranches(await ctx.actor());
    return { value: branches, text: renderBranches(branches) };
  });
  act(
    common(branch.command('delete <name>').description('delete a branch (recoverable with branch restore)')),
    async (ctx, [name]) => {
      const event = await (await ctx.guard()).deleteBranch(await ctx.actor(), { name: name as string });
      const head = event.info?.previousHead as string;
      return {
        value: { name, deleted: true, lastHead: head },
        text: `Deleted branch '${name}' (was at ${short(head)}; 'airlock branch restore ${name}' brings it back)`,
      };
    },
  );
  act(
    common(branch.command('restore <name>').description('bring back a deleted branch at its last head')),
    async (ctx, [name]) => {
      const event = await (await ctx.guard()).restoreBranch(await ctx.actor(), { name: name as string });
      return { value: { name, head: event.commit }, text: `Restored branch '${name}' at ${short(event.commit)}` };
    },
  );

  const tag = program.command('tag').description('immutable names for commits');
  act(common(tag.command('create <name> <ref>').description('tag a ref')), async (ctx, [name, ref]) => {
    const t = await (await ctx.guard()).createTag(await ctx.actor(), { name: name as string, ref: ref as string });
    return { value: t, text: `Tagged ${short(t.commit)} as '${t.name}'` };
  });
  act(common(tag.command('list').description('list tags')), async (ctx) => {
    const tags = await (await ctx.guard()).listTags(await ctx.actor());
    return {
      value: tags,
      text: tags.map((t) => `${t.name.padEnd(24)} ${short(t.commit)}  ${t.time}`).join('\n') || '(no tags)',
    };
  });

  // ------------------------------------------------------------ tables
  const table = program.command('table').description('list, show, import, export, evolve and drop tables');
  act(
    common(
      table
        .command('list')
        .description('tables at a ref')
        .option('--ref <ref>', 'branch, tag, commit, ref@time or ref~N', 'main'),
    ),
    async (ctx, _a, o) => {
      const tables = await (await ctx.guard()).listTables(await ctx.actor(), { ref: o.ref as string });
      return { value: tables, text: renderTables(tables) };
    },
  );
  act(
    common(
      table
        .command('show <table>')
        .description('schema, constraints and size of a table')
        .option('--ref <ref>', 'ref to read', 'main'),
    ),
    async (ctx, [name], o) => {
      const { id, version } = await (await ctx.guard()).showTable(await ctx.actor(), {
        table: name as string,
        ref: o.ref as string,
      });
      return {
        value: tableView(name as string, o.ref as string, id, version),
        text: renderTable(name as string, id, version),
      };
    },
  );
  act(
    common(
      table
        .command('import <table> <file>')
        .description(
          'import a .csv, .parquet, .json or .jsonl file as one commit (schema inferred for a new table, checked otherwise)',
        )
        .requiredOption('--branch <branch>', 'branch to commit to (protected branches change only by merge)')
        .addOption(
          new Option('--mode <mode>', 'append rows or replace the table')
            .choices(['append', 'overwrite'])
            .default('append'),
        )
        .option('--not-null <columns>', 'new table: columns that must not be null (comma-separated)', list)
        .option('--unique <columns>', 'new table: unique key columns (comma-separated)', list)
        .option(
          '--tag <column=tag>',
          'new table: tag a column, e.g. --tag email=pii (repeatable)',
          (v: string, p: string[] = []) => [...p, v],
        )
        .option('-m, --message <text>', 'commit message'),
    ),
    async (ctx, [name, file], o) => {
      const tags: Record<string, string[]> = {};
      for (const t of (o.tag as string[] | undefined) ?? []) {
        const [col, value] = t.split('=');
        if (!col || !value) throw new AirlockError('USAGE', `--tag expects column=tag, got '${t}'`);
        (tags[col] ??= []).push(value);
      }
      const guard = await ctx.guard();
      ctx.note(`Importing ${file} into ${name} on ${o.branch}…`);
      const started = Date.now();
      const r = await guard.importTable(await ctx.actor(), {
        table: name as string,
        file: file as string,
        branch: o.branch as string,
        mode: o.mode as 'append' | 'overwrite',
        notNull: (o.notNull as string[]) ?? [],
        unique: (o.unique as string[]) ?? [],
        tags,
        ...(o.message ? { message: o.message as string } : {}),
      });
      const renamed = Object.entries(r.renamed).map(([a, b]) => `${a}→${b}`);
      return {
        value: r,
        text: `${r.created ? 'Created' : r.mode === 'append' ? 'Appended to' : 'Overwrote'} ${r.table} on ${r.branch}: ${r.rows} rows in ${Date.now() - started} ms, commit ${short(r.commit)}${renamed.length ? `\n(columns renamed: ${renamed.join(', ')})` : ''}`,
      };
    },
  );
  act(
    common(
      table
        .command('export <table> <file>')
        .description('write a table to .csv, .parquet, .json or .jsonl')
        .option('--ref <ref>', 'ref to read', 'main')
        .option('--approval <id>', 'download the export approved under this id (requested by you)'),
    ),
    async (ctx, [name, file], o) => {
      const r = await (await ctx.guard()).exportTable(await ctx.actor(), {
        table: name as string,
        ref: o.ref as string,
        file: file as string,
        ...(o.approval ? { approval: o.approval as string } : {}),
      });
      return {
        value: { table: name, ref: o.ref, ...r },
        text: o.approval
          ? `Downloaded approved export ${o.approval as string} of ${name} (${r.rows} rows) to ${r.file}`
          : `Exported ${r.rows} rows of ${name}@${o.ref} to ${r.file}`,
      };
    },
  );
  act(
    common(
      table
        .command('drop <table>')
        .description('drop a table on a branch (history keeps it)')
        .requiredOption('--branch <branch>', 'branch'),
    ),
    async (ctx, [name], o) => {
      const r = await (await ctx.guard()).dropTable(await ctx.actor(), {
        table: name as string,
        branch: o.branch as string,
      });
      return {
        value: { table: name, branch: o.branch, commit: r.commit.id },
        text: `Dropped ${name} on ${o.branch} (commit ${short(r.commit.id)})`,
      };
    },
  );
  act(
    common(
      table
        .command('add-column <table> <column> <type>')
        .description('add a nullable column (Int64, Float64, Utf8, Bool, Date32, Timestamp, Decimal(p,s), …)')
        .requiredOption('--branch <branch>', 'branch')
        .option('--tag <tag>', 'tag the column (e.g. pii; repeatable)', (v: string, p: string[] = []) => [...p, v]),
    ),
    async (ctx, [name, column, type], o) => {
      const r = await (await ctx.guard()).addColumn(await ctx.actor(), {
        table: name as string,
        column: column as string,
        type: type as string,
        branch: o.branch as string,
        tags: (o.tag as string[]) ?? [],
      });
      return {
        value: { table: name, column, type, commit: r.commit.id },
        text: `Added ${column} ${type} to ${name} on ${o.branch} (commit ${short(r.commit.id)})`,
      };
    },
  );

  // ------------------------------------------------------------ queries
  act(
    common(
      program
        .command('query <sql>')
        .description('run one read-only SELECT over the snapshot of a ref (tables as ns.table)')
        .option('--ref <ref>', 'branch, tag, commit, ref@time or ref~N', 'main')
        .addOption(new Option('--format <format>', 'output format').choices(['json', 'csv', 'table']).default('table'))
        .option(
          '--max-rows <n>',
          'return at most n rows (the result says when it was truncated)',
          positiveInt('--max-rows'),
        )
        .option(
          '--param <name=value>',
          'bind $name in the SQL (repeatable; never spliced into the text)',
          (v: string, p: string[] = []) => [...p, v],
        ),
    ),
    async (ctx, [sql], o) => {
      const params: Record<string, string> = {};
      for (const p of (o.param as string[] | undefined) ?? []) {
        const eq = p.indexOf('=');
        if (eq <= 0) throw new AirlockError('USAGE', `--param expects name=value, got '${p}'`);
        params[p.slice(0, eq)] = p.slice(eq + 1);
      }
      const result = await (await ctx.guard()).query(await ctx.actor(), {
        sql: sql as string,
        ref: o.ref as string,
        params,
        ...(o.maxRows ? { caps: { maxRows: o.maxRows as number } } : {}),
      });
      const value = { columns: result.columns, rows: result.rows, stats: result.stats };
      const format = (o.format as RowFormat) ?? 'table';
      const note = result.stats.truncated ? `\n(truncated to ${result.stats.rowsReturned} rows)` : '';
      const { formatRows } = await import('../shared/query/index.js');
      return { value, text: `${formatRows(result, format)}${format === 'table' ? note : ''}` };
    },
  );

  // ------------------------------------------------------------ history
  act(
    common(
      program
        .command('log [ref]')
        .description('first-parent history, newest first')
        .option('--limit <n>', 'at most this many commits', positiveInt('--limit'), 20),
    ),
    async (ctx, [ref], o) => {
      const commits = await (await ctx.guard()).log(await ctx.actor(), {
        ref: ref ?? 'main',
        limit: o.limit as number,
      });
      return {
        value: commits.map(logEntryView),
        text: renderLog(commits),
      };
    },
  );
  act(
    common(program.command('diff <from> <to>').description('tables added, removed and changed between two refs')),
    async (ctx, [from, to]) => {
      const diff = await (await ctx.guard()).diff(await ctx.actor(), { from: from as string, to: to as string });
      return { value: diff, text: renderDiff(diff) };
    },
  );
  act(
    common(
      program
        .command('merge <source>')
        .description('merge a ref into a branch in one atomic transaction')
        .requiredOption('--into <branch>', 'target branch')
        .option('--dry-run', 'report what would happen, change nothing')
        .option('-m, --message <text>', 'merge commit message'),
    ),
    async (ctx, [source], o) => {
      const result = await (await ctx.guard()).merge(await ctx.actor(), {
        source: source as string,
        into: o.into as string,
        message: (o.message as string) ?? `Merge ${source} into ${o.into}`,
        dryRun: !!o.dryRun,
      });
      return {
        value: result,
        text: renderMerge(result),
        exitCode: result.status === 'conflict' ? EXIT.conflict : EXIT.ok,
      };
    },
  );
  act(
    common(
      program
        .command('revert <commit>')
        .description('a new commit restoring the tables a commit changed')
        .requiredOption('--branch <branch>', 'branch to revert on')
        .option('-m, --message <text>', 'commit message'),
    ),
    async (ctx, [commit], o) => {
      const r = await (await ctx.guard()).revert(await ctx.actor(), {
        commit: commit as string,
        branch: o.branch as string,
        ...(o.message ? { message: o.message as string } : {}),
      });
      return {
        value: { commit: r.commit.id, branch: o.branch, reverted: commit },
        text: `Reverted ${commit} on ${o.branch} as ${short(r.commit.id)}`,
      };
    },
  );

  registerRunCommands(program);
  registerPolicyCommands(program);
  registerAuditCommands(program);
  registerAuthCommands(program);
  registerApprovalsCommands(program);
  registerDoctorCommands(program);

  registerCapsCommand(program, { act, common });
  registerIngestCommands(program, { act, common });
  registerMcpCommand(program);

  // ------------------------------------------------------------ HTTP server
  act(
    common(
      program
        .command('serve')
        .description('serve the HTTP API (/v1/…, described at /v1/openapi.json) until SIGINT or SIGTERM')
        .option(
          '--port <port>',
          'TCP port (0 picks a free one)',
          (v: string) => {
            const n = Number(v);
            if (!/^\d+$/.test(v) || n > 65_535) throw new AirlockError('USAGE', `--port must be 0…65535, got '${v}'`);
            return n;
          },
          7070,
        )
        .option('--host <host>', 'address to listen on (127.0.0.1: this machine only)', '127.0.0.1'),
    ),
    async (ctx, _a, o) => {
      const lake = await ctx.lake();
      // One executor for every run served: it keeps sandbox processes ready between runs.
      const { LocalCodeStepExecutor } = await import('../shared/pipeline/run/index.js');
      const executor = new LocalCodeStepExecutor({ pool: { limits: {} } });
      ctx.executor = executor;
      try {
        return await serve(ctx, lake, o);
      } finally {
        await executor.close(); // kills the waiting processes
      }
    },
  );

  async function serve(ctx: Context, lake: Lake, o: Record<string, unknown>): Promise<Output> {
    const guard = await ctx.guard();
    const { createHttpApp, listen } = await import('../shared/http/index.js');
    const { bearerActor, guardedHttpLake, withRequestScope } = await import('../shared/auth/http.js');
    // Every request needs a bearer token (401 without one); operations go through the guard.
    const app = createHttpApp({
      lake: guardedHttpLake(guard),
      actorFor: bearerActor(guard),
      // Runs start from a folder on this machine too, and go through the guard like every operation.
      pipelines: { allowLocalPaths: true, runs: guard },
      approvals: await cliApprovals(ctx),
    });
    const server = await listen(withRequestScope(app), { port: o.port as number, host: o.host as string });
    process.stderr.write(
      `Airlock HTTP API on ${server.url} of ${lake.owner}'s lake (bearer tokens); Ctrl-C stops it\n`,
    );
    // On an S3-backed lake, uploads to landing/ are ingested as the ingest Lambda does (AIRLOCK_INGEST_*).
    const ingestion = await startServeIngestion(lake, (m) => process.stderr.write(`${m}\n`));
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      const stop = (s: NodeJS.Signals) => {
        process.off('SIGINT', stop).off('SIGTERM', stop);
        resolve(s);
      };
      process.on('SIGINT', stop).on('SIGTERM', stop);
    });
    await ingestion?.stop();
    await server.close(); // the lake is closed by act() once this returns
    return { value: { url: server.url, stopped: signal }, text: '' };
  }

  return program;
}

/** Runs the CLI with `argv`; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const json = argv.includes('--json');
  program.exitOverride();
  program.configureOutput({
    writeErr: (s) => {
      if (!json) process.stderr.write(s);
    },
  });
  for (const c of allCommands(program)) {
    c.exitOverride();
    c.configureOutput({ writeErr: (s) => (json ? undefined : process.stderr.write(s)) });
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0;
      if (json)
        process.stdout.write(
          `${JSON.stringify({ error: { code: 'USAGE', message: e.message.replace(/^error: /, '') } })}\n`,
        );
      return EXIT.usage;
    }
    report(e, json);
    return Number(process.exitCode ?? 1);
  }
}

function allCommands(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...allCommands(c)]);
}
