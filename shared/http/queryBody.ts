import { invalid } from '../errors/index.js';
import type { QueryParam } from '../query/index.js';

/** Result formats of `POST /v1/query`. */
export type QueryFormat = 'json' | 'csv' | 'arrow';

/** Media types of the formats (also what `Accept` may ask for). */
export const MEDIA_TYPES: Readonly<Record<QueryFormat, string>> = Object.freeze({
  json: 'application/json',
  csv: 'text/csv',
  arrow: 'application/vnd.apache.arrow.stream',
});

/** The validated body of `POST /v1/query`. */
export interface QueryBody {
  sql: string;
  ref?: string;
  params?: Record<string, QueryParam>;
  maxRows?: number;
  format?: QueryFormat;
}

const FIELDS = new Set(['sql', 'ref', 'params', 'maxRows', 'format']);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses and checks the text of a query request. Every mistake is an INVALID error that
 * names the field, so a client (or an agent) can fix its request without guessing.
 * Unknown fields are refused rather than ignored: a misspelt `maxRow` must not silently
 * run the query uncapped-by-request.
 */
export function parseQueryBody(text: string): QueryBody {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw invalid(`the request body is not valid JSON: ${(e as Error).message}`, undefined, e);
  }
  if (!isObject(value)) throw invalid('the request body must be a JSON object like {"sql":"SELECT …"}');
  const unknown = Object.keys(value).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) {
    throw invalid(`unknown field(s) ${unknown.map((k) => `'${k}'`).join(', ')}; expected ${[...FIELDS].join(', ')}`);
  }
  const { sql, ref, params, maxRows, format } = value;
  if (typeof sql !== 'string') throw invalid("'sql' is required and must be a string");
  const body: QueryBody = { sql };
  if (ref !== undefined) {
    if (typeof ref !== 'string' || ref === '') throw invalid("'ref' must be a non-empty string");
    body.ref = ref;
  }
  if (params !== undefined) {
    if (!isObject(params)) throw invalid("'params' must be an object of name → string, number, boolean or null");
    for (const [name, v] of Object.entries(params)) {
      if (v !== null && !['string', 'number', 'boolean'].includes(typeof v)) {
        throw invalid(`parameter '${name}' must be a string, number, boolean or null`, { parameter: name });
      }
    }
    body.params = params as Record<string, QueryParam>;
  }
  if (maxRows !== undefined) {
    if (typeof maxRows !== 'number' || !Number.isSafeInteger(maxRows) || maxRows <= 0) {
      throw invalid(`'maxRows' must be a positive whole number, got ${JSON.stringify(maxRows)}`);
    }
    body.maxRows = maxRows;
  }
  if (format !== undefined) {
    if (typeof format !== 'string' || !(format in MEDIA_TYPES)) {
      throw invalid(`'format' must be one of ${Object.keys(MEDIA_TYPES).join(', ')}, got ${JSON.stringify(format)}`);
    }
    body.format = format as QueryFormat;
  }
  return body;
}

/**
 * The format of a query's answer: the body's `format` when given, else the first of the
 * `Accept` header's media types (by `q`, then order) that Airlock serves, else JSON.
 * An `Accept` naming nothing Airlock serves gets JSON rather than a 406: every client
 * can read it, and the `content-type` says what it is.
 */
export function negotiateFormat(format: QueryFormat | undefined, accept: string | undefined): QueryFormat {
  if (format) return format;
  if (!accept) return 'json';
  const ranked = accept
    .split(',')
    .map((part, index) => {
      const [type = '', ...rest] = part.split(';').map((s) => s.trim().toLowerCase());
      const q = rest.find((p) => p.startsWith('q='));
      return { type, q: q ? Number(q.slice(2)) : 1, index };
    })
    .filter((m) => m.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const { type } of ranked) {
    const match = (Object.entries(MEDIA_TYPES) as Array<[QueryFormat, string]>).find(([, media]) => media === type);
    if (match) return match[0];
  }
  return 'json';
}
