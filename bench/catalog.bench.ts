/**
 * Catalog benchmark (issue 2). Run: `npx tsx bench/catalog.bench.ts` (not part of npm test).
 *
 * Everything runs on real embedded lakes (SQLite catalog + local object files) in a temp
 * directory, and every figure is printed next to a baseline measured in the same run:
 * 1. commit latency (one small overwrite on a branch) vs a raw durable SQLite write;
 * 2. branch create latency vs the same raw write;
 * 3. merge latency with 10 / 100 / 1,000 tables changed on the source, fast-forward and
 *    three-way (the target moved on an unrelated table), vs committing those changes;
 * 4. commit and merge latency, and store reads, at a target history of 10 vs 10,000
 *    commits (target ratio ≤ 1.2), interleaved between the two lakes (histories are built
 *    through the normal commit path with fsync off, then measured with it on);
 * 5. import throughput of a 1M-row CSV vs DuckDB's own `COPY … TO parquet` of the same
 *    file, alternating repetitions (target ≥ 0.7×).
 *
 * Catalog-only timings use manifest entries for data files that do not exist: the catalog
 * never reads data for commits and merges. Merges and the history comparison use a fresh
 * `Catalog` on the lake's open store (cold document cache), as a one-shot CLI call would;
 * sections 1–2 use the lake's long-lived catalog (warm), as a server would.
 *
 * Prints a markdown table and writes it to `bench/results/catalog.md`.
 * Env: BENCH_COMMITS (200), BENCH_BRANCHES (200), BENCH_HISTORY (10000),
 * BENCH_HISTORY_BUDGET_S (240: above this projected build time, the long history drops to
 * 5,000 and the report says so), BENCH_CSV_ROWS (1000000), BENCH_KEEP=1 keeps the temp dir.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import Database from 'better-sqlite3';
import { Catalog, type Actor, type DataFile, type TableChange, type TableSchema } from '../shared/catalog/index.js';
import { DuckDbConstraintValidator } from '../shared/data/index.js';
import { Lake } from '../shared/lake/Lake.js';
import type { CatalogStore } from '../shared/store/ports.js';

const COMMITS = Number(process.env.BENCH_COMMITS ?? 200);
const BRANCHES = Number(process.env.BENCH_BRANCHES ?? 200);
const HISTORY = Number(process.env.BENCH_HISTORY ?? 10_000);
const HISTORY_FALLBACK = Math.min(HISTORY, 5_000);
const HISTORY_BUDGET_MS = Number(process.env.BENCH_HISTORY_BUDGET_S ?? 240) * 1000;
const SHORT_HISTORY = 10;
const CSV_ROWS = Number(process.env.BENCH_CSV_ROWS ?? 1_000_000);
const MERGE_SIZES: Array<{ tables: number; reps: number }> = [
  { tables: 10, reps: 5 },
  { tables: 100, reps: 5 },
  { tables: 1000, reps: 3 },
];
const HISTORY_REPS = 10;
const HISTORY_COMMITS = 30;
const IMPORT_REPS = 3;

const actor: Actor = { person: 'bench' };

// ------------------------------------------------------------------ statistics

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
/** Nearest-rank percentile. */
function percentile(xs: number[], p: number): number {
  const s = sorted(xs);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}
const median = (xs: number[]) => percentile(xs, 50);

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await f();
  return { ms: performance.now() - t, value };
}

const ms = (x: number) => (x >= 100 ? `${x.toFixed(0)} ms` : x >= 10 ? `${x.toFixed(1)} ms` : `${x.toFixed(2)} ms`);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const perSecond = (x: number) => `${(x / 1e6).toFixed(2)} M rows/s`;

// ------------------------------------------------------------------ fake data files

const schema: TableSchema = {
  fields: [
    { name: 'id', type: 'Int64', nullable: false, tags: [] },
    { name: 'amount', type: 'Float64', nullable: true, tags: [] },
  ],
};

