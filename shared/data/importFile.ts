import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { DataFile, Field, FieldType, TableConstraints, TableSchema, TableVersion } from '../catalog/model.js';
import { validateColumnName } from '../catalog/names.js';
import { invalid, notFound } from '../errors/index.js';
import { duckdbType, fieldTypeOf, sqlIdent, sqlString } from './duckdbTypes.js';
import { fileError, rows, withConnection } from './duckdbSession.js';
import { parquetFileStats } from '../query/index.js';

/** Input formats, chosen by file extension. */
export type InputFormat = 'csv' | 'parquet' | 'json' | 'jsonl';

/** What an import is asked to do. */
export interface ImportRequest {
  /** The input file. */
  file: string;
  /** The target table `ns.name`. */
  table: string;
  /** The table's current version on the branch, or undefined for a new table. */
  existing?: TableVersion;
  /** Where to write the new Parquet file (same filesystem as the object store for a zero-copy move). */
  stagingDir: string;
  /** For a new table: columns that must not be null, the unique key, and column tags. */
  create?: { notNull?: string[]; unique?: string[]; tags?: Record<string, string[]> };
}

/** A validated input, written as one Parquet file with its statistics, ready to commit. */
export interface PreparedImport {
  schema: TableSchema;
  constraints: TableConstraints;
  /** The staged Parquet file and its manifest entry (without key), or null when the input has no rows. */
  file: { path: string; stats: Omit<DataFile, 'key'> } | null;
  rows: number;
  /** Input column → table column, where a header was normalised. */
  renamed: Record<string, string>;
}

/** The format of a file by its extension; INVALID for anything else. */
export function inputFormat(file: string): InputFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.parquet') return 'parquet';
  if (ext === '.json') return 'json';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw invalid(
    `cannot import '${file}': unsupported file type '${ext || '(none)'}' (use .csv, .parquet, .json or .jsonl)`,
  );
}

function sourceSql(file: string, format: InputFormat, asText: boolean): string {
  const path = sqlString(file);
  switch (format) {
    case 'csv':
      // RFC 4180 dialect, strictly: a sniffer that guesses another dialect would turn a
      // malformed file (an unterminated quote, ragged rows) into a silently wrong table.
      return `read_csv(${path}, header = true, delim = ',', quote = '"', escape = '"', skip = 0, strict_mode = true, null_padding = false${asText ? ', all_varchar = true' : ''})`;
    case 'parquet':
      return `read_parquet(${path})`;
    case 'json':
      return `read_json(${path}, format = 'auto')`;
    case 'jsonl':
      return `read_json(${path}, format = 'newline_delimited')`;
  }
}

/** Lowercases a header and replaces anything that is not a letter, digit or _ with _. */
export function normaliseColumnName(name: string): string {
  let n = name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (n === '' || /^[0-9]/.test(n)) n = `_${n}`;
  return n.slice(0, 63);
}

const INT_RANK: Record<string, number> = {
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 1.5,
  UInt16: 2.5,
  UInt32: 3.5,
  UInt64: 5,
};

/** True when values of `from` convert to `to` without loss or silent rounding. Text is parsed strictly. */
function castable(from: FieldType, to: FieldType): boolean {
  if (from === to || from === 'Utf8' || to === 'Utf8') return true;
  const fi = INT_RANK[from];
  const ti = INT_RANK[to];
  if (fi !== undefined && ti !== undefined) return ti >= fi && (from.startsWith('U') || !to.startsWith('U'));
  if (fi !== undefined && (to === 'Float64' || to.startsWith('Decimal'))) return true;
  if (fi !== undefined && to === 'Float32') return fi <= 2;
  if (from === 'Float32' && to === 'Float64') return true;
  if (from === 'Date32' && to === 'Timestamp') return true;
  if (from.startsWith('Decimal') && to === 'Float64') return true;
  return false;
}

/**
 * Reads a CSV, Parquet, JSON or JSONL file with DuckDB, checks it against the table's
 * schema (or infers one for a new table), and writes it as one Parquet file in the
 * staging directory with exact per-column statistics. Checks every constraint that the
 * file alone can break (types, not-null, unique key within the file). Writes nothing
 * but the staged file; the caller moves it into the object store and commits.
 */
