import { validateTableName } from '../catalog/index.js';
import { type InputFormat, inputFormat } from '../data/index.js';
import { invalid, isAirlockError } from '../errors/index.js';

/** The prefix uploads must land under: `landing/<namespace>/<table>/<file>`. */
export const LANDING_PREFIX = 'landing/';

/** What a landing key names. */
export interface LandingTarget {
  /** `namespace.table`. */
  table: string;
  format: InputFormat;
  /** The file's extension, lowercase with its dot (`.csv`), to stage the download under. */
  extension: string;
}

/**
 * Reads the target table and file format from an object key of the form
 * `landing/<namespace>/<table>/<any/sub/path/name.ext>`. Throws INVALID naming what is
 * wrong for anything else: keys outside `landing/`, too few segments, names that are not
 * table identifiers (lowercase letters, digits, `_`), or an extension other than
 * `.csv`, `.parquet`, `.json`, `.jsonl` (`.ndjson`).
 *
 * @example
 * parseLandingKey('landing/sales/orders/2026/12/01.csv') // { table: 'sales.orders', format: 'csv', extension: '.csv' }
 */
export function parseLandingKey(key: string): LandingTarget {
  if (!key.startsWith(LANDING_PREFIX)) {
    throw invalid(
      `object key '${clip(key)}' is outside ${LANDING_PREFIX}: only uploads to ${LANDING_PREFIX}<namespace>/<table>/<file> are ingested`,
      {
        key: clip(key),
      },
    );
  }
  const parts = key.slice(LANDING_PREFIX.length).split('/');
  if (parts.length < 3 || parts.some((p) => p === '')) {
    throw invalid(`object key '${clip(key)}' does not name a table: use ${LANDING_PREFIX}<namespace>/<table>/<file>`, {
      key: clip(key),
    });
  }
  const [namespace, name] = parts as [string, string];
  const table = `${namespace}.${name}`;
  try {
    validateTableName(table);
  } catch (e) {
    throw invalid(`object key '${clip(key)}' names no valid table: ${isAirlockError(e) ? e.message : String(e)}`, {
      key: clip(key),
    });
  }
  const file = parts[parts.length - 1] as string;
  const format = inputFormat(file);
  const extension = (file.match(/\.[^.]+$/)?.[0] ?? '').toLowerCase();
  return { table, format, extension };
}

/** S3 event keys are URL-encoded, with spaces as `+`. */
export function decodeEventKey(key: string): string {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' '));
  } catch {
    throw invalid(`object key '${clip(key)}' is not valid URL encoding`);
  }
}

function clip(key: string): string {
  return key.length > 200 ? `${key.slice(0, 200)}…` : key;
}
