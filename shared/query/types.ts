import type { DataFile, TableSchema } from '../catalog/model.js';

/**
 * One table of a snapshot, as the query engine sees it: its name, its schema and the
 * exact local Parquet files of the table version being read. The engine creates a view
 * `"ns"."table"` over exactly these files and lets user SQL read nothing else.
 */
export interface SnapshotTable {
  /** `namespace.table`. */
  name: string;
  schema: TableSchema;
  /** The manifest's data files, each with the local path DuckDB reads. */
  files: SnapshotFile[];
}

/** A data file of a snapshot table: manifest entry (with stats) plus a local path. */
export type SnapshotFile = DataFile & {
  /**
   * Local file path of the Parquet file. May be left out when the request gives
   * `resolvePath`: then only files that survive pruning and the caps are resolved (on S3,
   * downloaded), after the checks — a refused query touches no data file.
   */
  path?: string;
};

/**
 * Caps of one query, resolved per lake and per person by the caller. Every refusal they
 * cause is a `LIMIT_EXCEEDED` error naming the cap and the numbers.
 */
export interface QueryCaps {
  /** Most rows returned; more are truncated (flagged) or refused, see {@link QueryRequest.onTruncate}. */
  maxRows: number;
  /** Most bytes (of Parquet files, after pruning) one query may scan; checked before execution. */
  maxBytesScanned: number;
  /** Wall-clock limit; the running query is interrupted when it passes. */
  timeoutMs: number;
  /** Most queries one person (with all their agents) may run at once. Enforced by `QueryGovernor`. */
  maxConcurrent: number;
  /** Most bytes one person (with all their agents) may scan per UTC day. Enforced by `QueryGovernor`. */
  dailyBytes: number;
}

/**
 * Safe, finite defaults: 10 000 rows, 10 GiB per query, 60 s, 4 concurrent queries and
 * 200 GiB per person per day. Lakes and persons override them field by field.
 */
export const DEFAULT_CAPS: Readonly<QueryCaps> = Object.freeze({
  maxRows: 10_000,
  maxBytesScanned: 10 * 1024 ** 3,
  timeoutMs: 60_000,
  maxConcurrent: 4,
  dailyBytes: 200 * 1024 ** 3,
});

/** How a masked column is shown: a keyed SHA-256 of its text, or NULL. */
export type MaskKind = 'hash' | 'null';

/**
 * The reader's policy, applied inside the engine (in the views), never by rewriting the
 * user's SQL. Table keys are `namespace.table`.
 */
export interface QueryPolicy {
  /** A SQL predicate per table over the table's own columns; only matching rows are visible. */
  rowFilters?: Record<string, string>;
  /** Masked columns per table. A masked column's raw value never leaves the view. */
  masks?: Record<string, Record<string, MaskKind>>;
  /**
   * Secret key of `hash` masks. Give a stable per-lake secret so hashes join across
   * queries; when absent a random key is drawn per query (hashes still join within it).
   * Never derive it from anything a reader can see: an unkeyed hash of a low-entropy
   * value (an email, a name) is reversible by guessing.
   */
  maskKey?: string;
}

/** DuckDB resources of one query. */
export interface EngineOptions {
  /** DuckDB `memory_limit`, e.g. `'512MB'` (default `'1GB'`). Larger intermediate state spills. */
  memoryLimit?: string;
  /** DuckDB worker threads (default: min(4, CPUs)). */
  threads?: number;
  /** Where DuckDB spills (default: a fresh directory under the OS temp dir, removed afterwards). */
  tempDirectory?: string;
}

/** A parameter value bound by the engine to `$name` in the SQL. */
export type QueryParam = string | number | boolean | null;

/** One query: SQL over a snapshot, with caps and the reader's policy. */
export interface QueryRequest {
  /** Exactly one SELECT statement (at most {@link MAX_SQL_BYTES} bytes). */
  sql: string;
  /** The snapshot's tables; the SQL can read these (as `ns.table`) and nothing else. */
  tables: SnapshotTable[];
  /** Values of `$name` parameters, bound by the engine (never spliced into the SQL). */
  params?: Record<string, QueryParam>;
  caps: QueryCaps;
  policy?: QueryPolicy;
  /**
   * What happens when the result has more than `caps.maxRows` rows: `'flag'` (default)
   * returns the first `maxRows` rows with `stats.truncated = true`; `'refuse'` fails with
   * `LIMIT_EXCEEDED`.
   */
  onTruncate?: 'flag' | 'refuse';
  engine?: EngineOptions;
  /** Prune files by min/max stats (default true). `false` reads every file: for comparisons and debugging. */
  pruning?: boolean;
  /** Local path of a file given without `path`; called only for files the query will read. */
  resolvePath?: (file: DataFile) => Promise<string>;
  /** Concurrency slots and the daily budget of the person behind the query, when given. */
  governance?: { governor: QueryGovernorLike; person: string };
}

/**
 * What `runQuery` needs from a governor (implemented by `QueryGovernor`): admit a query
 * of a given estimated size, then release it.
 */
export interface QueryGovernorLike {
  admit(person: string, caps: QueryCaps, bytes: number): Promise<{ release(): Promise<void> }>;
}

/** A result column: its name and DuckDB type (e.g. `BIGINT`, `VARCHAR`, `DECIMAL(18,2)`). */
export interface QueryColumn {
  name: string;
  type: string;
}

/** What a query did. `bytesScanned` is file-granular: the sum of the bytes of the files included after pruning. */
export interface QueryStats {
  rowsReturned: number;
  bytesScanned: number;
  filesScanned: number;
  filesPruned: number;
  truncated: boolean;
  elapsedMs: number;
}

/**
 * A materialised result. Values are JSON-safe: integers beyond 2^53 and decimals are
 * strings, dates and timestamps are ISO-like strings, blobs are escaped strings.
 */
export interface QueryResult {
  columns: QueryColumn[];
  rows: Record<string, unknown>[];
  stats: QueryStats;
}

/** Receives a streamed result: the columns once, then row batches in order (awaited: backpressure). */
export interface QuerySink {
  columns?(columns: QueryColumn[]): void | Promise<void>;
  rows(batch: Record<string, unknown>[]): void | Promise<void>;
}

/** Largest SQL text accepted, in UTF-8 bytes. */
export const MAX_SQL_BYTES = 100_000;
