import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQuery, type QueryPolicy, type QueryRequest, type SnapshotTable } from '../shared/query/index.js';
import { openSnapshotDatabase } from '../shared/query/snapshotDatabase.js';
import { ParquetFixture, TEST_CAPS, field } from './query.fixtures.js';

let fx: ParquetFixture;
let orders: SnapshotTable;
let people: SnapshotTable;
let secret: SnapshotTable;
const outside = () => join(fx.dir, 'outside');

const masked: QueryPolicy = { masks: { 'sales.orders': { email: 'hash' } }, maskKey: 'lake-secret-key' };

beforeAll(async () => {
  fx = await ParquetFixture.create();
  orders = await fx.table(
    'sales.orders',
    [field('id', 'Int64'), field('email', 'Utf8', ['pii']), field('amount', 'Float64')],
    [
      "SELECT i AS id, 'user' || i || '@x.com' AS email, (i * 2)::DOUBLE AS amount FROM range(0, 100) r(i)",
      "SELECT i AS id, 'user' || i || '@x.com' AS email, (i * 2)::DOUBLE AS amount FROM range(100, 200) r(i)",
    ],
  );
  // Another table holding the raw emails, readable by the same person.
  people = await fx.table(
    'crm.people',
    [field('email', 'Utf8')],
    ["SELECT 'user' || i || '@x.com' AS email FROM range(0, 200) r(i)"],
  );
  // A table that is NOT in the snapshot: its files must stay unreachable.
  secret = await fx.table('hr.salaries', [field('salary', 'Int64')], ['SELECT 1000000 AS salary']);
});
afterAll(() => fx.close());

const query = (sql: string, extra: Partial<QueryRequest> = {}) =>
  runQuery({ sql, tables: [orders, people], caps: TEST_CAPS, ...extra });

async function refused(sql: string, pattern: RegExp, extra: Partial<QueryRequest> = {}) {
  const before = readdirSync(fx.dir).sort();
  const error = await query(sql, extra).then(
    () => undefined,
    (e: unknown) => e as { code?: string; message?: string },
  );
  expect(error, `not refused: ${sql.slice(0, 80)}`).toBeDefined();
  expect(error?.code).toBe('INVALID');
  expect(error?.message).toMatch(pattern);
  expect(readdirSync(fx.dir).sort()).toEqual(before); // nothing written next to the data
  expect(existsSync(outside())).toBe(false);
}

describe('attacks on the query engine are refused with a clear error', () => {
  it('refuses read_csv of /etc/passwd', () =>
    refused("SELECT * FROM read_csv('/etc/passwd')", /table function read_csv\(\) is not allowed/));
  it('refuses read_text', () =>
    refused("SELECT content FROM read_text('/etc/passwd')", /table function read_text\(\) is not allowed/));
  it('refuses glob', () => refused("SELECT * FROM glob('/*')", /table function glob\(\) is not allowed/));
  it('refuses a table function hidden in a scalar subquery', () =>
    refused(
      "SELECT (SELECT count(*) FROM read_csv('/etc/passwd')) AS n FROM sales.orders",
      /read_csv\(\) is not allowed/,
    ));
  it('refuses a table function hidden in a CTE', () =>
    refused("WITH x AS (SELECT * FROM read_blob('/etc/passwd')) SELECT * FROM x", /read_blob\(\) is not allowed/));
  it('refuses a bare file path (replacement scan)', () =>
    refused("SELECT * FROM '/etc/passwd'", /unknown table '\/etc\/passwd'/));
  it('refuses COPY … TO', () =>
    refused(
      `COPY (SELECT * FROM sales.orders) TO '${outside()}' (FORMAT csv)`,
      /only a read-only SELECT query is allowed.*COPY/,
    ));
  it('refuses ATTACH', () => refused(`ATTACH '${outside()}' AS o`, /not a SELECT/));
  it('refuses INSTALL', () => refused('INSTALL httpfs', /not a SELECT/));
  it('refuses LOAD', () => refused('LOAD parquet', /not a SELECT/));
  it('refuses PRAGMA (which a prepared statement would report as a SELECT)', () =>
    refused('PRAGMA show_tables', /not a SELECT/));
  it('refuses SET', () => refused('SET enable_external_access = true', /not a SELECT/));
  it('refuses CALL', () => refused('CALL pragma_version()', /not a SELECT/));
  it('refuses stacked statements', () => refused('SELECT 1; DROP VIEW sales.orders', /exactly one statement; got 2/));
  it('refuses a data-modifying CTE', () =>
    refused('WITH d AS (DELETE FROM sales.orders RETURNING *) SELECT * FROM d', /does not parse|not a SELECT/));
  it('refuses getenv', () => refused("SELECT getenv('HOME') AS h", /function getenv\(\) is not allowed/));
  it('refuses current_setting (which would reveal the allowed paths)', () =>
    refused("SELECT current_setting('allowed_paths') AS p", /function current_setting\(\) is not allowed/));
  it('refuses CREATE MACRO', () => refused('CREATE MACRO f(x) AS x + 1', /not a SELECT/));
  it('refuses EXPLAIN (which could reveal view definitions)', () =>
    refused('EXPLAIN SELECT * FROM sales.orders', /not a SELECT/));
  it('refuses system catalogs', () =>
    refused('SELECT * FROM information_schema.tables', /unknown table 'information_schema.tables'/));
  it('refuses duckdb_views(), which would reveal the mask key', () =>
    refused('SELECT sql FROM duckdb_views()', /duckdb_views\(\) is not allowed/));
  it("refuses reading another table's files by path", async () => {
    const path = secret.files[0]?.path as string;
    await refused(`SELECT * FROM '${path}'`, /unknown table/);
    await refused(`SELECT * FROM read_parquet('${path}')`, /read_parquet\(\) is not allowed/);
  });
  it("refuses reading this table's own files by path (which would bypass masks and row filters)", async () => {
    const path = orders.files[0]?.path as string;
    await refused(`SELECT email FROM '${path}'`, /unknown table/, { policy: masked });
    await refused(`SELECT email FROM parquet_scan('${path}')`, /parquet_scan\(\) is not allowed/, { policy: masked });
  });
  it('refuses a CTE name that is not in scope where a file name is used', () =>
    refused("SELECT * FROM (WITH a AS (SELECT 1) SELECT * FROM a) s, '/etc/passwd'", /unknown table '\/etc\/passwd'/));
  it('refuses a 1 MB SQL string before parsing it', async () => {
    const sql = `SELECT 1 AS x -- ${'a'.repeat(1024 * 1024)}`;
    await refused(sql, /at most 100000 bytes/);
  });
});

