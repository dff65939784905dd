import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import {
  Catalog,
  type CommitResult,
  type TableChange,
  validateColumnName,
  validateTableName,
} from '../catalog/index.js';
import type { Actor, Field, FieldType, TableVersion } from '../catalog/index.js';
import { DuckDbConstraintValidator, exportRows, prepareImport } from '../data/index.js';
import { invalid, isAirlockError, isNotFound } from '../errors/index.js';
import type {
  CapScope,
  CapSettings,
  EffectiveCaps,
  QueryCaps,
  QueryGovernor,
  QueryParam,
  QueryPolicy,
  QueryResult,
  QuerySink,
  QueryStats,
  SnapshotTable,
} from '../query/index.js';

/** The query engine, loaded on first query (it brings DuckDB and Arrow). */
const queryEngine = () => import('../query/index.js');
import {
  type LakeLocation,
  type LakeStores,
  lakeLocation,
  openLakeStores,
  protectedBranchesFromEnv,
} from './openLake.js';

/** Options of {@link Lake.importTable}. */
export interface ImportOptions {
  table: string;
  file: string;
  branch: string;
  mode?: 'append' | 'overwrite';
  /** For a new table: not-null columns, unique key, column tags. */
  notNull?: string[];
  unique?: string[];
  tags?: Record<string, string[]>;
  message?: string;
  /** What the default commit message names as the data's origin (default: `file`), e.g. an HTTP upload. */
  source?: string;
}

/** Options of {@link Lake.query}. */
export interface QueryOptions {
  sql: string;
  ref?: string;
  params?: Record<string, QueryParam>;
  /** Lower caps for this query (never above the lake's and person's caps). */
  caps?: Partial<QueryCaps>;
  /**
   * The reader's view of the snapshot, applied inside the engine: which tables the actor
   * may read, and the row filters and column masks that hold for them. Given by the one
   * enforcement point (`shared/auth`); absent, the query sees every table unmasked.
   */
  reader?: ReaderView;
}

/** Narrows a snapshot to what one reader may see (see {@link QueryOptions.reader}). */
export type ReaderView = (tables: SnapshotTable[]) => Promise<{ tables: SnapshotTable[]; policy?: QueryPolicy }>;

/** The outcome of an import. */
export interface ImportResult {
  table: string;
  branch: string;
  mode: 'append' | 'overwrite';
  rows: number;
  created: boolean;
  commit: string;
  version: string;
  renamed: Record<string, string>;
}

const FIELD_TYPES = new Set([
  'Bool',
  'Int8',
  'Int16',
  'Int32',
  'Int64',
  'UInt8',
  'UInt16',
  'UInt32',
  'UInt64',
  'Float32',
  'Float64',
  'Utf8',
  'Binary',
  'Date32',
  'Timestamp',
]);

/**
 * A lake: the catalog plus its data. This is the one service every interface (CLI, HTTP,
 * MCP, Lambda handlers) calls, with the acting {@link Actor}; table operations that read
 * or write data live here so interfaces stay thin.
 */
export class Lake {
  readonly catalog: Catalog;
  private queryGovernor: QueryGovernor | undefined;
  private capSettings: CapSettings | undefined;

  private constructor(readonly stores: LakeStores) {
    this.catalog = new Catalog(stores.store, stores.objects, {
      validator: new DuckDbConstraintValidator(stores.objects),
    });
  }

  /** Opens an existing lake (NOT_FOUND when the location is not a lake). */
  static async open(location: LakeLocation): Promise<Lake> {
    const lake = new Lake(await openLakeStores(location));
    if (!(await lake.catalog.isInitialized())) {
      await lake.close();
      throw invalid(`the lake at ${describeLocation(location)} is not initialised; run 'airlock init'`);
    }
    return lake;
  }

  /**
   * Opens the lake a deployment's environment names (`lakeLocation` reads `AIRLOCK_BACKEND`,
   * `AIRLOCK_DYNAMODB_TABLE`, `AIRLOCK_BUCKET`…) and applies `AIRLOCK_PROTECTED_BRANCHES`
   * (only ever adding protection: one read, a write only when something is new). The Lambda
   * handlers open their lake this way, so the stack's `airlock:protectedBranches` holds.
   */
  static async openFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<Lake> {
    const lake = await Lake.open(lakeLocation({}, env));
    try {
      await lake.catalog.protectBranches(protectedBranchesFromEnv(env));
      return lake;
    } catch (e) {
      await lake.close();
      throw e;
    }
  }

