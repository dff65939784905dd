import { extname } from 'node:path';
import type { TableSchema } from '../catalog/model.js';
import { invalid } from '../errors/index.js';
import { duckdbType, sqlIdent, sqlString } from './duckdbTypes.js';
import { fileError, rows, withConnection } from './duckdbSession.js';

/**
 * A SELECT over a table version's data files, typed by its schema. A table with no files
 * still yields its columns (and no rows), so readers never special-case empty tables.
 */
export function tableRelationSql(schema: TableSchema, paths: string[]): string {
  const cols = schema.fields.map((f) => sqlIdent(f.name)).join(', ');
  if (paths.length === 0) {
    const typed = schema.fields.map((f) => `CAST(NULL AS ${duckdbType(f.type)}) AS ${sqlIdent(f.name)}`).join(', ');
    return `SELECT ${typed} WHERE false`;
  }
  return `SELECT ${cols} FROM read_parquet([${paths.map(sqlString).join(', ')}])`;
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
export async function exportRows(schema: TableSchema, paths: string[], out: string): Promise<number> {
  const options = FORMATS[extname(out).toLowerCase()];
  if (!options) throw invalid(`cannot export to '${out}': use a .csv, .parquet, .json or .jsonl file name`);
  return withConnection(async (connection) => {
    const relation = tableRelationSql(schema, paths);
    try {
      await connection.run(`COPY (${relation}) TO ${sqlString(out)} (${options})`);
    } catch (e) {
      throw fileError(out, e, 'write');
    }
    const [row] = await rows(connection, `SELECT count(*) AS n FROM (${relation})`);
    return Number(row?.n ?? 0);
  });
}
