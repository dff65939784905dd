/**
 * The `runner` Lambda (functions/runner.ts) on a lake in DynamoDB Local + s3rver: the
 * pipeline folder is read from the lake bucket, code steps go to the real step-executor
 * handler. The Lambda invoke between them is the one piece that cannot run here, so
 * aws-sdk-client-mock wires `InvokeCommand` to that handler (as in stepExecutor.test.ts).
 */
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler } from '../functions/runner.js';
import { handler as stepExecutor } from '../functions/stepExecutor.js';
import { Lake } from '../shared/lake/Lake.js';
import { lakeLocation } from '../shared/lake/openLake.js';
import { fetchedPipelineDir } from '../shared/pipeline/run/index.js';
import type { StepExecutorEvent } from '../shared/pipeline/run/stepExecutorProtocol.js';
import { tempDir } from './support/cli.js';
import { awsBackendEnv, s3ClientFor } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

const ML = join(import.meta.dirname, 'fixtures', 'pipelines', 'ml');
const PREFIX = 'pipelines/ml/';

describe('runner Lambda (DynamoDB Local + s3rver, step executor handler behind a mocked invoke)', () => {
  const lambda = mockClient(LambdaClient);
  const invoked: string[] = [];
  let lake: Lake;

  beforeAll(async () => {
    const emulators = await useEmulators();
    const env = awsBackendEnv(emulators, 'airlock-runner');
    Object.assign(process.env, env, { AIRLOCK_STEP_EXECUTOR_FUNCTION: 'airlock-step-executor' });
    lambda.on(InvokeCommand).callsFake(async (input: { FunctionName: string; Payload: Uint8Array }) => {
      invoked.push(input.FunctionName);
      const event = JSON.parse(new TextDecoder().decode(input.Payload)) as StepExecutorEvent;
      return { StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(await stepExecutor(event))) };
    });
    lake = (await Lake.init(lakeLocation({}))).lake;
    const owner = { person: lake.owner };
    await lake.catalog.createBranch('dev', 'main', owner);
    const csv = join(tempDir('airlock-runner-lambda-'), 'events.csv');
    writeFileSync(csv, `id,amount\n${Array.from({ length: 20 }, (_, i) => `${i + 1},${i + 1}.5`).join('\n')}\n`);
    await lake.importTable(owner, { table: 'raw.events', file: csv, branch: 'dev' });
    // The pipeline folder, uploaded as `aws s3 sync` would.
    const s3 = s3ClientFor(emulators.s3Endpoint);
    for (const name of readdirSync(ML)) {
      await s3.send(
        new PutObjectCommand({
          Bucket: env.AIRLOCK_BUCKET,
          Key: `${PREFIX}${name}`,
          Body: readFileSync(join(ML, name)),
        }),
      );
    }
  }, 300_000);

  afterAll(async () => {
    lambda.restore();
    await lake?.close();
  });

  it('runs a pipeline folder from the lake bucket and publishes its outputs, code steps in the step executor', async () => {
    const run = await handler({ action: 'start', pipeline: { prefix: PREFIX }, branch: 'dev', params: { tag: 'aws' } });

    expect(run).toMatchObject({ status: 'succeeded', published: true, branch: 'dev' });
    expect(invoked).toContain('airlock-step-executor');
    const result = await lake.query(
      { person: lake.owner },
      { sql: "SELECT count(*) AS n FROM ml.train WHERE run_tag = 'aws'", ref: 'dev' },
    );
    expect(result.rows).toEqual([{ n: 16 }]);
  }, 300_000);

  it('resumes a failed run in a fresh container by fetching its folder again', async () => {
    const failed = await handler({
      action: 'start',
      pipeline: { prefix: PREFIX },
      branch: 'dev',
      params: { tag: 'x', fail: 'true' },
    });
    expect(failed).toMatchObject({ status: 'failed', error: { step: 'train.mjs' }, attempts: 1 });
    const local = fetchedPipelineDir(join(tmpdir(), 'airlock-pipelines'), PREFIX);
    expect(failed.pipeline).toBe(local);
    rmSync(local, { recursive: true, force: true }); // what a new container would not have

    const resumed = await handler({ action: 'resume', runId: failed.runId });

    expect(resumed).toMatchObject({ runId: failed.runId, status: 'failed', attempts: 2 });
    expect(readdirSync(local).sort()).toEqual(['train.mjs', 'validate.sql']);
  }, 300_000);

  it('refuses malformed events and a prefix with no pipeline, recording no run', async () => {
    const before = (await lake.catalog.listBranches()).length;
    await expect(handler({ action: 'stop' } as never)).rejects.toMatchObject({ code: 'INVALID' });
    await expect(handler({ action: 'start', branch: 'dev' } as never)).rejects.toMatchObject({ code: 'INVALID' });
    await expect(handler({ action: 'start', pipeline: { prefix: '../etc' }, branch: 'dev' })).rejects.toMatchObject({
      code: 'INVALID',
    });
    await expect(
      handler({ action: 'start', pipeline: { prefix: 'pipelines/none/' }, branch: 'dev' }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await lake.catalog.listBranches()).length).toBe(before);
  });
});