export async function prepareImport(request: ImportRequest): Promise<PreparedImport> {
  const { file, existing } = request;
  const format = inputFormat(file);
  if (!existsSync(file) || !statSync(file).isFile()) throw notFound(`cannot import '${file}': no such file`, { file });
  return withConnection(async (connection) => {
    const asText = existing !== undefined && format === 'csv';
    const source = sourceSql(file, format, asText);
    let described: Array<{ column_name: string; column_type: string }>;
    try {
      described = (await rows(connection, `DESCRIBE SELECT * FROM ${source}`)) as typeof described;
    } catch (e) {
      if (format === 'csv' && /sniff|dialect/i.test(String((e as Error).message))) {
        throw invalid(
          `cannot read '${file}': malformed CSV — an unterminated quote, or a row whose number of fields differs from the header (Airlock reads comma-separated files with a header row, RFC 4180)`,
          { file },
          e,
        );
      }
      throw fileError(file, e, format === 'parquet' ? 'read (corrupt or not a Parquet file?)' : 'read');
    }
    const renamed: Record<string, string> = {};
    const inputs = new Map<string, { source: string; type: string }>();
    for (const { column_name, column_type } of described) {
      const name = normaliseColumnName(column_name);
      if (inputs.has(name)) {
        throw invalid(
          `cannot import '${file}': columns '${inputs.get(name)?.source}' and '${column_name}' both map to '${name}'`,
        );
      }
      if (name !== column_name) renamed[column_name] = name;
      inputs.set(name, { source: column_name, type: column_type });
    }
    const { schema, constraints } = existing
      ? { schema: existing.schema, constraints: existing.constraints }
      : newTableSchema(file, inputs, request.create ?? {});
    if (existing) checkAgainstTable(file, request.table, inputs, schema);
    const select = schema.fields
      .map((f) => {
        const input = inputs.get(f.name);
        const target = duckdbType(f.type);
        return input
          ? `CAST(${sqlIdent(input.source)} AS ${target}) AS ${sqlIdent(f.name)}`
          : `CAST(NULL AS ${target}) AS ${sqlIdent(f.name)}`;
      })
      .join(', ');
    mkdirSync(request.stagingDir, { recursive: true });
    const path = join(request.stagingDir, `${randomUUID()}.parquet`);
    try {
      await connection.run(`COPY (SELECT ${select} FROM ${source}) TO ${sqlString(path)} (FORMAT parquet)`);
    } catch (e) {
      throw fileError(file, e, `import into '${request.table}'`);
    }
    // From the written file's footer (no second pass over the data); long string bounds
    // that a writer may have truncated are recorded as unknown.
    const stats = await parquetFileStats(path);
    checkNotNull(file, schema, stats.columns);
    if (constraints.unique.length > 0) await checkUniqueIn(connection, [path], constraints.unique, `'${file}'`);
    return { schema, constraints, file: stats.rows > 0 ? { path, stats } : null, rows: stats.rows, renamed };
  });
}

function newTableSchema(
  file: string,
  inputs: Map<string, { source: string; type: string }>,
  create: NonNullable<ImportRequest['create']>,
): { schema: TableSchema; constraints: TableConstraints } {
  const known = (what: string, cols: string[]) => {
    for (const c of cols) {
      validateColumnName(c);
      if (!inputs.has(c))
        throw invalid(
          `cannot import '${file}': ${what} column '${c}' is not in the file (columns: ${[...inputs.keys()].join(', ')})`,
        );
    }
  };
  const notNull = create.notNull ?? [];
  const unique = create.unique ?? [];
  known('not-null', notNull);
  known('unique', unique);
  known('tagged', Object.keys(create.tags ?? {}));
  const fields: Field[] = [...inputs.entries()].map(([name, { type }]) => ({
    name,
    type: fieldTypeOf(name, type),
    nullable: !notNull.includes(name) && !unique.includes(name),
    tags: [...(create.tags?.[name] ?? [])].sort(),
  }));
  return { schema: { fields }, constraints: { unique } };
}

function checkAgainstTable(
  file: string,
  table: string,
  inputs: Map<string, { source: string; type: string }>,
  schema: TableSchema,
): void {
  const columns = new Set(schema.fields.map((f) => f.name));
  const extra = [...inputs.keys()].filter((c) => !columns.has(c));
  if (extra.length > 0) {
    throw invalid(
      `cannot import '${file}' into '${table}': column${extra.length > 1 ? 's' : ''} ${extra.map((c) => `'${c}'`).join(', ')} not in the table (table columns: ${[...columns].join(', ')}); add a nullable column first with 'airlock table add-column'`,
      { table, columns: extra },
    );
  }
  for (const field of schema.fields) {
    const input = inputs.get(field.name);
    if (!input) {
      if (!field.nullable) {
        throw invalid(
          `cannot import '${file}' into '${table}': not-null column '${field.name}' is missing from the file`,
          {
            table,
            column: field.name,
          },
        );
      }
      continue;
    }
    const from = fieldTypeOf(field.name, input.type);
    if (!castable(from, field.type)) {
      throw invalid(
        `cannot import '${file}' into '${table}': column '${field.name}' is ${from} in the file but ${field.type} in the table`,
        { table, column: field.name, fileType: from, tableType: field.type },
      );
    }
  }
}

function checkNotNull(file: string, schema: TableSchema, columns: DataFile['columns']): void {
  for (const f of schema.fields) {
    const nulls = columns[f.name]?.nulls ?? 0;
    if (!f.nullable && nulls > 0) {
      throw invalid(
        `cannot import '${file}': not-null column '${f.name}' has ${nulls} null value${nulls > 1 ? 's' : ''}`,
        {
          column: f.name,
          nulls,
        },
      );
    }
  }
}

/** Throws INVALID naming up to three duplicated unique-key values found across `paths`. */
export async function checkUniqueIn(
  connection: DuckDBConnection,
  paths: string[],
  unique: string[],
  where: string,
): Promise<void> {
  if (paths.length === 0) return;
  const cols = unique.map(sqlIdent).join(', ');
  const list = `[${paths.map(sqlString).join(', ')}]`;
  const dups = await rows(
    connection,
    `SELECT ${cols}, count(*) AS n FROM read_parquet(${list}, union_by_name = true) GROUP BY ${cols} HAVING count(*) > 1 LIMIT 3`,
  );
  if (dups.length > 0) {
    const shown = dups.map((r) => unique.map((c) => String(r[c])).join('/')).join(', ');
    throw invalid(
      `duplicate value${dups.length > 1 ? 's' : ''} of unique key (${unique.join(', ')}) in ${where}: ${shown}`,
      {
        unique,
        duplicates: dups.map((r) => unique.map((c) => String(r[c]))),
      },
    );
  }
}
