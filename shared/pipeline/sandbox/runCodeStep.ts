import { type Table, tableFromIPC, tableToIPC } from 'apache-arrow';
import { AirlockError, type ErrorCode, isAirlockError } from '../../errors/index.js';
import { readFile } from 'node:fs/promises';
import { describedFile, type StepBundle, writeAtomically } from './bundleStep.js';
import type { SerializedStepError } from './protocol.js';
import {
  DEFAULT_SANDBOX_LIMITS,
  type RawSandboxResult,
  runSandboxProcess,
  type SandboxInput,
  type SandboxLimits,
  startSandboxProcess,
} from './runSandbox.js';
import type { SandboxPool } from './pool.js';

/** Why a sandboxed step failed; stable strings for run events and `runs show`. */
export type SandboxFailureReason =
  | 'step_error' // the step threw, or returned something that is not a table
  | 'sandbox_violation' // the step tried something the sandbox forbids (files, processes, network…)
  | 'timeout'
  | 'memory'
  | 'output_too_large'
  | 'crashed'; // the process died without reporting a result

/** `details` of the AirlockError thrown by {@link runCodeStep} and {@link describeStepBundle}. */
export interface SandboxFailureDetails {
  reason: SandboxFailureReason;
  step: string;
  /** The step's own log lines up to the failure (capped). */
  logs: string[];
  durationMs: number;
  /** The step's stack, first lines only, when it threw. */
  stack?: string;
  /** Isolation layers that were missing for this run. */
  warnings: string[];
}

/** What {@link runCodeStep} takes. */
export interface RunCodeStepRequest {
  bundle: StepBundle;
  /** The step's inputs by the names its `inputs` declares: Arrow tables, or Arrow IPC stream bytes. */
  inputs: Record<string, Table | Uint8Array>;
  /** `--param k=v` values. */
  params?: Record<string, string>;
  limits?: Partial<SandboxLimits>;
}

/** What a successful {@link runCodeStep} returns. */
export interface RunCodeStepResult {
  output: Table;
  /** The output exactly as it crossed the pipe: one Arrow IPC stream. */
  outputIpc: Uint8Array;
  /** The step's console output (and anything it wrote to stdout/stderr), capped. */
  logs: string[];
  durationMs: number;
  /** Peak resident memory of the step process tree, as polled (Linux only). */
  peakRssMb: number;
  /** Isolation layers that were not available on this machine (empty when all were). */
  warnings: string[];
  /** Which OS isolation layers were in force. */
  isolation: { network: boolean; pid: boolean; unprivilegedUser: boolean };
}

const NETWORK_CODES = new Set(['ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETDOWN']);
const PERMISSION_CODES = new Set(['ERR_ACCESS_DENIED', 'ERR_DLOPEN_DISABLED']);

function stackHead(stack: string | undefined, lines = 6): string | undefined {
  if (!stack) return undefined;
  return stack
    .split('\n')
    .filter((l) => !l.includes('airlock-step-entry') && !l.includes('airlock:runtime') && !/harness\.(ts|js)/.test(l))
    .slice(0, lines)
    .join('\n');
}

function fail(
  code: ErrorCode,
  message: string,
  reason: SandboxFailureReason,
  raw: RawSandboxResult,
  step: string,
  stack?: string,
): AirlockError {
  const details: SandboxFailureDetails = {
    reason,
    step,
    logs: raw.logs,
    durationMs: Math.round(raw.durationMs),
    warnings: raw.isolation.warnings,
  };
  if (stack) details.stack = stack;
  return new AirlockError(code, message, { details: details as unknown as Record<string, unknown> });
}

function isOom(raw: RawSandboxResult): boolean {
  return /heap out of memory|Reached heap limit|Array buffer allocation failed|Allocation failed/i.test(raw.stderrTail);
}

/** Drops V8's GC trace and native stack that follow a heap OOM; they mean nothing to a step author. */
function trimOomNoise(logs: string[]): string[] {
  const at = logs.findIndex((l) => l.startsWith('<--- Last few GCs') || l.startsWith('FATAL ERROR'));
  return at < 0 ? logs : logs.slice(0, at);
}

/**
 * Turns a finished sandbox process into either its control message or the one error
 * that explains it. Order matters: a kill by the parent explains everything after it.
 */
export function interpretFailure(raw: RawSandboxResult, step: string, limits: SandboxLimits): AirlockError | undefined {
  const name = step.split(/[\\/]/).pop() ?? step;
  if (raw.killed === 'timeout') {
    return fail(
      'LIMIT_EXCEEDED',
      `step ${name} timed out after ${limits.timeoutMs} ms and was killed`,
      'timeout',
      raw,
      step,
    );
  }
  if (raw.killed === 'memory' || (raw.killed === undefined && !raw.complete && isOom(raw) && raw.exitCode !== 0)) {
    raw.logs = trimOomNoise(raw.logs);
    return fail(
      'LIMIT_EXCEEDED',
      `step ${name} exceeded memory limit (${limits.memoryMb} MB) and was killed`,
      'memory',
      raw,
      step,
    );
  }
  if (raw.killed === 'output') {
    return fail(
      'LIMIT_EXCEEDED',
      `step ${name} output exceeded the limit of ${limits.maxOutputBytes} bytes and was killed`,
      'output_too_large',
      raw,
      step,
    );
  }
  const error = raw.control.find((m) => m.type === 'error');
  if (error && error.type === 'error') return stepError(error.error, raw, step, name);
  return undefined;
}

