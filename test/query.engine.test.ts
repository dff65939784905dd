import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  arrowIpcSink,
  csvSink,
  encodeArrowIpc,
  formatRows,
  parquetFileStats,
  runQuery,
  streamQuery,
  type QueryRequest,
  type SnapshotTable,
} from '../shared/query/index.js';
import { ParquetFixture, TEST_CAPS, field } from './query.fixtures.js';

let fx: ParquetFixture;
let orders: SnapshotTable;
let empty: SnapshotTable;

beforeAll(async () => {
  fx = await ParquetFixture.create();
  orders = await fx.table(
    'sales.orders',
    [field('id', 'Int64'), field('region', 'Utf8'), field('amount', 'Float64'), field('day', 'Date32')],
    [
      "SELECT i AS id, CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END AS region, (i * 2)::DOUBLE AS amount, DATE '2024-01-01' + (i % 10)::INT AS day FROM range(0, 1000) r(i)",
      "SELECT i AS id, 'eu' AS region, NULL::DOUBLE AS amount, DATE '2024-02-01' AS day FROM range(1000, 2000) r(i)",
    ],
  );
  empty = { name: 'sales.returns', schema: { fields: [field('id', 'Int64'), field('reason', 'Utf8')] }, files: [] };
});
afterAll(() => fx.close());

const req = (sql: string, extra: Partial<QueryRequest> = {}): QueryRequest => ({
  sql,
  tables: [orders, empty],
  caps: TEST_CAPS,
  ...extra,
});

