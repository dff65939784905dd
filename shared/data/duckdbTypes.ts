import type { FieldType } from '../catalog/model.js';
import { invalid } from '../errors/index.js';

const TO_DUCKDB: Record<string, string> = {
  Bool: 'BOOLEAN',
  Int8: 'TINYINT',
  Int16: 'SMALLINT',
  Int32: 'INTEGER',
  Int64: 'BIGINT',
  UInt8: 'UTINYINT',
  UInt16: 'USMALLINT',
  UInt32: 'UINTEGER',
  UInt64: 'UBIGINT',
  Float32: 'FLOAT',
  Float64: 'DOUBLE',
  Utf8: 'VARCHAR',
  Binary: 'BLOB',
  Date32: 'DATE',
  Timestamp: 'TIMESTAMP',
};

const FROM_DUCKDB: Record<string, FieldType> = Object.fromEntries(
  Object.entries(TO_DUCKDB).map(([arrow, duck]) => [duck, arrow as FieldType]),
);

/** Scalar DuckDB types Airlock stores as text, because Arrow-level consumers expect strings for them. */
const AS_TEXT = new Set(['TIME', 'UUID', 'INTERVAL', 'JSON', 'TIME WITH TIME ZONE']);

/** The DuckDB type that stores a field type. */
export function duckdbType(type: FieldType): string {
  const decimal = /^Decimal\((\d+),(\d+)\)$/.exec(type);
  if (decimal) return `DECIMAL(${decimal[1]},${decimal[2]})`;
  const t = TO_DUCKDB[type];
  if (!t) throw invalid(`unsupported column type '${type}'`);
  return t;
}

/**
 * The field type for a DuckDB column type found in an input file, and how to convert the
 * input to it. Nested types are refused: Airlock tables hold flat columns.
 */
export function fieldTypeOf(column: string, duck: string): FieldType {
  const upper = duck.toUpperCase();
  const decimal = /^DECIMAL\((\d+),\s*(\d+)\)$/.exec(upper);
  if (decimal) return `Decimal(${Number(decimal[1])},${Number(decimal[2])})` as FieldType;
  if (upper === 'TIMESTAMP WITH TIME ZONE' || upper.startsWith('TIMESTAMP_')) return 'Timestamp';
  if (upper === 'HUGEINT' || upper === 'UHUGEINT') return 'Float64';
  if (AS_TEXT.has(upper)) return 'Utf8';
  const t = FROM_DUCKDB[upper];
  if (t) return t;
  throw invalid(
    `column '${column}' has type ${duck}, which Airlock tables cannot hold (nested and exotic types are not supported; flatten it first)`,
    {
      column,
      type: duck,
    },
  );
}

/** Quotes a SQL string literal (for trusted values Airlock builds itself, such as file paths). */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Quotes a SQL identifier. */
export function sqlIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
