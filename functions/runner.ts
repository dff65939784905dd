import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { GuardedLake } from '../shared/auth/index.js';
import { invalid } from '../shared/errors/index.js';
import { Lake } from '../shared/lake/Lake.js';
import {
  type Isolation,
  LambdaCodeStepExecutor,
  PipelineRunner,
  type RunSummary,
  fetchPipelineFolder,
  pipelinePrefixOf,
} from '../shared/pipeline/run/index.js';
import { createS3Client } from '../shared/store/S3ObjectStore.js';

/**
 * What the runner is invoked with (asynchronously, `InvocationType: Event`, or
 * synchronously to wait for the summary):
 * - `start`: run the pipeline folder stored in the lake bucket under `pipeline.prefix`
 *   (e.g. `pipelines/daily/`, uploaded with `aws s3 sync`) on `branch`, as `airlock run`
 *   does; `params`, `isolation` and `dryRun` as its flags.
 * - `resume`: re-execute the unfinished steps of run `runId`, as `airlock run resume`;
 *   its pipeline folder is fetched again from where the run's start fetched it.
 */
export type RunnerEvent =
  | {
      action: 'start';
      pipeline: { prefix: string };
      branch: string;
      params?: Record<string, string>;
      isolation?: Isolation;
      dryRun?: boolean;
      /** Act as this token's person/agent (as `AIRLOCK_TOKEN`); without one, as the lake's owner. */
      token?: string;
    }
  | { action: 'resume'; runId: string; token?: string };

/** Where fetched pipeline folders live in the container (Lambda's only writable disk is /tmp). */
const PIPELINES_ROOT = join(tmpdir(), 'airlock-pipelines');

/** The lake, opened once per container from the environment; a failed open is retried next time. */
let opened: Promise<Lake> | undefined;
function lake(): Promise<Lake> {
  opened ??= Lake.openFromEnv().catch((error: unknown) => {
    opened = undefined;
    throw error;
  });
  return opened;
}

/**
 * The `runner` Lambda: starts or resumes a pipeline run on the lake with the same
 * `PipelineRunner` as `airlock run`, with code steps executed by the step-executor Lambda
 * (`AIRLOCK_STEP_EXECUTOR_FUNCTION`; inputs and output handed over as presigned URLs for
 * exact keys under `steps/` in the lake bucket). Returns the run's summary (as
 * `airlock runs show --json`) whatever its status; refusals and infrastructure failures
 * throw, so an asynchronous invocation's failure lands in the function's failure
 * destination. Acts as the lake's owner until bearer tokens exist (issue 6).
 */
export async function handler(event: RunnerEvent): Promise<RunSummary> {
  const request = parse(event);
  const functionName = process.env.AIRLOCK_STEP_EXECUTOR_FUNCTION;
  if (!functionName) throw invalid('the runner needs AIRLOCK_STEP_EXECUTOR_FUNCTION (the step-executor function)');
  const l = await lake();
  const { stores } = l;
  const { location } = stores;
  if (location.backend !== 'aws') throw invalid('the runner Lambda needs AIRLOCK_BACKEND=aws');
  const executor = new LambdaCodeStepExecutor({
    lambda: new LambdaClient({}),
    functionName,
    s3: createS3Client(),
    bucket: location.bucket,
  });
  // Every run goes through the one enforcement point: authorized, read through the actor's
  // row filters and masks, audited. Only principals allowed to invoke this function reach it,
  // so without a token it acts as the lake's owner (as the embedded CLI does).
  const guard = new GuardedLake(l, { executor });
  const actor = request.token ? await guard.authenticate(request.token) : guard.owner;
  const runner = new PipelineRunner({
    catalog: l.catalog,
    store: stores.store,
    objects: stores.objects,
    stagingDir: stores.stagingDir,
  });
  if (request.action === 'start') {
    const pipelineDir = await fetchPipelineFolder(stores.objects, request.pipeline.prefix, PIPELINES_ROOT);
    return guard.runPipeline(actor, {
      pipelineDir,
      branch: request.branch,
      ...(request.params ? { params: request.params } : {}),
      ...(request.isolation ? { isolation: request.isolation } : {}),
      ...(request.dryRun ? { dryRun: true } : {}),
    });
  }
  const run = await runner.show(request.runId);
  const prefix = pipelinePrefixOf(run.pipeline, PIPELINES_ROOT);
  if (!prefix) {
    throw invalid(`run ${request.runId} was started from local files (${run.pipeline}); resume it where it started`);
  }
  await fetchPipelineFolder(stores.objects, prefix, PIPELINES_ROOT);
  return guard.resumeRun(actor, { runId: request.runId });
}

/** Checks the event's shape (the runner trusts nothing it is sent). */
function parse(event: RunnerEvent): RunnerEvent {
  const e = (event ?? {}) as Record<string, unknown>;
  if (e.action === 'resume') {
    if (typeof e.runId !== 'string' || e.runId === '') throw invalid('runner: resume needs {runId}');
    return { action: 'resume', runId: e.runId, ...tokenOf(e) };
  }
  if (e.action !== 'start') throw invalid(`runner: unknown action '${String(e.action)}' (use start or resume)`);
  const pipeline = e.pipeline as { prefix?: unknown } | undefined;
  if (typeof pipeline?.prefix !== 'string') throw invalid('runner: start needs {pipeline: {prefix}}');
  if (typeof e.branch !== 'string' || e.branch === '') throw invalid('runner: start needs {branch}');
  const params = e.params ?? {};
  if (typeof params !== 'object' || Array.isArray(params) || Object.values(params).some((v) => typeof v !== 'string')) {
    throw invalid('runner: params must be an object of strings');
  }
  if (e.dryRun !== undefined && typeof e.dryRun !== 'boolean') throw invalid('runner: dryRun must be a boolean');
  return {
    action: 'start',
    pipeline: { prefix: pipeline.prefix },
    branch: e.branch,
    params: params as Record<string, string>,
    ...(e.isolation !== undefined ? { isolation: e.isolation as Isolation } : {}),
    ...(e.dryRun ? { dryRun: true } : {}),
    ...tokenOf(e),
  };
}

function tokenOf(e: Record<string, unknown>): { token?: string } {
  if (e.token === undefined) return {};
  if (typeof e.token !== 'string' || e.token === '') throw invalid('runner: token must be a string');
  return { token: e.token };
}
