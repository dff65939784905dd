/**
 * SQL redaction for audit entries: every literal becomes `?`, every comment disappears,
 * and what is left — keywords, identifiers, operators, parameters — says what a query did
 * without holding the values it compared against (a customer's email, a card number).
 *
 * Why a tokenizer and not DuckDB's parser: the audit trail must record denied and
 * malformed requests too, and DuckDB's `json_serialize_sql` refuses anything that is not
 * a well-formed SELECT; it also costs an engine call per request on the enforcement path.
 * The tokenizer below knows exactly the lexical rules that decide where a literal starts
 * and ends in DuckDB (and PostgreSQL) SQL, and fails safe: an unterminated literal or
 * comment swallows the rest of the text.
 */

/** What a redacted literal becomes. */
export const REDACTED_LITERAL = '?';

/** Letters that turn a following `'…'` into one literal: E'…' (escapes), X'…' (hex), B'…' (bits), N'…', R'…'. */
const STRING_PREFIXES = new Set(['E', 'X', 'B', 'N', 'R']);

const NUMBER =
  /(?:0[xX][0-9A-Fa-f_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)/y;
const DOLLAR_TAG = /\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const PARAMETER = /\$(?:\d+|[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)/y;
const WORD = /[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/y;

/** The index just after a quoted literal opened at `start` (the quote), `''` escaping; `\` too when `backslash`. */
function endOfQuoted(sql: string, start: number, quote: string, backslash: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (backslash && c === '\\') {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (sql[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i += 1;
  }
  return sql.length; // unterminated: the rest is part of the literal
}

/** The index just after a block comment opened at `start`; block comments nest, as in DuckDB and PostgreSQL. */
function endOfBlockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.startsWith('/*', i)) {
      depth += 1;
      i += 2;
    } else if (sql.startsWith('*/', i)) {
      depth -= 1;
      i += 2;
      if (depth === 0) return i;
    } else i += 1;
  }
  return sql.length;
}

function matchAt(pattern: RegExp, sql: string, at: number): string | undefined {
  pattern.lastIndex = at;
  return pattern.exec(sql)?.[0];
}

const isWordChar = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c);

/**
 * Replaces every string, number, bit, hex and dollar-quoted literal of `sql` with `?`,
 * and every comment with one space. Identifiers (bare and `"quoted"`), keywords,
 * operators and parameters (`$1`, `$name`, `?`) are kept verbatim. Redacting twice gives
 * the same text as redacting once.
 *
 * @example
 * redactSql("SELECT * FROM crm.customers WHERE email = 'ann@example.com' AND age > 40 -- vip")
 * // → "SELECT * FROM crm.customers WHERE email = ? AND age > ?  "
 */
export function redactSql(sql: string): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end;
      out += ' ';
    } else if (c === '/' && sql[i + 1] === '*') {
      i = endOfBlockComment(sql, i);
      out += ' ';
    } else if (c === "'") {
      i = endOfQuoted(sql, i, "'", false);
      out += REDACTED_LITERAL;
    } else if (c === '"') {
      const end = endOfQuoted(sql, i, '"', false);
      out += sql.slice(i, end);
      i = end;
    } else if (c === '$') {
      const tag = matchAt(DOLLAR_TAG, sql, i);
      const param = matchAt(PARAMETER, sql, i);
      if (tag !== undefined && !(param !== undefined && param.length >= tag.length)) {
        const close = sql.indexOf(tag, i + tag.length);
        i = close < 0 ? sql.length : close + tag.length;
        out += REDACTED_LITERAL;
      } else if (param !== undefined) {
        out += param;
        i += param.length;
      } else {
        out += c;
        i += 1;
      }
    } else if (/\d/.test(c) || (c === '.' && /\d/.test(sql[i + 1] ?? '') && !isWordChar(sql[i - 1]))) {
      const number = matchAt(NUMBER, sql, i) ?? c;
      i += number.length;
      // A number glued to letters (`1e`, `12abc`) is one malformed token: keep it all out.
      while (isWordChar(sql[i])) i += 1;
      out += REDACTED_LITERAL;
    } else {
      const word = matchAt(WORD, sql, i);
      if (word === undefined) {
        out += c;
        i += 1;
        continue;
      }
      const after = i + word.length;
      const upper = word.toUpperCase();
      if (STRING_PREFIXES.has(upper) && sql[after] === "'") {
        i = endOfQuoted(sql, after, "'", upper === 'E');
        out += REDACTED_LITERAL;
      } else if (upper === 'U' && sql[after] === '&' && sql[after + 1] === "'") {
        i = endOfQuoted(sql, after + 1, "'", false);
        out += REDACTED_LITERAL;
      } else {
        out += word;
        i = after;
      }
    }
  }
  return out;
}
