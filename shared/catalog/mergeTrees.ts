import type { DataFile, TableSchema, TableVersion, Tree } from './model.js';

/** Why a table could not be merged. */
export interface TableConflict {
  table: string;
  reason: string;
}

/** The outcome of a three-way tree merge. */
export interface TreeMergeResult {
  /** Table → table version id, for tables whose result is an existing version. */
  tables: Record<string, string>;
  /** Tables whose result is a new version (append + append unions), to be written. */
  unions: TableVersion[];
  conflicts: TableConflict[];
  /** Tables whose result differs from `ours`. */
  changed: string[];
}

/** Loads table versions by id (batched). */
export type LoadVersions = (ids: string[]) => Promise<Map<string, TableVersion>>;

/** True when two schemas have the same columns, types, nullability and tags, in order. */
export function sameSchema(a: TableSchema, b: TableSchema): boolean {
  return JSON.stringify(a.fields) === JSON.stringify(b.fields);
}

/** True when `wider` is `narrow` plus nullable columns added at the end (schema evolution without rewrites). */
function extendsSchema(narrow: TableSchema, wider: TableSchema): boolean {
  const n = narrow.fields.length;
  return (
    wider.fields.length >= n &&
    JSON.stringify(wider.fields.slice(0, n)) === JSON.stringify(narrow.fields) &&
    wider.fields.slice(n).every((f) => f.nullable)
  );
}

/**
 * The schema of a union of appends: the base schema, or the one side's schema that only
 * added nullable columns (files of the other side read them as NULL). Undefined when the
 * sides evolved the schema differently.
 */
function unionSchema(base: TableSchema, ours: TableSchema, theirs: TableSchema): TableSchema | undefined {
  if (sameSchema(ours, theirs)) return extendsSchema(base, ours) ? ours : undefined;
  if (sameSchema(base, ours) && extendsSchema(base, theirs)) return theirs;
  if (sameSchema(base, theirs) && extendsSchema(base, ours)) return ours;
  return undefined;
}

const keysOf = (files: DataFile[]) => new Set(files.map((f) => f.key));

/**
 * Three-way merge of trees at table granularity, refined to data files for appends:
 * - a table changed on one side only takes that side;
 * - changed identically on both sides takes either;
 * - changed on both sides where both only appended files (same schema and constraints,
 *   every base file kept) takes the union of the files — concurrent appends commute, as
 *   in Iceberg;
 * - anything else on both sides (overwrite, delete, schema change, created twice) is a
 *   conflict naming the table.
 * Pure: it never writes; the caller validates unions (unique keys) and commits.
 */
export async function mergeTrees(base: Tree, ours: Tree, theirs: Tree, load: LoadVersions): Promise<TreeMergeResult> {
  const names = new Set([...Object.keys(base.tables), ...Object.keys(ours.tables), ...Object.keys(theirs.tables)]);
  const tables: Record<string, string> = {};
  const both: string[] = [];
  const changed: string[] = [];
  const conflicts: TableConflict[] = [];
  for (const name of [...names].sort()) {
    const b = base.tables[name];
    const o = ours.tables[name];
    const t = theirs.tables[name];
    if (o === t || t === b) {
      if (o !== undefined) tables[name] = o;
    } else if (o === b) {
      if (t !== undefined) tables[name] = t;
      changed.push(name);
    } else if (b === undefined) {
      conflicts.push({ table: name, reason: 'created on both sides with different contents' });
    } else if (o === undefined || t === undefined) {
      conflicts.push({ table: name, reason: 'dropped on one side and changed on the other' });
    } else {
      both.push(name);
    }
  }
  const unions: TableVersion[] = [];
  if (both.length > 0) {
    const ids = both.flatMap((n) => [base.tables[n], ours.tables[n], theirs.tables[n]] as string[]);
    const versions = await load(ids);
    for (const name of both) {
      const [B, O, T] = [base.tables[name], ours.tables[name], theirs.tables[name]].map(
        (id) => versions.get(id as string) as TableVersion,
      ) as [TableVersion, TableVersion, TableVersion];
      const union = unionOfAppends(B, O, T);
      if (typeof union === 'string') {
        conflicts.push({ table: name, reason: union });
      } else if (union.files.length === O.files.length) {
        // Theirs added nothing ours lacks: keep our version (no new version, stable ids).
        tables[name] = ours.tables[name] as string;
      } else if (union.files.length === T.files.length) {
        tables[name] = theirs.tables[name] as string;
        changed.push(name);
      } else {
        unions.push(union);
        changed.push(name);
      }
    }
  }
  return { tables, unions, conflicts, changed: changed.sort() };
}

/**
 * The union of two append-only histories of one table, or the reason they do not commute.
 */
function unionOfAppends(B: TableVersion, O: TableVersion, T: TableVersion): TableVersion | string {
  const schema = unionSchema(B.schema, O.schema, T.schema);
  if (!schema) {
    return 'schema changed on at least one side while both sides changed the table (only added nullable columns merge)';
  }
  if (JSON.stringify(O.constraints) !== JSON.stringify(T.constraints)) {
    return 'constraints changed on one side while both sides changed the table';
  }
  const baseKeys = keysOf(B.files);
  const oursKeys = keysOf(O.files);
  const theirsKeys = keysOf(T.files);
  const keepsBase = (side: Set<string>) => [...baseKeys].every((k) => side.has(k));
  if (!keepsBase(oursKeys) || !keepsBase(theirsKeys)) {
    return 'rows were overwritten or deleted on at least one side (only appends on both sides merge)';
  }
  const files = [...O.files, ...T.files.filter((f) => !oursKeys.has(f.key))];
  return {
    table: O.table,
    schema,
    constraints: O.constraints,
    files,
    rowCount: files.reduce((n, f) => n + f.rows, 0),
    bytes: files.reduce((n, f) => n + f.bytes, 0),
    parent: null,
    op: 'merge',
  };
}
