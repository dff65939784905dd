/**
 * HTTP serving benchmark (issue 7). Run: `npx tsx bench/serve.bench.ts` (not part of npm test).
 *
 * Serves a fresh embedded (SQLite) lake exactly as `airlock serve` does — `createHttpApp`
 * over the guarded lake, bearer-token auth, `listen` on loopback — and, in the same run,
 * a bare `node:http` server answering every request with a fixed body (the query's own
 * answer bytes). A load generator in a worker thread (its own event loop) keeps
 * BENCH_CONNECTIONS keep-alive connections busy, each sending its next request as soon as
 * the previous answer arrived, for BENCH_SECONDS per scenario after a 1 s warm-up:
 *
 * - bare `node:http`, fixed body (the baseline)
 * - `GET /v1/health` (framework, no lake, no auth)
 * - `POST /v1/query`: a small aggregate over 200 rows (token check, caps, DuckDB)
 * - `POST /v1/branches`: a branch per request (one conditional append to the catalog)
 * - `POST /v1/tables/…/import`: a 3-row CSV commit per request, each connection on its own
 *   branch (stage, Parquet, object store, one commit) — without and with an
 *   `Idempotency-Key` (a claim and a completion write more per request)
 *
 * The bare server runs first and again last, so drift of a shared machine's load shows.
 * Requests/s and p50/p99 latency per scenario, ratios against the faster bare run, the load
 * average, written to `bench/results/serve.md`. Every answer must be 2xx (the bench fails
 * otherwise). Total ≤ 60 s with the defaults.
 *
 * Env: BENCH_SECONDS (default 6), BENCH_CONNECTIONS (default 8).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { GuardedLake } from '../shared/auth/index.js';
import { bearerActor, guardedHttpLake, withRequestScope } from '../shared/auth/http.js';
import { createHttpApp, listen } from '../shared/http/index.js';
import { Lake } from '../shared/lake/Lake.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const here = dirname(fileURLToPath(import.meta.url));
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');

/** One request template; `{c}` (connection) and `{i}` (request number) are filled in per request. */
interface Template {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

interface Measured {
  requests: number;
  seconds: number;
  p50: number;
  p99: number;
  statuses: Record<string, number>;
}

/** The load generator: runs in a worker thread so the servers' event loop is not shared with it. */
const LOAD_SCRIPT = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { base, template, seconds, connections } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const fill = (s, c, i) => s.replaceAll('{c}', String(c)).replaceAll('{i}', String(i));
function one(c, i) {
  const body = template.body === undefined ? undefined : fill(template.body, c, i);
  const headers = Object.fromEntries(Object.entries(template.headers).map(([k, v]) => [k, fill(v, c, i)]));
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const req = http.request(base + fill(template.path, c, i), { method: template.method, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
async function phase(ms, record) {
  const until = performance.now() + ms;
  const latencies = [];
  const statuses = {};
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, async (_, c) => {
    while (performance.now() < until) {
      const i = next++;
      const t = performance.now();
      const status = await one(c, record ? 'm' + i : 'w' + i);
      latencies.push(performance.now() - t);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  }));
  return { latencies, statuses, seconds: (performance.now() - started) / 1000 };
}
(async () => {
  await phase(1000, false);
  const { latencies, statuses, seconds: s } = await phase(seconds * 1000, true);
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  agent.destroy();
  parentPort.postMessage({ requests: latencies.length, seconds: s, p50: at(0.5), p99: at(0.99), statuses });
})().catch((e) => { throw e; });
`;

function drive(base: string, template: Template): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(LOAD_SCRIPT, {
      eval: true,
      workerData: { base, template, seconds: SECONDS, connections: CONNECTIONS },
    });
    worker.once('message', (m: Measured) => resolve(m));
    worker.once('error', reject);
  });
}

async function main() {
  const loadAtStart = load();
  const dir = join(process.env.TMPDIR ?? '/tmp', `airlock-serve-bench-${process.pid}`);
  const { lake } = await Lake.init({ backend: 'local', dir });
  const owner = { person: lake.owner };
  const guard = new GuardedLake(lake);
  const token = (await guard.createToken(owner, {})).token;
  await lake.catalog.createBranch('dev', 'main', owner);
  const csvPath = join(dir, 'events.csv');
  writeFileSync(
    csvPath,
    `id,amount\n${Array.from({ length: 200 }, (_, i) => `${i + 1},${(i % 17) + 0.5}`).join('\n')}\n`,
  );
  await lake.importTable(owner, { table: 'raw.events', file: csvPath, branch: 'dev' });
  // Every connection's query may run at once (the default per-person cap is lower).
  await lake.setQueryCaps(owner, { person: owner.person }, { maxConcurrent: CONNECTIONS * 2 });
  for (let c = 0; c < CONNECTIONS; c++) {
    for (const kind of ['plain', 'keyed']) await lake.catalog.createBranch(`bench/${kind}-${c}`, 'dev', owner);
  }

  // As `airlock serve` builds it (cli/main.ts): guarded lake, bearer tokens, request scope.
  const app = createHttpApp({ lake: guardedHttpLake(guard), actorFor: bearerActor(guard), pipelines: { runs: guard } });
  const server = await listen(withRequestScope(app), { port: 0, host: '127.0.0.1' });
  const auth = { authorization: `Bearer ${token}` };
  const json = { ...auth, 'content-type': 'application/json' };
  const querySql = JSON.stringify({
    sql: 'SELECT count(*) AS n, sum(amount) AS total, max(id) AS top FROM raw.events WHERE amount > 3',
    ref: 'dev',
  });
  const probe = await fetch(`${server.url}/v1/query`, { method: 'POST', headers: json, body: querySql });
  const fixedBody = await probe.text();
  if (probe.status !== 200) throw new Error(`the query probe failed: ${probe.status} ${fixedBody}`);

  const bare = createServer((_req, res) => {
    _req.resume();
    _req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(fixedBody);
    });
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', () => r()));
  const address = bare.address();
  const bareUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  const csvBody = 'id,amount\n1,1.5\n2,2.5\n3,3.5\n';
  const scenarios: Array<{ name: string; base: string; template: Template }> = [
    {
      name: 'bare node:http, fixed body (baseline)',
      base: bareUrl,
      template: { method: 'POST', path: '/', headers: json, body: querySql },
    },
    { name: 'GET /v1/health', base: server.url, template: { method: 'GET', path: '/v1/health', headers: {} } },
    {
      name: 'POST /v1/query (small aggregate)',
      base: server.url,
      template: { method: 'POST', path: '/v1/query', headers: json, body: querySql },
    },
    {
      name: 'POST /v1/branches (create)',
      base: server.url,
      template: {
        method: 'POST',
        path: '/v1/branches',
        headers: json,
        body: '{"name":"bench/b-{c}-{i}","from":"dev"}',
      },
    },
    {
      name: 'POST /v1/tables/…/import (3-row commit)',
      base: server.url,
      template: {
        method: 'POST',
        path: '/v1/tables/raw.small/import?branch=bench%2Fplain-{c}',
        headers: { ...auth, 'content-type': 'text/csv' },
        body: csvBody,
      },
    },
    {
      name: 'the same import with an Idempotency-Key',
      base: server.url,
      template: {
        method: 'POST',
        path: '/v1/tables/raw.small/import?branch=bench%2Fkeyed-{c}',
        headers: { ...auth, 'content-type': 'text/csv', 'idempotency-key': 'bench-{c}-{i}' },
        body: csvBody,
      },
    },
    // Again at the end: on a shared machine the load drifts; two baselines bracket the run.
    {
      name: 'bare node:http again (end of run)',
      base: bareUrl,
      template: { method: 'POST', path: '/', headers: json, body: querySql },
    },
  ];

  const results: Array<{ name: string } & Measured> = [];
  for (const s of scenarios) {
    const measured = await drive(s.base, s.template);
    const bad = Object.entries(measured.statuses).filter(([status]) => !status.startsWith('2'));
    if (bad.length > 0) throw new Error(`${s.name}: non-2xx answers ${JSON.stringify(measured.statuses)}`);
    results.push({ name: s.name, ...measured });
    const rps = measured.requests / measured.seconds;
    console.log(
      `${s.name.padEnd(44)} ${rps.toFixed(0).padStart(7)} req/s  p50 ${measured.p50.toFixed(2)} ms  p99 ${measured.p99.toFixed(2)} ms  (${measured.requests} requests)`,
    );
  }
  await server.close();
  await new Promise((r) => bare.close(r));
  await lake.close();

  // The less disturbed of the two bare runs (the load of a shared machine drifts during a run).
  const bareRuns = [results[0], results[results.length - 1]] as Measured[];
  const baseRps = Math.max(...bareRuns.map((b) => b.requests / b.seconds));
  const rows = results.map((r) => {
    const rps = r.requests / r.seconds;
    return `| ${r.name} | ${r.requests} | ${rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${(rps / baseRps).toFixed(3)}× |`;
  });
  const report = [
    '# HTTP serving benchmark (`npx tsx bench/serve.bench.ts`)',
    '',
    `${new Date().toISOString()} · ${CONNECTIONS} keep-alive connections · ${SECONDS} s per scenario after a 1 s warm-up · ` +
      `load average ${loadAtStart} at start, ${load()} at end (a shared 2-core machine)`,
    '',
    'The Airlock server is built as `airlock serve` builds it (guarded lake, bearer token on every request, embedded SQLite lake);',
    "the baseline is a bare `node:http` server answering every request with the query's answer bytes. Every answer was 2xx.",
    '',
    '| scenario | requests | req/s | p50 ms | p99 ms | req/s vs the faster bare run |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n');
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', 'serve.md'), report);
  console.log(`\nwritten to bench/results/serve.md (load average ${load()})`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
