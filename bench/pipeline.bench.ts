/**
 * Pipeline benchmark: what the sandbox costs a pipeline step, against the same step
 * module called in this process (what a runner without isolation would do; never used by
 * Airlock itself).
 *
 *   npx tsx bench/pipeline.bench.ts                 # 10M rows
 *   BENCH_ROWS=1000000 npx tsx bench/pipeline.bench.ts
 *
 * Per-step overhead (target ≤ 150 ms), empty tables, sandbox − in-process, median and
 * minimum of RUNS interleaved repetitions, three ways of getting the process:
 * - cold: the process is spawned when the step needs it (spawn on the critical path —
 *   the definition: spawn + Arrow IPC round trip of an empty table);
 * - started ahead: the runner spawns each code step's process when the run starts / while
 *   the steps before it run (what a one-shot `airlock run` does);
 * - pooled: a long-lived executor keeps ready processes (SandboxPool; max(default size,
 *   CHAIN)); each step binds one to its bundle and it exits after the step. The pool
 *   refills only when no step holds a process, i.e. between runs (measured once it is full: the steady state of a long-lived owner whose
 *   runs do not arrive faster than it refills).
 * Measured at step level (runCodeStep / a pooled process, no runner) and as whole-run wall
 * time through the real runner (input read from the lake, step, output validated, written
 * as Parquet, committed; dry runs) for a one-step pipeline and a CHAIN-step chain (÷ CHAIN).
 * Then the throughput of N rows through a pass-through step (rows/s, in-process ÷ pooled
 * sandbox; target ≥ 0.5×). Prints the load average per section; writes
 * bench/results/pipeline.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { type Table, tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { Lake } from '../shared/lake/Lake.js';
import {
  type CodeStepExecutor,
  type CodeStepOutcome,
  type CodeStepRequest,
  defaultSandboxPoolSize,
  LocalCodeStepExecutor,
  PipelineRunner,
} from '../shared/pipeline/run/index.js';
import {
  bundleStep,
  DEFAULT_SANDBOX_LIMITS,
  rowsToTable,
  runCodeStep,
  startCodeStep,
} from '../shared/pipeline/sandbox/index.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const RUNS = Number(process.env.BENCH_OVERHEAD_RUNS ?? 7);
const LIMITS = { memoryMb: 4096, timeoutMs: 600_000, maxOutputBytes: 4 * 1024 ** 3 };
const CHAIN = Number(process.env.BENCH_CHAIN ?? 5);
/** The runner's default concurrency (min(4, CPUs)). */
const CONCURRENCY = Math.min(4, availableParallelism());
/** The pool covers the longest run measured: the default size, or the chain's steps if more. */
const POOL_SIZE = Math.max(defaultSandboxPoolSize(), CHAIN);
const copyStep = (input: string, output: string) =>
  `export default { output: '${output}', inputs: { t: '${input}' }, run({ t }) { return t; } };`;

type StepModule = { default: { run: (i: Record<string, Table>, c: object) => unknown } };

