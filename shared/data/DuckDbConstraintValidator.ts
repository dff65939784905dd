import type { ConstraintValidator } from '../catalog/Catalog.js';
import type { TableVersion } from '../catalog/model.js';
import { invalid } from '../errors/index.js';
import type { ObjectStore } from '../store/ports.js';
import { withConnection } from './duckdbSession.js';
import { checkUniqueIn } from './importFile.js';

/**
 * Checks a table version's constraints before it is committed: not-null from the
 * manifest's null counts (no data read), unique keys by one grouped scan of the key
 * columns over all its files. Runs again on every optimistic retry, so two concurrent
 * appends that are each unique but duplicate each other cannot both land.
 */
export class DuckDbConstraintValidator implements ConstraintValidator {
  constructor(private readonly objects: ObjectStore) {}

  async validate(version: TableVersion): Promise<void> {
    for (const field of version.schema.fields) {
      if (field.nullable) continue;
      const nulls = version.files.reduce((n, f) => n + (f.columns[field.name]?.nulls ?? 0), 0);
      if (nulls > 0) {
        throw invalid(`table '${version.table}': not-null column '${field.name}' would hold ${nulls} null values`, {
          table: version.table,
          column: field.name,
        });
      }
    }
    if (version.constraints.unique.length === 0 || version.files.length === 0) return;
    const paths = await Promise.all(version.files.map((f) => this.objects.localPath(f.key)));
    await withConnection((c) => checkUniqueIn(c, paths, version.constraints.unique, `table '${version.table}'`));
  }
}
