import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Catalog, MergeResult } from '../../catalog/index.js';
import type { Actor, TableVersion } from '../../catalog/model.js';
import { prepareImport } from '../../data/importFile.js';
import { AirlockError, denied, invalid, isAirlockError, isConflict } from '../../errors/index.js';
import type { QueryCaps, QueryPolicy, SnapshotTable } from '../../query/index.js';
import type { CatalogStore, ObjectStore } from '../../store/ports.js';
import { DEFAULT_DENY_POLICY, type DenyPolicy, type SandboxLimits, sandboxFailureOf } from '../sandbox/index.js';
import { type Step, loadPipelineSteps } from '../steps/index.js';
import type { CodeStepExecutor, StartedCodeStepExecution } from './executors.js';
import { LocalCodeStepExecutor } from './executors.js';
import { type PipelinePlan, type PlannedStep, planPipeline } from './planPipeline.js';
import { type Isolation, type RecordedStep, RunLog, type StepFailureReason, type StoredRunEvent } from './runLog.js';
import { type RunSummary, summarize } from './runState.js';
import { checkExpectations, materializeSql, readInputIpc, writeOutputParquet } from './stepData.js';

/** What a runner needs of a lake. */
export interface RunnerDeps {
  catalog: Catalog;
  store: CatalogStore;
  objects: ObjectStore;
  stagingDir: string;
}

/** Options of {@link PipelineRunner.start}. */
export interface StartRunOptions {
  pipelineDir: string;
  /** The branch the run publishes to. */
  branch: string;
  params?: Record<string, string>;
  /** Execute everything, publish nothing. */
  dryRun?: boolean;
  isolation?: Isolation;
}

/** Options shared by start and resume. */
export interface ExecutionOptions {
  /** Steps executed at once (independent steps only). Default: min(4, CPUs). */
  concurrency?: number;
  limits?: Partial<SandboxLimits>;
  /** Called after every event of the run (progress output). */
  onEvent?: (event: StoredRunEvent) => void;
  executor?: CodeStepExecutor;
  /**
   * What the run's actor may see of each step's input tables (row filters and column
   * masks, applied inside the engine), so a step run for a person reads exactly what that
   * person may read. Given by the enforcement point (`shared/auth`); absent, steps read
   * their inputs whole.
   */
  reader?: StepReader;
  /**
   * Asked once every step succeeded, before publishing (never on a dry run): returns an
   * approval id when publishing must wait for a person (e.g. an agent's run into a
   * protected branch; the approval's merge executor publishes the run branch later), or
   * undefined to publish now. Given by the enforcement point (`shared/auth`). A CONFLICT
   * it throws (the outputs would not merge) ends the run as `conflict`.
   */
  publishGate?: (run: RunSummary) => Promise<{ approvalId: string } | undefined>;
}

/** Narrows a step's input tables to what the run's actor may see; see {@link ExecutionOptions.reader}. */
export type StepReader = (tables: SnapshotTable[]) => Promise<{ tables: SnapshotTable[]; policy?: QueryPolicy }>;

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const POLICY_KEY = { pk: 'config', sk: 'pipelines' };
const MAX_EVENT_LOG_LINES = 200;

/** The lake's pipeline policy: imports code steps may not use. */
export interface PipelinePolicy {
  deny: DenyPolicy;
}

/**
 * Runs pipelines transactionally. A run branches `run/<id>` from the target's head,
 * executes the steps in DAG order (independent ones in parallel), commits each output to
 * the run branch after its expectations pass, and publishes every output in ONE merge
 * into the target — or, on any failure, publishes nothing and keeps the run branch.
 * Run state is the run's event log, so a killed process loses no finished step and
 * `resume` re-executes only what did not finish.
 */
export class PipelineRunner {
  private readonly executor: CodeStepExecutor;

  constructor(
    private readonly deps: RunnerDeps,
    executor?: CodeStepExecutor,
  ) {
    this.executor = executor ?? new LocalCodeStepExecutor();
  }

  /** The lake's pipeline policy (default: Node built-ins that reach files, processes or the network denied). */
  async policy(): Promise<PipelinePolicy> {
    const item = await this.deps.store.get(POLICY_KEY);
    return (item?.data as unknown as PipelinePolicy | undefined) ?? { deny: DEFAULT_DENY_POLICY };
  }