describe('runQuery', () => {
  it('answers SQL over the snapshot views with typed columns', async () => {
    const r = await runQuery(
      req('SELECT region, count(*) AS n, sum(amount) AS total FROM sales.orders GROUP BY region ORDER BY region'),
    );
    expect(r.columns).toEqual([
      { name: 'region', type: 'VARCHAR' },
      { name: 'n', type: 'BIGINT' },
      { name: 'total', type: 'DOUBLE' },
    ]);
    expect(r.rows).toEqual([
      { region: 'eu', n: 1500, total: 499000 },
      { region: 'us', n: 500, total: 500000 },
    ]);
    expect(r.stats).toMatchObject({ rowsReturned: 2, filesScanned: 2, filesPruned: 0, truncated: false });
    expect(r.stats.bytesScanned).toBe(orders.files.reduce((n, f) => n + f.bytes, 0));
  });

  it('queries a table with zero files with its schema and zero rows', async () => {
    const r = await runQuery(req('SELECT * FROM sales.returns'));
    expect(r.columns).toEqual([
      { name: 'id', type: 'BIGINT' },
      { name: 'reason', type: 'VARCHAR' },
    ]);
    expect(r.rows).toEqual([]);
    expect(r.stats.bytesScanned).toBe(0);
  });

  it('binds $name parameters in the engine (a quote in a value is data, not SQL)', async () => {
    const r = await runQuery(
      req('SELECT count(*) AS n, $who AS who FROM sales.orders WHERE id < $max', {
        params: { max: 10, who: "O'Brien'; DROP" },
      }),
    );
    expect(r.rows).toEqual([{ n: 10, who: "O'Brien'; DROP" }]);
  });

  it('refuses a query whose parameter is missing, naming it', async () => {
    await expect(runQuery(req('SELECT * FROM sales.orders WHERE id = $wanted'))).rejects.toMatchObject({
      code: 'INVALID',
      message: expect.stringMatching(/missing parameter \$wanted/),
    });
  });

  it('applies the row filter inside the view', async () => {
    const r = await runQuery(
      req('SELECT count(*) AS n FROM sales.orders', { policy: { rowFilters: { 'sales.orders': "region = 'us'" } } }),
    );
    expect(r.rows).toEqual([{ n: 500 }]);
  });

  it('refuses a row filter that reads another table', async () => {
    await expect(
      runQuery(
        req('SELECT 1 AS x FROM sales.orders', {
          policy: { rowFilters: { 'sales.orders': "id IN (SELECT id FROM read_csv('/etc/passwd'))" } },
        }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID' });
  });

  it('truncates at maxRows and flags it by default', async () => {
    const r = await runQuery(req('SELECT id FROM sales.orders ORDER BY id', { caps: { ...TEST_CAPS, maxRows: 5 } }));
    expect(r.rows.map((x) => x.id)).toEqual([0, 1, 2, 3, 4]);
    expect(r.stats).toMatchObject({ rowsReturned: 5, truncated: true });
  });

  it('does not flag a result of exactly maxRows rows', async () => {
    const r = await runQuery(req('SELECT id FROM sales.orders LIMIT 5', { caps: { ...TEST_CAPS, maxRows: 5 } }));
    expect(r.stats).toMatchObject({ rowsReturned: 5, truncated: false });
  });

  it("refuses a result over maxRows with onTruncate 'refuse', naming the cap", async () => {
    await expect(
      runQuery(req('SELECT id FROM sales.orders', { caps: { ...TEST_CAPS, maxRows: 5 }, onTruncate: 'refuse' })),
    ).rejects.toMatchObject({
      code: 'LIMIT_EXCEEDED',
      message: expect.stringMatching(/max rows exceeded.*maxRows=5/),
    });
  });

  it('refuses from manifest stats, before execution, a query over maxBytesScanned', async () => {
    // A huge fake manifest: 20 000 files that do not even exist: had anything been opened or
    // executed, the error would be an I/O error, not the cap. (Speed is measured in bench/query.)
    const huge: SnapshotTable = {
      name: 'big.events',
      schema: { fields: [field('id', 'Int64')] },
      files: Array.from({ length: 20_000 }, (_, i) => ({
        key: `k${i}`,
        path: `/nonexistent/${i}.parquet`,
        rows: 1_000_000,
        bytes: 100_000_000,
        columns: { id: { min: i * 1_000_000, max: i * 1_000_000 + 999_999, nulls: 0 } },
      })),
    };
    const error = await runQuery({
      sql: 'SELECT count(*) FROM big.events',
      tables: [huge],
      caps: { ...TEST_CAPS, maxBytesScanned: 10 ** 9 },
    }).catch((e) => e);
    expect(error).toMatchObject({ code: 'LIMIT_EXCEEDED' });
    expect(error.message).toMatch(
      /max bytes scanned exceeded: the query would scan 2000000000000 bytes in 20000 files.*maxBytesScanned=1000000000/,
    );
  });

  it('interrupts a query that runs past timeoutMs', async () => {
    const started = performance.now();
    const error = await runQuery(
      req('SELECT count(*) FROM range(100000000000) a(x), sales.orders WHERE x % 7 = id', {
        caps: { ...TEST_CAPS, timeoutMs: 1500 },
      }),
    ).catch((e) => e);
    expect(error).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      message: expect.stringMatching(/query timeout exceeded.*timeoutMs=1500/),
    });
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it('reads schema-evolved files (a column added later is NULL in older files)', async () => {
    const older = await fx.table('ev.t', [field('id', 'Int64')], ['SELECT 1::BIGINT AS id']);
    const newer = await fx.table(
      'ev.t2',
      [field('id', 'Int64'), field('note', 'Utf8')],
      ["SELECT 2::BIGINT AS id, 'hi' AS note"],
    );
    const table: SnapshotTable = { name: 'ev.t', schema: newer.schema, files: [...older.files, ...newer.files] };
    const r = await runQuery({ sql: 'SELECT id, note FROM ev.t ORDER BY id', tables: [table], caps: TEST_CAPS });
    expect(r.rows).toEqual([
      { id: 1, note: null },
      { id: 2, note: 'hi' },
    ]);
  });

  it('returns Int64 beyond 2^53 as exact strings', async () => {
    const r = await runQuery(req('SELECT 9007199254740993::BIGINT AS big, 7::BIGINT AS small'));
    expect(r.rows).toEqual([{ big: '9007199254740993', small: 7 }]);
  });
});

describe('memory', () => {
  it('scans more data than the memory limit, and a query that cannot fit fails cleanly, not the process', async () => {
    // 1M rows of 96-character strings (~100 MB of text) under a 64 MB engine limit.
    const big = await fx.table(
      'mem.wide',
      [field('id', 'Int64'), field('pad', 'Utf8')],
      [
        'SELECT i AS id, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) || md5((i + 2)::VARCHAR) AS pad FROM range(0, 1000000) r(i)',
      ],
    );
    const engine = { memoryLimit: '64MB', threads: 1 };
    const scanned = await runQuery({
      sql: 'SELECT count(*) AS n, count(DISTINCT length(pad)) AS l, max(id) AS hi FROM mem.wide',
      tables: [big],
      caps: TEST_CAPS,
      engine,
    });
    expect(scanned.rows).toEqual([{ n: 1_000_000, l: 1, hi: 999_999 }]);
    // A full sort needs the data in memory or on disk: it either completes or is refused
    // with a clear LIMIT_EXCEEDED naming the memory limit — the process survives either way.
    const outcome = await runQuery({
      sql: 'SELECT pad FROM mem.wide ORDER BY pad',
      tables: [big],
      caps: { ...TEST_CAPS, maxRows: 2 },
      engine,
    }).then(
      (r) => r.stats.rowsReturned,
      (e) => e,
    );
    if (typeof outcome === 'number') expect(outcome).toBe(2);
    else
      expect(outcome).toMatchObject({
        code: 'LIMIT_EXCEEDED',
        message: expect.stringMatching(/memory limit exceeded.*64MB/),
      });
    const after = await runQuery(req('SELECT count(*) AS n FROM sales.orders'));
    expect(after.rows).toEqual([{ n: 2000 }]);
  });

  it('streams a large result chunk by chunk instead of holding it', async () => {
    let rows = 0;
    let maxBatch = 0;
    const { stats } = await streamQuery(req('SELECT a.id, b.id AS id2 FROM sales.orders a, range(50) b(id)'), {
      rows: (batch) => {
        rows += batch.length;
        maxBatch = Math.max(maxBatch, batch.length);
      },
    });
    expect(rows).toBe(100_000);
    expect(maxBatch).toBeLessThanOrEqual(2048);
    expect(stats.rowsReturned).toBe(100_000);
  });
});

describe('output formats', () => {
  const result = {
    columns: [
      { name: 'id', type: 'BIGINT' },
      { name: 'note', type: 'VARCHAR' },
    ],
    rows: [
      { id: 1, note: 'plain' },
      { id: 2, note: 'a, "quoted"\nline' },
      { id: 3, note: null },
    ],
    stats: { rowsReturned: 3, bytesScanned: 10, filesScanned: 1, filesPruned: 0, truncated: false, elapsedMs: 1 },
  };

  it('renders json in the CLI shape', () => {
    const parsed = JSON.parse(formatRows(result, 'json'));
    expect(Object.keys(parsed)).toEqual(['columns', 'rows', 'stats']);
    expect(parsed.stats).toMatchObject({ rowsReturned: 3, bytesScanned: 10 });
  });

  it('renders csv with RFC 4180 quoting and NULL as empty', () => {
    expect(formatRows(result, 'csv')).toBe('id,note\n1,plain\n2,"a, ""quoted""\nline"\n3,\n');
  });

  it('renders an aligned table with a row-count footer', () => {
    const text = formatRows(result, 'table');
    expect(text.split('\n')[0]).toBe('id | note');
    expect(text).toContain('3  | NULL');
    expect(text.trimEnd().endsWith('(3 rows)')).toBe(true);
  });

  it('encodes Arrow IPC that round-trips with typed columns', () => {
    const table = tableFromIPC(encodeArrowIpc(result));
    expect(table.numRows).toBe(3);
    expect(String(table.schema.fields[0]?.type)).toBe('Int64');
    expect(table.getChild('note')?.get(1)).toBe('a, "quoted"\nline');
  });

  it('streams CSV and Arrow IPC from streamQuery', async () => {
    let csv = '';
    await streamQuery(
      req('SELECT id, region FROM sales.orders WHERE id < 3 ORDER BY id'),
      csvSink((t) => {
        csv += t;
      }),
    );
    expect(csv).toBe('id,region\n0,eu\n1,us\n2,eu\n');

    const ipc = arrowIpcSink();
    const done = streamQuery(req('SELECT id, day FROM sales.orders ORDER BY id'), ipc.sink).finally(() => ipc.finish());
    const parts: Uint8Array[] = [];
    for await (const bytes of ipc.output) parts.push(bytes);
    await done;
    const table = tableFromIPC(Buffer.concat(parts));
    expect(table.numRows).toBe(2000);
    expect(Number(table.getChild('id')?.get(1999))).toBe(1999);
  });
});

describe('parquetFileStats', () => {
  it('reads rows, bytes and per-column min/max/nulls from the footer', async () => {
    const path = await fx.write(
      'stats.parquet',
      "SELECT i AS id, CASE WHEN i % 3 = 0 THEN NULL ELSE 'v' || i END AS s, DATE '2024-03-01' + i::INT AS d FROM range(10, 30) r(i)",
      8,
    );
    const stats = await parquetFileStats(path);
    expect(stats.rows).toBe(20);
    expect(stats.bytes).toBeGreaterThan(0);
    expect(stats.columns.id).toEqual({ min: 10, max: 29, nulls: 0 });
    expect(stats.columns.s).toEqual({ min: 'v10', max: 'v29', nulls: 6 }); // 12, 15, … 27
    expect(stats.columns.d).toEqual({ min: '2024-03-11', max: '2024-03-30', nulls: 0 });
  });
});
