import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { GuardedLake } from '../auth/index.js';
import type { Actor, BranchInfo, MergeResult } from '../catalog/index.js';
import { AirlockError, denied, invalid } from '../errors/index.js';
import type { ImportResult } from '../lake/Lake.js';
import { logEntryView, tableView } from '../lake/views.js';
import type { RunSummary } from '../pipeline/run/index.js';
import type { QueryParam } from '../query/index.js';

/** Fetching pipeline folders from the object store (loaded on the first run by prefix). */
const pipelines = () => import('../pipeline/run/index.js');

/** Largest inline `content` accepted by `import_table`, in bytes (UTF-8). */
export const MAX_INLINE_IMPORT_BYTES = 256 * 1024;

/** Where pipeline folders fetched from the lake's object store are written (as the runner Lambda does). */
const PIPELINES_ROOT = join(tmpdir(), 'airlock-pipelines');

/** Inline import formats (text only: Parquet is binary and comes by path). */
export type InlineFormat = 'csv' | 'json' | 'jsonl';

/** Arguments of {@link McpOperations.importTable}: exactly one of `content` or `path`. */
export interface McpImport {
  table: string;
  branch: string;
  mode?: 'append' | 'overwrite';
  content?: string;
  format?: InlineFormat;
  path?: string;
  notNull?: string[];
  unique?: string[];
  tags?: Record<string, string[]>;
  message?: string;
}

/** Arguments of {@link McpOperations.runPipeline}: exactly one of `folder` or `prefix`. */
export interface McpRun {
  folder?: string;
  prefix?: string;
  branch: string;
  params?: Record<string, string>;
  dryRun?: boolean;
}

/**
 * The operations behind the MCP tools, each taking the acting {@link Actor} first. The
 * MCP server touches the lake only through these, and {@link guardedOperations} (the only
 * implementation) calls the single enforcement point of `shared/auth`, so every tool call
 * is authorized, capped and audited exactly as the same operation over HTTP or the CLI.
 */
export interface McpOperations {
  listBranches(actor: Actor): Promise<BranchInfo[]>;
  listTables(actor: Actor, options: { ref: string }): Promise<unknown[]>;
  describeTable(actor: Actor, options: { table: string; ref: string }): Promise<Record<string, unknown>>;
  query(
    actor: Actor,
    options: { sql: string; ref: string; params?: Record<string, QueryParam>; maxRows?: number },
  ): Promise<Record<string, unknown>>;
  createBranch(actor: Actor, options: { name: string; from: string }): Promise<Record<string, unknown>>;
  importTable(actor: Actor, options: McpImport): Promise<ImportResult>;
  runPipeline(actor: Actor, options: McpRun): Promise<RunSummary>;
  runStatus(actor: Actor, options: { runId: string }): Promise<RunSummary>;
  listRuns(actor: Actor, options: { limit: number }): Promise<RunSummary[]>;
  diff(actor: Actor, options: { from: string; to: string }): Promise<unknown>;
  merge(
    actor: Actor,
    options: { source: string; into: string; dryRun: boolean; message?: string },
  ): Promise<MergeResult>;
  log(actor: Actor, options: { ref: string; limit: number }): Promise<Record<string, unknown>[]>;
}

/** Options of {@link guardedOperations}. */
export interface GuardedOperationsOptions {
  /**
   * Whether tools may name files and folders on the server's disk (`import_table` with
   * `path`, `run_pipeline` with `folder`). True only where the client already runs as the
   * server's user on the same machine (`airlock mcp` over stdio on an embedded lake);
   * over HTTP a client must never make the server read its files.
   */
  serverPaths: boolean;
}

/**
 * The MCP operations through a {@link GuardedLake}: each is one guarded call (or, for an
 * inline import, one guarded import of a temporary file holding the content), so the
 * guard decides (grants, token scopes, protected branches, approvals) and audits it.
 *
 * @example
 * const ops = guardedOperations(new GuardedLake(lake), { serverPaths: false });
 * await ops.listTables({ person: lake.owner }, { ref: 'main' });
 */