  /** Replaces the lake's pipeline policy. */
  async setPolicy(policy: PipelinePolicy): Promise<void> {
    await this.deps.store.put({ ...POLICY_KEY, data: { ...policy } });
  }

  /**
   * Starts a run and executes it to the end. Everything that can be checked before a step
   * runs is (steps parse, denied imports, DAG, parameters, input tables) and refused with
   * a clear error and no run recorded. Returns the run's final summary, whatever its
   * status; throws only for refusals and infrastructure errors.
   */
  async start(actor: Actor, options: StartRunOptions, exec: ExecutionOptions = {}): Promise<RunSummary> {
    const params = options.params ?? {};
    for (const k of Object.keys(params)) {
      if (!PARAM_NAME.test(k)) throw invalid(`--param '${k}': parameter names are identifiers (letters, digits, _)`);
    }
    const isolation = options.isolation ?? 'snapshot';
    if (isolation !== 'snapshot' && isolation !== 'serializable') {
      throw invalid(`unknown isolation '${String(isolation)}' (use snapshot or serializable)`);
    }
    const pipeline = resolve(options.pipelineDir);
    const head = await this.deps.catalog.head(options.branch);
    const { plan, recorded } = await this.load(pipeline, exec);
    checkParams(plan, params);
    const baseTree = await this.deps.catalog.treeOf(await this.deps.catalog.docs.getCommit(head.commit as string));
    const missing = plan.external.filter((t) => !baseTree.tables[t]);
    if (missing.length > 0) {
      const readers = plan.steps.filter((s) => s.inputs.some((t) => missing.includes(t))).map((s) => s.name);
      throw invalid(
        `the pipeline reads ${missing.join(', ')}, which ${missing.length === 1 ? 'does' : 'do'} not exist on '${options.branch}' and no step writes (read by ${readers.join(', ')})`,
        { tables: missing },
      );
    }
    // The first steps' sandboxes start now, while the run is recorded and its branch made.
    // `execute` owns the warm map (it disposes what it does not use); the finally below
    // covers only an exit before it (disposing twice is harmless).
    const warm = this.warmUp(plan.steps, new Map(), exec);
    try {
      const runId = newRunId();
      const runBranch = `run/${runId}`;
      const log = await RunLog.create(
        this.deps.store,
        {
          type: 'started',
          runId,
          pipeline,
          branch: options.branch,
          runBranch,
          base: head.commit as string,
          params,
          isolation,
          dryRun: !!options.dryRun,
          steps: recorded,
          reads: Object.fromEntries(plan.external.map((t) => [t, baseTree.tables[t] ?? null])),
        },
        actor,
      );
      exec.onEvent?.(log.all[0] as StoredRunEvent);
      await this.deps.catalog.createBranch(runBranch, head.commit as string, actor);
      return await this.execute(log, plan, actor, exec, warm);
    } finally {
      await disposeAll(warm);
    }
  }

