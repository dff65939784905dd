/**
 * Query engine benchmark (issue 4). Run: `npx tsx bench/query.bench.ts` (not part of npm test).
 *
 * Builds a lake with one table of ≥ 10M rows in 20 Parquet files (imported with
 * `Lake.importTable`), then compares in one run, on the SAME files:
 * - DuckDB direct: a fresh in-memory DuckDB per query (DuckDB's defaults, the same
 *   thread count as Airlock) running the query over `read_parquet([…the table's files…])`;
 * - Airlock engine: `runQuery` from `shared/query` (parse, prune, caps, locked-down DuckDB);
 * - Airlock lake: `Lake.query`, the path the CLI and HTTP take (ref resolution, the
 *   person's caps from the catalog store, concurrency slot and daily budget, engine);
 * for a full aggregate and a selective predicate; then the bytes the selective query reads
 * after pruning vs the table, and the latency of a query refused by the bytes cap.
 *
 * The three are interleaved, in a rotating order, RUNS times; medians and minimums are
 * reported. On a shared machine the minimum is the least disturbed run (the closest to
 * the intrinsic cost); the median shows what a loaded machine gives. The load average at
 * start and end is printed and written with the table to `bench/results/query.md`.
 *
 * Env: BENCH_ROWS (default 10_000_000), BENCH_FILES (20), BENCH_RUNS (9), BENCH_KEEP=1.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import type { Actor } from '../shared/catalog/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { DEFAULT_CAPS, runQuery, type SnapshotTable } from '../shared/query/index.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const FILES = Number(process.env.BENCH_FILES ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
/** What `Lake.query` uses by default (shared/query/snapshotDatabase.ts); the baseline gets the same. */
const THREADS = Math.max(1, Math.min(4, availableParallelism()));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const min = (xs: number[]) => Math.min(...xs);
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');

/** Linux CPU pressure (share of time some task waited for a CPU, last 60 s), when available. */
function cpuPressure(): string {
  try {
    const some = /some avg10=[\d.]+ avg60=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return some ? ` · CPU pressure ${some[1]}% (60 s)` : '';
  } catch {
    return '';
  }
}

