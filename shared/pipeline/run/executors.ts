import { availableParallelism } from 'node:os';
import {
  type RunCodeStepRequest,
  runCodeStep,
  type SandboxLimits,
  SandboxPool,
  type StepBundle,
  startCodeStep,
} from '../sandbox/index.js';

/** One code step execution: its bundle, inputs as Arrow IPC stream bytes, params and limits. */
export interface CodeStepRequest {
  bundle: StepBundle;
  inputs: Record<string, Uint8Array>;
  params: Record<string, string>;
  limits?: Partial<SandboxLimits>;
}

/** What an execution returns: the output as Arrow IPC stream bytes and the step's log lines. */
export interface CodeStepOutcome {
  outputIpc: Uint8Array;
  logs: string[];
  durationMs: number;
  warnings: string[];
}

/**
 * Where code steps execute. Locally, a sandboxed child process; on AWS, the step-executor
 * Lambda (which runs the same sandbox and reaches data only through presigned URLs).
 * Failures are AirlockErrors whose details are the sandbox's `SandboxFailureDetails`.
 */
export interface CodeStepExecutor {
  run(request: CodeStepRequest): Promise<CodeStepOutcome>;
  /**
   * Optional: starts the step's environment before its inputs exist (the runner calls it
   * while preceding steps run or inputs are read), so start-up costs no wall-clock time.
   * Executors without a start-up worth hiding leave it out.
   */
  start?(request: Pick<CodeStepRequest, 'bundle' | 'limits'>): StartedCodeStepExecution;
  /** Optional: releases what the executor keeps between runs (a pool of ready processes). Idempotent. */
  close?(): Promise<void>;
}

/** A code step started ahead of its inputs; see {@link CodeStepExecutor.start}. */
export interface StartedCodeStepExecution {
  /** Runs the step on its inputs. Call at most once. */
  run(inputs: Record<string, Uint8Array>, params: Record<string, string>): Promise<CodeStepOutcome>;
  /** Releases the environment, run or not. Idempotent. */
  dispose(): Promise<void>;
}

/** Options of {@link LocalCodeStepExecutor}. */
export interface LocalCodeStepExecutorOptions {
  /**
   * Keep sandbox processes ready between runs (see `SandboxPool`), for an executor shared
   * by many runs in one long-lived process: `size` of them (default
   * {@link defaultSandboxPoolSize}; cover a typical run's code steps), refilled once no step
   * is running (`refillDelayMs`). `limits` are those the runs will ask for (a step asking
   * for others gets a fresh process). The owner must call {@link LocalCodeStepExecutor.close}.
   * Default: no pool; every step spawns its own process.
   */
  pool?: { size?: number; limits?: Partial<SandboxLimits>; refillDelayMs?: number };
}

/**
 * The default size of an executor's pool: the runner's default concurrency (min(4, CPUs))
 * + 1 — what a run warms up at once — and at least 4, so a typical run's code steps all
 * find a ready process and the pool refills between runs, not during one.
 */
export function defaultSandboxPoolSize(): number {
  return Math.max(Math.min(4, availableParallelism()) + 1, 4);
}

/**
 * Runs code steps in a local sandboxed process (see `runCodeStep`): a new one per step,
 * or, with a pool, a ready one bound to the step — one step per process either way.
 */
export class LocalCodeStepExecutor implements CodeStepExecutor {
  private readonly pool: SandboxPool | undefined;

  constructor(options: LocalCodeStepExecutorOptions = {}) {
    this.pool = options.pool
      ? new SandboxPool({
          size: options.pool.size ?? defaultSandboxPoolSize(),
          ...(options.pool.limits ? { limits: options.pool.limits } : {}),
          ...(options.pool.refillDelayMs !== undefined ? { refillDelayMs: options.pool.refillDelayMs } : {}),
        })
      : undefined;
  }

  /** The pool of ready processes, when the executor keeps one. */
  get sandboxPool(): SandboxPool | undefined {
    return this.pool;
  }

  async run(request: CodeStepRequest): Promise<CodeStepOutcome> {
    if (this.pool) {
      const started = this.start(request);
      try {
        return await started.run(request.inputs, request.params);
      } finally {
        await started.dispose();
      }
    }
    const call: RunCodeStepRequest = { bundle: request.bundle, inputs: request.inputs, params: request.params };
    if (request.limits) call.limits = request.limits;
    const r = await runCodeStep(call);
    return { outputIpc: r.outputIpc, logs: r.logs, durationMs: r.durationMs, warnings: r.warnings };
  }

  /** Binds a process to the step now (a pooled one, or a new spawn); it loads the bundle while the inputs are prepared. */
  start(request: Pick<CodeStepRequest, 'bundle' | 'limits'>): StartedCodeStepExecution {
    const step = startCodeStep(request.bundle, request.limits, this.pool);
    return {
      async run(inputs, params) {
        const r = await step.run(inputs, params);
        return { outputIpc: r.outputIpc, logs: r.logs, durationMs: r.durationMs, warnings: r.warnings };
      },
      dispose: () => step.dispose(),
    };
  }

  /** Kills the pool's waiting processes. Steps already started are not affected. */
  async close(): Promise<void> {
    await this.pool?.close();
  }
}
