import {
  type AuditAnchor,
  type AuditEntry,
  AuditLog,
  type AuditLogQuery,
  type AuditOutcome,
  type AuditVerification,
} from '../audit/index.js';
import type { BranchInfo, CommitResult, MergeResult, TableDiff, TableInfo } from '../catalog/index.js';
import type { Commit, TableVersion } from '../catalog/model.js';
import { prepareMergeApproval } from '../approvals/mergeExecutor.js';
import { writeFile } from 'node:fs/promises';
import { AirlockError, conflict, denied, invalid, isAirlockError } from '../errors/index.js';
import type { ImportOptions, ImportResult, Lake, QueryOptions, ReaderView } from '../lake/Lake.js';
import type { ExecutionOptions, RunSummary, StartRunOptions } from '../pipeline/run/index.js';
import type { CapScope, EffectiveCaps, QueryCaps, QueryResult, QuerySink, QueryStats } from '../query/index.js';
import { type AuthApprovalExecutor, grantExecutor } from './approvalExecutors.js';
import { exportExecutor, exportFormat } from './exportExecutor.js';
import { unmaskExecutor } from './unmaskExecutor.js';
import { AuthDirectory, checkName, checkRole, principalText } from './AuthDirectory.js';
import { type AuthActor, Authority, parseScope, SCOPE_RIGHTS } from './Authority.js';
import {
  BRANCH_RIGHTS,
  type BranchRight,
  defaultAgentScopes,
  type Grant,
  type MaskKind,
  type Person,
  type Principal,
  type RowFilter,
  type StoredGrant,
  TABLE_RIGHTS,
  type TableRight,
  type TokenInfo,
} from './model.js';
import { parseTtl } from './tokens.js';

/** What an approval request carries (see `shared/approvals`). */
export interface ApprovalRequest {
  /** The approval service's action vocabulary. */
  action: 'merge' | 'grant' | 'delete' | 'unmask' | 'export';
  target: string;
  /** What to execute once approved (the same options the guarded method took). */
  params: Record<string, unknown>;
  /** What the approval is bound to: it is void when any of these moved. */
  binding: Record<string, string>;
  summary: string;
  /** The exact change shown to the approver (JSON; null when there is none to show). */
  diff: unknown;
}

/** The approval service, as the guard needs it: file a request, get its id back. */
export interface ApprovalGate {
  request(requester: AuthActor, request: ApprovalRequest): Promise<{ id: string; status: string }>;
  /** One approval by id (NOT_FOUND when unknown): how an approved export is found for its download. */
  get?(id: string): Promise<{
    id: string;
    action: string;
    target: string;
    status: string;
    reason?: string;
    binding: Record<string, string>;
    requester: { person: string; agent?: string };
    result?: Record<string, unknown>;
  }>;
}

/** Options of {@link GuardedLake}. */
export interface GuardedLakeOptions {
  /** Where approval requests go; without one, actions needing approval are refused (DENIED). */
  approvals?: ApprovalGate;
  /** The audit log (default: the lake's own chain). */
  audit?: AuditLog;
  /** Code step executor of pipeline runs (default: the local sandbox). */
  executor?: ExecutionOptions['executor'];
}

type Decision = { outcome: 'allow' } | { outcome: 'deny'; reason: string } | ApprovalDecision;
interface ApprovalDecision {
  outcome: 'approval';
  reason: string;
  request: ApprovalRequest;
}

const allow: Decision = { outcome: 'allow' };
const deny = (reason: string): Decision => ({ outcome: 'deny', reason });

/** The branch named by a ref (`b`, `b@time`, `b~2`), or the ref itself for commits and tags. */
function baseOf(ref: string): string {
  return ref.replace(/[@~].*$/s, '');
}

function who(actor: AuthActor): string {
  return actor.agent ? `${actor.person} (agent ${actor.agent})` : actor.person;
}

/**
 * THE enforcement point. Every interface (CLI, HTTP, MCP, Lambda handlers) calls lake
 * operations through it with the acting {@link AuthActor}: it authorizes (grants ∩ token
 * scopes, protected branches, the approval gate), runs the operation on the {@link Lake},
 * and appends exactly ONE audit entry per request whatever the outcome: `ok`, `denied`,
 * `approval_required`, `limit_exceeded` or `error`. Reads and queries are audited too;
 * SQL is redacted by the audit log and tokens are never logged.
 *
 * Every method takes `(actor, options)`. Refusals are `AirlockError`s: `DENIED` (nothing
 * changed) or `APPROVAL_REQUIRED` with `details.approvalId` (an approval request was filed).
 *
 * @example
 * const guard = new GuardedLake(lake);
 * const actor = await guard.authenticate(process.env.AIRLOCK_TOKEN); // or { person: lake.owner }
 * const { rows } = await guard.query(actor, { sql: 'SELECT * FROM raw.events', ref: 'main' });
 */
export class GuardedLake {
  readonly authority: Authority;
  readonly directory: AuthDirectory;
  readonly audit: AuditLog;
  private readonly approvals: ApprovalGate | undefined;
  private readonly executor: ExecutionOptions['executor'];

  constructor(
    readonly lake: Lake,
    options: GuardedLakeOptions = {},
  ) {
    this.directory = new AuthDirectory(lake.stores.store);
    this.authority = new Authority(this.directory, lake.owner);
    this.audit = options.audit ?? new AuditLog(lake.stores.store, lake.stores.objects);
    this.approvals = options.approvals;
    this.executor = options.executor;
  }

  /** The lake's owner, acting directly (the embedded CLI without a token). */
  get owner(): AuthActor {
    return { person: this.lake.owner };
  }

  /**
   * The actor behind a token. A bad token (malformed, unknown, expired, revoked) is DENIED
   * and the refusal is audited as `auth` by `anonymous` (the token itself never is).
   */
  async authenticate(token: string): Promise<AuthActor> {
    try {
      return await this.authority.authenticate(token);
    } catch (e) {
      await this.audit.append({
        person: 'anonymous',
        action: 'auth',
        target: 'token',
        outcome: 'denied',
        details: { reason: isAirlockError(e) ? e.message : 'invalid token' },
      });
      throw e;
    }
  }