  /**
   * Resumes a run that failed, conflicted or was killed: re-executes only the steps that
   * did not succeed (their finished outputs are on the run branch), then publishes. The
   * pipeline folder is read again; a finished step whose code changed is refused.
   */
  async resume(actor: Actor, runId: string, exec: ExecutionOptions = {}): Promise<RunSummary> {
    const before = summarize(await RunLog.read(this.deps.store, runId));
    if (before.status === 'awaiting_approval') {
      throw invalid(
        `run ${runId} finished and waits for approval ${before.approvalId} to publish to '${before.branch}' (airlock approvals show ${before.approvalId})`,
      );
    }
    if (before.status === 'succeeded') {
      throw invalid(
        `run ${runId} already succeeded${before.published ? ` and was published to '${before.branch}'` : ''}`,
      );
    }
    const { plan, recorded } = await this.load(before.pipeline, exec);
    const changed = recorded
      .filter((r) => {
        const was = before.steps.find((s) => s.name === r.name);
        return !was || was.output !== r.output;
      })
      .map((r) => r.name);
    if (changed.length > 0 || recorded.length !== before.steps.length) {
      throw invalid(
        `the pipeline at ${before.pipeline} changed its steps since run ${runId} started (${changed.join(', ') || 'steps removed'}); start a new run`,
      );
    }
    const started = await RunLog.read(this.deps.store, runId);
    const first = started[0] as Extract<StoredRunEvent, { type: 'started' }>;
    for (const s of before.steps.filter((x) => x.status === 'succeeded')) {
      const now = recorded.find((r) => r.name === s.name);
      const then = first.steps.find((r) => r.name === s.name);
      if (now && then && now.hash !== then.hash) {
        throw invalid(`step ${s.name} already finished in run ${runId} and its code changed since; start a new run`);
      }
    }
    checkParams(plan, before.params);
    const finished = new Set(before.steps.filter((x) => x.status === 'succeeded').map((x) => x.name));
    const unfinished = plan.steps.filter((x) => !finished.has(x.name));
    const warm = this.warmUp(unfinished, new Map(), exec);
    try {
      const log = await RunLog.resume(this.deps.store, runId, actor);
      exec.onEvent?.(log.all[log.all.length - 1] as StoredRunEvent);
      const runBranch = await this.deps.catalog.log.last(before.runBranch);
      if (!runBranch) await this.deps.catalog.createBranch(before.runBranch, before.base, actor);
      else if (runBranch.type === 'delete') await this.deps.catalog.restoreBranch(before.runBranch, actor);
      return await this.execute(log, plan, actor, exec, warm);
    } finally {
      await disposeAll(warm);
    }
  }

  /** A run's summary. */
  async show(runId: string): Promise<RunSummary> {
    return summarize(await RunLog.read(this.deps.store, runId));
  }

  /** Recent runs, newest first. */
  async list(limit = 20): Promise<RunSummary[]> {
    const ids = await RunLog.list(this.deps.store, limit);
    return Promise.all(ids.map((id) => this.show(id)));
  }

  private async load(
    pipeline: string,
    exec: ExecutionOptions,
  ): Promise<{ plan: PipelinePlan; recorded: RecordedStep[] }> {
    const { deny } = await this.policy();
    const steps = await loadPipelineSteps(pipeline, { deny, ...(exec.limits ? { limits: exec.limits } : {}) });
    const plan = planPipeline(steps, pipeline);
    const recorded = await Promise.all(
      plan.steps.map(async (s) => ({
        name: s.name,
        kind: s.step.kind,
        output: s.output,
        inputs: s.inputs,
        after: s.after,
        hash: await stepHash(s.step),
      })),
    );
    return { plan, recorded };
  }

  /** Executes the unfinished steps of a run, then publishes (or reports why not). */
  private async execute(
    log: RunLog,
    plan: PipelinePlan,
    actor: Actor,
    exec: ExecutionOptions,
    warm: Map<string, StartedCodeStepExecution>,
  ): Promise<RunSummary> {
    const append = async (event: Parameters<RunLog['append']>[0]) => {
      const stored = await log.append(event);
      exec.onEvent?.(stored);
      return stored;
    };
    const state = summarize(log.all);
    const done = new Set(state.steps.filter((s) => s.status === 'succeeded').map((s) => s.name));
    const pending = plan.steps.filter((s) => !done.has(s.name));
    const limit = concurrencyOf(exec);
    const running = new Map<string, Promise<void>>();
    let failure: { step: string; error: AirlockError } | undefined;

    try {
      while (!failure && (pending.length > 0 || running.size > 0)) {
        for (let i = 0; i < pending.length && running.size < limit && !failure; ) {
          const next = pending[i] as PlannedStep;
          if (!next.after.every((d) => done.has(d))) {
            i++;
            continue;
          }
          pending.splice(i, 1);
          const prestarted = warm.get(next.name);
          warm.delete(next.name);
          const task = this.runStep(next, state, actor, exec, append, prestarted)
            .then(() => {
              done.add(next.name);
            })
            .catch((e: unknown) => {
              if (isConflict(e) && e.details.runId === state.runId) throw e; // taken over: stop
              failure ??= { step: next.name, error: asAirlockError(e) };
            })
            .finally(() => running.delete(next.name));
          running.set(next.name, task);
        }
        if (!failure) this.warmUp(pending, warm, exec);
        if (running.size === 0) break;
        await Promise.race(running.values());
      }
      await Promise.all(running.values());
    } finally {
      await disposeAll(warm);
    }

    if (failure) {
      await append({
        type: 'finished',
        status: 'failed',
        published: false,
        error: { code: failure.error.code, message: failure.error.message, step: failure.step },
      });
      return summarize(log.all);
    }
    await this.publish(state, actor, exec, append);
    return summarize(log.all);
  }