let fileCounter = 0;
/** A manifest entry for a data file that exists only in the catalog. */
function fakeFile(rows = 10): DataFile {
  fileCounter += 1;
  return {
    key: `data/bench/f-${fileCounter}.parquet`,
    rows,
    bytes: rows * 16,
    columns: { id: { min: 0, max: rows, nulls: 0 } },
  };
}

/** Replaces a table with one small file (`base` null creates it). */
function overwrite(table: string, base: string | null): TableChange {
  const file = fakeFile();
  return {
    kind: 'put',
    table,
    base,
    version: {
      schema,
      constraints: { unique: [] },
      files: [file],
      rowCount: file.rows,
      bytes: file.bytes,
      op: base ? 'overwrite' : 'create',
    },
  };
}

const tableName = (i: number) => `bench.t${String(i).padStart(4, '0')}`;

// ------------------------------------------------------------------ lakes and catalogs

/** A store wrapper counting reads (get, getMany, query), as the catalog tests do. */
function countingStore(inner: CatalogStore): { store: CatalogStore; reads: () => number } {
  let reads = 0;
  const store: CatalogStore = {
    get(key) {
      reads++;
      return inner.get(key);
    },
    getMany(keys) {
      reads++;
      return inner.getMany(keys);
    },
    query(pk, options) {
      reads++;
      return inner.query(pk, options);
    },
    put: (item, condition) => inner.put(item, condition),
    transact: (ops, token) => inner.transact(ops, token),
    close: () => inner.close(),
  };
  return { store, reads: () => reads };
}

/** A fresh catalog on the lake's open store: cold document cache, store reads counted. */
function coldCatalog(lake: Lake): { catalog: Catalog; reads: () => number } {
  const { store, reads } = countingStore(lake.stores.store);
  const catalog = new Catalog(store, lake.stores.objects, {
    validator: new DuckDbConstraintValidator(lake.stores.objects),
  });
  return { catalog, reads };
}

async function newLake(root: string, name: string): Promise<Lake> {
  return (await Lake.init({ backend: 'local', dir: join(root, name) })).lake;
}

/** The current version id of a table on a branch (null when absent). */
async function versionOf(catalog: Catalog, branch: string, table: string): Promise<string | null> {
  const { commit } = await catalog.resolve(branch);
  return (await catalog.treeOf(commit)).tables[table] ?? null;
}

/** Overwrites `table` on `branch` once (tracking its base). */
async function commitOverwrite(catalog: Catalog, branch: string, table: string, message = `overwrite ${table}`) {
  const base = await versionOf(catalog, branch, table);
  return catalog.commit(branch, [overwrite(table, base)], { actor, message });
}

/**
 * The floor under a durable embedded write: one small INSERT in its own IMMEDIATE
 * transaction, on a separate SQLite file with the catalog's settings (WAL,
 * synchronous=FULL). Returns a function timing one write, to interleave with Airlock's.
 */
function rawSqliteWriter(path: string): { write: () => number; close: () => void } {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(
    'CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, d TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID',
  );
  const insert = db.prepare('INSERT INTO items (pk, sk, d) VALUES (?, ?, ?)');
  const tx = db.transaction((i: number) =>
    insert.run('log#x', String(i).padStart(12, '0'), JSON.stringify({ i, pad: 'x'.repeat(400) })),
  );
  let i = 0;
  return {
    write: () => {
      const t = performance.now();
      tx.immediate(i++);
      return performance.now() - t;
    },
    close: () => db.close(),
  };
}

/**
 * Build-only shortcut: switches fsync off (or back on) on the catalog's own SQLite
 * connection. Building a long history then runs the very same commit path without
 * waiting for the disk (which other work on a shared machine can stall for hundreds of
 * ms); every measured operation runs with `synchronous = FULL` again.
 */
function setSynchronous(lake: Lake, mode: 'OFF' | 'FULL'): void {
  const db = (lake.stores.store as unknown as { db?: Database.Database }).db;
  if (!db) throw new Error('the embedded store no longer exposes its SQLite connection; update bench/catalog.bench.ts');
  db.pragma(`synchronous = ${mode}`);
}

// ------------------------------------------------------------------ report

interface Row {
  measure: string;
  airlock: string;
  baseline: string;
  ratio: string;
  target: string;
}

