import { basename } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { invalid } from '../../errors/index.js';
import { type Expectation, parseExpectationList } from './expectations.js';
import { checkTableName } from './tableName.js';

/** A parsed SQL step. The query is run later by the query engine, which binds `params`. */
export interface SqlStep {
  kind: 'sql';
  /** Absolute or caller-given path of the `.sql` file. */
  file: string;
  /** The step's name: its file name (`validate.sql`). */
  name: string;
  /** The table the step writes, from `-- output:`. */
  output: string;
  /** Expectations from every `-- expect:` line, in order. */
  expect: Expectation[];
  /** The query text: the file without its header comments. One SELECT. */
  sql: string;
  /** Names of the `$name` parameters the query uses, sorted, without `$`. */
  params: string[];
  /**
   * Schema-qualified base tables the query reads (`ns.table`), sorted — candidates for the
   * DAG; the engine resolves the authoritative list when it plans the query. CTE names
   * and unqualified names are not included.
   */
  inputs: string[];
}

const DIRECTIVE = /^--\s*([A-Za-z_]+)\s*:(.*)$/;
const KNOWN = new Set(['output', 'expect']);
const LOOKALIKES: Record<string, string> = {
  outputs: 'output',
  out: 'output',
  target: 'output',
  expects: 'expect',
  expectation: 'expect',
  expectations: 'expect',
};

let instance: Promise<DuckDBInstance> | undefined;
function duck(): Promise<DuckDBInstance> {
  // A parser only: no data is ever read by this instance, and it may read no files.
  instance ??= DuckDBInstance.create(':memory:', { enable_external_access: 'false' });
  return instance;
}

interface AstNode {
  [k: string]: unknown;
}

function walk(node: unknown, visit: (n: AstNode) => void): void {
  if (Array.isArray(node)) {
    for (const x of node) walk(x, visit);
  } else if (node !== null && typeof node === 'object') {
    visit(node as AstNode);
    for (const v of Object.values(node)) walk(v, visit);
  }
}

/** Serialises a query to DuckDB's JSON AST; refuses anything but exactly one SELECT. */
async function parseQuery(sql: string, where: string): Promise<{ params: string[]; inputs: string[] }> {
  const connection = await (await duck()).connect();
  try {
    let count: number;
    try {
      count = (await connection.extractStatements(sql)).count;
    } catch (e) {
      throw invalid(`${where}: the query does not parse: ${(e as Error).message}`, { file: where }, e);
    }
    if (count !== 1) {
      throw invalid(`${where}: a SQL step holds exactly one SELECT statement, found ${count}`, { file: where });
    }
    // Bound as a value, never spliced: the query text is data to the parser.
    const reader = await connection.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR) AS ast', [sql]);
    const text = reader.getRows()[0]?.[0];
    const ast = JSON.parse(String(text)) as { error?: boolean; error_message?: string; statements?: unknown[] };
    if (ast.error) {
      const msg = String(ast.error_message ?? 'not a SELECT');
      const hint = /only SELECT/i.test(msg) ? 'a SQL step must be a single SELECT' : msg;
      throw invalid(`${where}: ${hint}`, { file: where });
    }
    const params = new Set<string>();
    const inputs = new Set<string>();
    walk(ast.statements, (n) => {
      if (n.class === 'PARAMETER' && typeof n.identifier === 'string' && n.identifier !== '') {
        params.add(n.identifier);
      }
      if (n.type === 'BASE_TABLE' && typeof n.table_name === 'string') {
        const schema = typeof n.schema_name === 'string' ? n.schema_name : '';
        const catalog = typeof n.catalog_name === 'string' ? n.catalog_name : '';
        if (schema !== '' && catalog === '') inputs.add(`${schema}.${n.table_name}`);
        else if (catalog !== '' && schema !== '') inputs.add(`${catalog}.${schema}.${n.table_name}`);
      }
    });
    return { params: [...params].sort(), inputs: [...inputs].sort() };
  } finally {
    connection.closeSync();
  }
}

/**
 * Parses a SQL step file: header comments `-- output: ns.table` (exactly one) and
 * `-- expect: not_null(id), unique(id), min_rows(1)` (any number), then one SELECT.
 * `$name` parameters are left in the query for the engine to bind (never spliced); their
 * names are collected so a run can refuse a missing `--param` before anything executes.
 * Input tables are read from DuckDB's own parse tree (`json_serialize_sql`), not by
 * pattern-matching text, so string literals and comments cannot fake or hide one.
 *
 * @throws AirlockError `INVALID` with the file and line for a missing or repeated output,
 *   a malformed expectation, a header after the query, or a query that is not one SELECT.
 * @example
 * const step = await parseSqlStep('validate.sql', await readFile('validate.sql', 'utf8'));
 * step.output // 'ml.validate'; step.params // ['tag']; step.inputs // ['raw.events']
 */
export async function parseSqlStep(file: string, text: string): Promise<SqlStep> {
  const name = basename(file);
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const outputs: Array<{ value: string; line: number }> = [];
  const expect: Expectation[] = [];
  let bodyStart = lines.length;
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    if (!line.startsWith('--')) {
      bodyStart = i;
      break;
    }
    const m = DIRECTIVE.exec(line);
    if (!m) continue; // an ordinary comment
    const key = (m[1] as string).toLowerCase();
    const value = (m[2] as string).trim();
    const at = `${name}:${i + 1}`;
    if (key === 'output') outputs.push({ value, line: i + 1 });
    else if (key === 'expect') {
      if (value === '') throw invalid(`${at}: '-- expect:' lists no expectations`, { file });
      expect.push(...parseExpectationList(value, at));
    } else if (LOOKALIKES[key]) {
      throw invalid(`${at}: unknown header '-- ${m[1]}:'; did you mean '-- ${LOOKALIKES[key]}:'?`, { file });
    }
  }
  for (let i = bodyStart; i < lines.length; i++) {
    const m = DIRECTIVE.exec((lines[i] as string).trim());
    if (m && KNOWN.has((m[1] as string).toLowerCase())) {
      throw invalid(`${name}:${i + 1}: the '-- ${m[1]}:' header must come before the query`, { file });
    }
  }
  if (outputs.length === 0) {
    throw invalid(`${name}: missing '-- output: namespace.table' header (the table this step writes)`, { file });
  }
  if (outputs.length > 1) {
    throw invalid(
      `${name}: '-- output:' is given ${outputs.length} times (lines ${outputs.map((o) => o.line).join(', ')}); a step writes exactly one table`,
      { file },
    );
  }
  const first = outputs[0] as { value: string; line: number };
  const output = checkTableName(first.value, `${name}:${first.line}: '-- output:'`);
  const sql = lines.slice(bodyStart).join('\n').trim();
  if (sql === '') throw invalid(`${name}: no query after the header; a SQL step is one SELECT`, { file });
  const { params, inputs } = await parseQuery(sql, name);
  return { kind: 'sql', file, name, output, expect, sql, params, inputs };
}
