/**
 * Pipeline benchmark: what the sandbox costs a pipeline step, measured through the real
 * runner (input read from the lake as Arrow, step executed, output written back as
 * Parquet and committed), with the same step executed two ways in the same run:
 *
 * - sandbox: `LocalCodeStepExecutor` — bundled step in its own process (permission model,
 *   namespaces, empty env), inputs and output as Arrow IPC over pipes;
 * - in-process: the same step module imported and called in this process (what a runner
 *   without isolation would do; never used by Airlock itself).
 *
 *   npx tsx bench/pipeline.bench.ts                 # 10M rows
 *   BENCH_ROWS=1000000 npx tsx bench/pipeline.bench.ts
 *
 * Measures per-step overhead on empty tables as the wall-clock time of whole runs (sandbox −
 * in-process, median; target ≤ 150 ms per step): a one-step pipeline, where only reading the
 * input overlaps the sandbox's start-up, and a chain of CHAIN steps, where the runner starts
 * each next step's sandbox while the step before it runs. Then the throughput of N rows
 * through a pass-through step (rows/s, in-process ÷ sandbox; target ≥ 0.5×). Writes
 * bench/results/pipeline.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { type Table, tableFromIPC, tableToIPC } from 'apache-arrow';
import { Lake } from '../shared/lake/Lake.js';
import {
  type CodeStepExecutor,
  type CodeStepOutcome,
  type CodeStepRequest,
  LocalCodeStepExecutor,
  PipelineRunner,
} from '../shared/pipeline/run/index.js';
import { rowsToTable } from '../shared/pipeline/sandbox/index.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const RUNS = Number(process.env.BENCH_OVERHEAD_RUNS ?? 7);
const LIMITS = { memoryMb: 4096, timeoutMs: 600_000, maxOutputBytes: 4 * 1024 ** 3 };
const CHAIN = Number(process.env.BENCH_CHAIN ?? 5);
const copyStep = (input: string, output: string) =>
  `export default { output: '${output}', inputs: { t: '${input}' }, run({ t }) { return t; } };`;

/** Calls the step module in this process: decode inputs, run, encode the output. */
class InProcessExecutor implements CodeStepExecutor {
  constructor(
    private readonly modules: Map<string, { default: { run: (i: Record<string, Table>, c: object) => unknown } }>,
  ) {}
  async run(request: CodeStepRequest): Promise<CodeStepOutcome> {
    const started = performance.now();
    const mod = this.modules.get(request.bundle.step);
    if (!mod) throw new Error(`no in-process module for ${request.bundle.step}`);
    const inputs = Object.fromEntries(Object.entries(request.inputs).map(([k, v]) => [k, tableFromIPC(v)]));
    const out = await mod.default.run(inputs, { params: request.params });
    const table = Array.isArray(out) ? rowsToTable(out as Record<string, unknown>[]) : (out as Table);
    return { outputIpc: tableToIPC(table, 'stream'), logs: [], durationMs: performance.now() - started, warnings: [] };
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const min = (xs: number[]) => Math.min(...xs);
const ms = (x: number) => `${x.toFixed(x < 10 ? 1 : 0)} ms`;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');

const root = await mkdtemp(join(tmpdir(), 'airlock-bench-pipeline-'));
const loadStart = load();
try {
  const { lake } = await Lake.init({ backend: 'local', dir: join(root, 'lake') });
  const owner = { person: 'bench' };
  await lake.catalog.createBranch('dev', 'main', owner);
  const duck = await DuckDBInstance.create(':memory:');
  const c = await duck.connect();
  for (const [name, n] of [
    ['big', ROWS],
    ['empty', 0],
  ] as const) {
    const file = join(root, `${name}.parquet`);
    await c.run(`COPY (SELECT range AS id, range * 0.25 AS amount FROM range(${n})) TO '${file}' (FORMAT parquet)`);
  }
  c.closeSync();
  await lake.catalog.createBranch('empty', 'main', owner);
  await lake.importTable(owner, { table: 'raw.events', file: join(root, 'big.parquet'), branch: 'dev' });
  await lake.importTable(owner, { table: 'raw.events', file: join(root, 'empty.parquet'), branch: 'empty' });

  // One-step pipeline (also the throughput pipeline) and a chain raw.events → c1 → … → cN.
  const pipe = join(root, 'pipe');
  const chain = join(root, 'chain');
  await mkdir(pipe);
  await mkdir(chain);
  await writeFile(join(pipe, 'copy.mjs'), copyStep('raw.events', 'bench.copy'));
  const files = [join(pipe, 'copy.mjs')];
  for (let i = 1; i <= CHAIN; i++) {
    const file = join(chain, `c${i}.mjs`);
    await writeFile(file, copyStep(i === 1 ? 'raw.events' : `bench.c${i - 1}`, `bench.c${i}`));
    files.push(file);
  }
  const deps = {
    catalog: lake.catalog,
    store: lake.stores.store,
    objects: lake.stores.objects,
    stagingDir: lake.stores.stagingDir,
  };
  const modules = new Map(await Promise.all(files.map(async (f) => [f, await import(pathToFileURL(f).href)] as const)));
  const executors = { sandbox: new LocalCodeStepExecutor(), 'in-process': new InProcessExecutor(modules) };

  /** One dry run of a pipeline on a branch: its wall-clock time and the first step's recorded duration. */
  const runTime = async (kind: keyof typeof executors, dir: string, branch: string) => {
    const runner = new PipelineRunner(deps, executors[kind]);
    const t = performance.now();
    const run = await runner.start(owner, { pipelineDir: dir, branch, dryRun: true }, { limits: LIMITS });
    const wall = performance.now() - t;
    if (run.status !== 'succeeded') throw new Error(`${kind} run ${run.runId} ${run.status}: ${run.error?.message}`);
    return { wall, step: run.steps[0]?.durationMs ?? Number.NaN };
  };

  console.log(`pipeline bench: ${ROWS.toLocaleString()} rows; ${availableParallelism()} CPUs; load ${loadStart}`);
  // Overhead: interleaved, empty input; the first runs warm the bundle cache.
  await runTime('sandbox', pipe, 'empty');
  await runTime('sandbox', chain, 'empty');
  const single: Record<string, number[]> = { sandbox: [], 'in-process': [] };
  const chained: Record<string, number[]> = { sandbox: [], 'in-process': [] };
  for (let i = 0; i < RUNS; i++) {
    for (const kind of ['sandbox', 'in-process'] as const) {
      single[kind]?.push((await runTime(kind, pipe, 'empty')).wall);
      chained[kind]?.push((await runTime(kind, chain, 'empty')).wall);
    }
  }
  const singleOverhead = median(single.sandbox ?? []) - median(single['in-process'] ?? []);
  const chainOverhead = (median(chained.sandbox ?? []) - median(chained['in-process'] ?? [])) / CHAIN;
  // Minimums too: process start on a shared machine stalls at random (see the bare spawns).
  const singleOverheadMin = min(single.sandbox ?? []) - min(single['in-process'] ?? []);
  const chainOverheadMin = (min(chained.sandbox ?? []) - min(chained['in-process'] ?? [])) / CHAIN;
  // Context: what starting a bare Node process costs on this machine (the floor of any per-process sandbox).
  const bare: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    bare.push(performance.now() - t);
  }
  const bareNode = median(bare);
  const bareAll = [...bare].sort((a, b) => a - b).map((x) => x.toFixed(0));
  console.log(
    `one-step run: sandbox ${ms(median(single.sandbox ?? []))}, in-process ${ms(median(single['in-process'] ?? []))}; ` +
      `${CHAIN}-step chain: sandbox ${ms(median(chained.sandbox ?? []))}, in-process ${ms(median(chained['in-process'] ?? []))}`,
  );
  // Throughput: one run each.
  const big: Record<string, number> = {};
  for (const kind of ['in-process', 'sandbox'] as const) {
    big[kind] = (await runTime(kind, pipe, 'dev')).step;
    console.log(`${ROWS.toLocaleString()} rows, ${kind}: ${ms(big[kind] as number)}`);
  }
  const rate = (t: number) => `${(((ROWS / t) * 1000) / 1e6).toFixed(2)} M rows/s`;
  const ratio = (big['in-process'] as number) / (big.sandbox as number);
  const met = (x: number) => (x <= 150 ? '(met)' : '(**missed**)');
  const table = [
    '| measure | in-process | sandbox | result | target |',
    '|---|---|---|---|---|',
    `| per-step overhead in a ${CHAIN}-step chain, empty tables: run wall time difference ÷ ${CHAIN}, median of ${RUNS} interleaved | ${ms(median(chained['in-process'] ?? []))} | ${ms(median(chained.sandbox ?? []))} | ${ms(chainOverhead)} per step | ≤ 150 ms ${met(chainOverhead)} |`,
    `| the same, minimum of ${RUNS} | ${ms(min(chained['in-process'] ?? []))} | ${ms(min(chained.sandbox ?? []))} | ${ms(chainOverheadMin)} per step | ≤ 150 ms ${met(chainOverheadMin)} |`,
    `| overhead of a one-step pipeline, empty table: run wall time difference, median of ${RUNS} interleaved | ${ms(median(single['in-process'] ?? []))} | ${ms(median(single.sandbox ?? []))} | ${ms(singleOverhead)} | ≤ 150 ms ${met(singleOverhead)} |`,
    `| the same, minimum of ${RUNS} | ${ms(min(single['in-process'] ?? []))} | ${ms(min(single.sandbox ?? []))} | ${ms(singleOverheadMin)} | ≤ 150 ms ${met(singleOverheadMin)} |`,
    `| bare \`node -e 0\` spawn on this machine, ${RUNS} runs sorted (ms) — the floor a one-step run cannot hide | — | ${bareAll.join(', ')} | median ${ms(bareNode)} | — |`,
    `| ${ROWS.toLocaleString()} rows through a pass-through step (read from the lake, step, write Parquet) | ${ms(big['in-process'] as number)} (${rate(big['in-process'] as number)}) | ${ms(big.sandbox as number)} (${rate(big.sandbox as number)}) | ${ratio.toFixed(2)}× | ≥ 0.5× ${ratio >= 0.5 ? '(met)' : '(**missed**)'} |`,
  ];
  console.log(`\n${table.join('\n')}`);
  const md = [
    '# Pipeline benchmark (sandboxed step vs the same step in-process)',
    '',
    `Run ${new Date().toISOString()} · nproc ${availableParallelism()} · load average at start ${loadStart}, at end ${load()} · Node ${process.version} · \`npx tsx bench/pipeline.bench.ts\``,
    '',
    'Both variants go through the real runner (`PipelineRunner`, dry runs on a local lake): the step input is read from the lake as Arrow, the step runs, its output is validated, written as Parquet and committed to the run branch. Only the executor differs: `LocalCodeStepExecutor` (own process, permission model, namespaces, Arrow IPC over pipes) or the step module called in this process. Overheads are differences of whole-run wall-clock times (so start-up hidden behind other work counts only where it really is hidden); the throughput row uses the step durations the run recorded. The runner starts the sandbox of a code step when the step begins (overlapping the read of its inputs) or, for a step whose predecessors are running, as soon as they start.',
    '',
    ...table,
    '',
  ];
  await writeFile(join(import.meta.dirname, 'results', 'pipeline.md'), md.join('\n'));
  await lake.close();
} finally {
  await rm(root, { recursive: true, force: true });
}
