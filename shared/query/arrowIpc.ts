import {
  Bool,
  type DataType,
  DateDay,
  Float32,
  Float64,
  Int8,
  Int16,
  Int32,
  Int64,
  RecordBatchStreamWriter,
  Table,
  TimestampMicrosecond,
  Uint8,
  Uint16,
  Uint32,
  Uint64,
  Utf8,
  type Vector,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import type { QueryColumn, QueryResult, QuerySink } from './types.js';

interface ArrowColumn {
  type: DataType;
  convert: (v: unknown) => unknown;
}

const asNumber = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const asBigInt = (v: unknown) => (v === null || v === undefined ? null : BigInt(v as string | number));
const asText = (v: unknown) => (v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v));

/** Days since the epoch of `YYYY-MM-DD` → epoch ms (DateDay takes ms or Date). */
function asDate(v: unknown): unknown {
  if (typeof v !== 'string') return null;
  const ms = Date.parse(`${v}T00:00:00Z`);
  return Number.isFinite(ms) ? new Date(ms) : null;
}

/** `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC, as DuckDB prints TIMESTAMP) → epoch microseconds. */
function asMicros(v: unknown): unknown {
  if (typeof v !== 'string') return null;
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/.exec(v);
  if (!m) return null;
  const ms = Date.parse(`${m[1]}T${m[2]}Z`);
  if (!Number.isFinite(ms)) return null;
  return BigInt(ms) * 1000n + BigInt((m[3] ?? '').padEnd(6, '0') || '0');
}

/** Arrow type for a DuckDB type name; anything without a faithful JS mapping travels as text. */
function arrowColumn(duckType: string): ArrowColumn {
  switch (duckType) {
    case 'BOOLEAN':
      return { type: new Bool(), convert: (v) => (v === null || v === undefined ? null : Boolean(v)) };
    case 'TINYINT':
      return { type: new Int8(), convert: asNumber };
    case 'SMALLINT':
      return { type: new Int16(), convert: asNumber };
    case 'INTEGER':
      return { type: new Int32(), convert: asNumber };
    case 'BIGINT':
      return { type: new Int64(), convert: asBigInt };
    case 'UTINYINT':
      return { type: new Uint8(), convert: asNumber };
    case 'USMALLINT':
      return { type: new Uint16(), convert: asNumber };
    case 'UINTEGER':
      return { type: new Uint32(), convert: asNumber };
    case 'UBIGINT':
      return { type: new Uint64(), convert: asBigInt };
    case 'FLOAT':
      return { type: new Float32(), convert: asNumber };
    case 'DOUBLE':
      return { type: new Float64(), convert: asNumber };
    case 'DATE':
      return { type: new DateDay(), convert: asDate };
    case 'TIMESTAMP':
      return { type: new TimestampMicrosecond(), convert: asMicros };
    default:
      // VARCHAR, DECIMAL (exact as text), HUGEINT, nested types (as JSON text), …
      return { type: new Utf8(), convert: asText };
  }
}

function table(columns: readonly QueryColumn[], rows: readonly Record<string, unknown>[]): Table {
  const vectors: Record<string, Vector> = {};
  for (const c of columns) {
    const { type, convert } = arrowColumn(c.type);
    vectors[c.name] = vectorFromArray(
      rows.map((r) => convert(r[c.name])),
      type,
    );
  }
  return new Table(vectors);
}

/**
 * Encodes a materialised result as an Arrow IPC stream (`application/vnd.apache.arrow.stream`).
 * Integers, floats, booleans, dates and timestamps keep Arrow types; decimals, huge
 * integers and nested values travel as UTF-8 text (exact, if not native).
 */
export function encodeArrowIpc(result: Pick<QueryResult, 'columns' | 'rows'>): Uint8Array {
  return tableToIPC(table(result.columns, result.rows), 'stream');
}

/**
 * A {@link QuerySink} for `streamQuery` that writes an Arrow IPC stream, one record batch
 * per engine chunk, so a large result is never held whole. Read the bytes from `output`
 * (an async iterable) while the query runs; call `finish()` after `streamQuery` resolves.
 *
 * @example
 * const ipc = arrowIpcSink();
 * const done = streamQuery(req, ipc.sink).finally(() => ipc.finish());
 * for await (const bytes of ipc.output) res.write(bytes);
 */
export function arrowIpcSink(): { sink: QuerySink; output: AsyncIterable<Uint8Array>; finish(): void } {
  const writer = new RecordBatchStreamWriter();
  let columns: QueryColumn[] = [];
  let wrote = false;
  return {
    sink: {
      columns: (cols) => {
        columns = cols;
      },
      rows: (batch) => {
        if (batch.length === 0) return;
        for (const b of table(columns, batch).batches) writer.write(b);
        wrote = true;
      },
    },
    output: writer,
    finish: () => {
      // An empty result still carries its schema.
      if (!wrote) writer.write(table(columns, []));
      writer.finish();
    },
  };
}