  /**
   * Executors of the gated actions besides merge, for the approvals service: `grant`
   * (user, grant, row filter and mask changes requested by an admin's agent) and `export`
   * (a raw export beyond the requester's masks, filters or caps) and `unmask` (an agent's
   * removal of a `pii` tag).
   */
  approvalExecutors(): { grant: AuthApprovalExecutor; export: AuthApprovalExecutor; unmask: AuthApprovalExecutor } {
    return {
      grant: grantExecutor(this.directory),
      export: exportExecutor(this.lake),
      unmask: unmaskExecutor(this.lake),
    };
  }

  /** May this actor approve an action on `target`? (a person, never an agent, holding merge on it). */
  mayApprove(actor: AuthActor, target: string, action = 'merge'): Promise<boolean> {
    return this.authority.mayApprove(actor, target, action);
  }

  // ------------------------------------------------------------ branches and tags
  listBranches(actor: AuthActor): Promise<BranchInfo[]> {
    return this.guard(
      actor,
      'branch.list',
      '*',
      {},
      () => this.needsAnyRead(actor),
      async () => {
        const all = await this.lake.catalog.listBranches();
        const s = await this.authority.standing(actor.person);
        const out: BranchInfo[] = [];
        for (const b of all) if (await this.authority.canBranch(actor, 'read', b.name, s)) out.push(b);
        return out;
      },
    );
  }

  createBranch(actor: AuthActor, options: { name: string; from?: string }) {
    const from = options.from ?? 'main';
    return this.guard(
      actor,
      'branch.create',
      options.name,
      options,
      async () =>
        (await this.needs(actor, 'read', baseOf(from))) ?? (await this.needs(actor, 'write', options.name)) ?? allow,
      () => this.lake.catalog.createBranch(options.name, from, actor),
    );
  }

  deleteBranch(actor: AuthActor, options: { name: string }) {
    return this.guard(
      actor,
      'branch.delete',
      options.name,
      options,
      async () => (await this.needs(actor, 'write', options.name)) ?? allow,
      () => this.lake.catalog.deleteBranch(options.name, actor),
    );
  }

  restoreBranch(actor: AuthActor, options: { name: string }) {
    return this.guard(
      actor,
      'branch.restore',
      options.name,
      options,
      async () => (await this.needs(actor, 'write', options.name)) ?? allow,
      () => this.lake.catalog.restoreBranch(options.name, actor),
    );
  }

  createTag(actor: AuthActor, options: { name: string; ref: string }) {
    return this.guard(
      actor,
      'tag.create',
      options.name,
      options,
      async () =>
        (await this.needs(actor, 'read', baseOf(options.ref))) ??
        (await this.needs(actor, 'write', `tag/${options.name}`)) ??
        allow,
      () => this.lake.catalog.createTag(options.name, options.ref, actor),
    );
  }

  listTags(actor: AuthActor) {
    return this.guard(
      actor,
      'tag.list',
      '*',
      {},
      () => this.needsAnyRead(actor),
      () => this.lake.catalog.listTags(),
    );
  }

  // ------------------------------------------------------------ tables
  /** Tables at a ref the actor may read. */
  listTables(actor: AuthActor, options: { ref?: string } = {}): Promise<TableInfo[]> {
    const ref = options.ref ?? 'main';
    return this.guard(
      actor,
      'table.list',
      ref,
      { ref },
      async () => (await this.needs(actor, 'read', baseOf(ref))) ?? allow,
      async () => {
        const s = await this.authority.standing(actor.person);
        const out: TableInfo[] = [];
        for (const t of await this.lake.catalog.listTables(ref)) {
          if (await this.authority.canTable(actor, 'read', t.name, s)) out.push(t);
        }
        return out;
      },
    );
  }

  /** A table's version (schema, constraints, files) at a ref. */
  showTable(
    actor: AuthActor,
    options: { table: string; ref?: string },
  ): Promise<{ id: string; version: TableVersion; commit: Commit }> {
    const ref = options.ref ?? 'main';
    return this.guard(
      actor,
      'table.show',
      `${options.table}@${ref}`,
      { ...options, ref },
      async () =>
        (await this.needs(actor, 'read', baseOf(ref))) ??
        (await this.needsTable(actor, 'read', options.table)) ??
        allow,
      () => this.lake.catalog.getTable(ref, options.table),
    );
  }

  /** Imports a file as one commit. Protected branches are refused for everyone (they change only by merge). */
  importTable(actor: AuthActor, options: ImportOptions): Promise<ImportResult> {
    return this.guard(
      actor,
      'table.import',
      `${options.table}@${options.branch}`,
      { table: options.table, branch: options.branch, mode: options.mode ?? 'append' },
      () => this.directWrite(actor, options.branch, options.table),
      () => this.lake.importTable(actor, options),
      (r) => ({ rows: r.rows, commit: r.commit }),
    );
  }

  dropTable(actor: AuthActor, options: { table: string; branch: string }): Promise<CommitResult> {
    return this.guard(
      actor,
      'table.drop',
      `${options.table}@${options.branch}`,
      options,
      () => this.directWrite(actor, options.branch, options.table),
      () => this.lake.dropTable(actor, options),
      (r) => ({ commit: r.commit.id }),
    );
  }

  addColumn(
    actor: AuthActor,
    options: { table: string; branch: string; column: string; type: string; tags?: string[] },
  ): Promise<CommitResult> {
    return this.guard(
      actor,
      'table.add-column',
      `${options.table}@${options.branch}`,
      options,
      () => this.directWrite(actor, options.branch, options.table),
      () => this.lake.addColumn(actor, options),
      (r) => ({ commit: r.commit.id }),
    );
  }

