/**
 * Query engine benchmark (issue 4). Run: `npx tsx bench/query.bench.ts` (not part of npm test).
 *
 * Builds a table of ≥ 10M rows in 20 Parquet files, then compares in one run:
 * - Airlock `runQuery` vs DuckDB reading the same files directly (fresh in-memory
 *   instance, same threads), for a full aggregate and a selective predicate;
 * - bytes read by the selective query (after pruning) vs the whole table;
 * - latency of a query refused by the bytes cap (manifest check, nothing opened).
 * Prints a markdown table at the end. Env: BENCH_ROWS (default 10_000_000), BENCH_FILES (20).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { DEFAULT_CAPS, parquetFileStats, runQuery, type SnapshotTable } from '../shared/query/index.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const FILES = Number(process.env.BENCH_FILES ?? 20);
const THREADS = Math.max(1, Math.min(4, availableParallelism()));
const RUNS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function time(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-query-bench-'));
  try {
    console.log(`writing ${ROWS} rows in ${FILES} files under ${dir} …`);
    const writer = await DuckDBInstance.create(':memory:', { threads: String(THREADS) });
    const w = await writer.connect();
    const per = Math.ceil(ROWS / FILES);
    const table: SnapshotTable = {
      name: 'bench.events',
      schema: {
        fields: [
          { name: 'id', type: 'Int64', nullable: false, tags: [] },
          { name: 'category', type: 'Utf8', nullable: false, tags: [] },
          { name: 'amount', type: 'Float64', nullable: false, tags: [] },
          { name: 'day', type: 'Date32', nullable: false, tags: [] },
        ],
      },
      files: [],
    };
    for (let f = 0; f < FILES; f++) {
      const path = join(dir, `part-${String(f).padStart(3, '0')}.parquet`);
      await w.run(
        `COPY (SELECT i AS id, 'c' || (hash(i) % 50) AS category, (hash(i * 7) % 100000) / 100.0::DOUBLE AS amount, DATE '2024-01-01' + (i // ${per})::INT AS day FROM range(${f * per}, ${Math.min(ROWS, (f + 1) * per)}) r(i)) TO '${path}' (FORMAT parquet)`,
      );
      table.files.push({ key: `data/${f}`, path, ...(await parquetFileStats(path)) });
    }
    w.closeSync();
    writer.closeSync();
    const totalBytes = table.files.reduce((n, f) => n + f.bytes, 0);
    const paths = table.files.map((f) => `'${f.path}'`).join(', ');
    console.log(`table: ${ROWS} rows, ${FILES} files, ${(totalBytes / 1e6).toFixed(1)} MB`);

    const caps = { ...DEFAULT_CAPS, maxRows: 1000, timeoutMs: 120_000 };
    const direct = async (sql: string) => {
      const db = await DuckDBInstance.create(':memory:', { threads: String(THREADS) });
      const c = await db.connect();
      await c.runAndReadAll(sql.replace('FROM bench.events', `FROM read_parquet([${paths}])`));
      c.closeSync();
      db.closeSync();
    };
    const airlock = (sql: string) => runQuery({ sql, tables: [table], caps, engine: { threads: THREADS } });

    const queries = {
      aggregate:
        'SELECT category, count(*) AS n, sum(amount) AS total, avg(amount) AS mean FROM bench.events GROUP BY category',
      selective: `SELECT count(*) AS n, sum(amount) AS total FROM bench.events WHERE id BETWEEN ${Math.floor(ROWS * 0.4)} AND ${Math.floor(ROWS * 0.4) + 100_000}`,
    };
    const rows: string[] = [];
    const results: Record<string, { airlock: number; direct: number; bytes: number }> = {};
    for (const [name, sql] of Object.entries(queries)) {
      await airlock(sql); // warm caches (OS page cache, parser)
      await direct(sql);
      const a: number[] = [];
      const d: number[] = [];
      let bytes = 0;
      for (let i = 0; i < RUNS; i++) {
        d.push(await time(() => direct(sql)));
        a.push(
          await time(async () => {
            bytes = (await airlock(sql)).stats.bytesScanned;
          }),
        );
      }
      results[name] = { airlock: median(a), direct: median(d), bytes };
      console.log(`${name}: airlock ${median(a).toFixed(0)} ms, direct ${median(d).toFixed(0)} ms, bytes ${bytes}`);
    }

    const refusals: number[] = [];
    for (let i = 0; i < 5; i++) {
      refusals.push(
        await time(async () => {
          const e = await runQuery({
            sql: queries.aggregate,
            tables: [table],
            caps: { ...caps, maxBytesScanned: 1024 },
          }).catch((x) => x);
          if (e?.code !== 'LIMIT_EXCEEDED') throw new Error('expected a refusal');
        }),
      );
    }
    const refused = median(refusals);

    const agg = results.aggregate;
    const sel = results.selective;
    if (!agg || !sel) throw new Error('missing results');
    rows.push('| measure | Airlock | DuckDB direct | ratio | target |');
    rows.push('|---|---|---|---|---|');
    rows.push(
      `| full aggregate, ${ROWS / 1e6}M rows / ${FILES} files (median of ${RUNS}) | ${agg.airlock.toFixed(0)} ms | ${agg.direct.toFixed(0)} ms | ${(agg.airlock / agg.direct).toFixed(2)}× | ≤ 1.2× |`,
    );
    rows.push(
      `| selective predicate (id range, median of ${RUNS}) | ${sel.airlock.toFixed(0)} ms | ${sel.direct.toFixed(0)} ms | ${(sel.airlock / sel.direct).toFixed(2)}× | — |`,
    );
    rows.push(
      `| bytes read by the selective query vs the table | ${sel.bytes} B | ${totalBytes} B | ${(sel.bytes / totalBytes).toFixed(3)} | ≤ 0.2 |`,
    );
    rows.push(`| over-cap query refused (median of 5) | ${refused.toFixed(1)} ms | — | — | < 100 ms |`);
    console.log(`\n${rows.join('\n')}\n(threads=${THREADS}, cores=${availableParallelism()})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
