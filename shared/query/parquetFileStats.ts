import { stat } from 'node:fs/promises';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { ColumnStats, DataFile } from '../catalog/model.js';
import { invalid } from '../errors/index.js';
import { jsonSafe } from './jsonValues.js';
import { quoteIdent, quoteString } from './sqlText.js';

/** A manifest entry without its object key: what a Parquet file says about itself. */
export type DataFileStats = Omit<DataFile, 'key'>;

/** String bounds this long may have been truncated by the writer. */
const TRUNCATED_STRING_BOUND = 256;

/** Types whose min/max the pruner can compare; others get `min`/`max` null (never pruned). */
const STATS_TYPES =
  /^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|VARCHAR|DATE|TIMESTAMP|DECIMAL\(\d+,\d+\))$/;

async function withFileConnection<T>(path: string, f: (c: DuckDBConnection) => Promise<T>): Promise<T> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  try {
    const c = await instance.connect();
    try {
      // Only this one file is readable, even by this trusted helper.
      await c.run(`SET allowed_paths=[${quoteString(path)}]`);
      await c.run('SET enable_external_access=false');
      await c.run('SET lock_configuration=true');
      return await f(c);
    } finally {
      c.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

/**
 * Reads the manifest statistics of a local Parquet file from its footer
 * (`parquet_metadata()`; no data page is read): row count, file size, and per top-level
 * column the null count and min/max over all row groups. Min/max are `null` (unknown)
 * when any row group lacks them, for types the pruner cannot compare (blobs, nested),
 * and for non-finite floats. Values are JSON-safe: integers beyond 2^53 and decimals as
 * strings, dates as `YYYY-MM-DD`, timestamps as `YYYY-MM-DD HH:MM:SS[.ffffff]`.
 *
 * @example
 * const file: DataFile = { key, ...(await parquetFileStats('/tmp/part-0.parquet')) };
 */
export async function parquetFileStats(path: string): Promise<DataFileStats> {
  const bytes = (await stat(path)).size;
  return withFileConnection(path, async (c) => {
    const file = quoteString(path);
    let described: Record<string, unknown>[];
    try {
      described = (await c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${file})`)).getRowObjectsJS();
    } catch (e) {
      throw invalid(`not a readable Parquet file: ${path}: ${(e as Error).message}`, { path }, e);
    }
    const columns = described.map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
    const meta = (await c.runAndReadAll(`SELECT num_rows FROM parquet_file_metadata(${file})`)).getRowObjectsJS();
    const rows = Number(meta[0]?.num_rows ?? 0);

    // One aggregate over the footer's row-group statistics; each column's min/max is cast
    // to the column's own type so that the comparison across row groups is typed.
    const parts: string[] = [];
    columns.forEach((col, i) => {
      const where = `path_in_schema = ${quoteString(col.name)}`;
      parts.push(
        `count(*) FILTER (WHERE ${where}) AS "g${i}"`,
        `sum(stats_null_count) FILTER (WHERE ${where}) AS "n${i}"`,
        `count(*) FILTER (WHERE ${where} AND stats_null_count IS NULL) AS "nu${i}"`,
      );
      if (STATS_TYPES.test(col.type)) {
        // A row group without min/max that is not entirely null makes the bound unknown.
        const missing = `(stats_min_value IS NULL OR stats_max_value IS NULL) AND coalesce(stats_null_count, -1) <> row_group_num_rows`;
        // Writers truncate long string bounds (DuckDB at 256 bytes): a truncated max is
        // below the real max and would prune wrongly, so such bounds count as unknown.
        const truncated =
          col.type === 'VARCHAR'
            ? ` OR strlen(stats_max_value) >= ${TRUNCATED_STRING_BOUND} OR strlen(stats_min_value) >= ${TRUNCATED_STRING_BOUND}`
            : '';
        const lo = `TRY_CAST(stats_min_value AS ${col.type})`;
        const hi = `TRY_CAST(stats_max_value AS ${col.type})`;
        parts.push(
          `count(*) FILTER (WHERE ${where} AND ((${missing}) OR (stats_min_value IS NOT NULL AND ${lo} IS NULL) OR (stats_max_value IS NOT NULL AND ${hi} IS NULL)${truncated})) AS "u${i}"`,
          `min(${lo}) FILTER (WHERE ${where}) AS "lo${i}"`,
          `max(${hi}) FILTER (WHERE ${where}) AS "hi${i}"`,
        );
      }
    });
    const agg =
      parts.length === 0
        ? {}
        : ((await c.runAndReadAll(`SELECT ${parts.join(', ')} FROM parquet_metadata(${file})`)).convertRowObjects(
            jsonSafe,
          )[0] ?? {});

    const out: Record<string, ColumnStats> = {};
    const scanNulls: string[] = [];
    columns.forEach((col, i) => {
      const groups = Number(agg[`g${i}`] ?? 0);
      const nullsKnown = groups > 0 && Number(agg[`nu${i}`] ?? 1) === 0;
      if (!nullsKnown) scanNulls.push(col.name);
      const boundsKnown = groups > 0 && agg[`u${i}`] !== undefined && Number(agg[`u${i}`]) === 0;
      const lo = boundsKnown ? bound(agg[`lo${i}`], col.type) : null;
      const hi = boundsKnown ? bound(agg[`hi${i}`], col.type) : null;
      out[col.name] = {
        min: lo === null || hi === null ? null : lo,
        max: lo === null || hi === null ? null : hi,
        nulls: nullsKnown ? Number(agg[`n${i}`] ?? 0) : 0,
      };
    });
    if (scanNulls.length > 0) {
      // Nested columns (and writers that omit null counts): count them from the data.
      const sql = `SELECT ${scanNulls.map((n, i) => `count(*) - count(${quoteIdent(n)}) AS "c${i}"`).join(', ')} FROM read_parquet(${file})`;
      const counted = (await c.runAndReadAll(sql)).convertRowObjects(jsonSafe)[0] ?? {};
      scanNulls.forEach((n, i) => {
        const s = out[n];
        if (s) s.nulls = Number(counted[`c${i}`] ?? 0);
      });
    }
    return { rows, bytes, columns: out };
  });
}

/** A JSON-safe bound, or null when it cannot be compared faithfully (NaN, ±Infinity). */
function bound(v: unknown, type: string): string | number | boolean | null {
  if (v === null || v === undefined) return null;
  if ((type === 'FLOAT' || type === 'DOUBLE') && (typeof v !== 'number' || !Number.isFinite(v))) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return null;
}