  /**
   * Starts the sandboxes of the code steps still to run, in DAG order, so that their
   * runtime start-up overlaps other work (the run being recorded, the steps before them)
   * instead of following it; a step finds its process loaded and waiting. At most
   * concurrency + 1 wait at once (the steps that can run next, and one more), so a long
   * pipeline does not start a process per step up front; whatever ends the run disposes
   * those left.
   */
  private warmUp(
    pending: readonly PlannedStep[],
    warm: Map<string, StartedCodeStepExecution>,
    exec: ExecutionOptions,
  ): Map<string, StartedCodeStepExecution> {
    if (!this.executor.start) return warm;
    const cap = concurrencyOf(exec) + 1;
    for (const next of pending) {
      if (warm.size >= cap) return warm;
      const step = next.step;
      if (step.kind !== 'code' || warm.has(next.name)) continue;
      warm.set(
        next.name,
        this.executor.start({ bundle: step.bundle, ...(exec.limits ? { limits: exec.limits } : {}) }),
      );
    }
    return warm;
  }

  /** Merges the run branch into the target in one transaction (or previews it on a dry run). */
  private async publish(
    run: RunSummary,
    actor: Actor,
    exec: ExecutionOptions,
    append: (event: Parameters<RunLog['append']>[0]) => Promise<StoredRunEvent>,
  ): Promise<void> {
    const options = {
      actor,
      message: `Publish run ${run.runId}: ${run.steps.map((s) => s.output).join(', ')}`,
      runId: run.runId,
      dryRun: run.dryRun,
      noFastForward: true,
      ...(run.isolation === 'serializable' ? { readSet: run.reads } : {}),
    };
    let result: MergeResult;
    try {
      const waiting = run.dryRun ? undefined : await exec.publishGate?.(run);
      if (waiting) {
        // Every output is committed on the run branch; the approval's merge publishes it.
        await append({
          type: 'finished',
          status: 'awaiting_approval',
          published: false,
          approvalId: waiting.approvalId,
        });
        return;
      }
      result = await this.deps.catalog.merge(run.runBranch, run.branch, options);
    } catch (e) {
      if (!isConflict(e)) throw e;
      const tables = Array.isArray(e.details.tables) ? (e.details.tables as string[]) : undefined;
      await append({
        type: 'finished',
        status: 'conflict',
        published: false,
        error: { code: e.code, message: e.message, ...(tables ? { tables } : {}) },
      });
      return;
    }
    if (result.status === 'conflict') {
      // Only a dry run reports a conflict instead of throwing.
      const tables = result.conflicts.map((c) => c.table);
      await append({
        type: 'finished',
        status: 'conflict',
        published: false,
        mergeStatus: 'conflict',
        error: {
          code: 'CONFLICT',
          message: `publishing would conflict on ${result.conflicts.map((c) => `${c.table} (${c.reason})`).join('; ')}`,
          tables,
        },
      });
      return;
    }
    if (!run.dryRun) {
      // Published: the run branch's commits are part of the target's history now.
      await this.deps.catalog.deleteBranch(run.runBranch, actor).catch(() => undefined);
    }
    await append({
      type: 'finished',
      status: 'succeeded',
      published: !run.dryRun,
      mergeStatus: result.status,
      ...(result.commit ? { commit: result.commit } : {}),
    });
  }

