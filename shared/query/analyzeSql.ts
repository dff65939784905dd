/**
 * Safety and pruning analysis of a parsed SELECT (DuckDB's own parser, serialised by
 * `json_serialize_sql`). Nothing here looks at SQL text: it walks the engine's AST.
 *
 * Safety: user SQL may reference only the snapshot's views (`ns.table`) and CTEs in scope;
 * any table function (read_parquet, read_csv, glob, …) other than a few pure generators,
 * any other table name (a file path becomes a BASE_TABLE "replacement scan"), any unknown
 * FROM or query-node kind, and a few functions that reveal the host (getenv,
 * current_setting) are refused. The engine lockdown (allowed_paths, external access off)
 * is the second, independent layer.
 *
 * Pruning: per reference to a view, the top-level AND conjuncts of that SELECT's WHERE of
 * the form `column op literal` (=, <, <=, >, >=, BETWEEN, IN) are collected. A view keeps
 * the union of the files every one of its references may need; a reference with no usable
 * predicate needs all files. When anything is unclear the predicate is dropped, which
 * only ever keeps more files.
 */
import type { FieldType } from '../catalog/model.js';
import { invalid } from '../errors/index.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

/** A literal of a predicate, as the AST gives it. */
export type Literal =
  | { kind: 'int'; value: bigint }
  | { kind: 'number'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'date'; value: string }
  | { kind: 'bool'; value: boolean };

/** `column op literal` (or a set for IN) over one view reference. */
export interface Predicate {
  column: string;
  op: '=' | '<' | '<=' | '>' | '>=' | 'in';
  values: Literal[];
}

/** What the analysis found: for each referenced view, the predicate lists of its references. */
export interface SqlAnalysis {
  /** View name (`ns.table`) → one entry per reference: its conjunct predicates. */
  references: Map<string, Predicate[][]>;
}

/** Table functions that generate values and touch nothing outside the query. */
const PURE_TABLE_FUNCTIONS = new Set(['range', 'generate_series', 'unnest']);
/** Scalar functions refused because they reveal the host or engine settings. */
const DENIED_FUNCTIONS = new Set(['getenv', 'current_setting']);
const FROM_KINDS = new Set([
  'BASE_TABLE',
  'JOIN',
  'SUBQUERY',
  'EXPRESSION_LIST',
  'EMPTY',
  'EMPTY_FROM',
  'TABLE_FUNCTION',
  'PIVOT',
]);
const NODE_KINDS = new Set(['SELECT_NODE', 'SET_OPERATION_NODE', 'RECURSIVE_CTE_NODE', 'CTE_NODE']);

const isObj = (v: Json | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: Json | undefined) => (typeof v === 'string' ? v : '');

/** Columns of each view (by `ns.table`) that are safe to prune on (not masked). */
export type ViewColumns = Map<string, Map<string, FieldType>>;

interface Ctx {
  views: ViewColumns;
  params: Record<string, unknown>;
  refs: Map<string, Predicate[][]>;
  /** Names of CTEs in scope, innermost last. */
  ctes: string[];
  /** Allow no table at all (row-filter predicates). */
  noTables: boolean;
}

/**
 * Checks a parsed statement (the `statements[0].node` of `json_serialize_sql`) and
 * extracts pruning predicates. Throws `INVALID` naming what is not allowed.
 */
export function analyzeSelect(
  node: Json,
  views: ViewColumns,
  params: Record<string, unknown> = {},
  options: { noTables?: boolean } = {},
): SqlAnalysis {
  const ctx: Ctx = { views, params, refs: new Map(), ctes: [], noTables: options.noTables ?? false };
  walkNode(node, ctx);
  return { references: ctx.refs };
}

function walkNode(node: Json, ctx: Ctx): void {
  if (!isObj(node)) throw invalid('unexpected query shape');
  const type = str(node.type);
  if (!NODE_KINDS.has(type)) throw invalid(`query construct ${type || '(unknown)'} is not allowed`);
  const saved = ctx.ctes.length;
  const cteMap = isObj(node.cte_map) && Array.isArray(node.cte_map.map) ? node.cte_map.map : [];
  for (const entry of cteMap) {
    if (!isObj(entry) || !isObj(entry.value)) throw invalid('unexpected CTE shape');
    const name = str(entry.key).toLowerCase();
    const query = isObj(entry.value.query) ? entry.value.query.node : undefined;
    // A CTE sees the CTEs before it, and itself only when it is recursive.
    const recursive = isObj(query) && query.type === 'RECURSIVE_CTE_NODE';
    if (recursive) ctx.ctes.push(name);
    walkNode(query ?? null, ctx);
    if (!recursive) ctx.ctes.push(name);
  }
  for (const [key, value] of Object.entries(node)) {
    if (key === 'cte_map') continue;
    if (key === 'from_table') walkFrom(value, ctx);
    else walkAny(value, ctx);
  }
  if (type === 'SELECT_NODE') collectPredicates(node, ctx);
  ctx.ctes.length = saved;
}

