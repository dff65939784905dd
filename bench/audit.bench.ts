/**
 * Audit trail benchmark (issue 6). Run: `npx tsx bench/audit.bench.ts` (not part of npm test).
 *
 * On a real embedded catalog (SQLite file + local object store) in a temp directory:
 * 1. `audit verify` throughput over a chain of BENCH_AUDIT_ENTRIES (100,000) entries, median
 *    of 3, next to the floor measured in the same run: paging the same partition through
 *    the same store port without hashing (what verification cannot avoid), and raw
 *    better-sqlite3 `SELECT d` + `JSON.parse` (what SQLite itself costs);
 * 2. the cost of one append: durable (synchronous=FULL, as in production) p50/p99 over
 *    BENCH_AUDIT_APPENDS appends, interleaved with a raw durable SQLite write of the same
 *    size (the floor); and the CPU part alone (redaction, hashing, the store's work) on the
 *    in-memory store.
 *
 * The chain is built through `AuditLog.append` (the real path, anchors every 1,000) with
 * fsync off during the build only. Prints a markdown table and writes `bench/results/audit.md`.
 * Env: BENCH_AUDIT_ENTRIES (100000), BENCH_AUDIT_APPENDS (500), BENCH_KEEP=1 keeps the temp dir.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { AuditLog, type AuditRecord, redactSql } from '../shared/audit/index.js';
import {
  MemoryCatalogStore,
  MemoryObjectStore,
  openLocalObjectStore,
  openSqliteCatalogStore,
  type SqliteCatalogStore,
} from '../shared/store/index.js';

const ENTRIES = Number(process.env.BENCH_AUDIT_ENTRIES ?? 100_000);
const APPENDS = Number(process.env.BENCH_AUDIT_APPENDS ?? 500);
const VERIFY_REPS = 3;

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
function percentile(xs: number[], p: number): number {
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}
const median = (xs: number[]) => percentile(xs, 50);
const ms = (x: number) => (x >= 100 ? `${x.toFixed(0)} ms` : x >= 10 ? `${x.toFixed(1)} ms` : `${x.toFixed(2)} ms`);
const us = (x: number) => `${(x * 1000).toFixed(0)} µs`;
const rate = (n: number) => `${Math.round(n).toLocaleString('en-US')} entries/s`;
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

interface Row {
  measure: string;
  airlock: string;
  baseline: string;
  ratio: string;
}
const rows: Row[] = [];
const notes: string[] = [];

/** A realistic request as the enforcement point would record it: a query with literals. */
function record(i: number): AuditRecord {
  const sql = `SELECT customer_id, sum(amount) FROM sales.orders WHERE region = 'EMEA' AND amount > ${i % 1000} GROUP BY 1 LIMIT 100`;
  return {
    person: `person-${i % 20}`,
    ...(i % 2 === 0 ? { agent: 'analyst-bot' } : {}),
    action: 'query',
    target: 'main',
    outcome: i % 50 === 0 ? 'denied' : 'ok',
    request: { sql, ref: 'main' },
    details: { sql: redactSql(sql), rows: i % 100, bytesScanned: 1_048_576 + i },
  };
}

function sqliteDb(store: SqliteCatalogStore): Database.Database {
  const db = (store as unknown as { db?: Database.Database }).db;
  if (!db) throw new Error('the SQLite store no longer exposes its connection; update bench/audit.bench.ts');
  return db;
}

