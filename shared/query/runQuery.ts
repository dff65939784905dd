import { type DuckDBConnection, DuckDBInstance, StatementType } from '@duckdb/node-api';
import type { FieldType } from '../catalog/model.js';
import { AirlockError, invalid, isAirlockError, limitExceeded } from '../errors/index.js';
import { analyzeSelect, type Predicate, type ViewColumns } from './analyzeSql.js';
import { jsonSafe } from './jsonValues.js';
import { pruneFiles } from './pruneFiles.js';
import { openSnapshotDatabase, type ViewSpec } from './snapshotDatabase.js';
import {
  MAX_SQL_BYTES,
  type QueryColumn,
  type QueryRequest,
  type QueryResult,
  type QuerySink,
  type QueryStats,
} from './types.js';

// ---------------------------------------------------------------------------------------
// Parsing: a shared, data-less, locked-down instance used only to parse (no user SQL
// ever executes on it; `json_serialize_sql` receives the text as a bound parameter).

let parserInstance: Promise<DuckDBInstance> | undefined;
function parser(): Promise<DuckDBInstance> {
  parserInstance ??= (async () => {
    const db = await DuckDBInstance.create(':memory:', {
      threads: '1',
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    });
    const c = await db.connect();
    await c.run('SET enable_external_access=false');
    await c.run('SET lock_configuration=true');
    c.closeSync();
    return db;
  })();
  return parserInstance;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Parses `sql` with DuckDB's parser: exactly one statement, a SELECT. Returns its AST.
 *
 * One engine call in the common case: `json_serialize_sql` both parses and refuses every
 * statement that is not a SELECT. Only when it refuses (or finds several statements) is
 * the text split into statements as well, to say precisely what was wrong.
 */
async function parseSelect(sql: string, what: string): Promise<unknown> {
  const c = await (await parser()).connect();
  try {
    const reader = await c.runAndReadAll('SELECT json_serialize_sql($sql::VARCHAR) AS ast', { sql });
    const text = reader.getRowObjects()[0]?.ast;
    const ast = JSON.parse(String(text)) as {
      error?: boolean;
      error_message?: string;
      statements?: Array<{ node: unknown }>;
    };
    if (!ast.error && ast.statements?.length === 1) return ast.statements[0]?.node;
    let count: number;
    try {
      count = (await c.extractStatements(sql)).count;
    } catch (e) {
      throw invalid(`${what} does not parse: ${message(e)}`, undefined, e);
    }
    if (count !== 1) {
      throw invalid(`${what} must be exactly one statement; got ${count} (stacked statements are refused)`, {
        statements: count,
      });
    }
    // json_serialize_sql serialises SELECT statements only: PRAGMA, SET, COPY, ATTACH,
    // CALL, INSTALL, CREATE, DML… all end up here.
    const first = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? '?';
    throw invalid(`only a read-only SELECT query is allowed; this statement (${first} …) is not a SELECT`, {
      parser: ast.error_message,
    });
  } finally {
    c.closeSync();
  }
}

// ---------------------------------------------------------------------------------------

export interface Plan {
  views: ViewSpec[];
  stats: Pick<QueryStats, 'bytesScanned' | 'filesScanned' | 'filesPruned'>;
}

/** Validates the request and decides, from manifest stats only, which files each view reads. */
export async function plan(req: QueryRequest): Promise<Plan> {
  if (typeof req.sql !== 'string' || req.sql.trim() === '') throw invalid('the query is empty');
  const size = Buffer.byteLength(req.sql, 'utf8');
  if (size > MAX_SQL_BYTES) {
    throw invalid(`the query is ${size} bytes; at most ${MAX_SQL_BYTES} bytes of SQL are accepted`, {
      bytes: size,
      limit: MAX_SQL_BYTES,
    });
  }
  const byName = new Map(req.tables.map((t) => [t.name.toLowerCase(), t]));
  if (byName.size !== req.tables.length) throw invalid('a snapshot lists the same table twice');

  const masks = req.policy?.masks ?? {};
  const rowFilters = req.policy?.rowFilters ?? {};
  for (const t of [...Object.keys(masks), ...Object.keys(rowFilters)]) {
    if (!byName.has(t.toLowerCase())) throw invalid(`policy names table '${t}', which is not in the snapshot`);
  }
  // Columns usable for pruning: masked columns are excluded, since their file stats
  // describe raw values (pruning on them would leak raw values through stats).
  const prunable: ViewColumns = new Map();
  for (const [name, t] of byName) {
    const masked = masks[t.name] ?? {};
    prunable.set(name, new Map(t.schema.fields.filter((f) => !masked[f.name]).map((f) => [f.name, f.type])));
  }

  const ast = await parseSelect(req.sql, 'the query');
  const analysis = analyzeSelect(ast as never, prunable, req.params ?? {});

  const views: ViewSpec[] = [];
  let bytesScanned = 0;
  let filesScanned = 0;
  let filesPruned = 0;
  for (const [name, table] of byName) {
    const types = prunable.get(name) ?? new Map<string, FieldType>();
    const rowFilter = rowFilters[table.name];
    let references = analysis.references.get(name) ?? [];
    if (rowFilter !== undefined && references.length > 0) {
      // The row filter holds for every row of the view: it prunes too.
      const filterAst = await parseSelect(`SELECT 1 WHERE (${rowFilter})`, `the row filter of ${table.name}`);
      const filterPreds = rowFilterPredicates(filterAst, name, types);
      references = references.map((preds) => [...preds, ...filterPreds]);
    } else if (rowFilter !== undefined) {
      await parseSelect(`SELECT 1 WHERE (${rowFilter})`, `the row filter of ${table.name}`).then((a) =>
        analyzeSelect(a as never, new Map(), {}, { noTables: true }),
      );
    }
    const files =
      req.pruning === false
        ? references.length > 0
          ? [...table.files]
          : []
        : pruneFiles(table.files, references, types);
    if (references.length > 0) {
      filesScanned += files.length;
      filesPruned += table.files.length - files.length;
    }
    bytesScanned += files.reduce((n, f) => n + f.bytes, 0);
    views.push({ table, files, rowFilter, masks: masks[table.name] });
  }
  return { views, stats: { bytesScanned, filesScanned, filesPruned } };
}

/** Safety-checks a row filter (no table, no denied function) and returns its usable predicates. */
function rowFilterPredicates(ast: unknown, view: string, types: ReadonlyMap<string, FieldType>): Predicate[] {
  analyzeSelect(ast as never, new Map(), {}, { noTables: true });
  // Analyse `SELECT 1 FROM <view> WHERE (<filter>)` semantics by grafting the view in.
  const node = ast as { from_table?: unknown };
  const grafted = {
    ...node,
    from_table: {
      type: 'BASE_TABLE',
      alias: '',
      schema_name: view.split('.')[0],
      table_name: view.split('.')[1],
      catalog_name: '',
    },
  };
  const refs = analyzeSelect(grafted as never, new Map([[view, new Map(types)]])).references.get(view);
  return refs?.[0] ?? [];
}

// ---------------------------------------------------------------------------------------

/**
 * Prepares the user's SQL on the locked connection: the engine's own statement type must
 * be SELECT (a second opinion after the parser), and every `$name` must have a value.
 */
export async function prepareSelect(
  connection: DuckDBConnection,
  req: Pick<QueryRequest, 'sql' | 'params'>,
): Promise<{
  prepared: Awaited<ReturnType<DuckDBConnection['prepare']>>;
  values: Record<string, string | number | boolean | null>;
}> {
  let prepared: Awaited<ReturnType<DuckDBConnection['prepare']>>;
  try {
    prepared = await connection.prepare(req.sql);
  } catch (e) {
    throw invalid(`the query does not bind: ${message(e)}`, undefined, e);
  }
  if (prepared.statementType !== StatementType.SELECT) throw invalid('only a read-only SELECT query is allowed');
  const values: Record<string, string | number | boolean | null> = {};
  for (let i = 1; i <= prepared.parameterCount; i++) {
    const name = prepared.parameterName(i);
    const value = req.params?.[name];
    if (value === undefined) {
      throw invalid(`missing parameter $${name}: pass it with --param ${name}=…`, { parameter: name });
    }
    values[name] = value;
  }
  return { prepared, values };
}

/** The views with every file's local path, resolving (downloading) only the files they read. */
export async function withPaths(views: ViewSpec[], resolvePath: QueryRequest['resolvePath']): Promise<ViewSpec[]> {
  return Promise.all(
    views.map(async (v) => ({
      ...v,
      files: await Promise.all(
        v.files.map(async (f) => {
          if (f.path !== undefined) return f;
          if (!resolvePath) throw new AirlockError('INTERNAL', `snapshot file ${f.key} has no path and no resolver`);
          return { ...f, path: await resolvePath(f) };
        }),
      ),
    })),
  );
}

export function checkBytes(req: QueryRequest, p: Plan): void {
  const { bytesScanned, filesScanned, filesPruned } = p.stats;
  if (bytesScanned > req.caps.maxBytesScanned) {
    throw limitExceeded(
      `max bytes scanned exceeded: the query would scan ${bytesScanned} bytes in ${filesScanned} files (${filesPruned} pruned by min/max stats), cap maxBytesScanned=${req.caps.maxBytesScanned}; add a selective predicate or ask for a higher cap`,
      {
        cap: 'maxBytesScanned',
        limit: req.caps.maxBytesScanned,
        bytes: bytesScanned,
        files: filesScanned,
        pruned: filesPruned,
      },
    );
  }
}

export function checkCaps(req: QueryRequest): void {
  const c = req.caps;
  for (const [k, v] of Object.entries(c)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw invalid(`cap ${k} must be a finite number ≥ 0, got ${String(v)}`);
  }
}

/**
 * Runs the query and hands the columns, then row batches of at most one engine chunk,
 * to `deliver`; stops reading once `caps.maxRows` rows were delivered. Returns the stats.
 */
async function execute(
  req: QueryRequest,
  deliver: {
    columns(c: QueryColumn[]): void | Promise<void>;
    rows(r: Record<string, unknown>[]): void | Promise<void>;
  },
): Promise<QueryStats> {
  const started = performance.now();
  checkCaps(req);
  const p = await plan(req);
  checkBytes(req, p);
  const admission = req.governance
    ? await req.governance.governor.admit(req.governance.person, req.caps, p.stats.bytesScanned)
    : undefined;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  let db: Awaited<ReturnType<typeof openSnapshotDatabase>> | undefined;
  const timeoutError = () =>
    limitExceeded(
      `query timeout exceeded: interrupted after ${Math.round(performance.now() - started)} ms, cap timeoutMs=${req.caps.timeoutMs}`,
      { cap: 'timeoutMs', limit: req.caps.timeoutMs },
    );
  try {
    db = await openSnapshotDatabase(await withPaths(p.views, req.resolvePath), {
      ...req.engine,
      maskKey: req.policy?.maskKey,
    });
    const connection: DuckDBConnection = db.connection;
    const remaining = req.caps.timeoutMs - (performance.now() - started);
    if (remaining <= 0) throw timeoutError();
    timer = setTimeout(() => {
      timedOut = true;
      connection.interrupt();
    }, remaining);

    const { prepared, values } = await prepareSelect(connection, req);
    if (prepared.parameterCount > 0) prepared.bind(values);

    const result = await prepared.stream();
    const names = result.deduplicatedColumnNames();
    const columns = names.map((name, i) => ({ name, type: result.columnType(i).toString() }));
    await deliver.columns(columns);
    const maxRows = Math.floor(req.caps.maxRows);
    let delivered = 0;
    let truncated = false;
    for (;;) {
      const chunk = await result.fetchChunk();
      if (timedOut) throw timeoutError();
      if (!chunk || chunk.rowCount === 0) break;
      const room = maxRows - delivered;
      if (room <= 0 || chunk.rowCount > room) {
        truncated = true;
        if (req.onTruncate === 'refuse') {
          throw limitExceeded(
            `max rows exceeded: the result has more than ${maxRows} rows, cap maxRows=${maxRows}; add LIMIT or aggregate`,
            {
              cap: 'maxRows',
              limit: maxRows,
            },
          );
        }
      }
      const take = Math.min(room, chunk.rowCount);
      if (take > 0) {
        const rows = chunk.convertRows(jsonSafe);
        const batch: Record<string, unknown>[] = new Array(take);
        for (let r = 0; r < take; r++) {
          const row: Record<string, unknown> = {};
          const values = rows[r] ?? [];
          for (let c = 0; c < names.length; c++) row[names[c] as string] = values[c] ?? null;
          batch[r] = row;
        }
        delivered += take;
        await deliver.rows(batch);
      }
      if (truncated) break;
    }
    return { rowsReturned: delivered, ...p.stats, truncated, elapsedMs: Math.round(performance.now() - started) };
  } catch (e) {
    if (timedOut && !(isAirlockError(e) && e.code !== 'INVALID')) throw timeoutError();
    if (isAirlockError(e)) throw e;
    if (/Out of Memory/i.test(message(e))) {
      const limit = req.engine?.memoryLimit ?? '1GB';
      throw limitExceeded(
        `memory limit exceeded: the query needs more than the engine's memory (memoryLimit=${limit}) and its spill space; aggregate or filter more`,
        { cap: 'memoryLimit', limit },
      );
    }
    throw invalid(`the query failed: ${message(e)}`, undefined, e);
  } finally {
    if (timer) clearTimeout(timer);
    // Independent: the engine's teardown and the slot's release (a store write) overlap.
    await Promise.all([db?.close(), admission?.release()]);
  }
}

/**
 * Runs one read-only query over a snapshot and materialises at most `caps.maxRows` rows.
 *
 * Guarantees, in order: the SQL is at most 100 KB, exactly one statement, a SELECT by
 * DuckDB's own parser, and reads only the snapshot's tables (AST walk: no table
 * function, no file path, no other table); files are pruned by their min/max stats and
 * the bytes cap is checked from the manifest BEFORE anything is opened (refusal in
 * milliseconds whatever the table size); the person's concurrency slot and daily budget
 * are taken (when `governance` is given); the query then runs in its own locked-down
 * DuckDB whose views apply the row filters and masks, `$name` parameters bound by the
 * engine, interrupted at `caps.timeoutMs`. Past `maxRows` rows the result is truncated
 * and flagged (`stats.truncated`), or refused with `onTruncate: 'refuse'`.
 *
 * Errors: `INVALID` (malformed or disallowed SQL, naming what), `LIMIT_EXCEEDED` (naming
 * the cap and the numbers).
 *
 * @example
 * const r = await runQuery({
 *   sql: 'SELECT region, sum(amount) AS total FROM sales.orders WHERE day >= $from GROUP BY 1',
 *   params: { from: '2024-01-01' },
 *   tables: snapshotTables,
 *   caps: DEFAULT_CAPS,
 * });
 */
export async function runQuery(req: QueryRequest): Promise<QueryResult> {
  let columns: QueryColumn[] = [];
  const rows: Record<string, unknown>[] = [];
  const stats = await execute(req, {
    columns: (c) => {
      columns = c;
    },
    rows: (batch) => {
      for (const r of batch) rows.push(r);
    },
  });
  return { columns, rows, stats };
}

/**
 * Like {@link runQuery}, but hands the result to `sink` one engine chunk (≤ 2048 rows) at
 * a time, awaiting it (backpressure), and never holds the whole result. The same caps
 * apply; with `onTruncate: 'refuse'` the error comes after the first `maxRows` rows were
 * already delivered, so callers that must not emit partial output should buffer or use
 * `'flag'` (the default). Returns the columns and the stats.
 *
 * @example
 * await streamQuery(req, csvSink((text) => write(text)));
 */
export async function streamQuery(
  req: QueryRequest,
  sink: QuerySink,
): Promise<{ columns: QueryColumn[]; stats: QueryStats }> {
  let columns: QueryColumn[] = [];
  const stats = await execute(req, {
    columns: (c) => {
      columns = c;
      return sink.columns?.(c);
    },
    rows: (batch) => sink.rows(batch),
  });
  return { columns, stats };
}

/**
 * Estimates what a query would scan without running it: validates the SQL exactly as
 * {@link runQuery} does and prunes files from manifest stats. Used by `--dry-run`-style
 * callers and by tests; never opens a data file.
 */
export async function estimateQuery(
  req: Pick<QueryRequest, 'sql' | 'tables' | 'params' | 'policy' | 'pruning'>,
): Promise<Plan['stats']> {
  return (
    await plan({ ...req, caps: { maxRows: 0, maxBytesScanned: 0, timeoutMs: 0, maxConcurrent: 0, dailyBytes: 0 } })
  ).stats;
}