  /** Executes one step against the run branch and commits its output there. */
  private async runStep(
    planned: PlannedStep,
    run: RunSummary,
    actor: Actor,
    exec: ExecutionOptions,
    append: (event: Parameters<RunLog['append']>[0]) => Promise<StoredRunEvent>,
    prestarted?: StartedCodeStepExecution,
  ): Promise<void> {
    const started = performance.now();
    try {
      await append({ type: 'step-started', step: planned.name });
    } catch (e) {
      await prestarted?.dispose();
      throw e;
    }
    // A code step's sandbox starts now at the latest, while its inputs are read.
    const execution =
      prestarted ??
      (planned.step.kind === 'code'
        ? this.executor.start?.({ bundle: planned.step.bundle, ...(exec.limits ? { limits: exec.limits } : {}) })
        : undefined);
    let logs: string[] = [];
    let policy: QueryPolicy | undefined;
    const staged: string[] = [];
    try {
      const snapshot = await this.deps.catalog.snapshot(run.runBranch);
      const reads: Record<string, string> = {};
      const inputs = new Map<string, SnapshotTable>();
      for (const t of planned.inputs) {
        const entry = snapshot.tables.get(t);
        if (!entry) throw invalid(`step ${planned.name} reads ${t}, which does not exist on ${run.runBranch}`);
        reads[t] = entry.id;
        inputs.set(t, await this.snapshotTable(t, entry.version));
      }
      const caps = stepCaps(exec.limits);
      const stagingDir = this.deps.stagingDir;
      if (exec.reader) {
        const view = await exec.reader([...inputs.values()]);
        const visible = new Set(view.tables.map((t) => t.name));
        const hidden = [...inputs.keys()].filter((t) => !visible.has(t));
        if (hidden.length > 0)
          throw denied(`step ${planned.name} reads ${hidden.join(', ')}, which the run's actor may not read`);
        policy = view.policy;
      }
      let outputPath: string;
      const step = planned.step;
      if (step.kind === 'sql') {
        const r = await materializeSql(step.sql, [...inputs.values()], run.params, caps, stagingDir, policy).catch(
          (e) => {
            throw stepFailure('query_error', e);
          },
        );
        outputPath = r.path;
        logs = [`read ${planned.inputs.join(', ') || 'no table'} (${r.bytesScanned} bytes), wrote ${r.rows} rows`];
      } else {
        const ipc: Record<string, Uint8Array> = {};
        for (const [name, input] of Object.entries(step.inputs)) {
          ipc[name] = await readInputIpc(input, inputs.get(input.table) as SnapshotTable, caps, stagingDir, policy);
        }
        const result = execution
          ? await execution.run(ipc, run.params)
          : await this.executor.run({
              bundle: step.bundle,
              inputs: ipc,
              params: run.params,
              ...(exec.limits ? { limits: exec.limits } : {}),
            });
        logs = result.logs;
        outputPath = await writeOutputParquet(result.outputIpc, stagingDir);
      }
      staged.push(outputPath);
      const failed = await checkExpectations(step.expect, outputPath);
      if (failed.length > 0) {
        throw stepFailure(
          'expectation_failed',
          invalid(
            `expectation${failed.length > 1 ? 's' : ''} failed on ${planned.output}: ${failed.map((f) => `${f.expectation} (${f.found})`).join('; ')}`,
          ),
        );
      }
      const current = snapshot.tables.get(planned.output);
      const prepared = await prepareImport({
        file: outputPath,
        table: planned.output,
        stagingDir,
        ...(current ? { existing: current.version } : {}),
        create: {
          notNull: step.expect.flatMap((e) => (e.kind === 'not_null' ? [e.column] : [])),
          unique: step.expect.find((e) => e.kind === 'unique')?.columns ?? [],
        },
      }).catch((e) => {
        throw stepFailure('schema_mismatch', e, `the output of ${planned.name} does not fit ${planned.output}: `);
      });
      if (prepared.file) staged.push(prepared.file.path);
      const [ns, name] = planned.output.split('.') as [string, string];
      const key = `data/${ns}/${name}/${run.runId}-${randomBytes(8).toString('hex')}.parquet`;
      if (prepared.file) await this.deps.objects.putFile(key, prepared.file.path, { move: true });
      const files = prepared.file ? [{ key, ...prepared.file.stats }] : [];
      const committed = await this.deps.catalog.commit(
        run.runBranch,
        [
          {
            kind: 'put',
            table: planned.output,
            base: current?.id ?? null,
            version: {
              schema: prepared.schema,
              constraints: prepared.constraints,
              files,
              rowCount: prepared.rows,
              bytes: files.reduce((n, f) => n + f.bytes, 0),
              op: current ? 'overwrite' : 'create',
            },
          },
        ],
        {
          actor,
          message: `Run ${run.runId}: ${planned.name} → ${planned.output} (${prepared.rows} rows)`,
          runId: run.runId,
        },
      );
      const tree = await this.deps.catalog.treeOf(committed.commit);
      await append({
        type: 'step-succeeded',
        step: planned.name,
        table: planned.output,
        commit: committed.commit.id,
        version: tree.tables[planned.output] as string,
        rows: prepared.rows,
        durationMs: Math.round(performance.now() - started),
        reads,
        logs: logs.slice(-MAX_EVENT_LOG_LINES),
      });
    } catch (e) {
      const error = asAirlockError(e);
      if (isConflict(error) && error.details.runId === run.runId) throw error;
      const sandbox = sandboxFailureOf(error);
      await append({
        type: 'step-failed',
        step: planned.name,
        reason: (sandbox?.reason ??
          (error.details.stepReason as StepFailureReason | undefined) ??
          'step_error') as StepFailureReason,
        code: error.code,
        message: error.message,
        durationMs: Math.round(performance.now() - started),
        logs: (sandbox?.logs ?? logs).slice(-MAX_EVENT_LOG_LINES),
      });
      throw error;
    } finally {
      await execution?.dispose();
      await Promise.all(staged.map((p) => rm(p, { force: true })));
    }
  }

