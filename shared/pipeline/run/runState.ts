import type { Actor } from '../../catalog/model.js';
import type { Isolation, RecordedStep, StepFailureReason, StoredRunEvent } from './runLog.js';

/** A run's status: the contract's four plus `running` while (or if killed while) it executes. */
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'conflict' | 'awaiting_approval';

/** One step of a run as `runs show` reports it. */
export interface StepState {
  name: string;
  kind: 'sql' | 'code';
  output: string;
  inputs: string[];
  after: string[];
  status: 'pending' | 'running' | 'succeeded' | 'failed';
  rows?: number;
  durationMs?: number;
  commit?: string;
  version?: string;
  reads?: Record<string, string>;
  error?: { reason: StepFailureReason; code: string; message: string };
  /** The step's own log lines (from its last execution). */
  logs: string[];
}

/** A run as the CLI, HTTP and MCP report it. */
export interface RunSummary {
  runId: string;
  status: RunStatus;
  branch: string;
  runBranch: string;
  pipeline: string;
  base: string;
  params: Record<string, string>;
  isolation: Isolation;
  dryRun: boolean;
  /** True once the outputs were merged into `branch`. */
  published: boolean;
  /** The target's new head, when published. */
  commit?: string;
  mergeStatus?: string;
  /** The approval request publishing waits for (status `awaiting_approval`). */
  approvalId?: string;
  /** Versions on the target at `base` of the tables the run read but did not write. */
  reads: Record<string, string | null>;
  steps: StepState[];
  error?: { code: string; message: string; step?: string; tables?: string[] };
  actor: Actor;
  started: string;
  finished?: string;
  /** Executions of this run (1 + number of resumes). */
  attempts: number;
  durationMs?: number;
}

/** Folds a run's events into its summary. */
export function summarize(events: readonly StoredRunEvent[]): RunSummary {
  const first = events[0];
  if (first?.type !== 'started') throw new Error('a run log starts with its started event');
  const steps = new Map<string, StepState>(first.steps.map((s: RecordedStep) => [s.name, stepState(s)]));
  const summary: RunSummary = {
    runId: first.runId,
    status: 'running',
    branch: first.branch,
    runBranch: first.runBranch,
    pipeline: first.pipeline,
    base: first.base,
    params: first.params,
    isolation: first.isolation,
    dryRun: first.dryRun,
    published: false,
    reads: first.reads,
    steps: [],
    actor: first.actor,
    started: first.time,
    attempts: 1,
  };
  for (const e of events) {
    switch (e.type) {
      case 'resumed':
        summary.attempts = Math.max(summary.attempts, e.attempt);
        summary.status = 'running';
        delete summary.error;
        delete summary.finished;
        break;
      case 'step-started': {
        const s = steps.get(e.step);
        if (s && s.status !== 'succeeded') {
          s.status = 'running';
          delete s.error;
        }
        break;
      }
      case 'step-succeeded': {
        const s = steps.get(e.step);
        if (!s) break;
        Object.assign(s, {
          status: 'succeeded',
          rows: e.rows,
          durationMs: e.durationMs,
          commit: e.commit,
          version: e.version,
          reads: e.reads,
          logs: e.logs,
        });
        delete s.error;
        break;
      }
      case 'step-failed': {
        const s = steps.get(e.step);
        if (!s) break;
        Object.assign(s, {
          status: 'failed',
          durationMs: e.durationMs,
          logs: e.logs,
          error: { reason: e.reason, code: e.code, message: e.message },
        });
        break;
      }
      case 'finished':
        summary.status = e.status;
        summary.published = e.published;
        summary.finished = e.time;
        summary.durationMs = Date.parse(e.time) - Date.parse(summary.started);
        if (e.commit) summary.commit = e.commit;
        if (e.mergeStatus) summary.mergeStatus = e.mergeStatus;
        if (e.approvalId) summary.approvalId = e.approvalId;
        if (e.error) summary.error = e.error;
        break;
    }
  }
  summary.steps = [...steps.values()];
  return summary;
}

function stepState(s: RecordedStep): StepState {
  return {
    name: s.name,
    kind: s.kind,
    output: s.output,
    inputs: s.inputs,
    after: s.after,
    status: 'pending',
    logs: [],
  };
}
