import { isInvalid, invalid } from '../../errors/index.js';
import { validateTableName } from '../../catalog/index.js';

/**
 * Checks a `namespace.table` name declared by a step with the catalog's own rule, and
 * names the step and field in the error (`where`).
 */
export function checkTableName(name: unknown, where: string): string {
  if (typeof name !== 'string') throw invalid(`${where} must be a table name 'namespace.table', got ${typeof name}`);
  try {
    return validateTableName(name);
  } catch (e) {
    if (!isInvalid(e)) throw e;
    throw invalid(`${where}: ${e.message}`, { table: name.slice(0, 200) }, e);
  }
}
