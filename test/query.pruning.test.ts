import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateQuery, runQuery, type SnapshotTable } from '../shared/query/index.js';
import { ParquetFixture, TEST_CAPS, field } from './query.fixtures.js';

let fx: ParquetFixture;
let events: SnapshotTable;

// Five files: id ranges [0,100), [100,200), …; day per file; kind 'a'…'e' per file.
beforeAll(async () => {
  fx = await ParquetFixture.create();
  events = await fx.table(
    'raw.events',
    [
      field('id', 'Int64'),
      field('kind', 'Utf8'),
      field('day', 'Date32'),
      field('score', 'Float64'),
      field('flag', 'Bool'),
    ],
    Array.from(
      { length: 5 },
      (_, f) =>
        `SELECT i AS id, '${'abcde'[f]}' AS kind, DATE '2024-01-0${f + 1}' AS day, (i / 10)::DOUBLE AS score, ${f % 2 === 0} AS flag FROM range(${f * 100}, ${f * 100 + 100}) r(i)`,
    ),
  );
});
afterAll(() => fx.close());

const bytesOf = (...files: number[]) => files.reduce((n, i) => n + (events.files[i]?.bytes ?? 0), 0);
const estimate = (sql: string, params?: Record<string, string | number | boolean | null>) =>
  estimateQuery({ sql, tables: [events], params });

describe('pruning by manifest min/max stats', () => {
  it.each([
    ['SELECT * FROM raw.events WHERE id = 150', [1]],
    ['SELECT * FROM raw.events WHERE id BETWEEN 120 AND 250', [1, 2]],
    ['SELECT * FROM raw.events WHERE id IN (5, 420)', [0, 4]],
    ['SELECT * FROM raw.events WHERE id >= 400', [4]],
    ['SELECT * FROM raw.events WHERE 100 > id', [0]],
    ["SELECT * FROM raw.events WHERE kind = 'c'", [2]],
    ["SELECT * FROM raw.events WHERE day >= DATE '2024-01-04'", [3, 4]],
    ['SELECT * FROM raw.events WHERE score < 10', [0]],
    ['SELECT * FROM raw.events WHERE NOT (id < 400)', [4]], // the parser rewrites it to id >= 400
    ["SELECT * FROM raw.events e WHERE e.id < 100 AND e.kind = 'a'", [0]],
    ['SELECT count(*) FROM (SELECT * FROM raw.events WHERE id > 350) s', [3, 4]],
  ])('%s reads only the files that may match', async (sql, files) => {
    const stats = await estimate(sql);
    expect(stats.filesScanned).toBe(files.length);
    expect(stats.filesPruned).toBe(5 - files.length);
    expect(stats.bytesScanned).toBe(bytesOf(...files)); // file-granular
  });

  it('prunes with a bound parameter value', async () => {
    expect((await estimate('SELECT * FROM raw.events WHERE id = $x', { x: 333 })).filesScanned).toBe(1);
  });

  it.each([
    "SELECT * FROM raw.events WHERE id = 5 OR kind = 'e'",
    "SELECT * FROM raw.events WHERE NOT (id < 100 AND kind = 'a')",
    'SELECT * FROM raw.events WHERE id + 0 = 5',
    'SELECT * FROM raw.events WHERE score > 1000', // NaN would match: never pruned on floats
    // Two references: the second needs every file, so the view keeps them all.
    'SELECT * FROM raw.events a JOIN raw.events b USING (kind) WHERE a.id = 5',
  ])('does not prune when unsure: %s', async (sql) => {
    expect((await estimate(sql)).filesPruned).toBe(0);
  });

  it('reports what was actually read in stats.bytesScanned', async () => {
    const r = await runQuery({
      sql: 'SELECT count(*) AS n FROM raw.events WHERE id BETWEEN 120 AND 250',
      tables: [events],
      caps: TEST_CAPS,
    });
    expect(r.rows).toEqual([{ n: 131 }]);
    expect(r.stats).toMatchObject({ filesScanned: 2, filesPruned: 3, bytesScanned: bytesOf(1, 2) });
  });

  it('row filters prune too', async () => {
    const stats = await estimateQuery({
      sql: 'SELECT * FROM raw.events',
      tables: [events],
      policy: { rowFilters: { 'raw.events': "kind = 'b'" } },
    });
    expect(stats.filesScanned).toBe(1);
  });

  it('a pruned query returns exactly what the unpruned query returns (property)', async () => {
    const column = fc.constantFrom('id', 'score', 'kind', 'day');
    const literalFor = (c: string) =>
      c === 'kind'
        ? fc.constantFrom("'a'", "'b'", "'c'", "'e'", "'z'", "''")
        : c === 'day'
          ? fc.integer({ min: 0, max: 7 }).map((d) => `DATE '2024-01-0${d + 1}'`)
          : c === 'score'
            ? fc.integer({ min: -5, max: 55 }).map(String)
            : fc.integer({ min: -50, max: 550 }).map(String);
    const comparison = column.chain((c) =>
      fc.oneof(
        fc.tuple(fc.constantFrom('=', '<', '<=', '>', '>=', '<>'), literalFor(c)).map(([op, v]) => `${c} ${op} ${v}`),
        fc.tuple(literalFor(c), literalFor(c)).map(([a, b]) => `${c} BETWEEN ${a} AND ${b}`),
        fc.array(literalFor(c), { minLength: 1, maxLength: 3 }).map((vs) => `${c} IN (${vs.join(', ')})`),
      ),
    );
    const where = fc.oneof(
      fc.array(comparison, { minLength: 1, maxLength: 3 }).map((cs) => cs.join(' AND ')),
      fc.tuple(comparison, comparison).map(([a, b]) => `(${a}) OR (${b})`),
    );
    await fc.assert(
      fc.asyncProperty(where, async (w) => {
        const sql = `SELECT id, kind, day, score FROM raw.events WHERE ${w} ORDER BY id`;
        const pruned = await runQuery({ sql, tables: [events], caps: TEST_CAPS });
        const full = await runQuery({ sql, tables: [events], caps: TEST_CAPS, pruning: false });
        expect(pruned.rows).toEqual(full.rows);
        expect(full.stats.filesPruned).toBe(0);
      }),
      { numRuns: 25 },
    );
  });
});