const rows: Row[] = [];
const parts: Array<{ part: string; seconds: number }> = [];
const notes: string[] = [];

async function part(name: string, f: () => Promise<void>): Promise<void> {
  console.log(`\n== ${name}`);
  const t = performance.now();
  await f();
  const seconds = (performance.now() - t) / 1000;
  parts.push({ part: name, seconds });
  console.log(`   (${seconds.toFixed(1)} s)`);
}

function table(): string {
  const lines = ['| measure | Airlock | baseline | ratio | target |', '|---|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.measure} | ${r.airlock} | ${r.baseline} | ${r.ratio} | ${r.target} |`);
  return lines.join('\n');
}

// ------------------------------------------------------------------ 1 + 2: commit and branch create

async function commitAndBranch(root: string): Promise<void> {
  const lake = await newLake(root, 'commits');
  try {
    const { catalog } = lake;
    await catalog.createBranch('work', 'main', actor);
    await commitOverwrite(catalog, 'work', 'bench.c');
    for (let i = 0; i < 10; i++) await commitOverwrite(catalog, 'work', 'bench.c'); // warm-up
    // Airlock and the raw write alternate, so both see the same disk and load.
    const raw = rawSqliteWriter(join(root, 'raw.db'));
    const commit: number[] = [];
    const rawCommit: number[] = [];
    let base = await versionOf(catalog, 'work', 'bench.c');
    for (let i = 0; i < COMMITS; i++) {
      const change = overwrite('bench.c', base);
      const { ms: t, value } = await timed(() => catalog.commit('work', [change], { actor, message: `c${i}` }));
      commit.push(t);
      rawCommit.push(raw.write());
      base = (await catalog.treeOf(value.commit)).tables['bench.c'] ?? null;
    }
    const create: number[] = [];
    const rawCreate: number[] = [];
    for (let i = 0; i < BRANCHES; i++) {
      create.push((await timed(() => catalog.createBranch(`b/${i}`, 'work', actor))).ms);
      rawCreate.push(raw.write());
    }
    raw.close();
    const rawLabel = 'raw SQLite write (WAL, sync=FULL), interleaved';
    console.log(
      `   commit p50 ${ms(median(commit))} p99 ${ms(percentile(commit, 99))}; raw write p50 ${ms(median(rawCommit))} p99 ${ms(percentile(rawCommit, 99))}`,
    );
    console.log(
      `   branch create p50 ${ms(median(create))} p99 ${ms(percentile(create, 99))}; raw write p50 ${ms(median(rawCreate))} p99 ${ms(percentile(rawCreate, 99))}`,
    );
    rows.push(
      {
        measure: `commit latency p50 (${COMMITS} one-table overwrites)`,
        airlock: ms(median(commit)),
        baseline: `${ms(median(rawCommit))} ${rawLabel}`,
        ratio: ratio(median(commit), median(rawCommit)),
        target: '—',
      },
      {
        measure: 'commit latency p99',
        airlock: ms(percentile(commit, 99)),
        baseline: ms(percentile(rawCommit, 99)),
        ratio: ratio(percentile(commit, 99), percentile(rawCommit, 99)),
        target: '—',
      },
      {
        measure: `branch create p50 (${BRANCHES} branches)`,
        airlock: ms(median(create)),
        baseline: `${ms(median(rawCreate))} ${rawLabel}`,
        ratio: ratio(median(create), median(rawCreate)),
        target: '—',
      },
      {
        measure: 'branch create p99',
        airlock: ms(percentile(create, 99)),
        baseline: ms(percentile(rawCreate, 99)),
        ratio: ratio(percentile(create, 99), percentile(rawCreate, 99)),
        target: '—',
      },
    );
  } finally {
    await lake.close();
  }
}

// ------------------------------------------------------------------ 3: merge at 10 / 100 / 1,000 tables

async function mergeByTables(root: string): Promise<void> {
  const lake = await newLake(root, 'merges');
  try {
    const maxTables = Math.max(...MERGE_SIZES.map((s) => s.tables));
    await lake.catalog.createBranch('seed', 'main', actor);
    const seed: TableChange[] = [overwrite('bench.other', null)];
    for (let i = 0; i < maxTables; i++) seed.push(overwrite(tableName(i), null));
    await lake.catalog.commit('seed', seed, { actor, message: `create ${seed.length} tables` });
    await lake.catalog.merge('seed', 'main', { actor, message: 'seed' });

    /** Commits overwrites of N tables on a new branch from main; returns the commit time (cold catalog). */
    const prepareSource = async (branch: string, n: number): Promise<number> => {
      await lake.catalog.createBranch(branch, 'main', actor);
      const { catalog } = coldCatalog(lake);
      const { commit } = await catalog.resolve(branch);
      const tree = await catalog.treeOf(commit);
      const changes = Array.from({ length: n }, (_, i) => overwrite(tableName(i), tree.tables[tableName(i)] ?? null));
      return (await timed(() => catalog.commit(branch, changes, { actor, message: `change ${n} tables` }))).ms;
    };
    const timedMerge = async (branch: string, expected: string) => {
      const { catalog, reads } = coldCatalog(lake);
      const { ms: t, value } = await timed(() => catalog.merge(branch, 'main', { actor, message: `merge ${branch}` }));
      if (value.status !== expected) throw new Error(`merge of ${branch}: expected ${expected}, got ${value.status}`);
      return { ms: t, reads: reads() };
    };

    for (const { tables: n, reps } of MERGE_SIZES) {
      const ff: number[] = [];
      const three: number[] = [];
      const commitMs: number[] = [];
      const reads = { ff: 0, three: 0 };
      for (let r = 0; r < reps; r++) {
        // fast-forward: main has not moved since the source branched
        commitMs.push(await prepareSource(`ff-${n}-${r}`, n));
        const a = await timedMerge(`ff-${n}-${r}`, 'fast-forward');
        ff.push(a.ms);
        reads.ff = a.reads;
        // three-way: main moves on an unrelated table (by merging another branch) after the source branched
        commitMs.push(await prepareSource(`tw-${n}-${r}`, n));
        await lake.catalog.createBranch(`mv-${n}-${r}`, 'main', actor);
        await commitOverwrite(lake.catalog, `mv-${n}-${r}`, 'bench.other');
        await lake.catalog.merge(`mv-${n}-${r}`, 'main', { actor, message: 'move main' });
        const b = await timedMerge(`tw-${n}-${r}`, 'merged');
        three.push(b.ms);
        reads.three = b.reads;
      }
      const c = median(commitMs);
      console.log(
        `   ${n} tables: ff p50 ${ms(median(ff))}, three-way p50 ${ms(median(three))}, commit of the changes p50 ${ms(c)}; store reads ff ${reads.ff}, three-way ${reads.three}`,
      );
      rows.push(
        {
          measure: `merge fast-forward, ${n} tables changed, p50 of ${reps} (store reads)`,
          airlock: `${ms(median(ff))} (${reads.ff})`,
          baseline: `${ms(c)} commit of the ${n} changes`,
          ratio: ratio(median(ff), c),
          target: '—',
        },
        {
          measure: `merge three-way, ${n} tables changed, p50 of ${reps} (store reads)`,
          airlock: `${ms(median(three))} (${reads.three})`,
          baseline: `${ms(c)} commit of the ${n} changes`,
          ratio: ratio(median(three), c),
          target: '—',
        },
      );
    }
  } finally {
    await lake.close();
  }
}

// ------------------------------------------------------------------ 4: history 10 vs 10,000

interface HistoryLake {
  lake: Lake;
  length: number;
}

/** A lake whose `dev` branch has `length` commits; `old` branched off at commit 10 with one commit of its own. */
async function historyLake(
  root: string,
  name: string,
  length: number,
  budget?: { ms: number; fallback: number },
): Promise<HistoryLake> {
  const lake = await newLake(root, name);
  const { catalog } = lake;
  setSynchronous(lake, 'OFF');
  await catalog.createBranch('dev', 'main', actor);
  await commitOverwrite(catalog, 'dev', 'bench.side');
  let made = 1;
  let base: string | null = null;
  let target = length;
  const start = performance.now();
  while (made < target) {
    const { commit } = await catalog.commit('dev', [overwrite('bench.h', base)], { actor, message: `h${made}` });
    base = (await catalog.treeOf(commit)).tables['bench.h'] ?? null;
    made += 1;
    if (made === SHORT_HISTORY) {
      await catalog.createBranch('old', 'dev', actor);
      await commitOverwrite(catalog, 'old', 'bench.old');
    }
    if (budget && made === 500 && target > budget.fallback) {
      const projected = ((performance.now() - start) / made) * target;
      if (projected > budget.ms) {
        const note = `building ${target} commits was projected at ${(projected / 1000).toFixed(0)} s (> ${(budget.ms / 1000).toFixed(0)} s budget) on this loaded machine, so the long history is ${budget.fallback} commits instead`;
        console.log(`   ${note}`);
        notes.push(note);
        target = budget.fallback;
      }
    }
    if (made % 1000 === 0)
      console.log(`   ${name}: ${made} commits, ${((performance.now() - start) / 1000).toFixed(0)} s`);
  }
  setSynchronous(lake, 'FULL');
  if (budget) {
    const note = `the ${made}-commit history took ${((performance.now() - start) / 1000).toFixed(0)} s to build (${ms((performance.now() - start) / made)} per commit, fsync off during the build only)`;
    console.log(`   ${note}`);
    notes.push(note);
  }
  return { lake, length: made };
}

interface HistorySample {
  commit: number[];
  synced: number[];
  walked: number[];
  reads: { commit: number; synced: number; walked: number };
}

/** One round on one lake: a commit, a merge with a synced base, a merge whose base needs the walk. */
async function historyRound(h: HistoryLake, r: number, s: HistorySample): Promise<void> {
  const { lake } = h;
  const setup = lake.catalog;
  // merge with a synced base: source branched from dev, dev moved by a commit on another table
  await setup.createBranch(`f${r}`, 'dev', actor);
  await setup.commit(`f${r}`, [overwrite(`bench.f${r}`, null)], { actor, message: 'feature' });
  await commitOverwrite(setup, 'dev', 'bench.side');
  // merge whose base needs the walk: dev received another merge after the source branched
  await setup.createBranch(`g${r}`, 'dev', actor);
  await setup.commit(`g${r}`, [overwrite(`bench.g${r}`, null)], { actor, message: 'feature' });
  await setup.createBranch(`o${r}`, 'dev', actor);
  await setup.commit(`o${r}`, [overwrite(`bench.o${r}`, null)], { actor, message: 'other' });

  const c = coldCatalog(lake);
  const base = await versionOf(setup, 'dev', 'bench.h');
  s.commit.push((await timed(() => c.catalog.commit('dev', [overwrite('bench.h', base)], { actor, message: 'h' }))).ms);
  s.reads.commit = c.reads();

  const m = coldCatalog(lake);
  const synced = await timed(() => m.catalog.merge(`f${r}`, 'dev', { actor, message: 'merge f' }));
  if (synced.value.status !== 'merged') throw new Error(`expected a three-way merge, got ${synced.value.status}`);
  s.synced.push(synced.ms);
  s.reads.synced = m.reads();

  await setup.merge(`o${r}`, 'dev', { actor, message: 'merge o' });
  const w = coldCatalog(lake);
  const walked = await timed(() => w.catalog.merge(`g${r}`, 'dev', { actor, message: 'merge g' }));
  if (walked.value.status !== 'merged') throw new Error(`expected a three-way merge, got ${walked.value.status}`);
  s.walked.push(walked.ms);
  s.reads.walked = w.reads();
  for (let i = 1; i < HISTORY_COMMITS / HISTORY_REPS; i++) {
    const cc = coldCatalog(lake);
    const b = await versionOf(setup, 'dev', 'bench.h');
    s.commit.push((await timed(() => cc.catalog.commit('dev', [overwrite('bench.h', b)], { actor, message: 'h' }))).ms);
  }
}

async function history(root: string): Promise<void> {
  const short = await historyLake(root, 'history-short', SHORT_HISTORY);
  const long = await historyLake(root, 'history-long', HISTORY, { ms: HISTORY_BUDGET_MS, fallback: HISTORY_FALLBACK });
  try {
    const sample = (): HistorySample => ({
      commit: [],
      synced: [],
      walked: [],
      reads: { commit: 0, synced: 0, walked: 0 },
    });
    const s = sample();
    const l = sample();
    for (let r = 0; r < HISTORY_REPS; r++) {
      // interleaved, alternating which lake goes first
      if (r % 2 === 0) {
        await historyRound(short, r, s);
        await historyRound(long, r, l);
      } else {
        await historyRound(long, r, l);
        await historyRound(short, r, s);
      }
    }
    // a branch forked at commit 10, after which dev received merges: the walk spans everything since the fork
    const stale = async (h: HistoryLake) => {
      const c = coldCatalog(h.lake);
      const t = await timed(() => c.catalog.merge('old', 'dev', { actor, message: 'stale', dryRun: true }));
      return { ms: t.ms, reads: c.reads(), status: t.value.status };
    };
    const staleShort = await stale(short);
    const staleLong = await stale(long);

    const L = long.length;
    const label = `${L.toLocaleString('en')} vs ${SHORT_HISTORY}`;
    const add = (what: string, a: number[], b: number[], ra: number, rb: number) => {
      console.log(
        `   ${what}: p50 ${ms(median(a))} at ${L} vs ${ms(median(b))} at ${SHORT_HISTORY} (store reads ${ra} vs ${rb})`,
      );
      rows.push({
        measure: `${what} p50, history ${label} (store reads)`,
        airlock: `${ms(median(a))} (${ra})`,
        baseline: `${ms(median(b))} (${rb})`,
        ratio: ratio(median(a), median(b)),
        target: '≤ 1.2×',
      });
    };
    add(`commit latency (${s.commit.length} each)`, l.commit, s.commit, l.reads.commit, s.reads.commit);
    add(`merge, three-way, synced base (${HISTORY_REPS} each)`, l.synced, s.synced, l.reads.synced, s.reads.synced);
    add(
      `merge, three-way, base found by walk (${HISTORY_REPS} each)`,
      l.walked,
      s.walked,
      l.reads.walked,
      s.reads.walked,
    );
    console.log(
      `   stale branch dry-run merge: ${ms(staleLong.ms)} (${staleLong.reads} reads) at ${L} vs ${ms(staleShort.ms)} (${staleShort.reads} reads) at ${SHORT_HISTORY}`,
    );
    rows.push({
      measure: `dry-run merge of a branch forked at commit 10, history ${label} (store reads) — informational`,
      airlock: `${ms(staleLong.ms)} (${staleLong.reads})`,
      baseline: `${ms(staleShort.ms)} (${staleShort.reads})`,
      ratio: ratio(staleLong.ms, staleShort.ms),
      target: 'grows with commits since the fork',
    });
  } finally {
    await short.lake.close();
    await long.lake.close();
  }
}

// ------------------------------------------------------------------ 5: import throughput

async function importThroughput(root: string): Promise<void> {
  const csv = join(root, 'events.csv');
  const duck = await DuckDBInstance.create(':memory:', { threads: '2' });
  const conn = await duck.connect();
  const lake = await newLake(root, 'imports');
  try {
    const gen = await timed(() =>
      conn.run(
        `COPY (SELECT i::BIGINT AS id, TIMESTAMP '2024-01-01' + to_seconds(i) AS ts,
                ['US','DE','FR','GB','JP','BR','IN','NL'][1 + (i % 8)::INT] AS country,
                round((hash(i) % 1000000) / 100.0, 2)::DOUBLE AS amount,
                'user' || i || '@example.com' AS email
           FROM range(${CSV_ROWS}) r(i)) TO '${csv}' (FORMAT csv, HEADER)`,
      ),
    );
    console.log(`   generated ${CSV_ROWS} rows in ${ms(gen.ms)}`);
    await conn.run(`SELECT count(*) FROM read_csv('${csv}')`); // page cache warm for both sides
    await lake.catalog.createBranch('ingest', 'main', actor);
    // warm-up: loads Airlock's shared DuckDB instance, as the baseline's is already loaded
    const small = join(root, 'warm.csv');
    await conn.run(`COPY (SELECT * FROM read_csv('${csv}') LIMIT 1000) TO '${small}' (FORMAT csv, HEADER)`);
    await lake.importTable(actor, { table: 'bench.warm', file: small, branch: 'ingest', mode: 'append' });
    const airlock: number[] = [];
    const direct: number[] = [];
    for (let r = 0; r < IMPORT_REPS; r++) {
      const a = await timed(() =>
        lake.importTable(actor, { table: `bench.events_${r}`, file: csv, branch: 'ingest', mode: 'append' }),
      );
      if (a.value.rows !== CSV_ROWS) throw new Error(`import read ${a.value.rows} rows, expected ${CSV_ROWS}`);
      airlock.push(a.ms);
      const out = join(root, `direct-${r}.parquet`);
      const d = await timed(() => conn.run(`COPY (SELECT * FROM read_csv('${csv}')) TO '${out}' (FORMAT parquet)`));
      direct.push(d.ms);
      await rm(out, { force: true });
      console.log(`   rep ${r + 1}: airlock ${ms(a.ms)}, duckdb ${ms(d.ms)}`);
    }
    const a = CSV_ROWS / (median(airlock) / 1000);
    const d = CSV_ROWS / (median(direct) / 1000);
    rows.push({
      measure: `import ${CSV_ROWS.toLocaleString('en')}-row CSV → Parquet, median of ${IMPORT_REPS} (alternating)`,
      airlock: `${perSecond(a)} (${ms(median(airlock))})`,
      baseline: `${perSecond(d)} (${ms(median(direct))}) DuckDB COPY … TO parquet`,
      ratio: ratio(a, d),
      target: '≥ 0.7×',
    });
  } finally {
    await lake.close();
    conn.closeSync();
    duck.closeSync();
  }
}

// ------------------------------------------------------------------ main

/** Linux CPU pressure (share of time some task waited for a CPU, last 60 s), when available. */
function cpuPressure(): string | undefined {
  try {
    const some = /some avg10=[\d.]+ avg60=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return some ? `${some[1]}%` : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const started = new Date();
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');
  const cpus = availableParallelism();
  const pressure = cpuPressure();
  const machine = `nproc ${cpus} · load average at start ${load}${pressure ? ` · CPU pressure at start ${pressure} (tasks waiting for a CPU, 60 s avg)` : ''}`;
  console.log(`catalog bench: ${machine}, ${started.toISOString()}`);
  const root = await mkdtemp(join(tmpdir(), 'airlock-catalog-bench-'));
  try {
    await part('1-2. commit and branch create latency', () => commitAndBranch(root));
    await part('3. merge latency at 10 / 100 / 1,000 tables', () => mergeByTables(root));
    await part(`4. history ${SHORT_HISTORY} vs ${HISTORY}`, () => history(root));
    await part('5. import throughput', () => importThroughput(root));
  } finally {
    if (process.env.BENCH_KEEP !== '1') await rm(root, { recursive: true, force: true });
    else console.log(`kept ${root}`);
  }
  const report = [
    '# Catalog benchmark',
    '',
    `Run ${started.toISOString()} · ${machine} · Node ${process.version} · \`npx tsx bench/catalog.bench.ts\``,
    '',
    table(),
    '',
    "Store reads are counted on a fresh catalog (cold document cache). Merges and the history comparison run on a fresh catalog per operation; commit and branch-create latency on the lake's long-lived catalog.",
    '',
    `Time per part: ${parts.map((p) => `${p.part} ${p.seconds.toFixed(0)} s`).join('; ')}.`,
    ...(notes.length > 0 ? ['', ...notes.map((n) => `Note: ${n}.`)] : []),
    '',
  ].join('\n');
  console.log(`\n${table()}\n`);
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'catalog.md');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, report);
  console.log(`wrote ${out}`);
}

await main();
