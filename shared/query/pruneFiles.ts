import type { ColumnStats, FieldType } from '../catalog/model.js';
import type { Literal, Predicate } from './analyzeSql.js';
import type { SnapshotFile } from './types.js';

const INT_FIELDS = new Set<FieldType>(['Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64']);
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

/** A comparable bound: -1/0/1 comparisons against literals, or undefined when unsure. */
type Cmp = (lit: Literal) => number | undefined;

const utf8 = (s: string) => Buffer.from(s, 'utf8');

/** Comparator of a stats bound against literals, per column type; undefined = cannot compare. */
function comparator(type: FieldType, bound: ColumnStats['min']): Cmp | undefined {
  if (bound === null) return undefined;
  if (INT_FIELDS.has(type)) {
    let b: bigint;
    try {
      b = BigInt(bound as string | number);
    } catch {
      return undefined;
    }
    return (lit) => {
      if (lit.kind === 'int') return b < lit.value ? -1 : b > lit.value ? 1 : 0;
      if (lit.kind === 'number' && b >= -(2n ** 53n) && b <= 2n ** 53n) return Math.sign(Number(b) - lit.value);
      return undefined;
    };
  }
  if (type === 'Float64') {
    if (typeof bound !== 'number' || !Number.isFinite(bound)) return undefined;
    return (lit) => {
      if (lit.kind === 'number') return Math.sign(bound - lit.value);
      if (lit.kind === 'int' && lit.value >= -(2n ** 53n) && lit.value <= 2n ** 53n)
        return Math.sign(bound - Number(lit.value));
      return undefined;
    };
  }
  if (type === 'Utf8') {
    if (typeof bound !== 'string') return undefined;
    const b = utf8(bound);
    // DuckDB compares VARCHAR bytewise (UTF-8), which is not JS's UTF-16 order.
    return (lit) => (lit.kind === 'string' ? Math.sign(Buffer.compare(b, utf8(lit.value))) : undefined);
  }
  if (type === 'Date32') {
    if (typeof bound !== 'string' || !DATE_RE.test(bound)) return undefined;
    return (lit) =>
      (lit.kind === 'date' || lit.kind === 'string') && DATE_RE.test(lit.value)
        ? bound < lit.value
          ? -1
          : bound > lit.value
            ? 1
            : 0
        : undefined;
  }
  if (type === 'Bool') {
    if (typeof bound !== 'boolean') return undefined;
    return (lit) => (lit.kind === 'bool' ? Number(bound) - Number(lit.value) : undefined);
  }
  // Float32 (comparisons happen in FLOAT precision), decimals, timestamps, blobs: never pruned.
  return undefined;
}

/** Could a value in [min, max] satisfy `op lit`? true when unsure. */
function mayMatch(op: Predicate['op'], lit: Literal, lo: Cmp, hi: Cmp): boolean {
  const cLo = lo(lit); // sign(min - lit)
  const cHi = hi(lit); // sign(max - lit)
  if (cLo === undefined || cHi === undefined) return true;
  switch (op) {
    case '=':
    case 'in':
      return cLo <= 0 && cHi >= 0;
    case '<':
      return cLo < 0;
    case '<=':
      return cLo <= 0;
    case '>':
      return cHi > 0;
    case '>=':
      return cHi >= 0;
  }
}

/** NaN satisfies `>`/`>=` in DuckDB (it sorts above every number) and may be absent from stats. */
const NAN_SAFE_OPS = new Set<Predicate['op']>(['=', 'in', '<', '<=']);

/**
 * True unless the file's min/max (or all-null) statistics prove that no row satisfies
 * every predicate. Predicates on columns without a type the pruner compares exactly, or
 * without statistics, never exclude a file.
 */
export function fileMayMatch(
  file: SnapshotFile,
  predicates: readonly Predicate[],
  types: ReadonlyMap<string, FieldType>,
): boolean {
  for (const p of predicates) {
    const type = types.get(p.column);
    const stats = file.columns[p.column];
    if (type === undefined || stats === undefined) continue;
    // Every comparison with NULL is unknown (not true): an all-null column matches nothing.
    if (stats.min === null && stats.max === null && file.rows > 0 && stats.nulls >= file.rows) return false;
    if (type === 'Float64' && !NAN_SAFE_OPS.has(p.op)) continue;
    const lo = comparator(type, stats.min);
    const hi = comparator(type, stats.max);
    if (!lo || !hi) continue;
    if (!p.values.some((v) => mayMatch(p.op, v, lo, hi))) return false;
  }
  return true;
}

/**
 * The files of a view: those that some reference may need. `references` holds one
 * predicate list per reference to the view in the query; an empty list needs every file,
 * and a view the query never references needs none.
 */
export function pruneFiles(
  files: readonly SnapshotFile[],
  references: readonly (readonly Predicate[])[],
  types: ReadonlyMap<string, FieldType>,
): SnapshotFile[] {
  if (references.length === 0) return [];
  return files.filter((f) => references.some((preds) => fileMayMatch(f, preds, types)));
}