  private async snapshotTable(name: string, version: TableVersion): Promise<SnapshotTable> {
    return {
      name,
      schema: version.schema,
      files: await Promise.all(
        version.files.map(async (f) => ({ ...f, path: await this.deps.objects.localPath(f.key) })),
      ),
    };
  }
}

/** Caps of the queries a run makes (step SQL, input reads): whole results, the step's time limit. */
function stepCaps(limits: Partial<SandboxLimits> | undefined): QueryCaps {
  return {
    maxRows: Number.MAX_SAFE_INTEGER,
    maxBytesScanned: 1024 ** 4,
    timeoutMs: limits?.timeoutMs ?? 60_000,
    maxConcurrent: 1024,
    dailyBytes: Number.MAX_SAFE_INTEGER,
  };
}

function checkParams(plan: PipelinePlan, params: Record<string, string>): void {
  for (const s of plan.steps) {
    if (s.step.kind !== 'sql') continue;
    const missing = s.step.params.filter((p) => params[p] === undefined);
    if (missing.length > 0) {
      throw invalid(
        `step ${s.name} uses ${missing.map((p) => `$${p}`).join(', ')}: pass ${missing.map((p) => `--param ${p}=…`).join(' ')}`,
        { step: s.name, params: missing },
      );
    }
  }
}

async function stepHash(step: Step): Promise<string> {
  if (step.kind === 'code') return step.bundle.hash;
  return createHash('sha256')
    .update(await readFile(step.file))
    .digest('hex');
}

/** A sortable, branch-safe run id: UTC time plus randomness (`20261122-051512-a3f9c1`). */
function newRunId(): string {
  const t = new Date().toISOString();
  return `${t.slice(0, 10).replace(/-/g, '')}-${t.slice(11, 19).replace(/:/g, '')}-${randomBytes(3).toString('hex')}`;
}

function asAirlockError(e: unknown): AirlockError {
  if (isAirlockError(e)) return e;
  return new AirlockError('INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
}

/** Tags an error with the run's failure reason, keeping its code and message. */
function stepFailure(reason: StepFailureReason, e: unknown, prefix = ''): AirlockError {
  const error = asAirlockError(e);
  if (sandboxFailureOf(error)) return error;
  return new AirlockError(error.code, `${prefix}${error.message}`, {
    details: { ...error.details, stepReason: reason },
    cause: error,
  });
}

/** How many steps run at once: `--concurrency`, else min(4, CPUs). */
function concurrencyOf(exec: ExecutionOptions): number {
  return Math.max(1, exec.concurrency ?? Math.min(4, availableParallelism()));
}

/** Stops every warmed sandbox that will not run. */
async function disposeAll(warm: Map<string, StartedCodeStepExecution>): Promise<void> {
  await Promise.all([...warm.values()].map((w) => w.dispose()));
  warm.clear();
}
