/**
 * Cost of authorization + audit per request (issue 6). Run: `npx tsx bench/auth.bench.ts`
 * (not part of npm test).
 *
 * On a real embedded lake (SQLite catalog, local object store, durable writes) in a temp
 * directory, the same small query is answered BENCH_AUTH_QUERIES (1,000) times each way,
 * interleaved pair by pair in alternating order:
 * - off: `Lake.query` as the owner: no token, no authorization, no audit entry;
 * - on: what every request of an agent pays through `GuardedLake`: the bearer token
 *   checked (look-up, SHA-256, constant-time compare), rights = person ∩ scopes, the
 *   person's row filter and the pii mask compiled into the engine's views, and one durable
 *   audit append (redacted SQL, request hash, hash chain link).
 * Then `audit verify` over the chain those requests wrote (plus a longer chain of
 * BENCH_AUTH_CHAIN entries appended directly) gives verification throughput in entries/s.
 *
 * Prints a markdown table and writes `bench/results/auth.md`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuardedLake } from '../shared/auth/index.js';
import { Lake } from '../shared/lake/Lake.js';

const QUERIES = Number(process.env.BENCH_AUTH_QUERIES ?? 1000);
const CHAIN = Number(process.env.BENCH_AUTH_CHAIN ?? 20_000);
const ROWS = 2000;
const SQL = 'SELECT region, count(*) AS n, min(email) AS first_email FROM crm.people GROUP BY region ORDER BY region';

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const quantile = (xs: number[], q: number) => sorted(xs)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? NaN;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-auth-bench-'));
  const startedLoad = load();
  try {
    const { lake } = await Lake.init({ backend: 'local', dir: join(dir, 'lake') });
    const csv = join(dir, 'people.csv');
    const regions = ['eu', 'us', 'apac'];
    writeFileSync(
      csv,
      `id,region,email\n${Array.from({ length: ROWS }, (_, i) => `${i},${regions[i % 3]},user${i}@example.com`).join('\n')}\n`,
    );
    const owner = { person: lake.owner };
    await lake.catalog.createBranch('load', 'main', owner);
    await lake.importTable(owner, { table: 'crm.people', file: csv, branch: 'load', tags: { email: ['pii'] } });
    await lake.catalog.merge('load', 'main', { actor: owner, message: 'Load crm.people' });

    const guard = new GuardedLake(lake);
    await guard.addUser(guard.owner, { name: 'ann', role: 'reader' });
    await guard.setRowFilter(guard.owner, {
      table: 'crm.people',
      principal: { person: 'ann' },
      predicate: "region = 'eu'",
    });
    const { token } = await guard.createToken(guard.owner, { person: 'ann', agent: 'bot', ttl: '1d' });

    const off = () => lake.query(owner, { sql: SQL });
    const on = async () => guard.query(await guard.authenticate(token), { sql: SQL });

    // Sanity: the guarded answer is the filtered, masked one; the bare one sees every row.
    const bare = await off();
    const guarded = await on();
    if (bare.rows.length !== 3 || guarded.rows.length !== 1) {
      throw new Error(`unexpected answers: ${bare.rows.length} rows bare, ${guarded.rows.length} guarded`);
    }
    if (String(guarded.rows[0]?.first_email).includes('@')) throw new Error('the pii column was not masked');

    // Warm both paths (engine load, caches), then interleave.
    for (let i = 0; i < 20; i++) {
      await off();
      await on();
    }
    const offTimes: number[] = [];
    const onTimes: number[] = [];
    for (let i = 0; i < QUERIES; i++) {
      if (i % 2 === 0) {
        offTimes.push(await timed(off));
        onTimes.push(await timed(on));
      } else {
        onTimes.push(await timed(on));
        offTimes.push(await timed(off));
      }
    }

    const requests = await guard.audit.verify();
    // A longer chain for the throughput figure: appended directly (the same entry shape).
    for (let i = 0; i < CHAIN; i++) {
      await guard.audit.append({
        person: 'ann',
        agent: 'bot',
        action: 'query',
        target: 'main',
        outcome: 'ok',
        request: { sql: SQL, i },
        details: { sql: SQL, rows: 1 },
      });
    }
    const verifyTimes: number[] = [];
    let entries = 0;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const result = await guard.audit.verify();
      verifyTimes.push(performance.now() - t);
      if (!result.ok) throw new Error('the chain does not verify');
      entries = result.entries;
    }
    await lake.close();

    const ratio = (q: number) => quantile(onTimes, q) / quantile(offTimes, q);
    const total = sum(onTimes) / sum(offTimes);
    const verifyMs = quantile(verifyTimes, 0.5);
    const rows = [
      `| ${QUERIES.toLocaleString('en')} queries, total | ${ms(sum(onTimes))} ms | ${ms(sum(offTimes))} ms | ${total.toFixed(2)}× | ≤ 1.15× |`,
      `| per query, p50 | ${ms(quantile(onTimes, 0.5))} ms | ${ms(quantile(offTimes, 0.5))} ms | ${ratio(0.5).toFixed(2)}× | — |`,
      `| per query, p99 | ${ms(quantile(onTimes, 0.99))} ms | ${ms(quantile(offTimes, 0.99))} ms | ${ratio(0.99).toFixed(2)}× | — |`,
      `| added per request (p50 on − p50 off) | ${ms(quantile(onTimes, 0.5) - quantile(offTimes, 0.5))} ms | — | — | — |`,
      `| \`audit verify\`, ${entries.toLocaleString('en')} entries (median of 3) | ${Math.round(entries / (verifyMs / 1000)).toLocaleString('en')} entries/s (${ms(verifyMs)} ms) | — | — | — |`,
    ];
    const report = [
      '# Authorization + audit benchmark',
      '',
      `Run ${new Date().toISOString()} · nproc ${availableParallelism()} · load average at start ${startedLoad}, at end ${load()} · Node ${process.version} · \`npx tsx bench/auth.bench.ts\``,
      '',
      '| measure | auth + audit on | off | ratio | target |',
      '|---|---|---|---|---|',
      ...rows,
      '',
      'Off: `Lake.query` as the lake owner (no token, no checks, no audit). On: `GuardedLake.authenticate(token)` for an',
      "agent of a reader whose row filter is `region = 'eu'` and who may not unmask, then `GuardedLake.query`: rights",
      '(person ∩ scopes), the row filter and the pii mask inside the engine, and one durable audit append (SQLite,',
      `synchronous=FULL). The same query (${ROWS.toLocaleString('en')}-row table, GROUP BY) both ways, interleaved pair by pair.`,
      `The first verify covered the ${requests.entries.toLocaleString('en')} entries the guarded requests wrote (ok: ${requests.ok}).`,
      '',
    ].join('\n');
    console.log(report);
    const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'auth.md'), report);
  } finally {
    if (!process.env.BENCH_KEEP) await rm(dir, { recursive: true, force: true });
  }
}

await main();
