export { defaultSandboxPoolSize, LocalCodeStepExecutor } from './executors.js';
export {
  fetchedPipelineDir,
  fetchPipelineFolder,
  PIPELINE_FOLDER_LIMITS,
  pipelinePrefixOf,
} from './fetchPipelineFolder.js';
export { LambdaCodeStepExecutor } from './LambdaCodeStepExecutor.js';
export { INLINE_LIMIT_BYTES } from './stepExecutorProtocol.js';
export { PipelineRunner } from './PipelineRunner.js';
export { planPipeline, stepInputs } from './planPipeline.js';
export { summarize } from './runState.js';

export type {
  CodeStepExecutor,
  CodeStepOutcome,
  CodeStepRequest,
  LocalCodeStepExecutorOptions,
  StartedCodeStepExecution,
} from './executors.js';
export type { LambdaExecutorOptions } from './LambdaCodeStepExecutor.js';
export type { StepExecutorEvent, StepExecutorResult } from './stepExecutorProtocol.js';
export type { ExecutionOptions, PipelinePolicy, RunnerDeps, StartRunOptions, StepReader } from './PipelineRunner.js';
export type { PipelinePlan, PlannedStep } from './planPipeline.js';
export type { Isolation, RecordedStep, RunEvent, StepFailureReason, StoredRunEvent } from './runLog.js';
export type { RunStatus, RunSummary, StepState } from './runState.js';
