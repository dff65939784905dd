import { invalid } from '../errors/index.js';

const IDENT = /^[a-z_][a-z0-9_]*$/;
const MAX_IDENT = 63;

/**
 * Validates a table name `namespace.table`: two lowercase identifiers, each at most 63
 * characters. Names become object-store key segments and SQL identifiers, so anything
 * else (path characters, quotes, empty parts) is refused here, once, for every interface.
 */
export function validateTableName(name: string): string {
  const parts = name.split('.');
  const ok = parts.length === 2 && parts.every((p) => p.length > 0 && p.length <= MAX_IDENT && IDENT.test(p));
  if (!ok) {
    const shown = name.length > 80 ? `${name.slice(0, 80)}… (${name.length} characters)` : name;
    throw invalid(
      `invalid table name '${shown}': use namespace.table, each part lowercase letters, digits or _ (starting with a letter or _), at most ${MAX_IDENT} characters`,
      { table: name.slice(0, 200) },
    );
  }
  return name;
}

/** Validates a column name (same rules as a table-name part). */
export function validateColumnName(name: string): string {
  if (!(name.length > 0 && name.length <= MAX_IDENT && IDENT.test(name))) {
    throw invalid(
      `invalid column name '${name.slice(0, 80)}': lowercase letters, digits or _, starting with a letter or _, at most ${MAX_IDENT} characters`,
    );
  }
  return name;
}

const REF_NAME = /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/;

/**
 * Validates a branch or tag name: letters, digits, `_ . / -`, at most 200 characters,
 * no `..`, `//`, trailing `/` or `.`, and none of the ref operators `@ ~ :`.
 */
export function validateRefName(kind: 'branch' | 'tag', name: string): string {
  const ok =
    name.length > 0 &&
    name.length <= 200 &&
    REF_NAME.test(name) &&
    !name.includes('..') &&
    !name.includes('//') &&
    !name.endsWith('/') &&
    !name.endsWith('.');
  if (!ok) {
    throw invalid(
      `invalid ${kind} name '${name.slice(0, 80)}': use letters, digits, _ . / - (no '..', '//', '@', '~'; at most 200 characters)`,
    );
  }
  return name;
}
