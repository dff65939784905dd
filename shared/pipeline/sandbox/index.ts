export { bundleStep } from './bundleStep.js';
export {
  DEFAULT_DENIED_BUILTINS,
  DEFAULT_DENY_POLICY,
  deniedBy,
} from './denyPolicy.js';
export { detectIsolation, isolationSupport } from './isolation.js';
export { DEFAULT_REFILL_DELAY_MS, SandboxPool } from './pool.js';
export { rowsToTable } from './rowsToTable.js';
export { describeStepBundle, runCodeStep, sandboxFailureOf, startCodeStep } from './runCodeStep.js';
export { DEFAULT_SANDBOX_LIMITS } from './runSandbox.js';

export type { BundleStepOptions, StepBundle } from './bundleStep.js';
export type { DenyPolicy } from './denyPolicy.js';
export type { IsolationSupport } from './isolation.js';
export type { PooledSandboxProcess, SandboxPoolOptions, SandboxPoolStats } from './pool.js';
export type {
  RunCodeStepRequest,
  RunCodeStepResult,
  SandboxFailureDetails,
  SandboxFailureReason,
  StartedCodeStep,
} from './runCodeStep.js';
export type { SandboxLimits } from './runSandbox.js';