  /**
   * Exports a table to a file. It needs an approval (or is DENIED without an approval
   * service) when the actor sees the table masked or row-filtered, or when the table is
   * bigger than the person's query caps (rows over `maxRows`, bytes over
   * `maxBytesScanned`). The approval is bound to the table's version at the ref; once
   * executed, the requester (their person, or an agent of theirs) downloads it with
   * `approval`: the raw table as approved. Not yet executed: APPROVAL_REQUIRED again.
   */
  exportTable(
    actor: AuthActor,
    options: { table: string; ref?: string; file: string; approval?: string },
  ): Promise<{ rows: number; file: string; approval?: string; bytes?: number }> {
    const ref = options.ref ?? 'main';
    if (options.approval !== undefined) return this.downloadExport(actor, { ...options, approval: options.approval });
    return this.guard(
      actor,
      'table.export',
      `${options.table}@${ref}`,
      { table: options.table, ref },
      async () => {
        const missing =
          (await this.needs(actor, 'read', baseOf(ref))) ?? (await this.needsTable(actor, 'read', options.table));
        if (missing) return missing;
        const { id, version, commit } = await this.lake.catalog.getTable(ref, options.table);
        const policy = await this.authority.readerPolicy(actor, [{ name: options.table, schema: version.schema }]);
        const masked = Object.keys(policy.masks[options.table] ?? {});
        const filtered = policy.rowFilters[options.table] !== undefined;
        const { caps } = await this.lake.queryCaps(actor, { person: actor.person });
        const over = [
          version.rowCount > caps.maxRows ? `${version.rowCount} rows over the cap of ${caps.maxRows}` : '',
          version.bytes > caps.maxBytesScanned ? `${version.bytes} bytes over the cap of ${caps.maxBytesScanned}` : '',
        ].filter(Boolean);
        if (masked.length === 0 && !filtered && over.length === 0) return allow;
        const what = [
          masked.length ? `masked columns ${masked.join(', ')}` : '',
          filtered ? 'a row filter' : '',
          ...over,
        ]
          .filter(Boolean)
          .join(' and ');
        const format = exportFormat(options.file);
        return {
          outcome: 'approval',
          reason: `${who(actor)} sees ${options.table} with ${what}; exporting it needs an approval`,
          request: {
            action: 'export',
            target: `${options.table}@${ref}`,
            // The requester is part of what is approved: another person's identical export is another approval.
            params: { table: options.table, commit: commit.id, format, for: actor.person },
            binding: { table: options.table, ref, version: id },
            summary: `export ${options.table}@${ref} (version ${id.slice(0, 12)}, ${version.rowCount} rows) raw as ${format}: ${what}`,
            diff: null,
          },
        };
      },
      () => this.lake.exportTable(actor, { ...options, ref }),
      (r) => ({ rows: r.rows }),
    );
  }

  /** The requester's download of an executed export approval (see {@link exportTable}). */
  private downloadExport(
    actor: AuthActor,
    options: { table: string; file: string; approval: string },
  ): Promise<{ rows: number; file: string; approval: string; bytes: number }> {
    let key = '';
    let rows = 0;
    return this.guard(
      actor,
      'table.export',
      `${options.table}@approval:${options.approval}`,
      { table: options.table, approval: options.approval },
      async () => {
        if (!this.approvals?.get) return deny('this lake has no approval service to download an approved export from');
        const approval = await this.approvals.get(options.approval);
        if (approval.action !== 'export' || approval.binding.table !== options.table) {
          throw invalid(`approval ${options.approval} is not an export of '${options.table}'`);
        }
        if (approval.requester.person !== actor.person) {
          return deny(
            `${who(actor)} may not download export ${approval.id}: it was requested by ${approval.requester.person}`,
          );
        }
        if (approval.status === 'pending' || approval.status === 'approved') {
          throw new AirlockError('APPROVAL_REQUIRED', `export ${approval.id} is ${approval.status}, not yet executed`, {
            details: { approvalId: approval.id, action: 'table.export', target: approval.target },
          });
        }
        if (approval.status !== 'executed' || typeof approval.result?.key !== 'string') {
          throw conflict(
            `approval ${approval.id} is ${approval.status}${approval.reason ? `: ${approval.reason}` : ''}`,
            {
              approval: approval.id,
              status: approval.status,
            },
          );
        }
        const format = exportFormat(options.file);
        if (approval.result.format !== format) {
          throw invalid(`export ${approval.id} was approved as ${String(approval.result.format)}, not ${format}`);
        }
        key = approval.result.key;
        rows = Number(approval.result.rows ?? 0);
        return allow;
      },
      async () => {
        const body = await this.lake.stores.objects.get(key);
        await writeFile(options.file, body);
        return { rows, file: options.file, approval: options.approval, bytes: body.byteLength };
      },
      (r) => ({ rows: r.rows, bytes: r.bytes, key }),
    );
  }

  /**
   * Tags (or with `remove`, untags) columns of a table: one schema commit, a direct write
   * (write on the branch and the table; protected branches refused). Removing `pii`
   * unmasks the columns: an agent's removal needs a person's approval, a person's needs admin.
   */
  tagColumns(
    actor: AuthActor,
    options: { table: string; branch: string; columns: string[]; tag: string; remove?: boolean },
  ): Promise<CommitResult> {
    return this.guard(
      actor,
      options.remove ? 'table.untag' : 'table.tag',
      `${options.table}@${options.branch}`,
      options,
      async () => {
        const write = await this.directWrite(actor, options.branch, options.table);
        if (write.outcome !== 'allow' || !options.remove || options.tag !== 'pii') return write;
        if (actor.agent === undefined) return this.needsAdmin(actor, `remove the pii tag (it unmasks columns)`);
        const { id } = await this.lake.catalog.getTable(options.branch, options.table);
        return {
          outcome: 'approval',
          reason: `agent ${actor.agent} of ${actor.person} may not remove the pii tag of ${options.table} (it unmasks ${options.columns.join(', ')}) without a person's approval`,
          request: {
            action: 'unmask',
            target: `${options.table}@${options.branch}`,
            params: { table: options.table, branch: options.branch, columns: [...options.columns].sort(), tag: 'pii' },
            binding: { table: options.table, ref: options.branch, version: id },
            summary: `remove the pii tag of ${options.table} columns ${options.columns.join(', ')} on ${options.branch}`,
            diff: null,
          },
        };
      },
      async () => (await import('../doctor/tagColumns.js')).tagColumns(this.lake.catalog, actor, options),
      (r) => ({ commit: r.commit.id }),
    );
  }

