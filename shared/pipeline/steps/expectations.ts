import { invalid } from '../../errors/index.js';

/**
 * A data expectation a step declares on its output. Expectations are strict: the run
 * fails when one does not hold (evaluating them is the run's job, not the parser's).
 */
export type Expectation =
  | { kind: 'not_null'; column: string }
  | { kind: 'unique'; columns: string[] }
  | { kind: 'min_rows'; count: number }
  | { kind: 'max_rows'; count: number };

const COLUMN = /^[a-z_][a-z0-9_]{0,62}$/;
const CALL = /^([a-z_]+)\s*\(([^()]*)\)$/;

const USAGE = 'not_null(col), unique(col[, col…]), min_rows(n), max_rows(n)';

function columnArg(raw: string, text: string, where: string): string {
  const c = raw.trim();
  if (!COLUMN.test(c)) {
    throw invalid(`${where}: expectation '${text}' names an invalid column '${c}' (lowercase letters, digits, _)`, {
      expectation: text,
    });
  }
  return c;
}

/**
 * Parses one expectation such as `not_null(id)` or `min_rows(1)`.
 *
 * @param where names the step for the error message (e.g. the file).
 * @throws AirlockError `INVALID` naming the expectation and the accepted forms.
 */
export function parseExpectation(text: string, where: string): Expectation {
  const t = text.trim();
  const m = CALL.exec(t);
  if (!m) throw invalid(`${where}: cannot parse expectation '${t}'; expected one of ${USAGE}`, { expectation: t });
  const fn = m[1] as string;
  const args = (m[2] as string).split(',').map((a) => a.trim());
  const argc = args.length === 1 && args[0] === '' ? 0 : args.length;
  switch (fn) {
    case 'not_null':
      if (argc !== 1) throw invalid(`${where}: not_null takes one column, got '${t}'`, { expectation: t });
      return { kind: 'not_null', column: columnArg(args[0] as string, t, where) };
    case 'unique': {
      if (argc < 1) throw invalid(`${where}: unique takes one or more columns, got '${t}'`, { expectation: t });
      const columns = args.map((a) => columnArg(a, t, where));
      if (new Set(columns).size !== columns.length) {
        throw invalid(`${where}: unique lists a column twice in '${t}'`, { expectation: t });
      }
      return { kind: 'unique', columns };
    }
    case 'min_rows':
    case 'max_rows': {
      const n = argc === 1 && /^\d{1,15}$/.test(args[0] as string) ? Number(args[0]) : Number.NaN;
      if (!Number.isSafeInteger(n)) {
        throw invalid(`${where}: ${fn} takes one non-negative integer, got '${t}'`, { expectation: t });
      }
      return { kind: fn, count: n };
    }
    default:
      throw invalid(`${where}: unknown expectation '${fn}' in '${t}'; expected one of ${USAGE}`, { expectation: t });
  }
}

/**
 * Parses a comma-separated list (the text of a `-- expect:` header): commas inside
 * parentheses separate arguments, commas outside separate expectations.
 *
 * @example
 * parseExpectationList('not_null(id), unique(id, day), min_rows(1)', 'validate.sql')
 */
export function parseExpectationList(text: string, where: string): Expectation[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if (depth < 0 || depth > 1) throw invalid(`${where}: unbalanced parentheses in expectations '${text.trim()}'`);
    if (ch === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) throw invalid(`${where}: unbalanced parentheses in expectations '${text.trim()}'`);
  parts.push(text.slice(start));
  const items = parts.map((p) => p.trim());
  if (items.some((p) => p === '')) throw invalid(`${where}: empty expectation in '${text.trim()}'`);
  return items.map((p) => parseExpectation(p, where));
}

/** The canonical text of an expectation (`unique(a, b)`), for logs and run events. */
export function formatExpectation(e: Expectation): string {
  switch (e.kind) {
    case 'not_null':
      return `not_null(${e.column})`;
    case 'unique':
      return `unique(${e.columns.join(', ')})`;
    default:
      return `${e.kind}(${e.count})`;
  }
}