function walkFrom(ref: Json, ctx: Ctx): void {
  if (!isObj(ref)) throw invalid('unexpected FROM shape');
  const type = str(ref.type);
  if (!FROM_KINDS.has(type)) throw invalid(`FROM ${type || '(unknown)'} is not allowed: query the snapshot's tables`);
  if (type === 'TABLE_FUNCTION') {
    const fn = isObj(ref.function) ? str(ref.function.function_name).toLowerCase() : '';
    if (!PURE_TABLE_FUNCTIONS.has(fn)) {
      throw invalid(
        `table function ${fn || '(unknown)'}() is not allowed: queries read only the snapshot's tables (ns.table), never files or other sources`,
        { function: fn },
      );
    }
  }
  if (type === 'BASE_TABLE') checkTable(ref, ctx);
  for (const [key, value] of Object.entries(ref)) {
    if (key === 'left' || key === 'right' || key === 'source') walkFrom(value, ctx);
    else walkAny(value, ctx);
  }
}

function tableKey(ref: Obj): { view?: string; cte?: string; shown: string } {
  const catalog = str(ref.catalog_name).toLowerCase();
  const schema = str(ref.schema_name).toLowerCase();
  const table = str(ref.table_name).toLowerCase();
  const shown = [str(ref.catalog_name), str(ref.schema_name), str(ref.table_name)].filter(Boolean).join('.');
  if (catalog === '' && schema === '') return { cte: table, shown };
  if (catalog === '' || catalog === 'memory') return { view: `${schema}.${table}`, shown };
  return { shown };
}

function checkTable(ref: Obj, ctx: Ctx): void {
  const { view, cte, shown } = tableKey(ref);
  if (!ctx.noTables) {
    if (cte !== undefined && ctx.ctes.includes(cte)) return;
    if (view !== undefined && ctx.views.has(view)) return;
  }
  const known = [...ctx.views.keys()].sort().join(', ') || '(none)';
  throw invalid(
    ctx.noTables
      ? `a row filter may not reference a table ('${shown.slice(0, 200)}')`
      : `unknown table '${shown.slice(0, 200)}': a query may read only the snapshot's tables as ns.table (${known.slice(0, 500)}) and its own CTEs; files and other sources are not reachable`,
    { table: shown.slice(0, 200) },
  );
}

/** Visits every value; query nodes and FROM clauses are handled by their walkers. */
function walkAny(value: Json | undefined, ctx: Ctx): void {
  if (Array.isArray(value)) {
    for (const v of value) walkAny(v, ctx);
    return;
  }
  if (!isObj(value)) return;
  const type = str(value.type);
  if (value.class === undefined && type.endsWith('_NODE')) {
    walkNode(value, ctx);
    return;
  }
  if ((value.class === undefined && FROM_KINDS.has(type)) || type === 'TABLE_FUNCTION' || type === 'BASE_TABLE') {
    walkFrom(value, ctx);
    return;
  }
  if (value.class === 'FUNCTION') {
    const fn = str(value.function_name).toLowerCase();
    if (DENIED_FUNCTIONS.has(fn)) throw invalid(`function ${fn}() is not allowed in queries`, { function: fn });
  }
  for (const v of Object.values(value)) walkAny(v, ctx);
}

// ---------------------------------------------------------------------------------------
// Pruning predicates

interface Binding {
  view: string;
  names: Set<string>; // alias, or table name and ns.table
}

function viewBindings(ref: Json, ctx: Ctx, out: Binding[]): void {
  if (!isObj(ref)) return;
  if (ref.type === 'JOIN') {
    viewBindings(ref.left ?? null, ctx, out);
    viewBindings(ref.right ?? null, ctx, out);
    return;
  }
  if (ref.type !== 'BASE_TABLE') return;
  const { view, cte } = tableKey(ref);
  if (cte !== undefined || view === undefined || !ctx.views.has(view)) return;
  const alias = str(ref.alias).toLowerCase();
  const table = str(ref.table_name).toLowerCase();
  out.push({ view, names: alias ? new Set([alias]) : new Set([table, view]) });
}

function collectPredicates(node: Obj, ctx: Ctx): void {
  const bindings: Binding[] = [];
  viewBindings(node.from_table ?? null, ctx, bindings);
  if (bindings.length === 0) return;
  const perBinding = bindings.map(() => [] as Predicate[]);
  const conjuncts: Obj[] = [];
  const flatten = (e: Json | undefined) => {
    if (!isObj(e)) return;
    if (e.class === 'CONJUNCTION' && e.type === 'CONJUNCTION_AND' && Array.isArray(e.children)) {
      for (const c of e.children) flatten(c);
    } else conjuncts.push(e);
  };
  flatten(node.where_clause);
  for (const c of conjuncts) {
    for (const { ref, pred } of predicatesOf(c, ctx)) {
      const i = resolve(ref, bindings, ctx);
      if (i !== undefined) perBinding[i]?.push({ ...pred, column: ref.at(-1) as string });
    }
  }
  bindings.forEach((b, i) => {
    const list = ctx.refs.get(b.view) ?? [];
    list.push(perBinding[i] ?? []);
    ctx.refs.set(b.view, list);
  });
}