  /**
   * Creates (or re-opens) a lake and its `main` branch. Idempotent. `protectedBranches`
   * (names or `prefix*` patterns) are protected besides `main`; protection is only added.
   */
  static async init(
    location: LakeLocation,
    options: { protectedBranches?: readonly string[] } = {},
  ): Promise<{ lake: Lake; created: boolean; head: string; protectedBranches: string[] }> {
    const lake = new Lake(await openLakeStores(location, { create: true }));
    try {
      const { created, head } = await lake.catalog.init({ person: lake.owner });
      const protectedBranches = await lake.catalog.protectBranches(options.protectedBranches ?? []);
      return { lake, created, head, protectedBranches };
    } catch (e) {
      await lake.close();
      throw e;
    }
  }

  /** The person the embedded CLI acts as without a token. */
  get owner(): string {
    return this.stores.owner;
  }

  async close(): Promise<void> {
    await this.stores.store.close();
    await this.stores.objects.close();
  }

  /**
   * Imports a file into a table on a branch as one commit. The file is validated and
   * written as Parquet first; only then is it moved into the object store and committed.
   * Any failure leaves the branch as it was; a failure after the move deletes the
   * unreferenced file (a crash there leaves it unreferenced, never referenced-and-missing).
   */
  async importTable(actor: Actor, options: ImportOptions): Promise<ImportResult> {
    const mode = options.mode ?? 'append';
    if (mode !== 'append' && mode !== 'overwrite')
      throw invalid(`unknown import mode '${mode}' (use append or overwrite)`);
    validateTableName(options.table);
    await this.catalog.assertCommittable(options.branch);
    const existing = await this.tableOrUndefined(options.branch, options.table);
    const prepared = await prepareImport({
      file: options.file,
      table: options.table,
      stagingDir: this.stores.stagingDir,
      ...(existing ? { existing: existing.version } : {}),
      create: { notNull: options.notNull ?? [], unique: options.unique ?? [], tags: options.tags ?? {} },
    });
    const [namespace, name] = options.table.split('.') as [string, string];
    const key = `data/${namespace}/${name}/${randomUUID()}.parquet`;
    try {
      if (prepared.file) await this.stores.objects.putFile(key, prepared.file.path, { move: true });
    } finally {
      if (prepared.file) rmSync(prepared.file.path, { force: true });
    }
    const files = prepared.file ? [{ key, ...prepared.file.stats }] : [];
    const change: TableChange =
      mode === 'append'
        ? { kind: 'append', table: options.table, files, schema: prepared.schema, constraints: prepared.constraints }
        : {
            kind: 'put',
            table: options.table,
            base: existing?.id ?? null,
            version: {
              schema: prepared.schema,
              constraints: prepared.constraints,
              files,
              rowCount: prepared.rows,
              bytes: files.reduce((n, f) => n + f.bytes, 0),
              op: existing ? 'overwrite' : 'create',
            },
          };
    const message =
      options.message ??
      `${mode === 'append' ? 'Append' : 'Overwrite'} ${options.table} from ${options.source ?? options.file} (${prepared.rows} rows)`;
    let result: CommitResult;
    try {
      result = await this.catalog.commit(options.branch, [change], { actor, message });
    } catch (e) {
      if (prepared.file && isAirlockError(e) && e.code !== 'INTERNAL') await this.stores.objects.delete(key);
      throw e;
    }
    const tree = await this.catalog.treeOf(result.commit);
    return {
      table: options.table,
      branch: options.branch,
      mode,
      rows: prepared.rows,
      created: !existing,
      commit: result.commit.id,
      version: tree.tables[options.table] as string,
      renamed: prepared.renamed,
    };
  }

  /**
   * Runs one read-only SELECT over the snapshot of a ref. Table names resolve to the exact
   * Parquet files of that snapshot; the engine refuses anything else (see shared/query).
   * Caps apply per query and per person (agents draw on their person's budget).
   */
  async query(actor: Actor, options: QueryOptions): Promise<QueryResult & { ref: string; commit: string }> {
    const { request, commit, ref } = await this.queryRequest(actor, options);
    const result = await (await queryEngine()).runQuery(request);
    return { ...result, ref, commit };
  }

  /** Like {@link query}, but streams rows to a sink without holding the whole result. */
  async streamQuery(
    actor: Actor,
    options: QueryOptions,
    sink: QuerySink,
  ): Promise<{ stats: QueryStats; commit: string }> {
    const { request, commit } = await this.queryRequest(actor, options);
    const { stats } = await (await queryEngine()).streamQuery(request, sink);
    return { stats, commit };
  }

  /**
   * The query caps of a person (person override ▸ lake setting ▸ safe default) and where
   * each comes from; without a person, the lake-wide caps. Anyone may read them.
   */
  async queryCaps(_actor: Actor, scope: CapScope = {}): Promise<EffectiveCaps> {
    return (await this.caps()).effective(scope.person);
  }

  /**
   * Sets query caps lake-wide or for one person; each must be a whole number ≥ 1
   * (INVALID naming the cap). Only an actor allowed by `mayChangeCaps` may (DENIED).
   */
  async setQueryCaps(actor: Actor, scope: CapScope, caps: Partial<QueryCaps>): Promise<EffectiveCaps> {
    return (await this.caps()).set(actor, scope, caps);
  }

