import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Actor } from '../catalog/index.js';
import { isAirlockError } from '../errors/index.js';
import type { McpOperations } from './mcpOperations.js';
import { MAX_INLINE_IMPORT_BYTES } from './mcpOperations.js';

/** Options of {@link createMcpServer}. */
export interface McpServerOptions {
  operations: McpOperations;
  /** Who is acting: resolved once per connection (stdio) or per request (HTTP). */
  actor: () => Actor | Promise<Actor>;
  /** Where unexpected (non-Airlock) failures are reported; the client only sees INTERNAL. */
  log?: (message: string, error: unknown) => void;
}

/** The server's name and version as MCP clients see them. */
export const MCP_SERVER_INFO = { name: 'airlock', version: '0.1.0' } as const;

/** Rows a `query` returns unless the caller asks for more: a model's context is small. */
export const DEFAULT_MCP_MAX_ROWS = 100;

const INSTRUCTIONS = `Airlock is a versioned data lake: tables (named namespace.table) live on branches like code.
Read freely; write only on your own branch (create_branch, e.g. agent/<you>/<task>), check with diff and query, then propose_merge.
Every tool error is JSON {"error":{"code","message","details"}}. Codes: NOT_FOUND (check the name with list_tables/list_branches),
INVALID (fix the arguments as the message says), DENIED (you may not do this: tell the user, do not retry), CONFLICT (someone
changed the branch: re-read and retry), LIMIT_EXCEEDED (ask for less: fewer rows, a narrower query), APPROVAL_REQUIRED (a person
must approve: tell the user the approval id from details; do not retry).`;

const REF = z
  .string()
  .min(1)
  .describe(
    'A ref: branch name, tag, commit id (or unique prefix), "branch@2026-01-31T12:00:00Z" (as of that time) or "branch~N" (N commits back). Default "main".',
  );

const READ: ToolAnnotations = { readOnlyHint: true, openWorldHint: false };
const WRITE: ToolAnnotations = { readOnlyHint: false, destructiveHint: false, openWorldHint: false };

/**
 * Builds the Airlock MCP server: one tool per agent action (list/describe tables, query,
 * branch, import, run a pipeline, run status, diff, propose merge, branches, log), each a
 * thin call to {@link McpOperations} with the actor. Results are JSON text plus the same
 * value as `structuredContent`; failures are tool errors (`isError`) whose JSON carries the
 * Airlock error code, so a model can tell "fix the input" from "ask a person".
 *
 * @example
 * const server = createMcpServer({ operations: guardedOperations(guard, { serverPaths: true }), actor: () => guard.owner });
 * await server.connect(new StdioServerTransport());
 */
