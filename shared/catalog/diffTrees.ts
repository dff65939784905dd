import type { Field, TableVersion, Tree } from './model.js';
import type { LoadVersions } from './mergeTrees.js';

/** A schema change of one column. */
export interface ColumnChange {
  column: string;
  change: 'added' | 'removed' | 'type' | 'nullability' | 'tags';
  from?: string;
  to?: string;
}

/** How one table differs between two trees. */
export interface TableDiff {
  table: string;
  status: 'added' | 'removed' | 'changed';
  rowsAdded: number;
  rowsRemoved: number;
  filesAdded: number;
  filesRemoved: number;
  schemaChanges: ColumnChange[];
  from: string | null;
  to: string | null;
}

/**
 * Differences between two trees, per table, computed from manifests only (no data is
 * read): rows added/removed are the row counts of the data files that appear on one side
 * only, which is exact because data files are immutable.
 */
export async function diffTrees(from: Tree, to: Tree, load: LoadVersions): Promise<TableDiff[]> {
  const names = [...new Set([...Object.keys(from.tables), ...Object.keys(to.tables)])].sort();
  const touched = names.filter((n) => from.tables[n] !== to.tables[n]);
  const ids = touched.flatMap((n) => [from.tables[n], to.tables[n]]).filter((x): x is string => !!x);
  const versions = await load(ids);
  return touched.map((table) => {
    const a = from.tables[table] ? versions.get(from.tables[table] as string) : undefined;
    const b = to.tables[table] ? versions.get(to.tables[table] as string) : undefined;
    return diffTable(table, a, b, from.tables[table] ?? null, to.tables[table] ?? null);
  });
}

function diffTable(
  table: string,
  a: TableVersion | undefined,
  b: TableVersion | undefined,
  fromId: string | null,
  toId: string | null,
): TableDiff {
  const aKeys = new Set((a?.files ?? []).map((f) => f.key));
  const bKeys = new Set((b?.files ?? []).map((f) => f.key));
  const added = (b?.files ?? []).filter((f) => !aKeys.has(f.key));
  const removed = (a?.files ?? []).filter((f) => !bKeys.has(f.key));
  return {
    table,
    status: !a ? 'added' : !b ? 'removed' : 'changed',
    rowsAdded: added.reduce((n, f) => n + f.rows, 0),
    rowsRemoved: removed.reduce((n, f) => n + f.rows, 0),
    filesAdded: added.length,
    filesRemoved: removed.length,
    schemaChanges: a && b ? diffFields(a.schema.fields, b.schema.fields) : [],
    from: fromId,
    to: toId,
  };
}

function diffFields(from: Field[], to: Field[]): ColumnChange[] {
  const out: ColumnChange[] = [];
  const before = new Map(from.map((f) => [f.name, f]));
  const after = new Map(to.map((f) => [f.name, f]));
  for (const f of to) {
    const old = before.get(f.name);
    if (!old) out.push({ column: f.name, change: 'added', to: f.type });
    else {
      if (old.type !== f.type) out.push({ column: f.name, change: 'type', from: old.type, to: f.type });
      if (old.nullable !== f.nullable)
        out.push({ column: f.name, change: 'nullability', from: String(old.nullable), to: String(f.nullable) });
      if (old.tags.join(',') !== f.tags.join(','))
        out.push({ column: f.name, change: 'tags', from: old.tags.join(','), to: f.tags.join(',') });
    }
  }
  for (const f of from) if (!after.has(f.name)) out.push({ column: f.name, change: 'removed', from: f.type });
  return out;
}
