/**
 * Range arithmetic shared by the adapters that translate {@link QueryOptions} into a
 * backend's own range conditions (SQLite `WHERE`, DynamoDB `KeyConditionExpression`).
 * Keys compare bytewise as UTF-8, which is both SQLite's `BINARY` collation and
 * DynamoDB's sort order.
 */
import { invalid } from '../errors/index.js';
import type { QueryOptions } from './ports.js';

/** One end of a key range. */
export interface Bound {
  value: string;
  inclusive: boolean;
}

/** A key range with optional ends; `empty` when no key can satisfy it. */
export interface KeyRange {
  lower?: Bound;
  upper?: Bound;
  empty: boolean;
}

/** Compares two strings by their UTF-8 bytes (code point order). */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The smallest string greater than every string that starts with `prefix`, or `undefined`
 * when there is none (empty prefix, or a prefix of only U+10FFFF). Turns `begins_with`
 * into a half-open range `[prefix, upper)` that an index can seek.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = [...prefix].map((c) => c.codePointAt(0) as number);
  while (points.length > 0) {
    const last = points.pop() as number;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return String.fromCodePoint(...points, next);
    }
  }
  return undefined;
}

function tighterLower(a: Bound | undefined, b: Bound): Bound {
  if (!a) return b;
  const c = compareUtf8(a.value, b.value);
  if (c !== 0) return c > 0 ? a : b;
  return a.inclusive ? b : a;
}

function tighterUpper(a: Bound | undefined, b: Bound): Bound {
  if (!a) return b;
  const c = compareUtf8(a.value, b.value);
  if (c !== 0) return c < 0 ? a : b;
  return a.inclusive ? b : a;
}

/** Folds `prefix`, `gt`, `gte`, `lt` and `lte` into one range with at most one bound per end. */
export function resolveRange(options: QueryOptions): KeyRange {
  let lower: Bound | undefined;
  let upper: Bound | undefined;
  if (options.prefix !== undefined && options.prefix !== '') {
    lower = { value: options.prefix, inclusive: true };
    const up = prefixUpperBound(options.prefix);
    if (up !== undefined) upper = { value: up, inclusive: false };
  }
  if (options.gt !== undefined) lower = tighterLower(lower, { value: options.gt, inclusive: false });
  if (options.gte !== undefined) lower = tighterLower(lower, { value: options.gte, inclusive: true });
  if (options.lt !== undefined) upper = tighterUpper(upper, { value: options.lt, inclusive: false });
  if (options.lte !== undefined) upper = tighterUpper(upper, { value: options.lte, inclusive: true });
  let empty = false;
  if (lower && upper) {
    const c = compareUtf8(lower.value, upper.value);
    empty = c > 0 || (c === 0 && !(lower.inclusive && upper.inclusive));
  }
  const range: KeyRange = { empty };
  if (lower) range.lower = lower;
  if (upper) range.upper = upper;
  return range;
}

/** The default and largest page size of a range read. */
export const DEFAULT_QUERY_LIMIT = 1000;

/** Validates `options.limit` (a positive integer; default {@link DEFAULT_QUERY_LIMIT}). */
export function pageLimit(options: QueryOptions): number {
  const limit = options.limit ?? DEFAULT_QUERY_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) {
    throw invalid(`query limit must be a positive integer, got ${String(options.limit)}`, { limit: options.limit });
  }
  return limit;
}

/** Encodes a cursor: the last key returned, as base64url JSON (opaque to callers). */
export function encodeCursor(key: Record<string, string>): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/**
 * Decodes a cursor made by {@link encodeCursor}, checking it holds exactly the string
 * fields `fields`; a malformed or foreign cursor is an `INVALID` error, never a silent
 * restart from the beginning.
 */
export function decodeCursor(cursor: string, fields: readonly string[]): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (cause) {
    throw invalid('malformed query cursor', { cursor }, cause);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalid('malformed query cursor', { cursor });
  }
  const out: Record<string, string> = {};
  for (const f of fields) {
    const value = (parsed as Record<string, unknown>)[f];
    if (typeof value !== 'string') throw invalid('query cursor does not fit this query', { cursor });
    out[f] = value;
  }
  return out;
}