  // ------------------------------------------------------------ queries
  /** Runs one SELECT as the actor: only readable tables, with the actor's row filters and masks inside the engine. */
  query(actor: AuthActor, options: QueryOptions): Promise<QueryResult & { ref: string; commit: string }> {
    const ref = options.ref ?? 'main';
    return this.guard(
      actor,
      'query',
      ref,
      { sql: options.sql, ref, params: options.params },
      async () => (await this.needs(actor, 'read', baseOf(ref))) ?? allow,
      () => this.lake.query(actor, { ...options, reader: this.readerView(actor) }),
      (r) => ({ sql: options.sql, rows: r.stats.rowsReturned, bytesScanned: r.stats.bytesScanned, commit: r.commit }),
      { sql: options.sql },
    );
  }

  /** Like {@link query}, streaming rows to a sink. */
  streamQuery(
    actor: AuthActor,
    options: QueryOptions,
    sink: QuerySink,
  ): Promise<{ stats: QueryStats; commit: string }> {
    const ref = options.ref ?? 'main';
    return this.guard(
      actor,
      'query',
      ref,
      { sql: options.sql, ref, params: options.params },
      async () => (await this.needs(actor, 'read', baseOf(ref))) ?? allow,
      () => this.lake.streamQuery(actor, { ...options, reader: this.readerView(actor) }, sink),
      (r) => ({ sql: options.sql, rows: r.stats.rowsReturned, bytesScanned: r.stats.bytesScanned, commit: r.commit }),
      { sql: options.sql },
    );
  }

  /** The engine-side view of a snapshot for this actor. */
  readerView(actor: AuthActor): ReaderView {
    return async (tables) => {
      const policy = await this.authority.readerPolicy(actor, tables);
      return {
        tables: tables.filter((t) => policy.readable.has(t.name)),
        policy: { masks: policy.masks, rowFilters: policy.rowFilters, maskKey: policy.maskKey },
      };
    };
  }

  // ------------------------------------------------------------ history
  log(actor: AuthActor, options: { ref?: string; limit?: number } = {}): Promise<Commit[]> {
    const ref = options.ref ?? 'main';
    return this.guard(
      actor,
      'log',
      ref,
      { ref },
      async () => (await this.needs(actor, 'read', baseOf(ref))) ?? allow,
      () => this.lake.catalog.history(ref, options.limit ?? 20),
    );
  }

  diff(actor: AuthActor, options: { from: string; to: string }): Promise<TableDiff[]> {
    return this.guard(
      actor,
      'diff',
      `${options.from}..${options.to}`,
      options,
      async () =>
        (await this.needs(actor, 'read', baseOf(options.from))) ??
        (await this.needs(actor, 'read', baseOf(options.to))) ??
        allow,
      () => this.lake.catalog.diff(options.from, options.to),
    );
  }

  /**
   * Merges a ref into a branch. Into a protected branch: the person needs `merge` on it,
   * and an agent's merge needs an approval bound to (source commit, target head). Into any
   * other branch: `write` on it. A dry run needs only read.
   */
  merge(
    actor: AuthActor,
    options: { source: string; into: string; message?: string; dryRun?: boolean },
  ): Promise<MergeResult> {
    return this.guard(
      actor,
      options.dryRun ? 'merge.dry-run' : 'merge',
      `${options.into}<-${options.source}`,
      options,
      async () => {
        const read =
          (await this.needs(actor, 'read', baseOf(options.source))) ?? (await this.needs(actor, 'read', options.into));
        if (read || options.dryRun) return read ?? allow;
        if (!(await this.lake.catalog.isProtected(options.into)))
          return (await this.needs(actor, 'write', options.into)) ?? allow;
        return this.protectedChange(actor, 'merge', options.into, () =>
          prepareMergeApproval(this.lake.catalog, actor, options.source, options.into, options.message),
        );
      },
      () =>
        this.lake.catalog.merge(options.source, options.into, {
          actor,
          message: options.message ?? `Merge ${options.source} into ${options.into}`,
          dryRun: !!options.dryRun,
        }),
      (r) => ({ status: r.status, commit: r.commit }),
    );
  }

  /** Reverts a commit on a branch: a direct commit, so protected branches are refused. */
  revert(actor: AuthActor, options: { commit: string; branch: string; message?: string }): Promise<CommitResult> {
    return this.guard(
      actor,
      'revert',
      options.branch,
      options,
      () => this.directWrite(actor, options.branch),
      () =>
        this.lake.catalog.revert(options.commit, options.branch, {
          actor,
          ...(options.message ? { message: options.message } : {}),
        }),
      (r) => ({ commit: r.commit.id }),
    );
  }

  // ------------------------------------------------------------ caps
  showCaps(actor: AuthActor, scope: CapScope = {}): Promise<EffectiveCaps> {
    return this.guard(
      actor,
      'caps.show',
      scope.person ?? '*',
      scope,
      () => this.needsAnyRead(actor),
      () => this.lake.queryCaps(actor, scope),
    );
  }

  setCaps(actor: AuthActor, scope: CapScope, caps: Partial<QueryCaps>): Promise<EffectiveCaps> {
    return this.guard(
      actor,
      'caps.set',
      scope.person ?? '*',
      { scope, caps },
      () => this.needsAdmin(actor, 'change caps'),
      () => this.lake.setQueryCaps({ person: this.lake.owner }, scope, caps),
    );
  }

  unsetCaps(actor: AuthActor, scope: CapScope, names: readonly string[] = []): Promise<EffectiveCaps> {
    return this.guard(
      actor,
      'caps.unset',
      scope.person ?? '*',
      { scope, names },
      () => this.needsAdmin(actor, 'change caps'),
      () => this.lake.unsetQueryCaps({ person: this.lake.owner }, scope, names),
    );
  }