/** Calls the step module in this process: decode inputs, run, encode the output. */
class InProcessExecutor implements CodeStepExecutor {
  constructor(private readonly modules: Map<string, StepModule>) {}
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

/** The local sandbox with nothing started ahead: each step spawns its process when it needs it. */
class ColdExecutor implements CodeStepExecutor {
  private readonly inner = new LocalCodeStepExecutor();
  run(request: CodeStepRequest): Promise<CodeStepOutcome> {
    return this.inner.run(request);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const min = (xs: number[]) => Math.min(...xs);
const ms = (x: number) => `${x.toFixed(x < 10 ? 1 : 0)} ms`;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');

type Kind = 'in-process' | 'cold' | 'started ahead' | 'pooled';

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
  const pooled = new LocalCodeStepExecutor({ pool: { size: POOL_SIZE, limits: LIMITS } });
  const pool = pooled.sandboxPool;
  const executors: Record<Kind, CodeStepExecutor> = {
    'in-process': new InProcessExecutor(modules),
    cold: new ColdExecutor(),
    'started ahead': new LocalCodeStepExecutor(),
    pooled,
  };
  const sandboxKinds = ['cold', 'started ahead', 'pooled'] as const;
  const loads: string[] = [`start ${loadStart}`];

  /** One dry run of a pipeline on a branch: its wall-clock time and the first step's recorded duration. */
  const runTime = async (kind: Kind, dir: string, branch: string) => {
    if (kind === 'pooled') await pool?.ready();
    const runner = new PipelineRunner(deps, executors[kind]);
    const t = performance.now();
    const run = await runner.start(owner, { pipelineDir: dir, branch, dryRun: true }, { limits: LIMITS });
    const wall = performance.now() - t;
    if (run.status !== 'succeeded') throw new Error(`${kind} run ${run.runId} ${run.status}: ${run.error?.message}`);
    return { wall, step: run.steps[0]?.durationMs ?? Number.NaN };
  };

  console.log(`pipeline bench: ${ROWS.toLocaleString()} rows; ${availableParallelism()} CPUs; load ${loadStart}`);

  // 1. Step level, no runner: the definition (spawn + Arrow IPC round trip of an
  //    empty table) against calling the function here; and the same from a ready pool.
  const copy = await bundleStep(join(pipe, 'copy.mjs'));
  const copyModule = modules.get(copy.step) as StepModule;
  const emptyTable = tableFromArrays({ id: new BigInt64Array(0), amount: new Float64Array(0) });
  const stepLimits = { ...DEFAULT_SANDBOX_LIMITS, ...LIMITS };
  const stepTimes: Record<'in-process' | 'cold' | 'pooled', number[]> = { 'in-process': [], cold: [], pooled: [] };
  await runCodeStep({ bundle: copy, inputs: { t: emptyTable }, limits: LIMITS }); // warm the OS caches
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    const out = await copyModule.default.run({ t: tableFromIPC(tableToIPC(emptyTable, 'stream')) }, { params: {} });
    tableFromIPC(tableToIPC(out as Table, 'stream'));
    stepTimes['in-process'].push(performance.now() - t);
    t = performance.now();
    await runCodeStep({ bundle: copy, inputs: { t: emptyTable }, limits: LIMITS });
    stepTimes.cold.push(performance.now() - t);
    await pool?.ready();
    t = performance.now();
    const started = startCodeStep(copy, stepLimits, pool);
    try {
      await started.run({ t: emptyTable });
    } finally {
      await started.dispose();
    }
    stepTimes.pooled.push(performance.now() - t);
  }
  loads.push(`after step level ${load()}`);
  console.log(
    `step level: in-process ${ms(median(stepTimes['in-process']))}, cold ${ms(median(stepTimes.cold))}, pooled ${ms(median(stepTimes.pooled))} (load ${load()})`,
  );

  // 2. Whole runs, interleaved, empty input; the first runs warm the bundle and describe caches.
  await runTime('cold', pipe, 'empty');
  await runTime('cold', chain, 'empty');
  const single: Record<Kind, number[]> = { 'in-process': [], cold: [], 'started ahead': [], pooled: [] };
  const chained: Record<Kind, number[]> = { 'in-process': [], cold: [], 'started ahead': [], pooled: [] };
  const statsBefore = pool?.stats;
  for (let i = 0; i < RUNS; i++) {
    for (const kind of ['in-process', ...sandboxKinds] as const) {
      single[kind].push((await runTime(kind, pipe, 'empty')).wall);
      chained[kind].push((await runTime(kind, chain, 'empty')).wall);
    }
  }
  loads.push(`after whole runs ${load()}`);
  const statsAfter = pool?.stats;
  const fromPool = (statsAfter?.pooled ?? 0) - (statsBefore?.pooled ?? 0);
  const onDemand = (statsAfter?.spawnedOnDemand ?? 0) - (statsBefore?.spawnedOnDemand ?? 0);
  console.log(`pooled whole runs: ${fromPool} processes from the pool, ${onDemand} spawned on demand`);
  for (const kind of ['in-process', ...sandboxKinds] as const) {
    console.log(
      `${kind}: one-step run ${ms(median(single[kind]))} (min ${ms(min(single[kind]))}), ${CHAIN}-step chain ${ms(median(chained[kind]))} (min ${ms(min(chained[kind]))})`,
    );
  }

  // Context: what starting a bare Node process costs on this machine (the floor of any cold sandbox).
  const bare: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    bare.push(performance.now() - t);
  }
  const bareAll = [...bare].sort((a, b) => a - b).map((x) => x.toFixed(0));

  // 3. Throughput: one run each (the sandbox from the pool; at this size its start-up is noise).
  const big: Record<string, number> = {};
  for (const kind of ['in-process', 'pooled'] as const) {
    big[kind] = (await runTime(kind, pipe, 'dev')).step;
    console.log(`${ROWS.toLocaleString()} rows, ${kind}: ${ms(big[kind] as number)} (load ${load()})`);
  }
  loads.push(`end ${load()}`);
  await pooled.close();