/** Which binding a column reference belongs to, or undefined when not certain. */
function resolve(names: string[], bindings: Binding[], ctx: Ctx): number | undefined {
  const column = names.at(-1);
  if (column === undefined) return undefined;
  const has = (b: Binding) => ctx.views.get(b.view)?.has(column) === true;
  if (names.length === 1) {
    const matches = bindings.map((b, i) => (has(b) ? i : -1)).filter((i) => i >= 0);
    return matches.length === 1 ? matches[0] : undefined;
  }
  const qualifier = names.slice(0, -1).join('.');
  const matches = bindings.map((b, i) => (b.names.has(qualifier) && has(b) ? i : -1)).filter((i) => i >= 0);
  return matches.length === 1 ? matches[0] : undefined;
}

const FLIP: Record<string, Predicate['op']> = { '=': '=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };
const OPS: Record<string, Predicate['op']> = {
  COMPARE_EQUAL: '=',
  COMPARE_LESSTHAN: '<',
  COMPARE_LESSTHANOREQUALTO: '<=',
  COMPARE_GREATERTHAN: '>',
  COMPARE_GREATERTHANOREQUALTO: '>=',
};

function columnRef(e: Json | undefined): string[] | undefined {
  if (!isObj(e) || e.class !== 'COLUMN_REF' || !Array.isArray(e.column_names)) return undefined;
  const names = e.column_names.map((n) => str(n).toLowerCase());
  return names.every((n) => n.length > 0) ? names : undefined;
}

function predicatesOf(e: Obj, ctx: Ctx): Array<{ ref: string[]; pred: Omit<Predicate, 'column'> }> {
  if (e.class === 'COMPARISON') {
    const op = OPS[str(e.type)];
    if (!op) return [];
    const l = columnRef(e.left);
    const r = columnRef(e.right);
    if (l && !r) {
      const v = literal(e.right, ctx);
      return v ? [{ ref: l, pred: { op, values: [v] } }] : [];
    }
    if (r && !l) {
      const v = literal(e.left, ctx);
      const flipped = FLIP[op];
      return v && flipped ? [{ ref: r, pred: { op: flipped, values: [v] } }] : [];
    }
    return [];
  }
  if (e.class === 'BETWEEN') {
    const ref = columnRef(e.input);
    const lo = literal(e.lower, ctx);
    const hi = literal(e.upper, ctx);
    if (!ref) return [];
    const out: Array<{ ref: string[]; pred: Omit<Predicate, 'column'> }> = [];
    if (lo) out.push({ ref, pred: { op: '>=', values: [lo] } });
    if (hi) out.push({ ref, pred: { op: '<=', values: [hi] } });
    return out;
  }
  if (e.class === 'OPERATOR' && e.type === 'COMPARE_IN' && Array.isArray(e.children)) {
    const [first, ...rest] = e.children;
    const ref = columnRef(first);
    const values = rest.map((c) => literal(c, ctx));
    if (!ref || values.length === 0 || values.some((v) => v === undefined)) return [];
    return [{ ref, pred: { op: 'in', values: values as Literal[] } }];
  }
  return [];
}

const INT_TYPES = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT']);
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

/** A literal the pruner understands exactly, or undefined (never guessed). */
function literal(e: Json | undefined, ctx: Ctx): Literal | undefined {
  if (!isObj(e)) return undefined;
  if (e.class === 'CONSTANT' && isObj(e.value) && e.value.is_null === false && isObj(e.value.type)) {
    const id = str(e.value.type.id);
    const v = e.value.value;
    if (INT_TYPES.has(id) && typeof v === 'number' && Number.isSafeInteger(v)) return { kind: 'int', value: BigInt(v) };
    if (id === 'DOUBLE' && typeof v === 'number' && Number.isFinite(v)) return { kind: 'number', value: v };
    if (id === 'VARCHAR' && typeof v === 'string') return { kind: 'string', value: v };
    if (id === 'BOOLEAN' && typeof v === 'boolean') return { kind: 'bool', value: v };
    return undefined;
  }
  if (e.class === 'CAST' && e.try_cast === false && isObj(e.cast_type) && e.cast_type.id === 'DATE') {
    const inner = literal(e.child, ctx);
    return inner?.kind === 'string' && DATE_RE.test(inner.value) ? { kind: 'date', value: inner.value } : undefined;
  }
  if (e.class === 'PARAMETER') {
    const v = ctx.params[str(e.identifier)];
    if (typeof v === 'number')
      return Number.isSafeInteger(v)
        ? { kind: 'int', value: BigInt(v) }
        : Number.isFinite(v)
          ? { kind: 'number', value: v }
          : undefined;
    if (typeof v === 'string') return { kind: 'string', value: v };
    if (typeof v === 'boolean') return { kind: 'bool', value: v };
  }
  return undefined;
}
