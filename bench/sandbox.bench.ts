/**
 * Sandbox benchmark: what running a code step in its own sandboxed process costs
 * compared with calling the same function in this process.
 *
 *   npx tsx bench/sandbox.bench.ts            # 10M rows
 *   BENCH_ROWS=2000000 npx tsx bench/sandbox.bench.ts
 *
 * Measures (each against an in-process baseline measured in the same run):
 * 1. per-step overhead: spawn + Arrow IPC round trip of an empty table, bundle cached
 *    (target ≤ 150 ms);
 * 2. throughput of N rows (id Int64 + amount Float64) through a pass-through step
 *    (target ≥ 0.5× in-process), for three step shapes: returns its input table as is;
 *    computes a column with vector APIs; maps row objects (the design's example style,
 *    at 1/10 of N because row objects are slow in either place).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Table, tableFromArrays } from 'apache-arrow';
import { bundleStep, detectIsolation, rowsToTable, runCodeStep } from '../shared/pipeline/sandbox/index.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const OVERHEAD_RUNS = Number(process.env.BENCH_OVERHEAD_RUNS ?? 15);
const LIMITS = { memoryMb: 6144, timeoutMs: 120_000, maxOutputBytes: 4 * 1024 ** 3 };

const STEPS: Record<string, string> = {
  'identity.mjs': `export default { output: 'bench.identity', inputs: { events: 'raw.events' },
  run({ events }) { return events; } };`,
  'columnar.mjs': `import { tableFromArrays } from 'apache-arrow';
export default { output: 'bench.columnar', inputs: { events: 'raw.events' },
  run({ events }) {
    const amount = events.getChild('amount').toArray();
    const scaled = new Float64Array(amount.length);
    for (let i = 0; i < amount.length; i++) scaled[i] = amount[i] * 1.1;
    return tableFromArrays({ id: events.getChild('id').toArray(), amount: scaled });
  } };`,
  'rows.mjs': `export default { output: 'bench.rows', inputs: { events: 'raw.events' },
  run({ events }) { return events.toArray().map((r) => ({ id: r.id, amount: r.amount })); } };`,
};

type StepModule = {
  default: { run: (inputs: Record<string, Table>, ctx: { params: Record<string, string> }) => unknown };
};

function events(n: number): Table {
  const id = new BigInt64Array(n);
  const amount = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    id[i] = BigInt(i);
    amount[i] = i * 0.25;
  }
  return tableFromArrays({ id, amount });
}

/** In-process run: the same module, the same output conversion as the harness. */
async function inProcess(mod: StepModule, input: Table): Promise<Table> {
  const out = await mod.default.run({ events: input }, { params: {} });
  return Array.isArray(out) ? rowsToTable(out as Record<string, unknown>[]) : (out as Table);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}
function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.95))] ?? Number.NaN;
}
const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;