export function createMcpServer(options: McpServerOptions): McpServer {
  const { operations: ops } = options;
  const log = options.log ?? defaultLog;
  const server = new McpServer(MCP_SERVER_INFO, { instructions: INSTRUCTIONS });

  /** Runs a tool body with the actor and turns its value or error into a tool result. */
  const call =
    <A>(body: (actor: Actor, args: A) => Promise<unknown>) =>
    async (args: A): Promise<CallToolResult> => {
      try {
        return toolResult(await body(await options.actor(), args));
      } catch (error) {
        return toolError(error, log);
      }
    };

  server.registerTool(
    'list_tables',
    {
      title: 'List tables',
      description:
        'List every table at a ref (default main): name, table version id, row count, bytes and files. ' +
        'Use it first to learn which tables exist before describe_table or query. Returns {"tables":[…]}. ' +
        'NOT_FOUND means the ref does not exist (see list_branches).',
      inputSchema: { ref: REF.optional() },
      annotations: READ,
    },
    call(async (actor, { ref }) => ({ tables: await ops.listTables(actor, { ref: ref ?? 'main' }) })),
  );

  server.registerTool(
    'describe_table',
    {
      title: 'Describe a table',
      description:
        'Schema (columns with types, nullability and tags such as "pii"), constraints (not-null, unique key), ' +
        'row count and size of one table at a ref. Use it before writing SQL against a table or importing into it. ' +
        'Returns {name, version, rowCount, bytes, files, schema:{fields:[{name,type,nullable,tags}]}, constraints, ref}. ' +
        'NOT_FOUND names the missing table or ref.',
      inputSchema: {
        table: z.string().min(1).describe('Table name as namespace.table, e.g. "raw.events".'),
        ref: REF.optional(),
      },
      annotations: READ,
    },
    call((actor, { table, ref }) => ops.describeTable(actor, { table, ref: ref ?? 'main' })),
  );

  server.registerTool(
    'query',
    {
      title: 'Query with SQL',
      description:
        'Run ONE read-only SELECT (DuckDB SQL) over a consistent snapshot of a ref. Refer to tables as namespace.table. ' +
        'Bind values with $name placeholders and "params" (never paste user values into the SQL). ' +
        `Returns {columns:[{name,type}], rows:[{…}], stats:{rowsReturned, bytesScanned, truncated, …}, ref, commit}; at most maxRows rows (default ${DEFAULT_MCP_MAX_ROWS}) — ` +
        'when stats.truncated is true there were more: aggregate, filter or add LIMIT rather than raising maxRows. ' +
        'Errors: INVALID (not a single SELECT, unknown column/table, or file/network access, which is refused), ' +
        'LIMIT_EXCEEDED (the query would scan or return more than your caps allow, or ran too long: narrow it with WHERE or pick fewer columns), ' +
        'NOT_FOUND (unknown ref).',
      inputSchema: {
        sql: z
          .string()
          .min(1)
          .describe('One SELECT statement, e.g. "SELECT id, amount FROM raw.events WHERE amount > $min".'),
        ref: REF.optional(),
        params: z
          .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))
          .optional()
          .describe('Values for $name placeholders, e.g. {"min": 10}.'),
        maxRows: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .optional()
          .describe(`Most rows to return (default ${DEFAULT_MCP_MAX_ROWS}; your caps may allow fewer).`),
      },
      annotations: READ,
    },
    call((actor, { sql, ref, params, maxRows }) =>
      ops.query(actor, {
        sql,
        ref: ref ?? 'main',
        ...(params ? { params } : {}),
        maxRows: maxRows ?? DEFAULT_MCP_MAX_ROWS,
      }),
    ),
  );

  server.registerTool(
    'list_branches',
    {
      title: 'List branches',
      description:
        'List live branches with their head commit, whether they are protected (protected branches, like main, change only by merge) and when they last changed. Returns {"branches":[…]}.',
      inputSchema: {},
      annotations: READ,
    },
    call(async (actor) => ({ branches: await ops.listBranches(actor) })),
  );

  server.registerTool(
    'create_branch',
    {
      title: 'Create a branch',
      description:
        'Create a branch from a ref (instant, copies no data). Do all your writes (import_table, run_pipeline) on a branch of your own, ' +
        'never on main; agents may usually write only to branches named agent/<agent>/…. Returns {name, head, from}. ' +
        'CONFLICT means the name is taken (pick another or use it); INVALID means a bad name; DENIED means you may not create this branch.',
      inputSchema: {
        name: z.string().min(1).describe('New branch name, e.g. "agent/analyst/fix-amounts".'),
        from: REF.optional().describe('Where the branch starts (a ref; default "main").'),
      },
      annotations: WRITE,
    },
    call((actor, { name, from }) => ops.createBranch(actor, { name, from: from ?? 'main' })),
  );

  server.registerTool(
    'import_table',
    {
      title: 'Import rows into a table',
      description:
        'Import rows into a table on a branch as one commit: append (default) or overwrite. A new table gets its schema from the data ' +
        '(optionally with notNull/unique constraints and column tags); an existing table checks the data against its schema and constraints. ' +
        `Give the rows inline as "content" with "format" (csv with a header row, json as an array of objects, or jsonl), at most ${MAX_INLINE_IMPORT_BYTES} bytes — ` +
        'split larger data into several appends. "path" (an absolute file path on the server: .csv, .parquet, .json, .jsonl) is accepted only by a local `airlock mcp`. ' +
        'Returns {table, branch, mode, rows, created, commit, version, renamed}. Errors: DENIED (protected branch such as main: import on your own branch and propose_merge), ' +
        'INVALID (data does not fit the schema or breaks a constraint: fix the data), LIMIT_EXCEEDED (content too large), NOT_FOUND (no such branch).',
      inputSchema: {
        table: z.string().min(1).describe('Table as namespace.table, e.g. "raw.events".'),
        branch: z.string().min(1).describe('Branch to commit to (not a protected branch).'),
        content: z.string().optional().describe('The rows as text in "format".'),
        format: z.enum(['csv', 'json', 'jsonl']).optional().describe('Format of "content".'),
        path: z
          .string()
          .optional()
          .describe('Instead of content: absolute path of a file on the server (local airlock mcp only).'),
        mode: z
          .enum(['append', 'overwrite'])
          .optional()
          .describe('append (default) adds rows; overwrite replaces the table.'),
        notNull: z.array(z.string()).optional().describe('New table only: columns that must not be null.'),
        unique: z.array(z.string()).optional().describe('New table only: the unique key columns.'),
        tags: z
          .record(z.string(), z.array(z.string()))
          .optional()
          .describe('New table only: tags per column, e.g. {"email": ["pii"]}.'),
        message: z.string().optional().describe('Commit message.'),
      },
      annotations: WRITE,
    },
    call((actor, args) => ops.importTable(actor, stripUndefined(args))),
  );

  server.registerTool(
    'run_pipeline',
    {
      title: 'Run a pipeline',
      description:
        'Run a pipeline (a folder of *.sql and *.mjs/*.js/*.ts step files) transactionally: it executes on a fresh branch run/<runId> from "branch", ' +
        'checks every step\'s expectations, then publishes ALL outputs to "branch" in one merge — or nothing. Give "prefix" (a folder in the lake\'s object store, e.g. "pipelines/daily/") ' +
        'or, with a local `airlock mcp`, "folder" (an absolute path). Use dryRun to execute without publishing. Waits for the run to finish. ' +
        'Returns {runId, status, branch, runBranch, steps:[…], …}; status is succeeded, failed (branch untouched; steps[].error and logs say why; run branch kept), ' +
        'conflict (branch changed meanwhile: run again) or awaiting_approval (a person must approve: tell the user the approvalId). ' +
        'Use run_status to read a run later.',
      inputSchema: {
        branch: z
          .string()
          .min(1)
          .describe('Branch the run reads from and publishes to (use your own branch, not main).'),
        prefix: z.string().optional().describe('Pipeline folder in the lake\'s object store, e.g. "pipelines/daily/".'),
        folder: z
          .string()
          .optional()
          .describe('Instead of prefix: absolute path of the pipeline folder on the server (local airlock mcp only).'),
        params: z
          .record(z.string(), z.string())
          .optional()
          .describe('Parameters: bound to $name in SQL steps and passed to code steps, e.g. {"tag": "v2"}.'),
        dryRun: z.boolean().optional().describe('Execute every step on the run branch but publish nothing.'),
      },
      annotations: WRITE,
    },
    call((actor, args) => ops.runPipeline(actor, stripUndefined(args))),
  );

  server.registerTool(
    'run_status',
    {
      title: 'Pipeline run status',
      description:
        'With runId: one pipeline run — status (running, succeeded, failed, conflict), each step with rows, timing, and for a failed step its error and last log lines. ' +
        'Without runId: the most recent runs, newest first, as {"runs":[…]}. NOT_FOUND means no run has that id.',
      inputSchema: {
        runId: z.string().min(1).optional().describe('The runId returned by run_pipeline.'),
        limit: z
          .number()
          .int()
          .min(1)
          .max(100)
          .optional()
          .describe('Without runId: how many runs to list (default 10).'),
      },
      annotations: READ,
    },
    call(async (actor, { runId, limit }) =>
      runId ? ops.runStatus(actor, { runId }) : { runs: await ops.listRuns(actor, { limit: limit ?? 10 }) },
    ),
  );

  server.registerTool(
    'diff',
    {
      title: 'Diff two refs',
      description:
        'Tables added, removed and changed between two refs (e.g. from "main" to your branch), with row counts. Use it to check what your branch would change before propose_merge. ' +
        'Returns the list of table changes. NOT_FOUND names an unknown ref.',
      inputSchema: {
        from: REF.describe('The older side, e.g. "main".'),
        to: REF.describe('The newer side, e.g. your branch.'),
      },
      annotations: READ,
    },
    call(async (actor, { from, to }) => ({ from, to, changes: await ops.diff(actor, { from, to }) })),
  );

  server.registerTool(
    'propose_merge',
    {
      title: 'Propose (or preview) a merge',
      description:
        'Merge a source ref into a target branch in one atomic transaction. Call it first with dryRun true to preview: the result lists the table changes and any conflicts without changing anything. ' +
        'Returns {status: merged | fast-forward | up-to-date | conflict, changes, conflicts, commit?, …}. status conflict names the tables changed on both sides: nothing was merged; ' +
        'tell the user, or rebuild your branch from the target. A merge into a protected branch (main) by an agent does not happen at once: it becomes an approval request ' +
        '(status awaiting_approval, or error APPROVAL_REQUIRED) — tell the user the approvalId so a person can review and approve it; do not retry. DENIED: you may not merge into that branch.',
      inputSchema: {
        source: REF.describe('What to merge: usually your branch.'),
        into: z.string().min(1).describe('Target branch, e.g. "main".'),
        dryRun: z.boolean().optional().describe('Preview only, change nothing (default false).'),
        message: z.string().optional().describe('Merge commit message.'),
      },
      annotations: { ...WRITE, idempotentHint: true },
    },
    call((actor, { source, into, dryRun, message }) =>
      ops.merge(actor, { source, into, dryRun: !!dryRun, ...(message ? { message } : {}) }),
    ),
  );

  server.registerTool(
    'log',
    {
      title: 'Commit history',
      description:
        'First-parent commit history of a ref, newest first: id, parents, author (person), agent, message, time, kind, runId. ' +
        'Use it to see who changed a branch and when. Returns {"commits":[…]}.',
      inputSchema: {
        ref: REF.optional(),
        limit: z.number().int().min(1).max(1000).optional().describe('Most commits to return (default 20).'),
      },
      annotations: READ,
    },
    call(async (actor, { ref, limit }) => ({
      commits: await ops.log(actor, { ref: ref ?? 'main', limit: limit ?? 20 }),
    })),
  );

  return server;
}

