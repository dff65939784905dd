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
 * Measures: per-step overhead (a step over an empty table: step time sandbox − in-process,
 * median; target ≤ 150 ms) and throughput of N rows through a pass-through step (rows/s,
 * in-process ÷ sandbox; target ≥ 0.5×). Writes bench/results/pipeline.md.
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
const STEP = `export default { output: 'bench.copy', inputs: { events: 'raw.events' }, run({ events }) { return events; } };`;

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

  const pipe = join(root, 'pipe');
  await mkdir(pipe);
  await writeFile(join(pipe, 'copy.mjs'), STEP);
  const deps = {
    catalog: lake.catalog,
    store: lake.stores.store,
    objects: lake.stores.objects,
    stagingDir: lake.stores.stagingDir,
  };
  const modules = new Map([[join(pipe, 'copy.mjs'), await import(pathToFileURL(join(pipe, 'copy.mjs')).href)]]);
  const executors = { sandbox: new LocalCodeStepExecutor(), 'in-process': new InProcessExecutor(modules) };

  /** One run of the pipeline on a branch; returns the step's duration as the run recorded it. */
  const stepTime = async (kind: keyof typeof executors, branch: string): Promise<number> => {
    const runner = new PipelineRunner(deps, executors[kind]);
    const run = await runner.start(owner, { pipelineDir: pipe, branch, dryRun: true }, { limits: LIMITS });
    if (run.status !== 'succeeded') throw new Error(`${kind} run ${run.runId} ${run.status}: ${run.error?.message}`);
    return run.steps[0]?.durationMs ?? Number.NaN;
  };

  console.log(`pipeline bench: ${ROWS.toLocaleString()} rows; ${availableParallelism()} CPUs; load ${loadStart}`);
  // Overhead: interleaved, empty input.
  await stepTime('sandbox', 'empty');
  const over: Record<string, number[]> = { sandbox: [], 'in-process': [] };
  for (let i = 0; i < RUNS; i++) {
    for (const kind of ['sandbox', 'in-process'] as const) over[kind]?.push(await stepTime(kind, 'empty'));
  }
  const overhead = median(over.sandbox ?? []) - median(over['in-process'] ?? []);
  // Context: what starting a bare Node process costs on this machine (the floor of any per-process sandbox).
  const bare: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    bare.push(performance.now() - t);
  }
  const bareNode = median(bare);
  console.log(
    `empty step: sandbox ${ms(median(over.sandbox ?? []))}, in-process ${ms(median(over['in-process'] ?? []))}`,
  );
  // Throughput: one run each.
  const big: Record<string, number> = {};
  for (const kind of ['in-process', 'sandbox'] as const) {
    big[kind] = await stepTime(kind, 'dev');
    console.log(`${ROWS.toLocaleString()} rows, ${kind}: ${ms(big[kind] as number)}`);
  }
  const rate = (t: number) => `${(((ROWS / t) * 1000) / 1e6).toFixed(2)} M rows/s`;
  const ratio = (big['in-process'] as number) / (big.sandbox as number);
  const table = [
    '| measure | in-process | sandbox | result | target |',
    '|---|---|---|---|---|',
    `| per-step overhead, empty input (median of ${RUNS}, interleaved) | ${ms(median(over['in-process'] ?? []))} | ${ms(median(over.sandbox ?? []))} | ${ms(overhead)} | ≤ 150 ms ${overhead <= 150 ? '(met)' : '(**missed**)'} |`,
    `| bare \`node -e 0\` spawn on this machine (median of ${RUNS}) — the floor of a process-per-step sandbox | — | ${ms(bareNode)} | sandbox overhead beyond it: ${ms(overhead - bareNode)} | — |`,
    `| ${ROWS.toLocaleString()} rows through a pass-through step (read from the lake, step, write Parquet) | ${ms(big['in-process'] as number)} (${rate(big['in-process'] as number)}) | ${ms(big.sandbox as number)} (${rate(big.sandbox as number)}) | ${ratio.toFixed(2)}× | ≥ 0.5× ${ratio >= 0.5 ? '(met)' : '(**missed**)'} |`,
  ];
  console.log(`\n${table.join('\n')}`);
  const md = [
    '# Pipeline benchmark (sandboxed step vs the same step in-process)',
    '',
    `Run ${new Date().toISOString()} · nproc ${availableParallelism()} · load average at start ${loadStart}, at end ${load()} · Node ${process.version} · \`npx tsx bench/pipeline.bench.ts\``,
    '',
    'Both variants go through the real runner (`PipelineRunner`, dry runs on a local lake): the step input is read from the lake as Arrow, the step runs, its output is validated, written as Parquet and committed to the run branch. Only the executor differs: `LocalCodeStepExecutor` (own process, permission model, namespaces, Arrow IPC over pipes) or the step module called in this process. Times are the step durations the run recorded.',
    '',
    ...table,
    '',
  ];
  await writeFile(join(import.meta.dirname, 'results', 'pipeline.md'), md.join('\n'));
  await lake.close();
} finally {
  await rm(root, { recursive: true, force: true });
}
