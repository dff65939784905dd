import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { invalid } from '../errors/index.js';

let shared: Promise<DuckDBInstance> | undefined;

/**
 * The process-wide DuckDB instance for Airlock's own, trusted SQL (imports, exports,
 * statistics, constraint checks). User SQL never runs here: queries get a fresh,
 * locked-down instance each (see `shared/query`).
 */
function instance(): Promise<DuckDBInstance> {
  // Loaded on first use: commands that touch no data never pay for the native engine.
  shared ??= import('@duckdb/node-api').then(({ DuckDBInstance }) =>
    DuckDBInstance.create(':memory:', { threads: '2' }),
  );
  return shared;
}

/** Runs `work` on a fresh connection of the shared instance and closes it afterwards. */
export async function withConnection<T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
  const connection = await (await instance()).connect();
  try {
    return await work(connection);
  } finally {
    connection.closeSync();
  }
}

/** Runs trusted SQL and returns its rows as plain JS objects (BIGINT as bigint). */
export async function rows(connection: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  const reader = await connection.runAndReadAll(sql);
  return reader.getRowObjectsJS() as Record<string, unknown>[];
}

/**
 * Turns a DuckDB error about a user's file into an INVALID error that says which file
 * and what DuckDB found, without DuckDB's internal prefixes.
 */
export function fileError(file: string, error: unknown, what = 'read'): Error {
  const message = error instanceof Error ? error.message : String(error);
  const clean = message
    .replace(/^(Invalid Input|Conversion|Binder|Parser|IO) Error:\s*/i, '')
    .split('\n')
    .slice(0, 6)
    .join('\n');
  return invalid(`cannot ${what} '${file}': ${clean}`, { file }, error);
}
