import type { FieldType } from '../catalog/model.js';
import { invalid } from '../errors/index.js';

/** Quotes an SQL identifier (`"a""b"`). */
export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Quotes an SQL string literal (`'it''s'`). Used only for engine-generated SQL (paths, keys). */
export const quoteString = (text: string) => {
  if (text.includes('\u0000')) throw invalid('a NUL character cannot appear in generated SQL');
  return `'${text.replace(/'/g, "''")}'`;
};

/** The DuckDB type of a catalog field type. */
export function duckType(type: FieldType): string {
  switch (type) {
    case 'Bool':
      return 'BOOLEAN';
    case 'Int8':
      return 'TINYINT';
    case 'Int16':
      return 'SMALLINT';
    case 'Int32':
      return 'INTEGER';
    case 'Int64':
      return 'BIGINT';
    case 'UInt8':
      return 'UTINYINT';
    case 'UInt16':
      return 'USMALLINT';
    case 'UInt32':
      return 'UINTEGER';
    case 'UInt64':
      return 'UBIGINT';
    case 'Float32':
      return 'FLOAT';
    case 'Float64':
      return 'DOUBLE';
    case 'Utf8':
      return 'VARCHAR';
    case 'Binary':
      return 'BLOB';
    case 'Date32':
      return 'DATE';
    case 'Timestamp':
      return 'TIMESTAMP';
    default: {
      const m = /^Decimal\((\d+),(\d+)\)$/.exec(type);
      if (m) return `DECIMAL(${m[1]},${m[2]})`;
      throw invalid(`unsupported column type '${String(type)}'`);
    }
  }
}
