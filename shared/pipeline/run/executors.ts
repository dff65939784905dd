import {
  type RunCodeStepRequest,
  runCodeStep,
  type SandboxLimits,
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
}

/** A code step started ahead of its inputs; see {@link CodeStepExecutor.start}. */
export interface StartedCodeStepExecution {
  /** Runs the step on its inputs. Call at most once. */
  run(inputs: Record<string, Uint8Array>, params: Record<string, string>): Promise<CodeStepOutcome>;
  /** Releases the environment, run or not. Idempotent. */
  dispose(): Promise<void>;
}

/** Runs code steps in a local sandboxed process (see `runCodeStep`). */
export class LocalCodeStepExecutor implements CodeStepExecutor {
  async run(request: CodeStepRequest): Promise<CodeStepOutcome> {
    const call: RunCodeStepRequest = { bundle: request.bundle, inputs: request.inputs, params: request.params };
    if (request.limits) call.limits = request.limits;
    const r = await runCodeStep(call);
    return { outputIpc: r.outputIpc, logs: r.logs, durationMs: r.durationMs, warnings: r.warnings };
  }

  /** Spawns the sandbox process now; it loads the bundle while the inputs are prepared. */
  start(request: Pick<CodeStepRequest, 'bundle' | 'limits'>): StartedCodeStepExecution {
    const step = startCodeStep(request.bundle, request.limits);
    return {
      async run(inputs, params) {
        const r = await step.run(inputs, params);
        return { outputIpc: r.outputIpc, logs: r.logs, durationMs: r.durationMs, warnings: r.warnings };
      },
      dispose: () => step.dispose(),
    };
  }
}