export function guardedOperations(guard: GuardedLake, options: GuardedOperationsOptions): McpOperations {
  const serverPath = (what: string, argument: string) => {
    if (!options.serverPaths) {
      throw denied(
        `this server does not read ${what} from its own disk ('${argument}' is only accepted by 'airlock mcp' on an embedded lake)`,
        { argument },
      );
    }
  };

  return {
    listBranches: (actor) => guard.listBranches(actor),
    listTables: (actor, { ref }) => guard.listTables(actor, { ref }),
    async describeTable(actor, { table, ref }) {
      const { id, version } = await guard.showTable(actor, { table, ref });
      return tableView(table, ref, id, version);
    },
    async query(actor, { sql, ref, params, maxRows }) {
      const result = await guard.query(actor, {
        sql,
        ref,
        ...(params ? { params } : {}),
        ...(maxRows ? { caps: { maxRows } } : {}),
      });
      return {
        columns: result.columns,
        rows: result.rows,
        stats: result.stats,
        ref: result.ref,
        commit: result.commit,
      };
    },
    async createBranch(actor, { name, from }) {
      const event = await guard.createBranch(actor, { name, from });
      return { name, head: event.commit, from };
    },
    async importTable(actor, o) {
      const common = {
        table: o.table,
        branch: o.branch,
        mode: o.mode ?? 'append',
        notNull: o.notNull ?? [],
        unique: o.unique ?? [],
        tags: o.tags ?? {},
        ...(o.message ? { message: o.message } : {}),
      } as const;
      if ((o.content === undefined) === (o.path === undefined)) {
        throw invalid("import_table needs exactly one of 'content' (inline CSV/JSON text) or 'path'");
      }
      if (o.path !== undefined) {
        serverPath('files', 'path');
        if (!isAbsolute(o.path)) throw invalid(`'path' must be absolute, got '${o.path}'`);
        return guard.importTable(actor, { ...common, file: o.path });
      }
      const content = o.content as string;
      const bytes = Buffer.byteLength(content, 'utf8');
      if (bytes > MAX_INLINE_IMPORT_BYTES) {
        throw new AirlockError(
          'LIMIT_EXCEEDED',
          `inline content is ${bytes} bytes; at most ${MAX_INLINE_IMPORT_BYTES} are accepted — split it into several appends`,
          { details: { limit: MAX_INLINE_IMPORT_BYTES, bytes } },
        );
      }
      if (!o.format) throw invalid("inline 'content' needs 'format': csv, json (an array of objects) or jsonl");
      const dir = await mkdtemp(join(tmpdir(), 'airlock-mcp-import-'));
      try {
        const file = join(dir, `content.${o.format}`);
        await writeFile(file, content, 'utf8');
        return await guard.importTable(actor, {
          ...common,
          file,
          message: o.message ?? `${common.mode === 'append' ? 'Append' : 'Overwrite'} ${o.table} (inline ${o.format})`,
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    async runPipeline(actor, o) {
      if ((o.folder === undefined) === (o.prefix === undefined)) {
        throw invalid("run_pipeline needs exactly one of 'folder' (a path on the server) or 'prefix' (in the lake)");
      }
      let pipelineDir: string;
      if (o.folder !== undefined) {
        serverPath('pipeline folders', 'folder');
        if (!isAbsolute(o.folder)) throw invalid(`'folder' must be absolute, got '${o.folder}'`);
        pipelineDir = o.folder;
      } else {
        const { fetchPipelineFolder } = await pipelines();
        pipelineDir = await fetchPipelineFolder(guard.lake.stores.objects, o.prefix as string, PIPELINES_ROOT);
      }
      return guard.runPipeline(actor, {
        pipelineDir,
        branch: o.branch,
        params: o.params ?? {},
        dryRun: !!o.dryRun,
      });
    },
    runStatus: (actor, { runId }) => guard.showRun(actor, { runId }),
    listRuns: (actor, { limit }) => guard.listRuns(actor, { limit }),
    diff: (actor, { from, to }) => guard.diff(actor, { from, to }),
    merge: (actor, { source, into, dryRun, message }) =>
      guard.merge(actor, {
        source,
        into,
        message: message ?? `Merge ${source} into ${into}`,
        ...(dryRun ? { dryRun } : {}),
      }),
    async log(actor, { ref, limit }) {
      return (await guard.log(actor, { ref, limit })).map(logEntryView);
    },
  };
}