  const rate = (t: number) => `${(((ROWS / t) * 1000) / 1e6).toFixed(2)} M rows/s`;
  const ratio = (big['in-process'] as number) / (big.pooled as number);
  const met = (x: number) => (x <= 150 ? '(met)' : '(**missed**)');
  const row = (label: string, base: number, sandbox: number, per = 1) => {
    const overhead = (sandbox - base) / per;
    return `| ${label} | ${ms(base)} | ${ms(sandbox)} | ${ms(overhead)}${per > 1 ? ' per step' : ''} | ≤ 150 ms ${met(overhead)} |`;
  };
  const table = [
    '| measure | in-process | sandbox | overhead | target |',
    '|---|---|---|---|---|',
    row(
      `step level, cold: spawn + Arrow IPC round trip of an empty table, median of ${RUNS}`,
      median(stepTimes['in-process']),
      median(stepTimes.cold),
    ),
    row('step level, cold, minimum', min(stepTimes['in-process']), min(stepTimes.cold)),
    row(
      `step level, pooled: a ready process bound to the bundle + the same round trip, median of ${RUNS}`,
      median(stepTimes['in-process']),
      median(stepTimes.pooled),
    ),
    row('step level, pooled, minimum', min(stepTimes['in-process']), min(stepTimes.pooled)),
  ];
  for (const kind of sandboxKinds) {
    table.push(
      row(
        `one-step run, ${kind}: wall time difference, median of ${RUNS} interleaved`,
        median(single['in-process']),
        median(single[kind]),
      ),
      row(`one-step run, ${kind}, minimum`, min(single['in-process']), min(single[kind])),
      row(
        `${CHAIN}-step chain, ${kind}: wall time difference ÷ ${CHAIN}, median of ${RUNS}`,
        median(chained['in-process']),
        median(chained[kind]),
        CHAIN,
      ),
      row(`${CHAIN}-step chain, ${kind}, minimum`, min(chained['in-process']), min(chained[kind]), CHAIN),
    );
  }
  table.push(
    `| bare \`node -e 0\` spawn on this machine, ${RUNS} runs sorted (ms) — the floor of a cold start | — | ${bareAll.join(', ')} | median ${ms(median(bare))} | — |`,
    `| ${ROWS.toLocaleString()} rows through a pass-through step (read from the lake, step, write Parquet), pooled sandbox | ${ms(big['in-process'] as number)} (${rate(big['in-process'] as number)}) | ${ms(big.pooled as number)} (${rate(big.pooled as number)}) | ${ratio.toFixed(2)}× | ≥ 0.5× ${ratio >= 0.5 ? '(met)' : '(**missed**)'} |`,
  );
  console.log(`\n${table.join('\n')}`);
  console.log(`load averages: ${loads.join('; ')}`);
  const md = [
    '# Pipeline benchmark (sandboxed step vs the same step in-process)',
    '',
    `Run ${new Date().toISOString()} · nproc ${availableParallelism()} · load average (1, 5, 15 min) ${loads.join('; ')} · Node ${process.version} · runner concurrency ${CONCURRENCY}, pool size ${POOL_SIZE} (pooled whole runs: ${fromPool} processes from the pool, ${onDemand} spawned on demand) · \`npx tsx bench/pipeline.bench.ts\``,
    '',
    "The in-process variant calls the step module in the benchmark process; the sandbox variants run it in its own process (permission model reading one file, empty environment, network and PID namespaces, `nobody` uid, heap and CPU limits, Arrow IPC over pipes). Three ways of getting that process: **cold** — spawned when the step needs it, so the spawn is on the critical path (the issue's definition); **started ahead** — the runner spawns each code step's process when the run starts or while the steps before it run (a one-shot `airlock run`); **pooled** — a long-lived executor (`LocalCodeStepExecutor` with a pool, as `airlock serve`, a Lambda container or this benchmark keep) holds ready, bundle-agnostic processes (as many as the longest run here has code steps; it refills only when no step holds one); a step binds one to its bundle (link + signal, then the bundle loads) and the process exits after that one step. Pooled runs start with a full pool (the pool refills between runs). Step-level rows call `runCodeStep` / a pooled process directly; run rows are whole dry runs through `PipelineRunner` on a local lake (input read as Arrow, step, output validated, written as Parquet, committed to the run branch), overhead = difference of wall times. The machine is shared (2 CPUs, other sessions running): compare rows of the same run, and read the load averages.",
    '',
    ...table,
    '',
  ];
  await writeFile(join(import.meta.dirname, 'results', 'pipeline.md'), md.join('\n'));
  await lake.close();
} finally {
  await rm(root, { recursive: true, force: true });
}