function stepError(e: SerializedStepError, raw: RawSandboxResult, step: string, name: string): AirlockError {
  const stack = stackHead(e.stack);
  const where = e.phase === 'load' ? 'while loading' : e.phase === 'output' ? 'producing its output' : 'in run()';
  const code = e.code ?? e.causeCode;
  if (code && PERMISSION_CODES.has(code)) {
    return fail(
      'DENIED',
      `step ${name} was stopped by the sandbox ${where}: ${e.message} (${code}; steps may not read or write files, start processes or threads, or load native addons)`,
      'sandbox_violation',
      raw,
      step,
      stack,
    );
  }
  if (code && NETWORK_CODES.has(code) && raw.isolation.network) {
    return fail(
      'DENIED',
      `step ${name} was stopped by the sandbox ${where}: steps have no network (${code}: ${e.causeMessage ?? e.message})`,
      'sandbox_violation',
      raw,
      step,
      stack,
    );
  }
  if (/Array buffer allocation failed/.test(e.message)) {
    return fail('LIMIT_EXCEEDED', `step ${name} exceeded memory limit: ${e.message}`, 'memory', raw, step, stack);
  }
  return fail('INVALID', `step ${name} failed ${where}: ${e.name}: ${e.message}`, 'step_error', raw, step, stack);
}

/** The error for a process that ended without an `ok` or `error` control message. */
export function crashed(raw: RawSandboxResult, step: string): AirlockError {
  const name = step.split(/[\\/]/).pop() ?? step;
  const how = raw.signal ? `was killed by ${raw.signal}` : `exited with code ${raw.exitCode}`;
  const hint = raw.exitCode === 0 ? ' (did the step call process.exit()?)' : '';
  const last = raw.logs.slice(-5).join('\n');
  return fail(
    'INVALID',
    `step ${name} ${how} without reporting a result${hint}${last ? `; last log lines:\n${last}` : ''}`,
    'crashed',
    raw,
    step,
  );
}

function fullLimits(limits: Partial<SandboxLimits> | undefined): SandboxLimits {
  return { ...DEFAULT_SANDBOX_LIMITS, ...limits };
}

/**
 * Runs a bundled code step in its own sandboxed Node process and returns its output.
 *
 * Layers, each for what the others miss:
 * 1. bundle-time deny list ({@link bundleStep}) — refuses denied imports by name, before
 *    anything runs;
 * 2. Node's permission model — read access to the bundle file only; no writes, child
 *    processes, workers, addons or WASI, whatever way the step reaches for them;
 * 3. an empty environment and an empty temporary working directory — no credentials;
 * 4. Linux namespaces where available — no network (`unshare -n`), no signals to other
 *    processes (PID namespace), and an unprivileged uid when the parent is root;
 * 5. limits — V8 heap cap plus a resident-memory watchdog, a wall-clock SIGKILL, and
 *    output/log caps.
 * Inputs and output cross as Arrow IPC over pipes; nothing else is shared.
 *
 * @throws AirlockError with {@link SandboxFailureDetails} as `details`: `LIMIT_EXCEEDED`
 *   (timeout, memory, output size), `DENIED` (sandbox violation), `INVALID` (the step
 *   threw, returned a non-table, or crashed).
 * @example
 * const bundle = await bundleStep('pipes/ml/train.mjs');
 * const { output, logs } = await runCodeStep({ bundle, inputs: { events }, params: { tag: 'x' },
 *   limits: { memoryMb: 512, timeoutMs: 30_000 } });
 */
export async function runCodeStep(request: RunCodeStepRequest): Promise<RunCodeStepResult> {
  const limits = fullLimits(request.limits);
  const raw = await runSandboxProcess(
    request.bundle.file,
    'run',
    request.params ?? {},
    ipcInputs(request.inputs),
    limits,
  );
  return interpretRun(raw, request.bundle, limits, raw.sinceSpawnMs);
}

/** A code step whose sandbox process is starting; see {@link startCodeStep}. */
export interface StartedCodeStep {
  /** Sends the inputs and returns what {@link runCodeStep} would. Call at most once. */
  run(inputs: RunCodeStepRequest['inputs'], params?: Record<string, string>): Promise<RunCodeStepResult>;
  /** Stops the process if it was never run (or is still running). Idempotent. */
  dispose(): Promise<void>;
}