/** A raw durable write of an item the size of an audit entry, on its own SQLite file with the catalog's settings. */
function rawWriter(path: string, bytes: number): { write: () => number; close: () => void } {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(
    'CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, d TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID',
  );
  const insert = db.prepare('INSERT INTO items (pk, sk, d) VALUES (?, ?, ?)');
  const body = 'x'.repeat(bytes);
  const tx = db.transaction((i: number) => insert.run('audit', String(i).padStart(12, '0'), body));
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

async function main(): Promise<void> {
  const started = new Date();
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');
  let pressure: string | undefined;
  try {
    pressure = /some avg10=[\d.]+ avg60=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1];
  } catch {
    pressure = undefined;
  }
  const machine = `nproc ${availableParallelism()} · load average at start ${load}${pressure ? ` · CPU pressure at start ${pressure}% (60 s avg)` : ''}`;
  console.log(`audit bench: ${machine}, ${started.toISOString()}`);
  const root = await mkdtemp(join(tmpdir(), 'airlock-audit-bench-'));
  const store = openSqliteCatalogStore(join(root, 'catalog.db'));
  const objects = openLocalObjectStore(join(root, 'objects'));
  try {
    // ---------------------------------------------------------------- build
    const audit = new AuditLog(store, objects);
    sqliteDb(store).pragma('synchronous = OFF');
    const buildStart = performance.now();
    let entryBytes = 0;
    for (let i = 1; i <= ENTRIES; i++) {
      const entry = await audit.append(record(i));
      if (i === 1) entryBytes = JSON.stringify(entry).length;
    }
    const buildMs = performance.now() - buildStart;
    sqliteDb(store).pragma('synchronous = FULL');
    notes.push(
      `building the ${ENTRIES.toLocaleString('en-US')}-entry chain through AuditLog.append took ${(buildMs / 1000).toFixed(1)} s (${us(buildMs / ENTRIES)} per append, fsync off during the build only); one entry is ~${entryBytes} bytes of JSON`,
    );
    console.log(notes[notes.length - 1]);

    // ---------------------------------------------------------------- 1. verify throughput
    const verifyMs: number[] = [];
    const pageMs: number[] = [];
    const rawMs: number[] = [];
    const db = sqliteDb(store);
    for (let rep = 0; rep < VERIFY_REPS; rep++) {
      const v = await new AuditLog(store, objects).verify();
      if (!v.ok || v.entries !== ENTRIES) throw new Error(`verify failed on an intact chain: ${JSON.stringify(v)}`);
      verifyMs.push(v.ms);

      let t = performance.now();
      let n = 0;
      let cursor: string | undefined;
      do {
        const page = await store.query('audit', { limit: 1000, ...(cursor ? { cursor } : {}) });
        n += page.items.length;
        cursor = page.cursor;
      } while (cursor);
      pageMs.push(performance.now() - t);
      if (n !== ENTRIES) throw new Error(`paged ${n} items, expected ${ENTRIES}`);

      t = performance.now();
      let m = 0;
      for (const row of db.prepare(`SELECT d FROM items WHERE pk = 'audit' ORDER BY sk`).iterate() as Iterable<{
        d: string;
      }>) {
        if (JSON.parse(row.d)) m += 1;
      }
      rawMs.push(performance.now() - t);
      if (m !== ENTRIES) throw new Error(`read ${m} rows, expected ${ENTRIES}`);
      console.log(`verify rep ${rep + 1}: ${ms(verifyMs[rep] as number)}`);
    }
    const perSec = (t: number) => (ENTRIES / t) * 1000;
    rows.push({
      measure: `audit verify, ${ENTRIES.toLocaleString('en-US')} entries (median of ${VERIFY_REPS})`,
      airlock: `${rate(perSec(median(verifyMs)))} (${ms(median(verifyMs))})`,
      baseline: `${rate(perSec(median(pageMs)))} paging the partition through the store port, no hashing`,
      ratio: ratio(median(verifyMs), median(pageMs)),
    });
    rows.push({
      measure: 'same, against raw SQLite',
      airlock: `${rate(perSec(median(verifyMs)))}`,
      baseline: `${rate(perSec(median(rawMs)))} raw better-sqlite3 SELECT d + JSON.parse`,
      ratio: ratio(median(verifyMs), median(rawMs)),
    });

    // ---------------------------------------------------------------- 2. append cost
    const raw = rawWriter(join(root, 'raw.db'), entryBytes);
    const appendMs: number[] = [];
    const rawWriteMs: number[] = [];
    for (let i = 0; i < APPENDS; i++) {
      const t = performance.now();
      await audit.append(record(ENTRIES + i + 1));
      appendMs.push(performance.now() - t);
      rawWriteMs.push(raw.write());
    }
    raw.close();
    rows.push({
      measure: `one durable append (SQLite, synchronous=FULL), p50 of ${APPENDS}`,
      airlock: ms(median(appendMs)),
      baseline: `${ms(median(rawWriteMs))} raw durable SQLite write of the same size, interleaved`,
      ratio: ratio(median(appendMs), median(rawWriteMs)),
    });
    rows.push({
      measure: `one durable append, p99 of ${APPENDS}`,
      airlock: ms(percentile(appendMs, 99)),
      baseline: ms(percentile(rawWriteMs, 99)),
      ratio: ratio(percentile(appendMs, 99), percentile(rawWriteMs, 99)),
    });

    const memory = new AuditLog(new MemoryCatalogStore(), new MemoryObjectStore());
    for (let i = 0; i < 2000; i++) await memory.append(record(i)); // warm up
    const cpuN = 20_000;
    const t = performance.now();
    for (let i = 0; i < cpuN; i++) await memory.append(record(i));
    const cpuMs = (performance.now() - t) / cpuN;
    rows.push({
      measure: 'CPU part of one append (redaction, request hash, entry hash; in-memory store)',
      airlock: us(cpuMs),
      baseline: '—',
      ratio: '—',
    });
  } finally {
    await store.close();
    await objects.close();
    if (process.env.BENCH_KEEP !== '1') await rm(root, { recursive: true, force: true });
    else console.log(`kept ${root}`);
  }

  const table = [
    '| measure | Airlock | baseline | ratio |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.measure} | ${r.airlock} | ${r.baseline} | ${r.ratio} |`),
  ].join('\n');
  const report = [
    '# Audit trail benchmark',
    '',
    `Run ${started.toISOString()} · ${machine} · Node ${process.version} · \`npx tsx bench/audit.bench.ts\``,
    '',
    table,
    '',
    'Verification recomputes every entry hash (SHA-256 over canonical JSON) and link from entry 1, paging through the',
    'catalog store 1,000 items at a time, and checks every anchor. The append cost is one conditional put (absent-only)',
    'on the next seq; the head is remembered per process, so an uncontended append does no read.',
    '',
    ...notes.map((n) => `Note: ${n}.`),
    '',
  ].join('\n');
  console.log(`\n${table}\n`);
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'audit.md');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, report);
  console.log(`wrote ${out}`);
}

await main();
