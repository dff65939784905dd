import type { Actor, Catalog, CommitResult, TableVersion } from '../catalog/index.js';
import { invalid } from '../errors/index.js';

/**
 * Adds a tag (e.g. `pii`) to columns of a table on a branch, as one schema commit: no
 * data is rewritten, and the table's files stay as they are. Columns that already carry
 * the tag are left alone; INVALID when a column does not exist or nothing would change.
 * Protected branches refuse it like any direct commit (tag on a branch, then merge).
 */
export async function tagColumns(
  catalog: Catalog,
  actor: Actor,
  options: { branch: string; table: string; columns: string[]; tag: string; remove?: boolean },
): Promise<CommitResult> {
  const { branch, table, columns, tag, remove } = options;
  if (!/^[a-z][a-z0-9_-]{0,63}$/.test(tag)) {
    throw invalid(`'${tag}' is not a tag (lowercase letters, digits, _ and -, e.g. pii)`);
  }
  if (columns.length === 0) throw invalid('name at least one column to tag');
  const { id, version } = await catalog.getTable(branch, table);
  const names = new Set(version.schema.fields.map((f) => f.name));
  const missing = columns.filter((c) => !names.has(c));
  if (missing.length > 0) throw invalid(`table '${table}' has no column ${missing.map((c) => `'${c}'`).join(', ')}`);
  const wanted = new Set(columns);
  const changes = (f: { name: string; tags: string[] }) => wanted.has(f.name) && f.tags.includes(tag) === !!remove;
  const changed = version.schema.fields.filter(changes);
  if (changed.length === 0) {
    throw invalid(`${remove ? 'no' : 'every'} named column of '${table}' is ${remove ? '' : 'already '}tagged ${tag}`);
  }
  const next: Omit<TableVersion, 'parent' | 'table'> = {
    schema: {
      fields: version.schema.fields.map((f) =>
        !changes(f) ? f : { ...f, tags: remove ? f.tags.filter((t) => t !== tag) : [...f.tags, tag].sort() },
      ),
    },
    constraints: version.constraints,
    files: version.files,
    rowCount: version.rowCount,
    bytes: version.bytes,
    op: 'schema',
  };
  return catalog.commit(branch, [{ kind: 'put', table, base: id, version: next }], {
    actor,
    message: `${remove ? 'Untag' : 'Tag'} ${changed.map((f) => f.name).join(', ')} of ${table} ${remove ? 'from' : 'as'} ${tag}`,
  });
}