  // ------------------------------------------------------------ pipelines
  /**
   * Runs a pipeline for the actor: steps read their inputs through the actor's row filters
   * and masks. Needs the `run` scope and the right to publish to the branch (as a merge:
   * `merge` on a protected branch, where an agent's run needs an approval; `write` elsewhere).
   */
  runPipeline(actor: AuthActor, options: StartRunOptions, exec: ExecutionOptions = {}): Promise<RunSummary> {
    return this.guard(
      actor,
      options.dryRun ? 'run.dry-run' : 'run',
      options.branch,
      { pipeline: options.pipelineDir, branch: options.branch, params: options.params, dryRun: !!options.dryRun },
      () => this.publishDecision(actor, options.branch, !!options.dryRun),
      async () => (await this.runner()).start(actor, options, await this.execution(actor, exec, options.branch)),
      (r) => ({ runId: r.runId, status: r.status, ...(r.approvalId ? { approvalId: r.approvalId } : {}) }),
    );
  }

  /** Resumes a run: the same rights as starting it on its branch. */
  async resumeRun(actor: AuthActor, options: { runId: string }, exec: ExecutionOptions = {}): Promise<RunSummary> {
    return this.guard(
      actor,
      'run.resume',
      options.runId,
      options,
      async () => {
        const run = await (await this.runner()).show(options.runId);
        return this.publishDecision(actor, run.branch, run.dryRun);
      },
      async () => {
        const runner = await this.runner();
        const { branch } = await runner.show(options.runId);
        return runner.resume(actor, options.runId, await this.execution(actor, exec, branch));
      },
      (r) => ({ status: r.status }),
    );
  }

  listRuns(actor: AuthActor, options: { limit?: number } = {}): Promise<RunSummary[]> {
    return this.guard(
      actor,
      'runs.list',
      '*',
      options,
      () => this.needsAnyRead(actor),
      async () => {
        const s = await this.authority.standing(actor.person);
        const out: RunSummary[] = [];
        for (const r of await (await this.runner()).list(options.limit ?? 20)) {
          if (await this.authority.canBranch(actor, 'read', r.branch, s)) out.push(r);
        }
        return out;
      },
    );
  }

  showRun(actor: AuthActor, options: { runId: string }): Promise<RunSummary> {
    return this.guard(
      actor,
      'runs.show',
      options.runId,
      options,
      async () => (await this.needs(actor, 'read', (await (await this.runner()).show(options.runId)).branch)) ?? allow,
      async () => (await this.runner()).show(options.runId),
    );
  }

  // ------------------------------------------------------------ people, tokens, grants, policies
  /** Adds a person with a role (default reader). Admins only; an admin's agent needs an approval. */
  addUser(actor: AuthActor, options: { name: string; role?: string }): Promise<Person> {
    const role = checkRole(options.role ?? 'reader');
    return this.guard(
      actor,
      'user.add',
      options.name,
      { name: options.name, role },
      () =>
        this.grantChange(
          actor,
          'user.add',
          options.name,
          { name: options.name, role },
          `add person ${options.name} as ${role}`,
        ),
      () => this.directory.addPerson(checkName('person', options.name), role, actor.person),
    );
  }

  /** Changes a person's role (a grant change). */
  setRole(actor: AuthActor, options: { name: string; role: string }): Promise<Person> {
    const role = checkRole(options.role);
    return this.guard(
      actor,
      'user.role',
      options.name,
      { name: options.name, role },
      () =>
        this.grantChange(
          actor,
          'user.role',
          options.name,
          { name: options.name, role },
          `make ${options.name} ${role}`,
        ),
      () => this.directory.setRole(options.name, role),
    );
  }

  /** The people of the lake (the owner first, as admin). */
  listUsers(actor: AuthActor): Promise<Person[]> {
    return this.guard(
      actor,
      'user.list',
      '*',
      {},
      () => this.needsAnyRead(actor),
      async () => {
        const people = await this.directory.people();
        const owner: Person = { name: this.lake.owner, role: 'admin', created: '', createdBy: '(lake owner)' };
        return [owner, ...people.filter((p) => p.name !== this.lake.owner)];
      },
    );
  }

  /**
   * Creates a token; the result holds its text, shown only here. A person creates tokens
   * for themselves (and their agents); an admin for anyone. Agent tokens get
   * {@link defaultAgentScopes} unless scopes are given; a token cannot be made by an agent.
   */
  createToken(
    actor: AuthActor,
    options: { person?: string; agent?: string; scopes?: string[]; ttl?: string },
  ): Promise<{ token: string } & TokenInfo> {
    const person = options.person ?? actor.person;
    return this.guard(
      actor,
      'token.create',
      options.agent ? `${person}/${options.agent}` : person,
      { person, agent: options.agent, scopes: options.scopes, ttl: options.ttl },
      async () => {
        if (actor.agent !== undefined) return deny(`${who(actor)}: an agent cannot create tokens`);
        checkName('person', person);
        if (options.agent !== undefined) checkName('agent', options.agent);
        for (const s of options.scopes ?? []) checkScope(s);
        if (options.ttl !== undefined) parseTtl(options.ttl);
        if (person !== this.lake.owner && !(await this.directory.person(person))) {
          throw invalid(`no person named '${person}' (airlock user add ${person})`);
        }
        if (person === actor.person) return allow;
        return this.needsAdmin(actor, `create tokens for ${person}`);
      },
      async () => {
        const scopes = options.scopes?.length
          ? options.scopes
          : options.agent
            ? defaultAgentScopes(options.agent)
            : ['*'];
        const { token, info } = await this.directory.createToken({
          person,
          ...(options.agent ? { agent: options.agent } : {}),
          scopes,
          ...(options.ttl ? { ttlMs: parseTtl(options.ttl) } : {}),
        });
        return { token, ...info };
      },
      (r) => ({ id: r.id, expires: r.expires }),
    );
  }