  /** Removes caps from a scope (all of them when `names` is empty): they fall back to the next level. */
  async unsetQueryCaps(actor: Actor, scope: CapScope, names: readonly string[] = []): Promise<EffectiveCaps> {
    return (await this.caps()).unset(actor, scope, names);
  }

  private async caps(): Promise<CapSettings> {
    this.capSettings ??= new (await queryEngine()).CapSettings(this.stores.store, { owner: this.owner });
    return this.capSettings;
  }

  private async queryRequest(actor: Actor, options: QueryOptions) {
    const ref = options.ref ?? 'main';
    const snapshot = await this.catalog.snapshot(ref);
    // Paths are resolved (on S3: downloaded) only for the files the query reads, after the caps checks.
    const all: SnapshotTable[] = [...snapshot.tables.entries()].map(([name, { version }]) => ({
      name,
      schema: version.schema,
      files: version.files,
    }));
    const view = options.reader ? await options.reader(all) : { tables: all };
    const engine = await queryEngine();
    // The person's caps (override ▸ lake ▸ default): an agent gets its person's caps.
    const { caps: configured } = await (await this.caps()).effective(actor.person);
    const caps = tighten(configured, options.caps ?? {});
    this.queryGovernor ??= new engine.QueryGovernor(this.stores.store);
    return {
      ref,
      commit: snapshot.commit.id,
      request: {
        sql: options.sql,
        tables: view.tables,
        ...(view.policy ? { policy: view.policy } : {}),
        caps,
        ...(options.params ? { params: options.params } : {}),
        governance: { governor: this.queryGovernor, person: actor.person },
        resolvePath: (f: { key: string }) => this.stores.objects.localPath(f.key),
      },
    };
  }

  /** Writes a table at a ref to a CSV, Parquet, JSON or JSONL file. */
  async exportTable(
    _actor: Actor,
    options: { table: string; ref: string; file: string },
  ): Promise<{ rows: number; file: string }> {
    const { version } = await this.catalog.getTable(options.ref, options.table);
    const paths = await Promise.all(version.files.map((f) => this.stores.objects.localPath(f.key)));
    const rows = await exportRows(version, paths, options.file);
    return { rows, file: options.file };
  }

  /** Drops a table on a branch (the data stays reachable from history). */
  async dropTable(actor: Actor, options: { table: string; branch: string }): Promise<CommitResult> {
    const { id } = await this.catalog.getTable(options.branch, options.table);
    return this.catalog.commit(options.branch, [{ kind: 'drop', table: options.table, base: id }], {
      actor,
      message: `Drop ${options.table}`,
    });
  }

  /**
   * Adds a nullable column (schema evolution without rewriting data: older files lack
   * the column and read as NULL).
   */
  async addColumn(
    actor: Actor,
    options: { table: string; branch: string; column: string; type: string; tags?: string[] },
  ): Promise<CommitResult> {
    validateColumnName(options.column);
    const type = parseFieldType(options.type);
    const { id, version } = await this.catalog.getTable(options.branch, options.table);
    if (version.schema.fields.some((f) => f.name === options.column)) {
      throw invalid(`table '${options.table}' already has a column '${options.column}'`);
    }
    const field: Field = { name: options.column, type, nullable: true, tags: [...(options.tags ?? [])].sort() };
    const next: Omit<TableVersion, 'parent' | 'table'> = {
      ...version,
      schema: { fields: [...version.schema.fields, field] },
      op: 'schema',
    };
    return this.catalog.commit(options.branch, [{ kind: 'put', table: options.table, base: id, version: next }], {
      actor,
      message: `Add column ${options.column} ${type} to ${options.table}`,
    });
  }

  private async tableOrUndefined(branch: string, table: string) {
    try {
      return await this.catalog.getTable(branch, table);
    } catch (e) {
      if (isNotFound(e) && e.details.table === table) return undefined;
      throw e;
    }
  }
}

/** Caps lowered (never raised) by a request. */
function tighten(base: QueryCaps, asked: Partial<QueryCaps>): QueryCaps {
  const out = { ...base };
  for (const [k, v] of Object.entries(asked) as Array<[keyof QueryCaps, number | undefined]>) {
    if (v !== undefined) out[k] = Math.min(out[k], v);
  }
  return out;
}

function parseFieldType(text: string): FieldType {
  if (FIELD_TYPES.has(text) || /^Decimal\(\d+,\d+\)$/.test(text)) return text as FieldType;
  throw invalid(`unknown column type '${text}' (use one of ${[...FIELD_TYPES].join(', ')}, Decimal(p,s))`);
}

function describeLocation(location: LakeLocation): string {
  return location.backend === 'local' ? location.dir : `dynamodb:${location.table} + s3:${location.bucket}`;
}
