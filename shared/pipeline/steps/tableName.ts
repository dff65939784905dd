import { invalid } from '../../errors/index.js';

// Same rule as the catalog's table names (shared/catalog/names.ts); kept local because
// the catalog folder has no public index yet. Switch to its export when it has one.
const PART = /^[a-z_][a-z0-9_]{0,62}$/;

/** Checks a `namespace.table` name declared by a step; `where` names the step and field. */
export function checkTableName(name: unknown, where: string): string {
  if (typeof name !== 'string') throw invalid(`${where} must be a table name 'namespace.table', got ${typeof name}`);
  const parts = name.split('.');
  if (parts.length !== 2 || !parts.every((p) => PART.test(p))) {
    throw invalid(
      `${where} '${name.slice(0, 80)}' is not a table name: use namespace.table, each part lowercase letters, digits or _ (starting with a letter or _)`,
      { table: name.slice(0, 200) },
    );
  }
  return name;
}