  /** Tokens (never their hashes): all of them for an admin, one's own otherwise. */
  listTokens(actor: AuthActor): Promise<TokenInfo[]> {
    return this.guard(
      actor,
      'token.list',
      actor.person,
      {},
      async () => allow,
      async () => {
        const all = await this.directory.tokens();
        if (actor.agent === undefined && (await this.authority.personIsAdmin(actor.person))) return all;
        return all.filter((t) => t.person === actor.person && (actor.agent === undefined || t.agent === actor.agent));
      },
    );
  }

  /** Revokes a token: one's own, or anyone's for an admin. */
  revokeToken(actor: AuthActor, options: { id: string }): Promise<TokenInfo> {
    return this.guard(
      actor,
      'token.revoke',
      options.id,
      options,
      async () => {
        const t = await this.directory.token(options.id);
        if (t && t.person === actor.person && (actor.agent === undefined || t.agent === actor.agent)) return allow;
        if (actor.agent === undefined && (await this.authority.personIsAdmin(actor.person))) return allow;
        return deny(`${who(actor)} may revoke only their own tokens`);
      },
      () => this.directory.revokeToken(options.id),
    );
  }

  /** Grants a right on a branch or table pattern to a person. Admins only; an admin's agent needs an approval. */
  addGrant(actor: AuthActor, options: { person: string; grant: Grant }): Promise<StoredGrant> {
    const grant = checkGrant(options.grant);
    const target = `${options.person}:${grant.on}:${grant.pattern}`;
    return this.guard(
      actor,
      'grant.add',
      target,
      { person: options.person, ...grant },
      async () => {
        if (options.person !== this.lake.owner && !(await this.directory.person(options.person))) {
          throw invalid(`no person named '${options.person}' (airlock user add ${options.person})`);
        }
        return this.grantChange(
          actor,
          'grant.add',
          target,
          { person: options.person, grant },
          `grant ${grant.right} on ${grant.on} ${grant.pattern} to ${options.person}`,
        );
      },
      () => this.directory.addGrant(options.person, grant, actor.person),
    );
  }

  listGrants(actor: AuthActor, options: { person?: string } = {}): Promise<StoredGrant[]> {
    return this.guard(
      actor,
      'grant.list',
      options.person ?? '*',
      options,
      () => this.needsAnyRead(actor),
      () => this.directory.grants(options.person),
    );
  }

  removeGrant(actor: AuthActor, options: { id: string }): Promise<StoredGrant> {
    return this.guard(
      actor,
      'grant.remove',
      options.id,
      options,
      async () => {
        const g = await this.directory.grant(options.id);
        if (!g) throw new AirlockError('NOT_FOUND', `no grant with id '${options.id}' (airlock grant list)`);
        return this.grantChange(
          actor,
          'grant.remove',
          options.id,
          options,
          `remove grant ${g.right} on ${g.on} ${g.pattern} of ${g.person}`,
        );
      },
      async () => {
        const g = (await this.directory.grant(options.id)) as StoredGrant;
        await this.directory.removeGrant(options.id);
        return g;
      },
    );
  }

  /** Sets the row filter of a table for a person or role (a grant change). */
  setRowFilter(
    actor: AuthActor,
    options: { table: string; principal: Principal; predicate: string },
  ): Promise<RowFilter> {
    if (typeof options.predicate !== 'string' || options.predicate.trim() === '')
      throw invalid('a row filter needs a SQL predicate (--where)');
    return this.guard(
      actor,
      'policy.rows.set',
      `${options.table}:${principalText(options.principal)}`,
      options,
      () =>
        this.grantChange(
          actor,
          'policy.rows.set',
          options.table,
          options,
          `row filter on ${options.table} for ${principalText(options.principal)}`,
        ),
      () => this.directory.setRowFilter(options.table, options.principal, options.predicate, actor.person),
    );
  }

  removeRowFilter(actor: AuthActor, options: { table: string; principal: Principal }): Promise<void> {
    return this.guard(
      actor,
      'policy.rows.remove',
      `${options.table}:${principalText(options.principal)}`,
      options,
      () =>
        this.grantChange(
          actor,
          'policy.rows.remove',
          options.table,
          options,
          `remove the row filter on ${options.table} for ${principalText(options.principal)}`,
        ),
      () => this.directory.removeRowFilter(options.table, options.principal),
    );
  }

  listRowFilters(actor: AuthActor): Promise<RowFilter[]> {
    return this.guard(
      actor,
      'policy.rows.list',
      '*',
      {},
      () => this.needsAnyRead(actor),
      () => this.directory.rowFilters(),
    );
  }

  /** How `pii` columns read for people without `unmask`: `hash` (keyed, joinable) or `null`. */
  setMaskKind(actor: AuthActor, options: { kind: MaskKind }): Promise<{ maskKind: MaskKind }> {
    if (options.kind !== 'hash' && options.kind !== 'null')
      throw invalid(`unknown mask '${String(options.kind)}' (use hash or null)`);
    return this.guard(
      actor,
      'policy.masks.set',
      '*',
      options,
      () => this.grantChange(actor, 'policy.masks.set', '*', options, `mask pii columns as ${options.kind}`),
      async () => ({ maskKind: (await this.directory.setMaskKind(options.kind)).maskKind }),
    );
  }

  maskKind(actor: AuthActor): Promise<{ maskKind: MaskKind }> {
    return this.guard(
      actor,
      'policy.masks.show',
      '*',
      {},
      () => this.needsAnyRead(actor),
      async () => ({
        maskKind: (await this.directory.settings()).maskKind,
      }),
    );
  }

  // ------------------------------------------------------------ audit
  /**
   * Audit entries, newest first: every entry for an admin (a person), otherwise only the
   * actor's own person's entries (an agent sees its person's, never others').
   */
  auditLog(actor: AuthActor, query: AuditLogQuery = {}): Promise<AuditEntry[]> {
    return this.guard(
      actor,
      'audit.log',
      query.actor ? `${query.actor.person}${query.actor.agent ? `/${query.actor.agent}` : ''}` : '*',
      query,
      () => this.needsAnyRead(actor),
      async () => {
        const admin = actor.agent === undefined && (await this.authority.personIsAdmin(actor.person));
        if (admin) return this.audit.log(query);
        if (query.actor && query.actor.person !== actor.person) {
          throw denied(`${who(actor)} may read only their own audit entries (admins read all)`);
        }
        return this.audit.log({ ...query, actor: query.actor ?? { person: actor.person } });
      },
      (r) => ({ entries: r.length }),
    );
  }

