import { statSync } from 'node:fs';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { ColumnStats, DataFile, TableSchema } from '../catalog/model.js';
import { sqlIdent, sqlString, statValue } from './duckdbTypes.js';
import { rows } from './duckdbSession.js';

/**
 * Exact statistics of one Parquet file: rows, bytes, and per column min, max and null
 * count, computed by one aggregate pass (Parquet footers may hold truncated string
 * bounds, which would make pruning wrong; an aggregate is exact and cheap on columns).
 */
export async function fileStats(
  connection: DuckDBConnection,
  path: string,
  schema: TableSchema,
): Promise<Omit<DataFile, 'key'>> {
  const parts = ['count(*) AS n'];
  schema.fields.forEach((f, i) => {
    const c = sqlIdent(f.name);
    if (f.type === 'Binary') parts.push(`NULL AS min_${i}`, `NULL AS max_${i}`);
    else parts.push(`min(${c})::VARCHAR AS min_${i}`, `max(${c})::VARCHAR AS max_${i}`);
    parts.push(`count(*) - count(${c}) AS nulls_${i}`);
  });
  const [row] = await rows(connection, `SELECT ${parts.join(', ')} FROM read_parquet(${sqlString(path)})`);
  const columns: Record<string, ColumnStats> = {};
  schema.fields.forEach((f, i) => {
    columns[f.name] = {
      min: statValue(f.type, (row?.[`min_${i}`] as string | null) ?? null),
      max: statValue(f.type, (row?.[`max_${i}`] as string | null) ?? null),
      nulls: Number(row?.[`nulls_${i}`] ?? 0),
    };
  });
  return { rows: Number(row?.n ?? 0), bytes: statSync(path).size, columns };
}
