import { type DuckDBValueConverter, DuckDBTypeId, type Json, JsonDuckDBValueConverter } from '@duckdb/node-api';

const BIG_INTEGERS = new Set<DuckDBTypeId>([
  DuckDBTypeId.BIGINT,
  DuckDBTypeId.UBIGINT,
  DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UHUGEINT,
]);

/**
 * Converts DuckDB values to JSON-safe values: DuckDB's own JSON conversion, except that
 * 64/128-bit integers become numbers when they are safe integers (strings otherwise), as
 * the design asks ("Int64 values may be JSON numbers when safe, else strings").
 */
export const jsonSafe: DuckDBValueConverter<Json> = (value, type, converter) => {
  if (value !== null && BIG_INTEGERS.has(type.typeId)) {
    const n = typeof value === 'bigint' ? value : BigInt(String(value));
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
  }
  return JsonDuckDBValueConverter(value, type, converter);
};
