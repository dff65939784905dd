import type { QueryColumn, QueryResult, QuerySink } from './types.js';

/** Output formats of a materialised result. */
export type RowFormat = 'json' | 'csv' | 'table';

const jsonText = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/** One CSV field per RFC 4180: quoted when it holds a comma, quote, CR/LF or edge spaces. */
function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = jsonText(v);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV lines (CRLF-free `\n` endings) for a batch of rows, in column order. */
function csvLines(columns: readonly QueryColumn[], rows: readonly Record<string, unknown>[]): string {
  let out = '';
  for (const row of rows) out += `${columns.map((c) => csvField(row[c.name])).join(',')}\n`;
  return out;
}

const csvHeader = (columns: readonly QueryColumn[]) => `${columns.map((c) => csvField(c.name)).join(',')}\n`;

const MAX_CELL = 60;
function cell(v: unknown): string {
  const s = v === null || v === undefined ? 'NULL' : jsonText(v).replace(/[\r\n\t]/g, ' ');
  return s.length > MAX_CELL ? `${s.slice(0, MAX_CELL - 1)}…` : s;
}

/**
 * Renders a result. `json` is the CLI/HTTP shape `{"columns","rows","stats"}`; `csv` is a
 * header line plus one line per row (RFC 4180 quoting, NULL as an empty field); `table`
 * is an aligned text table for people (cells cut at 60 characters), with a footer that
 * says how many rows and whether they were truncated.
 *
 * @example
 * process.stdout.write(formatRows(await runQuery(req), 'csv'));
 */
export function formatRows(result: QueryResult, format: RowFormat): string {
  switch (format) {
    case 'json':
      return JSON.stringify({ columns: result.columns, rows: result.rows, stats: result.stats });
    case 'csv':
      return csvHeader(result.columns) + csvLines(result.columns, result.rows);
    case 'table': {
      const names = result.columns.map((c) => c.name);
      const body = result.rows.map((r) => names.map((n) => cell(r[n])));
      const widths = names.map((n, i) => Math.max(n.length, ...body.map((b) => (b[i] ?? '').length)));
      const line = (cells: string[]) =>
        cells
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join(' | ')
          .trimEnd();
      const sep = widths.map((w) => '-'.repeat(w)).join('-+-');
      const footer = `(${result.stats.rowsReturned} row${result.stats.rowsReturned === 1 ? '' : 's'}${
        result.stats.truncated ? ', truncated at the row cap' : ''
      })`;
      return [line(names), sep, ...body.map(line), footer].join('\n') + '\n';
    }
  }
}

/**
 * A {@link QuerySink} that writes CSV (header first) through `write`, one batch at a
 * time, for `streamQuery`: the result is never held whole.
 */
export function csvSink(write: (text: string) => void | Promise<void>): QuerySink {
  let columns: QueryColumn[] = [];
  return {
    columns: (cols) => {
      columns = cols;
      return write(csvHeader(cols));
    },
    rows: (batch) => write(csvLines(columns, batch)),
  };
}

/** A {@link QuerySink} that writes JSON Lines (one object per row) through `write`. */
export function jsonLinesSink(write: (text: string) => void | Promise<void>): QuerySink {
  return { rows: (batch) => write(batch.map((r) => `${JSON.stringify(r)}\n`).join('')) };
}
