/**
 * The catalog's domain model. Every document here is immutable once written; the ids of
 * commits, trees and table versions are SHA-256 hashes of their canonical encoding.
 */

/** The person (principal) behind every action, and the agent acting for them, if any. */
export interface Actor {
  /** The person: always a principal. */
  person: string;
  /** The agent acting for the person, or undefined when the person acts directly. */
  agent?: string;
}

/** Logical column types, named as Apache Arrow names them. */
export type FieldType =
  | 'Bool'
  | 'Int8'
  | 'Int16'
  | 'Int32'
  | 'Int64'
  | 'UInt8'
  | 'UInt16'
  | 'UInt32'
  | 'UInt64'
  | 'Float32'
  | 'Float64'
  | 'Utf8'
  | 'Binary'
  | 'Date32'
  | 'Timestamp'
  | `Decimal(${number},${number})`;

/** One column of a table schema. */
export interface Field {
  name: string;
  type: FieldType;
  /** False when the column carries a not-null constraint. */
  nullable: boolean;
  /** Free-form tags; `pii` marks columns masked unless unmasked by a grant. */
  tags: string[];
}

/** A table's schema (an Arrow schema restricted to the types above). */
export interface TableSchema {
  fields: Field[];
}

/** Constraints checked on every write of a table. Not-null lives on each field. */
export interface TableConstraints {
  /** Columns that together form a unique key, or empty. */
  unique: string[];
}

/** Per-column statistics of one data file (min/max are JSON-safe: bigints as strings). */
export interface ColumnStats {
  min: string | number | boolean | null;
  max: string | number | boolean | null;
  nulls: number;
}

/** One immutable Parquet data file of a table version. */
export interface DataFile {
  /** Object-store key; never rewritten. */
  key: string;
  rows: number;
  bytes: number;
  columns: Record<string, ColumnStats>;
}

/** How a table version came to be from its parent. */
export type TableOp = 'create' | 'append' | 'overwrite' | 'schema' | 'merge' | 'revert';

/** An immutable table version: schema, constraints and the manifest of data files. */
export interface TableVersion {
  table: string;
  schema: TableSchema;
  constraints: TableConstraints;
  files: DataFile[];
  rowCount: number;
  bytes: number;
  /** The version this one was derived from (null for a new table). */
  parent: string | null;
  op: TableOp;
}

/** A tree maps table names to table version ids. */
export interface Tree {
  tables: Record<string, string>;
}

/** What a commit records about how it came to be. */
export type CommitKind = 'init' | 'commit' | 'merge' | 'revert';

/**
 * An immutable, content-addressed commit. `origin` places it in the branch log where it
 * was made, which makes `ref~N` a bounded look-up (see `refs.ts`).
 */
export interface Commit {
  id: string;
  parents: string[];
  tree: string;
  author: string;
  agent: string | null;
  message: string;
  time: string;
  runId: string | null;
  kind: CommitKind;
  /** 1 + the largest generation of the parents (the root commit has 1). */
  generation: number;
  origin: { branch: string; seq: number; chainStart: number };
}

/** The events of a branch log. Only `commit`, `merge`, `revert` and `create` carry a new head. */
export type BranchEventType = 'create' | 'commit' | 'merge' | 'revert' | 'delete';

/** One event of a branch's append-only log. */
export interface BranchEvent {
  branch: string;
  seq: number;
  type: BranchEventType;
  /** The head after this event (null after `delete`). */
  commit: string | null;
  time: string;
  actor: Actor;
  /** Seq of the `create` event of this incarnation of the branch. */
  incarnation: number;
  /**
   * Seq of the newest event (≤ seq) whose head was not made on this log (`create`, or a
   * fast-forward merge): the start of this log's contiguous first-parent chain.
   */
  chainStart: number;
  /** Number of merges into this incarnation so far (used to validate sync points). */
  imports: number;
  /** Free-form facts: source ref of a create, merge source, fast-forward flag, run id… */
  info?: Record<string, unknown>;
}
