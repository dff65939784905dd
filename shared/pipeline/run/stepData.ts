import { randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withConnection } from '../../data/duckdbSession.js';
import { sqlIdent, sqlString } from '../../data/duckdbTypes.js';
import type { QueryCaps, QueryPolicy, SnapshotTable } from '../../query/index.js';
import type { CodeStepInput, Expectation } from '../steps/index.js';
import { formatExpectation } from '../steps/index.js';

const queryEngine = () => import('../../query/index.js');
const parquet = () => import('parquet-wasm');

/** A staged file path that the caller removes. */
export function stagingPath(stagingDir: string, ext: string): string {
  return join(stagingDir, `step-${randomUUID()}.${ext}`);
}

/**
 * Runs a SQL step's query over the snapshot tables it reads and writes the whole result
 * to a staged Parquet file. The query engine enforces one SELECT over the given tables.
 */
export async function materializeSql(
  sql: string,
  tables: SnapshotTable[],
  params: Record<string, string>,
  caps: QueryCaps,
  stagingDir: string,
  policy?: QueryPolicy,
): Promise<{ path: string; rows: number; bytesScanned: number }> {
  const path = stagingPath(stagingDir, 'parquet');
  const { materializeQuery } = await queryEngine();
  try {
    const r = await materializeQuery(
      { sql, tables, params, caps, ...(policy ? { policy: onlyTables(policy, tables) } : {}) },
      path,
    );
    return { path, rows: r.rows, bytesScanned: r.stats.bytesScanned };
  } catch (e) {
    await rm(path, { force: true });
    throw e;
  }
}

/**
 * Reads one declared input of a code step as Arrow IPC stream bytes: the declared columns
 * only, and only the rows matching its `filter` (pushed down into the engine, which
 * parses the predicate as part of a checked SELECT over that one table).
 */
export async function readInputIpc(
  input: CodeStepInput,
  table: SnapshotTable,
  caps: QueryCaps,
  stagingDir: string,
  policy?: QueryPolicy,
): Promise<Uint8Array> {
  const [ns, name] = input.table.split('.') as [string, string];
  const columns = input.columns ? input.columns.map(sqlIdent).join(', ') : '*';
  const sql = `SELECT ${columns} FROM ${sqlIdent(ns)}.${sqlIdent(name)}${input.filter ? ` WHERE (${input.filter}\n)` : ''}`;
  const staged = await materializeSql(sql, [table], {}, caps, stagingDir, policy);
  try {
    const { readParquet } = await parquet();
    return readParquet(await readFile(staged.path)).intoIPCStream();
  } finally {
    await rm(staged.path, { force: true });
  }
}

/** The part of a reader policy about the given tables (the engine refuses policy for absent tables). */
function onlyTables(policy: QueryPolicy, tables: SnapshotTable[]): QueryPolicy {
  const names = new Set(tables.map((t) => t.name));
  const pick = <T>(r: Record<string, T> | undefined) =>
    Object.fromEntries(Object.entries(r ?? {}).filter(([k]) => names.has(k)));
  return { ...policy, masks: pick(policy.masks), rowFilters: pick(policy.rowFilters) };
}

/** Writes a step's output (Arrow IPC stream bytes) as a staged Parquet file. */
export async function writeOutputParquet(ipc: Uint8Array, stagingDir: string): Promise<string> {
  const { Compression, Table, WriterPropertiesBuilder, writeParquet } = await parquet();
  const path = stagingPath(stagingDir, 'parquet');
  // A staging file: uncompressed is cheapest here; the committed file is rewritten compressed.
  const props = new WriterPropertiesBuilder().setCompression(Compression.UNCOMPRESSED).build();
  await writeFile(path, writeParquet(Table.fromIPCStream(ipc), props));
  return path;
}

/** An expectation that did not hold, with what was found. */
export interface ExpectationFailure {
  expectation: string;
  found: string;
}

/**
 * Checks a step's expectations on its raw output file, before anything else looks at it
 * (strict: every failure is reported, with what was found).
 */
export async function checkExpectations(
  expectations: readonly Expectation[],
  path: string,
): Promise<ExpectationFailure[]> {
  if (expectations.length === 0) return [];
  const source = `read_parquet(${sqlString(path)})`;
  return withConnection(async (c) => {
    const columns = new Set(
      (await c.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjects().map((r) => String(r.column_name)),
    );
    const rows = Number((await c.runAndReadAll(`SELECT count(*) FROM ${source}`)).getRows()[0]?.[0] ?? 0);
    const failures: ExpectationFailure[] = [];
    for (const e of expectations) {
      const text = formatExpectation(e);
      const wanted = e.kind === 'not_null' ? [e.column] : e.kind === 'unique' ? e.columns : [];
      const missing = wanted.filter((col) => !columns.has(col));
      let found: string | undefined;
      if (missing.length > 0) found = `the output has no column ${missing.join(', ')}`;
      else if (e.kind === 'min_rows' && rows < e.count) found = `${rows} rows`;
      else if (e.kind === 'max_rows' && rows > e.count) found = `${rows} rows`;
      else if (e.kind === 'not_null') {
        const r = await c.runAndReadAll(`SELECT count(*) FROM ${source} WHERE ${sqlIdent(e.column)} IS NULL`);
        const n = Number(r.getRows()[0]?.[0] ?? 0);
        if (n > 0) found = `${n} null value${n === 1 ? '' : 's'}`;
      } else if (e.kind === 'unique') {
        const cols = e.columns.map(sqlIdent).join(', ');
        const r = await c.runAndReadAll(
          `SELECT count(*), any_value(k) FROM (SELECT CAST(row(${cols}) AS VARCHAR) AS k FROM ${source} GROUP BY ${cols} HAVING count(*) > 1)`,
        );
        const [n, example] = r.getRows()[0] ?? [0, null];
        if (Number(n) > 0) found = `${Number(n)} duplicated key${Number(n) === 1 ? '' : 's'}, e.g. ${String(example)}`;
      }
      if (found) failures.push({ expectation: text, found });
    }
    return failures;
  });
}
