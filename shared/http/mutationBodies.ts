import { invalid } from '../errors/index.js';

/** A JSON request body checked field by field: unknown fields are refused, each mistake names its field. */
export type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses the text of a JSON request body that must be an object with only `fields`.
 * Unknown fields are refused rather than ignored: a misspelt `dryrun` must not merge for real.
 */
export function parseJsonObject(text: string, fields: readonly string[], example: string): JsonObject {
  let value: unknown;
  try {
    value = text.trim() === '' ? {} : JSON.parse(text);
  } catch (e) {
    throw invalid(`the request body is not valid JSON: ${(e as Error).message}`, undefined, e);
  }
  if (!isObject(value)) throw invalid(`the request body must be a JSON object like ${example}`);
  const unknown = Object.keys(value).filter((k) => !fields.includes(k));
  if (unknown.length > 0) {
    throw invalid(`unknown field(s) ${unknown.map((k) => `'${k}'`).join(', ')}; expected ${fields.join(', ')}`);
  }
  return value;
}

/** A required non-empty string field. */
export function requiredString(body: JsonObject, field: string): string {
  const v = body[field];
  if (typeof v !== 'string' || v === '') throw invalid(`'${field}' is required and must be a non-empty string`);
  return v;
}

/** An optional non-empty string field. */
export function optionalString(body: JsonObject, field: string): string | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw invalid(`'${field}' must be a non-empty string`);
  return v;
}

/** An optional boolean field. */
export function optionalBoolean(body: JsonObject, field: string): boolean | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalid(`'${field}' must be true or false`);
  return v;
}

/** An optional array of non-empty strings. */
export function optionalStrings(body: JsonObject, field: string): string[] | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) {
    throw invalid(`'${field}' must be an array of non-empty strings`);
  }
  return v as string[];
}

/** An optional object of name → string (pipeline parameters). */
export function optionalStringMap(body: JsonObject, field: string): Record<string, string> | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (!isObject(v) || Object.values(v).some((s) => typeof s !== 'string')) {
    throw invalid(`'${field}' must be an object of name → string`);
  }
  return v as Record<string, string>;
}

/** An optional JSON object field. */
export function optionalObject(body: JsonObject, field: string): JsonObject | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (!isObject(v)) throw invalid(`'${field}' must be a JSON object`);
  return v;
}

/** A comma-separated query parameter as a list (`?unique=id,day`); repeated parameters add up. */
export function listParam(values: readonly string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}