async function time(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

/** Writes the source files: ids in order, so an id range prunes to few files. */
async function writeSources(dir: string): Promise<string[]> {
  const writer = await DuckDBInstance.create(':memory:', { threads: String(THREADS) });
  const w = await writer.connect();
  const per = Math.ceil(ROWS / FILES);
  const paths: string[] = [];
  for (let f = 0; f < FILES; f++) {
    const path = join(dir, `part-${String(f).padStart(3, '0')}.parquet`);
    await w.run(
      `COPY (SELECT i AS id, 'c' || (hash(i) % 50) AS category, (hash(i * 7) % 100000) / 100.0::DOUBLE AS amount, DATE '2024-01-01' + (i // ${per})::INT AS day FROM range(${f * per}, ${Math.min(ROWS, (f + 1) * per)}) r(i)) TO '${path}' (FORMAT parquet)`,
    );
    paths.push(path);
  }
  w.closeSync();
  writer.closeSync();
  return paths;
}

async function main() {
  const started = new Date();
  const loadAtStart = load();
  const machine = `nproc ${availableParallelism()} · threads ${THREADS} (Airlock and baseline) · load average at start ${loadAtStart}${cpuPressure()}`;
  console.log(`query bench: ${machine}`);
  const dir = await mkdtemp(join(tmpdir(), 'airlock-query-bench-'));
  let lake: Lake | undefined;
  try {
    console.log(`writing ${ROWS} rows in ${FILES} files and importing them into a lake under ${dir} …`);
    mkdirSync(join(dir, 'src'));
    const sources = await writeSources(join(dir, 'src'));
    lake = (await Lake.init({ backend: 'local', dir: join(dir, 'lake') })).lake;
    const owner: Actor = { person: lake.owner };
    await lake.catalog.createBranch('bench', 'main', owner);
    for (const file of sources) await lake.importTable(owner, { table: 'bench.events', file, branch: 'bench' });
    await rm(join(dir, 'src'), { recursive: true, force: true });

    // The exact files of the table's version: what every contender reads.
    const { version } = await lake.catalog.getTable('bench', 'bench.events');
    const objects = lake.stores.objects;
    const table: SnapshotTable = {
      name: 'bench.events',
      schema: version.schema,
      files: await Promise.all(version.files.map(async (f) => ({ ...f, path: await objects.localPath(f.key) }))),
    };
    const totalBytes = table.files.reduce((n, f) => n + f.bytes, 0);
    const paths = table.files.map((f) => `'${f.path}'`).join(', ');
    console.log(`table: ${version.rowCount} rows, ${table.files.length} files, ${(totalBytes / 1e6).toFixed(1)} MB`);

    const caps = { ...DEFAULT_CAPS, maxRows: 1000, timeoutMs: 120_000 };
    const contenders: Record<string, (sql: string) => Promise<number | undefined>> = {
      direct: async (sql) => {
        const db = await DuckDBInstance.create(':memory:', { threads: String(THREADS) });
        const c = await db.connect();
        await c.runAndReadAll(sql.replace('FROM bench.events', `FROM read_parquet([${paths}])`));
        c.closeSync();
        db.closeSync();
        return undefined;
      },
      engine: async (sql) =>
        (await runQuery({ sql, tables: [table], caps, engine: { threads: THREADS } })).stats.bytesScanned,
      lake: async (sql) => (await (lake as Lake).query(owner, { sql, ref: 'bench' })).stats.bytesScanned,
    };
    const names = Object.keys(contenders);

    const queries = {
      aggregate:
        'SELECT category, count(*) AS n, sum(amount) AS total, avg(amount) AS mean FROM bench.events GROUP BY category',
      selective: `SELECT count(*) AS n, sum(amount) AS total FROM bench.events WHERE id BETWEEN ${Math.floor(ROWS * 0.4)} AND ${Math.floor(ROWS * 0.4) + 100_000}`,
    };
    const results: Record<string, { times: Record<string, number[]>; bytes: number }> = {};
    for (const [query, sql] of Object.entries(queries)) {
      for (const name of names) await contenders[name]?.(sql); // warm: page cache, parser, lake caches
      const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
      let bytes = 0;
      for (let i = 0; i < RUNS; i++) {
        // Rotate the order so that no contender always runs right after another.
        for (let k = 0; k < names.length; k++) {
          const name = names[(i + k) % names.length] as string;
          times[name]?.push(
            await time(async () => {
              bytes = (await contenders[name]?.(sql)) ?? bytes;
            }),
          );
        }
      }
      results[query] = { times, bytes };
      console.log(
        `${query}: ${names.map((n) => `${n} median ${ms(median(times[n] ?? []))} / min ${ms(min(times[n] ?? []))} ms`).join(', ')}`,
      );
    }

    // Refusals by the bytes cap: from manifest stats, before any file is opened.
    const engineRefusals: number[] = [];
    const lakeRefusals: number[] = [];
    await lake.setQueryCaps(owner, { person: 'capped' }, { maxBytesScanned: 1024 });
    const capped: Actor = { person: 'capped', agent: 'bench' };
    for (let i = 0; i < 7; i++) {
      engineRefusals.push(
        await time(async () => {
          const e = await runQuery({
            sql: queries.aggregate,
            tables: [table],
            caps: { ...caps, maxBytesScanned: 1024 },
          }).catch((x) => x);
          if (e?.code !== 'LIMIT_EXCEEDED') throw new Error('expected a refusal');
        }),
      );
      lakeRefusals.push(
        await time(async () => {
          const e = await (lake as Lake).query(capped, { sql: queries.aggregate, ref: 'bench' }).catch((x) => x);
          if (e?.code !== 'LIMIT_EXCEEDED' || e.details?.cap !== 'maxBytesScanned')
            throw new Error('expected a refusal');
        }),
      );
    }

    const agg = results.aggregate;
    const sel = results.selective;
    if (!agg || !sel) throw new Error('missing results');
    const row = (label: string, r: { times: Record<string, number[]> }, name: string, target: string) => {
      const a = r.times[name] ?? [];
      const d = r.times.direct ?? [];
      return `| ${label} | ${ms(median(a))} / ${ms(min(a))} ms | ${ms(median(d))} / ${ms(min(d))} ms | ${(median(a) / median(d)).toFixed(2)}× / ${(min(a) / min(d)).toFixed(2)}× | ${target} |`;
    };
    const shape = `${ROWS / 1e6}M rows / ${table.files.length} files`;
    const rows = [
      '| measure | Airlock (median / min) | DuckDB direct (median / min) | ratio (median / min) | target |',
      '|---|---|---|---|---|',
      row(`full aggregate, ${shape}, \`Lake.query\` (${RUNS} runs)`, agg, 'lake', '≤ 1.2×'),
      row(`full aggregate, ${shape}, \`runQuery\` engine only (${RUNS} runs)`, agg, 'engine', '≤ 1.2×'),
      row(`selective predicate (id range), \`Lake.query\` (${RUNS} runs)`, sel, 'lake', '—'),
      row(`selective predicate (id range), \`runQuery\` (${RUNS} runs)`, sel, 'engine', '—'),
      `| bytes read by the selective query vs the table | ${sel.bytes} B | ${totalBytes} B | ${(sel.bytes / totalBytes).toFixed(3)} | ≤ 0.2 |`,
      `| over-cap query refused, \`Lake.query\` (median / max of 7) | ${ms(median(lakeRefusals))} / ${ms(Math.max(...lakeRefusals))} ms | — | — | < 100 ms |`,
      `| over-cap query refused, \`runQuery\` (median / max of 7) | ${ms(median(engineRefusals))} / ${ms(Math.max(...engineRefusals))} ms | — | — | < 100 ms |`,
    ];
    const loadAtEnd = load();
    const env = ['BENCH_ROWS', 'BENCH_FILES', 'BENCH_RUNS']
      .filter((k) => process.env[k] !== undefined)
      .map((k) => `${k}=${process.env[k]} `)
      .join('');
    const report = [
      '# Query benchmark',
      '',
      `Run ${started.toISOString()} · ${machine} · load average at end ${loadAtEnd} · Node ${process.version} · \`${env}npx tsx bench/query.bench.ts\``,
      '',
      ...rows,
      '',
      "All contenders read the same Parquet files (the lake's objects of the table version). DuckDB direct is a fresh in-memory DuckDB per query with its default settings and the same thread count, reading `read_parquet([…files…])`; Airlock creates a fresh locked-down DuckDB per query as well. Runs are interleaved in rotating order; the minimum is the least disturbed run on a shared machine, the median what the load gave.",
      '',
    ].join('\n');
    console.log(`\n${rows.join('\n')}\n(load average at start ${loadAtStart}, at end ${loadAtEnd})`);
    const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'query.md');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, report);
    console.log(`wrote ${out}`);
  } finally {
    await lake?.close();
    if (process.env.BENCH_KEEP !== '1') await rm(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
}

await main();