  /** Recomputes the chain (anyone who may read). */
  auditVerify(actor: AuthActor): Promise<AuditVerification> {
    return this.guard(
      actor,
      'audit.verify',
      '*',
      {},
      () => this.needsAnyRead(actor),
      () => this.audit.verify(),
      (r) => ({ ok: r.ok, entries: r.entries }),
    );
  }

  /** Writes the chain head to the object store now (admins). */
  auditAnchor(actor: AuthActor): Promise<AuditAnchor | undefined> {
    return this.guard(
      actor,
      'audit.anchor',
      '*',
      {},
      () => this.needsAdmin(actor, 'anchor the audit chain'),
      () => this.audit.anchor(),
    );
  }

  // ------------------------------------------------------------ the guard
  /**
   * Decides, runs and audits one request. Exactly one audit entry is appended whatever
   * happens; when appending it fails, the request fails (nothing unaudited is reported ok).
   */
  private async guard<T>(
    actor: AuthActor,
    action: string,
    target: string,
    request: unknown,
    decide: () => Promise<Decision>,
    run: () => Promise<T>,
    summarize?: (result: T) => Record<string, unknown>,
    extra: Record<string, unknown> = {},
  ): Promise<T> {
    const base = {
      person: actor.person,
      ...(actor.agent ? { agent: actor.agent } : {}),
      action,
      target,
      request: { action, target, request },
    };
    let decision: Decision;
    try {
      decision = await this.known(actor, decide);
    } catch (e) {
      await this.audit.append({ ...base, outcome: outcomeOf(e), details: { ...extra, error: errorText(e) } });
      throw e;
    }
    if (decision.outcome === 'deny') {
      await this.audit.append({ ...base, outcome: 'denied', details: { ...extra, reason: decision.reason } });
      throw denied(decision.reason, { action, target });
    }
    if (decision.outcome === 'approval') {
      if (!this.approvals) {
        const reason = `${decision.reason}, and this lake has no approval service`;
        await this.audit.append({ ...base, outcome: 'denied', details: { ...extra, reason } });
        throw denied(reason, { action, target });
      }
      const approval = await this.approvals.request(actor, decision.request);
      await this.audit.append({
        ...base,
        outcome: 'approval_required',
        details: { ...extra, reason: decision.reason, approvalId: approval.id },
      });
      throw new AirlockError('APPROVAL_REQUIRED', `${decision.reason}: approval ${approval.id} is pending`, {
        details: { approvalId: approval.id, action, target, summary: decision.request.summary },
      });
    }
    let result: T;
    try {
      result = await run();
    } catch (e) {
      await this.audit.append({ ...base, outcome: outcomeOf(e), details: { ...extra, error: errorText(e) } });
      throw e;
    }
    // A change to people, grants or reader policies holds for the very next request.
    if (/^(user|grant|policy)\./.test(action)) this.authority.forget();
    // A result that itself waits for a person (a run whose publish needs approval) is audited as such.
    const waiting = (result as { status?: unknown } | undefined)?.status === 'awaiting_approval';
    await this.audit.append({
      ...base,
      outcome: waiting ? 'approval_required' : 'ok',
      details: { ...extra, ...(summarize ? summarize(result) : {}) },
    });
    return result;
  }

  /** Unknown people (neither the owner nor added) hold nothing. */
  private async known(actor: AuthActor, decide: () => Promise<Decision>): Promise<Decision> {
    if (typeof actor?.person !== 'string' || actor.person === '') return deny('no acting person');
    const standing = await this.authority.standing(actor.person);
    if (!standing.owner && standing.role === undefined) {
      return deny(`'${actor.person}' is not a person of this lake (airlock user add)`);
    }
    return decide();
  }

  /** A missing branch right as a denial, or undefined when held. */
  private async needs(actor: AuthActor, right: BranchRight, branch: string): Promise<Decision | undefined> {
    if (await this.authority.canBranch(actor, right, branch)) return undefined;
    return deny(
      `${who(actor)} may not ${right === 'read' ? 'read' : right} branch '${branch}' (no ${right} grant${actor.agent ? ' within the token scopes' : ''})`,
    );
  }

  private async needsTable(actor: AuthActor, right: TableRight, table: string): Promise<Decision | undefined> {
    if (await this.authority.canTable(actor, right, table)) return undefined;
    return deny(`${who(actor)} may not ${right} table '${table}' (no ${right} grant on it)`);
  }

  private async needsAnyRead(actor: AuthActor): Promise<Decision> {
    const s = await this.authority.standing(actor.person);
    if (s.grants.some((g) => g.on === 'branch')) return allow;
    return deny(`${who(actor)} holds no read grant`);
  }

  private async needsAdmin(actor: AuthActor, what: string): Promise<Decision> {
    if (actor.agent !== undefined) return deny(`${who(actor)}: an agent may not ${what}`);
    if (await this.authority.personIsAdmin(actor.person)) return allow;
    return deny(`${who(actor)} may not ${what} (admins only)`);
  }

  /** Direct commits: never into a protected branch (for anyone); otherwise write on branch (and table). */
  private async directWrite(actor: AuthActor, branch: string, table?: string): Promise<Decision> {
    if (await this.lake.catalog.isProtected(branch)) {
      return deny(
        `branch '${branch}' is protected: it changes only by merge. Commit to another branch (airlock branch create <name> --from ${branch}) and merge it.`,
      );
    }
    return (
      (await this.needs(actor, 'write', branch)) ??
      (table ? await this.needsTable(actor, 'write', table) : undefined) ??
      allow
    );
  }