/** A successful tool result: the value as JSON text, and as `structuredContent` when it is an object. */
export function toolResult(value: unknown): CallToolResult {
  const text = JSON.stringify(value, bigintSafe);
  const structured = JSON.parse(text) as unknown;
  return {
    content: [{ type: 'text', text }],
    ...(structured !== null && typeof structured === 'object' && !Array.isArray(structured)
      ? { structuredContent: structured as Record<string, unknown> }
      : {}),
  };
}

/**
 * A failed tool call: `{"error":{"code","message","details?"}}` with `isError`. Airlock
 * errors keep their message (written for users); anything else is INTERNAL without its
 * message (it may hold paths), logged on the server instead.
 */
export function toolError(error: unknown, log: (message: string, error: unknown) => void = defaultLog): CallToolResult {
  let body: { error: Record<string, unknown> };
  if (isAirlockError(error)) body = { error: error.toJSON() };
  else {
    log('airlock mcp: unexpected error', error);
    body = { error: { code: 'INTERNAL', message: 'internal error; the server log has the details' } };
  }
  const text = JSON.stringify(body, bigintSafe);
  return { isError: true, content: [{ type: 'text', text }], structuredContent: JSON.parse(text) };
}

function bigintSafe(_key: string, value: unknown): unknown {
  if (typeof value !== 'bigint') return value;
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(value)
    : value.toString();
}

/** Drops absent optional arguments (strict `exactOptionalPropertyTypes`-friendly). */
function stripUndefined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

function defaultLog(message: string, error: unknown): void {
  process.stderr.write(`${message}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
}