describe('the engine lockdown is an independent second layer', () => {
  it('refuses files outside the snapshot even for SQL that skipped the AST check', async () => {
    const db = await openSnapshotDatabase([{ table: orders, files: orders.files }]);
    try {
      const c = db.connection;
      await expect(c.run("SELECT * FROM read_csv('/etc/passwd')")).rejects.toThrow(/disabled|Permission|not allowed/i);
      await expect(c.run(`SELECT * FROM read_parquet('${secret.files[0]?.path}')`)).rejects.toThrow(
        /disabled|Permission|not allowed/i,
      );
      await expect(c.run(`COPY (SELECT 1) TO '${outside()}'`)).rejects.toThrow(/disabled|Permission|not allowed/i);
      await expect(c.run('SET enable_external_access = true')).rejects.toThrow(/lock|configuration/i);
      await expect(c.run("SELECT getenv('HOME')")).rejects.toThrow(/disabled|not allowed|does not exist|Catalog/i);
      // While the snapshot's own files stay readable through the views.
      const r = await c.runAndReadAll('SELECT count(*) AS n FROM sales.orders');
      expect(Number(r.getRowObjects()[0]?.n)).toBe(200);
      expect(existsSync(outside())).toBe(false);
    } finally {
      await db.close();
    }
  });
});

describe('a masked column never exposes its raw value', () => {
  const policy = masked;
  it('shows a 64-hex keyed hash instead of the value', async () => {
    const r = await query('SELECT email FROM sales.orders WHERE id = 1', { policy });
    expect(r.rows[0]?.email).toMatch(/^[0-9a-f]{64}$/);
    expect(r.rows[0]?.email).not.toContain('user1');
  });
  it('cannot be recovered by hashing a guess (sha256, md5, hash)', async () => {
    const r = await query(
      "SELECT count(*) FILTER (WHERE email = sha256('user1@x.com')) AS a, count(*) FILTER (WHERE email = md5('user1@x.com')) AS b, count(*) FILTER (WHERE hash(email) = hash('user1@x.com')) AS c FROM sales.orders",
      { policy },
    );
    expect(r.rows[0]).toEqual({ a: 0, b: 0, c: 0 });
  });
  it('cannot be recovered by joining with a table that holds raw values', async () => {
    const r = await query('SELECT count(*) AS n FROM sales.orders o JOIN crm.people p ON o.email = p.email', {
      policy,
    });
    expect(r.rows[0]?.n).toBe(0);
  });
  it('cannot be probed with LIKE, comparisons or casts', async () => {
    const r = await query(
      "SELECT count(*) FILTER (WHERE email LIKE 'user%') AS l, count(*) FILTER (WHERE email = 'user1@x.com') AS e, count(*) FILTER (WHERE CAST(email AS BLOB)::VARCHAR LIKE '%@x.com') AS c, count(DISTINCT length(email)) AS lengths FROM sales.orders",
      { policy },
    );
    expect(r.rows[0]).toEqual({ l: 0, e: 0, c: 0, lengths: 1 });
  });
  it('aggregates see only hashes', async () => {
    const r = await query(
      "SELECT min(email) AS lo, max(email) AS hi, string_agg(email, ',') AS all_ FROM sales.orders",
      { policy },
    );
    expect(String(r.rows[0]?.all_)).not.toMatch(/@x\.com/);
    expect(r.rows[0]?.lo).toMatch(/^[0-9a-f]{64}$/);
  });
  it('does not prune on a masked column (file stats would reveal raw values)', async () => {
    const r = await query("SELECT count(*) AS n FROM sales.orders WHERE email = 'zzz'", { policy });
    expect(r.rows[0]?.n).toBe(0);
    expect(r.stats.filesPruned).toBe(0);
    const unmasked = await query("SELECT count(*) AS n FROM sales.orders WHERE email = 'zzz'");
    expect(unmasked.stats.filesPruned).toBe(2); // the raw stats would have told
  });
  it('a null mask shows NULL of the column type', async () => {
    const r = await query('SELECT count(email) AS n, typeof(any_value(email)) AS t FROM sales.orders', {
      policy: { masks: { 'sales.orders': { email: 'null' } } },
    });
    expect(r.rows[0]).toEqual({ n: 0, t: 'VARCHAR' });
  });
  it('hashes join across tables masked with the same key', async () => {
    const r = await query('SELECT count(*) AS n FROM sales.orders o JOIN crm.people p ON o.email = p.email', {
      policy: { masks: { 'sales.orders': { email: 'hash' }, 'crm.people': { email: 'hash' } }, maskKey: 'k' },
    });
    expect(r.rows[0]?.n).toBe(200);
  });
});