  /** A change to a protected branch: `merge` on it for the person; an agent's needs an approval. */
  /** Allowed when the actor's person holds merge (or admin) on the branch, whatever the token's scopes. */
  private async personMayMerge(actor: AuthActor, branch: string, what = 'publish'): Promise<Decision> {
    const s = await this.authority.standing(actor.person);
    if (
      !s.grants.some((g) => g.on === 'branch' && BRANCH_RIGHTS.indexOf(g.right) >= 2 && patternHolds(g.pattern, branch))
    ) {
      return deny(`${who(actor)} may not ${what} into protected branch '${branch}' (needs a merge grant on it)`);
    }
    return allow;
  }

  private async protectedChange(
    actor: AuthActor,
    what: string,
    branch: string,
    approval: () => Promise<ApprovalRequest>,
  ): Promise<Decision> {
    const personal = await this.personMayMerge(actor, branch, what);
    if (personal.outcome === 'deny') return personal;
    if (actor.agent === undefined) {
      return (await this.needs(actor, 'merge', branch)) ?? allow;
    }
    return {
      outcome: 'approval',
      reason: `agent ${actor.agent} of ${actor.person} may not ${what} into protected branch '${branch}' without a person's approval`,
      request: await approval(),
    };
  }

  /**
   * Publishing a run: `run` scope; `write` on an unprotected branch; on a protected one
   * `merge` for a person. An agent's run never publishes to a protected branch: it runs on
   * a branch of its own, and that branch's merge goes through the approval gate.
   */
  private async publishDecision(actor: AuthActor, branch: string, dryRun: boolean): Promise<Decision> {
    if (!this.authority.mayRunPipelines(actor)) return deny(`${who(actor)}: the token has no 'run' scope`);
    const read = await this.needs(actor, 'read', branch);
    if (read || dryRun) return read ?? allow;
    if (!(await this.lake.catalog.isProtected(branch))) return (await this.needs(actor, 'write', branch)) ?? allow;
    if (actor.agent === undefined) return (await this.needs(actor, 'merge', branch)) ?? allow;
    // An agent's run into a protected branch executes on its run branch, then waits for a
    // person's approval to publish (see `execution`): its person must hold merge there.
    if (!this.approvals) {
      return deny(
        `agent ${actor.agent} of ${actor.person} may not publish a run to protected branch '${branch}' without a person's approval, and this lake has no approval service`,
      );
    }
    return this.personMayMerge(actor, branch);
  }

  /** Grant changes: admins (persons) only; an admin's agent needs an approval; others are refused. */
  private async grantChange(
    actor: AuthActor,
    operation: string,
    target: string,
    params: unknown,
    summary: string,
  ): Promise<Decision> {
    if (!(await this.authority.personIsAdmin(actor.person)))
      return deny(`${who(actor)} may not ${summary} (admins only)`);
    if (actor.agent === undefined) return allow;
    return {
      outcome: 'approval',
      reason: `agent ${actor.agent} of ${actor.person} may not change grants without a person's approval`,
      request: {
        action: 'grant',
        target,
        params: { operation, ...(params as Record<string, unknown>) },
        binding: {},
        summary,
        diff: null,
      },
    };
  }

  private async runner() {
    const { PipelineRunner } = await import('../pipeline/run/index.js');
    const { stores } = this.lake;
    return new PipelineRunner(
      { catalog: this.lake.catalog, store: stores.store, objects: stores.objects, stagingDir: stores.stagingDir },
      this.executor,
    );
  }

  /**
   * How a run executes for the actor: its steps read what the actor may see; an agent's
   * run into a protected branch commits every output on its run branch and then waits for
   * a person's approval (a merge request bound to the run branch's head and the target's
   * head) instead of publishing.
   */
  private async execution(actor: AuthActor, exec: ExecutionOptions, branch: string): Promise<ExecutionOptions> {
    const reader = this.readerView(actor);
    const approvals = this.approvals;
    if (actor.agent === undefined || !approvals || !(await this.lake.catalog.isProtected(branch))) {
      return { ...exec, reader };
    }
    return {
      ...exec,
      reader,
      publishGate: async (run) => {
        const outputs = run.steps.map((s) => s.output).join(', ');
        const request = await prepareMergeApproval(
          this.lake.catalog,
          actor,
          run.runBranch,
          run.branch,
          `Publish run ${run.runId}: ${outputs}`,
        );
        const approval = await approvals.request(actor, request);
        return { approvalId: approval.id };
      },
    };
  }
}

function patternHolds(pattern: string, name: string): boolean {
  if (!pattern.includes('*')) return pattern === name;
  const parts = pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`, 's').test(name);
}

function outcomeOf(e: unknown): AuditOutcome {
  if (!isAirlockError(e)) return 'error';
  if (e.code === 'DENIED') return 'denied';
  if (e.code === 'LIMIT_EXCEEDED') return 'limit_exceeded';
  if (e.code === 'APPROVAL_REQUIRED') return 'approval_required';
  return 'error';
}

function errorText(e: unknown): string {
  return isAirlockError(e) ? `${e.code}: ${e.message}` : 'internal error';
}

/** Checks a scope: `right` or `right:branch-pattern`. */
export function checkScope(scope: string): string {
  const { right, pattern } = parseScope(scope);
  if (!(SCOPE_RIGHTS as readonly string[]).includes(right) || pattern === '') {
    throw invalid(`unknown scope '${scope}' (use ${SCOPE_RIGHTS.join(', ')}, optionally with :branch-pattern)`);
  }
  return scope;
}

/** Checks a grant's shape. */
export function checkGrant(grant: Grant): Grant {
  if (grant.on !== 'branch' && grant.on !== 'table') throw invalid('a grant is on a branch pattern or a table pattern');
  if (typeof grant.pattern !== 'string' || grant.pattern === '' || grant.pattern.length > 256) {
    throw invalid('a grant needs a non-empty pattern');
  }
  const rights: readonly string[] = grant.on === 'branch' ? BRANCH_RIGHTS : TABLE_RIGHTS;
  if (!rights.includes(grant.right)) {
    throw invalid(`a ${grant.on} grant's right is one of ${rights.join(', ')}, got '${grant.right}'`);
  }
  return grant;
}