/**
 * Starts a code step's sandbox process before its inputs exist, so the runtime's start-up
 * overlaps whatever prepares them; `run` then costs only the request, the step and its
 * output. Same sandbox, limits and errors as {@link runCodeStep}; the wall-clock limit
 * runs from `run` (and, before it, bounds start-up alone). `durationMs` of the result
 * counts from `run`. With a `pool`, the process is a ready one from the pool (bound to
 * this bundle now), so not even the spawn is left to hide.
 *
 * @example
 * const step = startCodeStep(bundle, { timeoutMs: 30_000 });
 * try { const inputs = await readInputs(); return await step.run(inputs, params); }
 * finally { await step.dispose(); }
 */
export function startCodeStep(
  bundle: StepBundle,
  limitsAsked?: Partial<SandboxLimits>,
  pool?: SandboxPool,
): StartedCodeStep {
  const limits = fullLimits(limitsAsked);
  const starting = pool ? pool.acquire(bundle.file, limits) : startSandboxProcess(bundle.file, limits);
  starting.catch(() => undefined); // reported by run(); a disposed step's spawn failure is moot
  return {
    async run(inputs, params = {}) {
      const raw = await (await starting).send('run', params, ipcInputs(inputs));
      return interpretRun(raw, bundle, limits, raw.durationMs);
    },
    async dispose() {
      await (await starting.catch(() => undefined))?.dispose();
    },
  };
}

function ipcInputs(inputs: RunCodeStepRequest['inputs']): SandboxInput[] {
  return Object.entries(inputs).map(([name, table]) => ({
    name,
    ipc: table instanceof Uint8Array ? table : tableToIPC(table, 'stream'),
  }));
}

function interpretRun(
  raw: RawSandboxResult,
  bundle: StepBundle,
  limits: SandboxLimits,
  durationMs: number,
): RunCodeStepResult {
  const failure = interpretFailure(raw, bundle.step, limits);
  if (failure) throw failure;
  const ok = raw.control.find((m) => m.type === 'ok');
  if (ok?.type !== 'ok' || (raw.exitCode !== 0 && !raw.complete)) throw crashed(raw, bundle.step);
  if (raw.stdout.byteLength !== ok.bytes) {
    throw fail(
      'INVALID',
      `step ${bundle.step} output was corrupted in transit (${raw.stdout.byteLength} bytes received, ${ok.bytes} sent)`,
      'crashed',
      raw,
      bundle.step,
    );
  }
  const output = tableFromIPC(raw.stdout);
  return {
    output,
    outputIpc: raw.stdout,
    logs: raw.logs,
    durationMs,
    peakRssMb: raw.peakRssMb,
    warnings: raw.isolation.warnings,
    isolation: {
      network: raw.isolation.network,
      pid: raw.isolation.pid,
      unprivilegedUser: raw.isolation.unprivilegedUser,
    },
  };
}

/**
 * Runs a bundled step in "describe" mode: the sandbox loads the step module and returns
 * its static declaration (`output`, `inputs`, `expect`, whether it has `run`) as JSON.
 * Loading a module runs its top-level code, so even reading a declaration of untrusted
 * code happens in the sandbox, never in the parent. The declaration is kept next to the
 * bundle under the hash of its bytes, so the same bundle is described again without
 * starting a process; its `logs` are then empty. The result is unvalidated JSON;
 * `describeCodeStep` in `shared/pipeline/steps` validates it.
 *
 * @throws AirlockError as {@link runCodeStep} does.
 */
export async function describeStepBundle(
  bundle: StepBundle,
  limits?: Partial<SandboxLimits>,
): Promise<{ spec: unknown; logs: string[] }> {
  const known = await describedFile(bundle.file);
  const spec = await readFile(known, 'utf8').catch(() => undefined);
  if (spec !== undefined) return { spec: JSON.parse(spec) as unknown, logs: [] };
  const full = fullLimits({ timeoutMs: 15_000, ...limits });
  const raw = await runSandboxProcess(bundle.file, 'describe', {}, [], full);
  const failure = interpretFailure(raw, bundle.step, full);
  if (failure) throw failure;
  const msg = raw.control.find((m) => m.type === 'describe');
  if (msg?.type !== 'describe') throw crashed(raw, bundle.step);
  // Kept for the next run of the same bundle (best effort: a read-only cache only costs a sandbox start).
  await writeAtomically(known, JSON.stringify(msg.spec ?? null)).catch(() => undefined);
  return { spec: msg.spec, logs: raw.logs };
}

/**
 * The sandbox facts of an error thrown by {@link runCodeStep} or
 * {@link describeStepBundle} (reason, the step's logs, stack head), or `undefined` for
 * any other error. Recognised by shape, so it works on errors that crossed a process or
 * package boundary.
 *
 * @example
 * catch (e) { const f = sandboxFailureOf(e); if (f) recordStepFailure(f.reason, f.logs); throw e; }
 */
export function sandboxFailureOf(e: unknown): SandboxFailureDetails | undefined {
  if (!isAirlockError(e)) return undefined;
  const d = e.details as Partial<SandboxFailureDetails>;
  return typeof d.reason === 'string' && Array.isArray(d.logs) && typeof d.step === 'string'
    ? (d as SandboxFailureDetails)
    : undefined;
}
