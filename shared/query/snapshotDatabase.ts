import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { FieldType } from '../catalog/model.js';
import { invalid } from '../errors/index.js';
import { duckType, quoteIdent, quoteString } from './sqlText.js';
import type { EngineOptions, MaskKind, SnapshotFile, SnapshotTable } from './types.js';

/** One view to create: a snapshot table, the files it may read, and the reader's policy for it. */
export interface ViewSpec {
  table: SnapshotTable;
  files: readonly SnapshotFile[];
  rowFilter?: string;
  masks?: Record<string, MaskKind>;
}

/** A locked-down DuckDB instance holding only the snapshot's views. */
export interface SnapshotDatabase {
  connection: DuckDBConnection;
  close(): Promise<void>;
}

const RESERVED_SCHEMAS = new Set(['information_schema', 'pg_catalog', 'temp', 'system']);

function pathOf(file: SnapshotFile): string {
  if (file.path === undefined) throw invalid(`snapshot file ${file.key} has no local path`);
  return file.path;
}

function splitName(name: string): [string, string] {
  const parts = name.split('.');
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw invalid(`table name '${name}' is not ns.table`);
  if (RESERVED_SCHEMAS.has(parts[0])) throw invalid(`namespace '${parts[0]}' is reserved by the engine`);
  return [parts[0], parts[1]];
}

/** The SELECT list of a view: every schema column, typed, with masks applied. */
function viewColumns(
  table: SnapshotTable,
  masks: Record<string, MaskKind>,
  maskKey: string,
  files: readonly SnapshotTable['files'][number][],
): string {
  for (const column of Object.keys(masks)) {
    if (!table.schema.fields.some((f) => f.name === column)) {
      throw invalid(`mask on unknown column ${table.name}.${column}`);
    }
  }
  return table.schema.fields
    .map((f) => {
      const col = quoteIdent(f.name);
      const type = duckType(f.type as FieldType);
      // A column added after every file was written exists in no file: it reads as NULL.
      if (!files.some((file) => file.columns[f.name] !== undefined)) return `CAST(NULL AS ${type}) AS ${col}`;
      switch (masks[f.name]) {
        case 'null':
          return `CAST(NULL AS ${type}) AS ${col}`;
        case 'hash':
          // Keyed: sha256(key ‖ 0x00 ‖ value). Without the key nobody can hash a guess and
          // compare, so low-entropy values (emails, names) cannot be recovered by probing.
          return `sha256(${quoteString(maskKey)} || chr(0) || CAST(${col} AS VARCHAR)) AS ${col}`;
        default:
          return `CAST(${col} AS ${type}) AS ${col}`;
      }
    })
    .join(', ');
}

function viewSql(spec: ViewSpec, maskKey: string): string {
  const [ns, name] = splitName(spec.table.name);
  const target = `${quoteIdent(ns)}.${quoteIdent(name)}`;
  const columns = viewColumns(spec.table, spec.masks ?? {}, maskKey, spec.files);
  if (spec.files.length === 0) {
    // No file (empty table, or every file pruned): the schema with zero rows.
    const empty = spec.table.schema.fields
      .map((f) => `CAST(NULL AS ${duckType(f.type as FieldType)}) AS ${quoteIdent(f.name)}`)
      .join(', ');
    return `CREATE VIEW ${target} AS SELECT ${empty || '1 AS "_"'} WHERE false`;
  }
  const paths = spec.files.map((f) => quoteString(pathOf(f))).join(', ');
  // Files written before a column was added lack it: read them by name (missing = NULL).
  const uniform = spec.files.every((f) => spec.table.schema.fields.every((c) => f.columns[c.name] !== undefined));
  const source = `read_parquet([${paths}]${uniform ? '' : ', union_by_name = true'})`;
  const where = spec.rowFilter ? ` WHERE (${spec.rowFilter})` : '';
  return `CREATE VIEW ${target} AS SELECT ${columns} FROM ${source}${where}`;
}

/**
 * Opens a fresh in-memory DuckDB for one query, locks it down, then creates one view per
 * snapshot table (`"ns"."table"` over exactly its files, row filter in the view's WHERE,
 * masked columns replaced in the view). The lock-down comes FIRST, before any view (and
 * so before any policy text such as a row filter) is bound: `allowed_paths` = exactly the
 * view files, `allowed_directories` = the private spill directory,
 * `enable_external_access=false`, `lock_configuration=true` (in that order: once locked
 * nothing can be changed back). Extensions are never auto-installed or auto-loaded.
 * Spilling goes to a private temp directory that `close()` removes.
 *
 * Cost: all settings go in one engine call and all schemas in another (each call is a hop
 * through the addon's worker pool, which a busy machine makes expensive), and Parquet
 * footers are cached for the life of the instance, so the footer a view reads when it is
 * bound is not read again when the query runs (data files are immutable, so the cache
 * cannot go stale).
 */
export async function openSnapshotDatabase(
  views: readonly ViewSpec[],
  options: EngineOptions & {
    maskKey?: string;
    /** Files (not yet existing) that trusted wrapper statements may write, e.g. a pipeline step's output. */
    writablePaths?: readonly string[];
  } = {},
): Promise<SnapshotDatabase> {
  const ownTemp = options.tempDirectory === undefined;
  const tempDirectory = options.tempDirectory ?? (await mkdtemp(join(tmpdir(), 'airlock-query-')));
  const threads = options.threads ?? Math.max(1, Math.min(4, availableParallelism()));
  let instance: DuckDBInstance | undefined;
  let connection: DuckDBConnection | undefined;
  const close = async () => {
    connection?.closeSync();
    instance?.closeSync();
    if (ownTemp) await rm(tempDirectory, { recursive: true, force: true });
  };
  try {
    const maskKey = options.maskKey ?? randomBytes(32).toString('hex');
    // Built (and so validated: names, masks) before the engine is started.
    const schemas = [...new Set(views.map((v) => splitName(v.table.name)[0]))];
    const createSchemas = schemas.map((ns) => `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(ns)}`).join(';\n');
    const createViews = views.map((spec) => viewSql(spec, maskKey));
    const files = [...new Set([...views.flatMap((v) => v.files.map(pathOf)), ...(options.writablePaths ?? [])])];
    instance = await DuckDBInstance.create(':memory:', {
      threads: String(threads),
      memory_limit: options.memoryLimit ?? '1GB',
      temp_directory: tempDirectory,
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    });
    connection = await instance.connect();
    await connection.run(
      [
        'SET parquet_metadata_cache=true',
        `SET allowed_paths=[${files.map(quoteString).join(', ')}]`,
        `SET allowed_directories=[${quoteString(tempDirectory)}]`,
        'SET enable_external_access=false',
        'SET lock_configuration=true',
      ].join(';\n'),
    );
    // Each view is its own call: a view's text holds policy (a row filter), and one call
    // per statement means no text of one can ever run as part of another.
    if (createSchemas) await connection.run(createSchemas);
    for (const statement of createViews) await connection.run(statement);
    return { connection, close };
  } catch (e) {
    await close();
    throw e;
  }
}
