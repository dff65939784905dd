/**
 * The step-executor Lambda handler, invoked directly with s3rver presigned URLs (the
 * handler talks to storage only through them), and the orchestrator side
 * (LambdaCodeStepExecutor) with the Lambda invoke wired to the real handler by
 * aws-sdk-client-mock — the one piece that cannot run here.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { type Table, tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler } from '../functions/stepExecutor.js';
import { Lake } from '../shared/lake/Lake.js';
import { LambdaCodeStepExecutor, PipelineRunner } from '../shared/pipeline/run/index.js';
import type { StepExecutorEvent, StepExecutorResult } from '../shared/pipeline/run/stepExecutorProtocol.js';
import { bundleStep } from '../shared/pipeline/sandbox/index.js';
import { ensureBucket } from '../shared/store/S3ObjectStore.js';
import { tempDir } from './support/cli.js';
import { s3ClientFor, uniqueName } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

const SANDBOX = join(import.meta.dirname, 'fixtures', 'pipelines', 'sandbox');
const ML = join(import.meta.dirname, 'fixtures', 'pipelines', 'ml');

function events(n: number): Table {
  const id = new BigInt64Array(n);
  const amount = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    id[i] = BigInt(i);
    amount[i] = i / 4;
  }
  return tableFromArrays({ id, amount });
}

async function bytesOf(s3: S3Client, bucket: string, key: string): Promise<Uint8Array> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (r.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
}

describe('step-executor Lambda', { timeout: 240_000 }, () => {
  let s3: S3Client;
  let bucket: string;
  beforeAll(async () => {
    const emulators = await useEmulators();
    s3 = s3ClientFor(emulators.s3Endpoint);
    bucket = uniqueName('steps');
    await ensureBucket(s3, bucket);
  });

  async function stepOf(file: string): Promise<StepExecutorEvent['step']> {
    const bundle = await bundleStep(join(SANDBOX, file));
    const { readFile } = await import('node:fs/promises');
    return { name: file, hash: bundle.hash, code: await readFile(bundle.file, 'utf8') };
  }

  it('reads inputs and writes its output only through presigned URLs for exact keys', async () => {
    const input = events(50_000);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'in/events.arrow', Body: tableToIPC(input, 'stream') }));
    const get = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'in/events.arrow' }), {
      expiresIn: 60,
    });
    const put = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: 'out/result.arrow' }), {
      expiresIn: 60,
    });
    const result = await handler({
      step: await stepOf('passthrough.mjs'),
      inputs: [{ name: 'events', url: get }],
      output: { url: put },
      params: {},
    });
    expect(result, JSON.stringify(result).slice(0, 500)).toMatchObject({ ok: true });
    expect((result as Extract<StepExecutorResult, { ok: true }>).logs).toContain('rows in: 50000');
    const output = tableFromIPC(await bytesOf(s3, bucket, 'out/result.arrow'));
    expect(output.numRows).toBe(50_000);
    expect(output.getChild('amount')?.get(49_999)).toBe(49_999 / 4);
  });

  it('carries small inputs and outputs inline', async () => {
    const result = await handler({
      step: await stepOf('passthrough.mjs'),
      inputs: [{ name: 'events', inline: Buffer.from(tableToIPC(events(10), 'stream')).toString('base64') }],
      output: { inline: true },
      params: {},
    });
    expect(result.ok).toBe(true);
    const out = tableFromIPC(Buffer.from((result as { inline: string }).inline, 'base64'));
    expect(out.numRows).toBe(10);
  });

  it('runs the step in the sandbox: a violation comes back as a failure with the sandbox reason', async () => {
    const result = await handler({
      step: await stepOf('spawn-dynamic.mjs'),
      inputs: [],
      output: { inline: true },
      params: { marker: join(tempDir(), 'pwned') },
    });
    expect(result.ok).toBe(false);
    const error = (result as Extract<StepExecutorResult, { ok: false }>).error;
    expect(error.code).toBe('DENIED');
    expect(error.details?.reason).toBe('sandbox_violation');
  });

  it('refuses a malformed event and an unreachable input with clear errors', async () => {
    const bad = await handler({ step: { name: 'x' } } as unknown as StepExecutorEvent);
    expect(bad).toMatchObject({ ok: false, error: { code: 'INVALID' } });
    const expired = await handler({
      step: await stepOf('passthrough.mjs'),
      inputs: [
        { name: 'events', url: `${await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'nope' }))}` },
      ],
      output: { inline: true },
      params: {},
    });
    expect(expired).toMatchObject({ ok: false });
    expect((expired as { error: { message: string } }).error.message).toMatch(
      /input events could not be read \(HTTP 404\)/,
    );
  });

  describe('LambdaCodeStepExecutor (orchestrator side)', () => {
    const lambda = mockClient(LambdaClient);
    const sent: StepExecutorEvent[] = [];
    beforeAll(() => {
      lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
        const event = JSON.parse(new TextDecoder().decode(input.Payload)) as StepExecutorEvent;
        sent.push(event);
        return { StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(await handler(event))) };
      });
    });
    afterAll(() => lambda.restore());

    it('stages large inputs behind presigned URLs, reads the output back, and cleans up', async () => {
      const executor = new LambdaCodeStepExecutor({
        lambda: new LambdaClient({ region: 'us-east-1' }),
        functionName: 'airlock-step-executor',
        s3,
        bucket,
      });
      const bundle = await bundleStep(join(SANDBOX, 'passthrough.mjs'));
      const input = events(300_000); // ~4.8 MB of IPC: above the inline limit
      const outcome = await executor.run({ bundle, inputs: { events: tableToIPC(input, 'stream') }, params: {} });
      expect(tableFromIPC(outcome.outputIpc).numRows).toBe(300_000);
      const event = sent[sent.length - 1] as StepExecutorEvent;
      expect('url' in (event.inputs[0] as object)).toBe(true);
      // Each URL is scoped to one exact key and expires soon.
      const inputUrl = new URL((event.inputs[0] as { url: string }).url);
      const outputUrl = new URL((event.output as { url: string }).url);
      expect(inputUrl.pathname).toMatch(/\/steps\/[0-9a-f-]{36}\/in-events\.arrow$/);
      expect(outputUrl.pathname).toMatch(/\/steps\/[0-9a-f-]{36}\/out\.arrow$/);
      expect(Number(inputUrl.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(180);
      const left = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'steps/' }));
      expect(left.KeyCount ?? 0).toBe(0);
    });

    it('runs a whole pipeline with code steps in the executor', async () => {
      const dir = tempDir('airlock-lambda-run-');
      const { lake } = await Lake.init({ backend: 'local', dir: join(dir, 'lake') });
      try {
        const owner = { person: 'alice' };
        await lake.catalog.createBranch('dev', 'main', owner);
        writeFileSync(
          join(dir, 'e.csv'),
          `id,amount\n${Array.from({ length: 20 }, (_, i) => `${i + 1},${i}.5`).join('\n')}\n`,
        );
        await lake.importTable(owner, { table: 'raw.events', file: join(dir, 'e.csv'), branch: 'dev' });
        const executor = new LambdaCodeStepExecutor({
          lambda: new LambdaClient({ region: 'us-east-1' }),
          functionName: 'airlock-step-executor',
          s3,
          bucket,
        });
        const runner = new PipelineRunner(
          {
            catalog: lake.catalog,
            store: lake.stores.store,
            objects: lake.stores.objects,
            stagingDir: lake.stores.stagingDir,
          },
          executor,
        );
        const before = sent.length;
        const run = await runner.start(owner, { pipelineDir: ML, branch: 'dev', params: { tag: 'lambda' } });
        expect(run.status).toBe('succeeded');
        expect(sent.length - before).toBe(1); // train.mjs; the SQL step runs in the engine
        const r = await lake.query(owner, {
          sql: "SELECT count(*) AS n FROM ml.train WHERE run_tag = 'lambda'",
          ref: 'dev',
        });
        expect(r.rows[0]?.n).toBe(16);
      } finally {
        await lake.close();
      }
    });
  });
});
