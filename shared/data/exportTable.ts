import { extname } from 'node:path';
import type { Field, TableVersion } from '../catalog/model.js';
import { invalid } from '../errors/index.js';
import { duckdbType, sqlIdent, sqlString } from './duckdbTypes.js';
import { fileError, rows, withConnection } from './duckdbSession.js';

/**
 * A SELECT over a table version's data files, typed by its schema. Files written before
 * a column was added lack it and read as NULL (`union_by_name`); a column no file has yet
 * is a typed NULL; a table with no files still yields its columns and no rows, so
 * readers never special-case schema evolution or empty tables.
 */
export function tableRelationSql(version: Pick<TableVersion, 'schema' | 'files'>, paths: string[]): string {
  const typedNull = (f: Field) => `CAST(NULL AS ${duckdbType(f.type)}) AS ${sqlIdent(f.name)}`;
  if (paths.length === 0) return `SELECT ${version.schema.fields.map(typedNull).join(', ')} WHERE false`;
  const present = (f: Field) => version.files.some((file) => file.columns[f.name] !== undefined);
  const cols = version.schema.fields
    .map((f) =>
      present(f) ? `CAST(${sqlIdent(f.name)} AS ${duckdbType(f.type)}) AS ${sqlIdent(f.name)}` : typedNull(f),
    )
    .join(', ');
  return `SELECT ${cols} FROM read_parquet([${paths.map(sqlString).join(', ')}], union_by_name = true)`;
}

/** Output formats of an export, by extension. */
const FORMATS: Record<string, string> = {
  '.csv': 'FORMAT csv, HEADER true',
  '.parquet': 'FORMAT parquet',
  '.json': 'FORMAT json, ARRAY true',
  '.jsonl': 'FORMAT json',
  '.ndjson': 'FORMAT json',
};

/** Writes a table version's rows to a CSV, Parquet, JSON or JSONL file. Returns the row count. */
export async function exportRows(
  version: Pick<TableVersion, 'schema' | 'files'>,
  paths: string[],
  out: string,
): Promise<number> {
  const options = FORMATS[extname(out).toLowerCase()];
  if (!options) throw invalid(`cannot export to '${out}': use a .csv, .parquet, .json or .jsonl file name`);
  return withConnection(async (connection) => {
    const relation = tableRelationSql(version, paths);
    try {
      await connection.run(`COPY (${relation}) TO ${sqlString(out)} (${options})`);
    } catch (e) {
      throw fileError(out, e, 'write');
    }
    const [row] = await rows(connection, `SELECT count(*) AS n FROM (${relation})`);
    return Number(row?.n ?? 0);
  });
}