const dir = await mkdtemp(join(tmpdir(), 'airlock-bench-sandbox-'));
const cacheDir = join(dir, '.cache');
try {
  // The in-process copy imports Airlock's apache-arrow by URL (the temp folder has no
  // node_modules); the sandbox copy gets it from the bundle. Same code otherwise.
  const arrowUrl = import.meta.resolve('apache-arrow');
  for (const [name, src] of Object.entries(STEPS)) {
    await writeFile(join(dir, name), src);
    await writeFile(join(dir, `inproc-${name}`), src.replace("from 'apache-arrow'", `from '${arrowUrl}'`));
  }
  const iso = detectIsolation();
  console.log(
    `sandbox bench: ${ROWS.toLocaleString()} rows; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    `isolation: network=${iso.network} pid=${iso.pid} unprivilegedUser=${iso.unprivilegedUser} cpuRlimit=${iso.cpuLimit}`,
  );
  for (const w of iso.warnings) console.log(`warning: ${w}`);

  const bundles = Object.fromEntries(
    await Promise.all(
      Object.keys(STEPS).map(async (n) => [n, await bundleStep(join(dir, n), { pipelineDir: dir, cacheDir })] as const),
    ),
  );
  const t0 = performance.now();
  await bundleStep(join(dir, 'identity.mjs'), { pipelineDir: dir, cacheDir });
  const cachedBundleMs = performance.now() - t0;
  const mods = Object.fromEntries(
    await Promise.all(
      Object.keys(STEPS).map(
        async (n) => [n, (await import(pathToFileURL(join(dir, `inproc-${n}`)).href)) as StepModule] as const,
      ),
    ),
  );

  // 1. Overhead: an empty table there and back.
  const empty = events(0);
  const identity = bundles['identity.mjs'];
  if (!identity) throw new Error('no identity bundle');
  await runCodeStep({ bundle: identity, inputs: { events: empty }, limits: LIMITS }); // warm the page cache
  const sandboxTimes: number[] = [];
  for (let i = 0; i < OVERHEAD_RUNS; i++) {
    const s = performance.now();
    await runCodeStep({ bundle: identity, inputs: { events: empty }, limits: LIMITS });
    sandboxTimes.push(performance.now() - s);
  }
  const inTimes: number[] = [];
  for (let i = 0; i < OVERHEAD_RUNS; i++) {
    const s = performance.now();
    await inProcess(mods['identity.mjs'] as StepModule, empty);
    inTimes.push(performance.now() - s);
  }
  const overhead = median(sandboxTimes) - median(inTimes);
  console.log(
    `overhead (empty table, ${OVERHEAD_RUNS} runs): sandbox median ${ms(median(sandboxTimes))} p95 ${ms(p95(sandboxTimes))}; in-process median ${ms(median(inTimes))}; cached bundle lookup ${ms(cachedBundleMs)}`,
  );

  // 2. Throughput.
  const rows: Array<{ shape: string; n: number; inMs: number; sbMs: number; peak: number }> = [];
  const big = events(ROWS);
  const small = events(Math.max(1, Math.floor(ROWS / 10)));
  for (const [name, input, shape] of [
    ['identity.mjs', big, 'returns its input table'],
    ['columnar.mjs', big, 'computes a column (vector APIs)'],
    ['rows.mjs', small, 'maps row objects'],
  ] as const) {
    const bundle = bundles[name];
    if (!bundle) throw new Error(`no bundle ${name}`);
    let s = performance.now();
    const a = await inProcess(mods[name] as StepModule, input);
    const inMs = performance.now() - s;
    s = performance.now();
    const b = await runCodeStep({ bundle, inputs: { events: input }, limits: LIMITS });
    const sbMs = performance.now() - s;
    if (a.numRows !== input.numRows || b.output.numRows !== input.numRows)
      throw new Error(`${name}: row count mismatch`);
    rows.push({ shape, n: input.numRows, inMs, sbMs, peak: b.peakRssMb });
    console.log(
      `${name}: ${input.numRows.toLocaleString()} rows in-process ${ms(inMs)}, sandbox ${ms(sbMs)} (peak RSS ${b.peakRssMb} MB)`,
    );
  }

  const mb = ((big.getChild('id')?.data[0]?.values.byteLength ?? 0) * 2) / 1024 ** 2;
  const ident = rows[0];
  console.log('');
  console.log('| measure | in-process | sandbox | ratio (in-process ÷ sandbox) | target |');
  console.log('|---|---|---|---|---|');
  console.log(
    `| per-step overhead, empty table (median of ${OVERHEAD_RUNS}) | ${ms(median(inTimes))} | ${ms(median(sandboxTimes))} (p95 ${ms(p95(sandboxTimes))}) | overhead ${ms(overhead)} | ≤ 150 ms ${overhead <= 150 ? '✅' : '❌'} |`,
  );
  for (const r of rows) {
    const ratio = r.inMs / r.sbMs;
    const rate = (x: number) => `${(((r.n / x) * 1000) / 1e6).toFixed(1)} M rows/s`;
    console.log(
      `| ${r.n.toLocaleString()} rows, step ${r.shape} | ${ms(r.inMs)} (${rate(r.inMs)}) | ${ms(r.sbMs)} (${rate(r.sbMs)}) | ${ratio.toFixed(2)}× | ≥ 0.5× ${ratio >= 0.5 ? '✅' : '❌'} |`,
    );
  }
  if (ident) {
    console.log('');
    console.log(
      `transport: ${mb.toFixed(0)} MB each way in ${ms(ident.sbMs)} → ${((2 * mb) / (ident.sbMs / 1000)).toFixed(0)} MB/s through the sandbox (both directions, incl. spawn)`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
