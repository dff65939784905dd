import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { AirlockError } from '../../errors/index.js';
import type { CodeStepExecutor, CodeStepOutcome, CodeStepRequest } from './executors.js';
import { INLINE_LIMIT_BYTES, type StepExecutorEvent, type StepExecutorResult } from './stepExecutorProtocol.js';

/** Options of {@link LambdaCodeStepExecutor}. */
export interface LambdaExecutorOptions {
  lambda: LambdaClient;
  /** Name or ARN of the step-executor function. */
  functionName: string;
  s3: S3Client;
  /** Bucket for step transfers (the lake bucket; keys under `prefix`). */
  bucket: string;
  /** Key prefix of transfer objects (default `steps/`). */
  prefix?: string;
  /** Lifetime of presigned URLs in seconds (default: the step's time limit plus a minute). */
  urlTtlSeconds?: number;
}

/**
 * Runs code steps in the step-executor Lambda. The orchestrator (which has data access)
 * stages each input under a fresh key and hands the executor a presigned GET URL for
 * exactly that key — or the bytes inline when small — plus a presigned PUT URL for
 * exactly one output key, then reads the output back and deletes the transfer objects.
 * The executor's own role has no data permissions at all.
 */
export class LambdaCodeStepExecutor implements CodeStepExecutor {
  private readonly prefix: string;

  constructor(private readonly options: LambdaExecutorOptions) {
    this.prefix = (options.prefix ?? 'steps/').replace(/\/?$/, '/');
  }

  async run(request: CodeStepRequest): Promise<CodeStepOutcome> {
    const { s3, bucket } = this.options;
    const base = `${this.prefix}${randomUUID()}`;
    const ttl = this.options.urlTtlSeconds ?? Math.ceil((request.limits?.timeoutMs ?? 60_000) / 1000) + 60;
    const keys: string[] = [];
    const sign = (command: GetObjectCommand | PutObjectCommand) => getSignedUrl(s3, command, { expiresIn: ttl });
    try {
      const total = Object.values(request.inputs).reduce((n, b) => n + b.byteLength, 0);
      const inputs: StepExecutorEvent['inputs'] = await Promise.all(
        Object.entries(request.inputs).map(async ([name, bytes]) => {
          if (total <= INLINE_LIMIT_BYTES) return { name, inline: Buffer.from(bytes).toString('base64') };
          const key = `${base}/in-${name}.arrow`;
          keys.push(key);
          await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
          return { name, url: await sign(new GetObjectCommand({ Bucket: bucket, Key: key })) };
        }),
      );
      const outputKey = `${base}/out.arrow`;
      keys.push(outputKey);
      const event: StepExecutorEvent = {
        step: {
          name: request.bundle.step.split(/[\\/]/).pop() ?? 'step',
          hash: request.bundle.hash,
          code: await readFile(request.bundle.file, 'utf8'),
        },
        inputs,
        output: { url: await sign(new PutObjectCommand({ Bucket: bucket, Key: outputKey })) },
        params: request.params,
        ...(request.limits ? { limits: request.limits } : {}),
      };
      const response = await this.options.lambda.send(
        new InvokeCommand({
          FunctionName: this.options.functionName,
          Payload: new TextEncoder().encode(JSON.stringify(event)),
        }),
      );
      const text = new TextDecoder().decode(response.Payload ?? new Uint8Array());
      if (response.FunctionError) {
        throw new AirlockError(
          'INTERNAL',
          `the step executor failed (${response.FunctionError}): ${text.slice(0, 500)}`,
        );
      }
      const result = JSON.parse(text) as StepExecutorResult;
      if (!result.ok) {
        throw new AirlockError(result.error.code, result.error.message, { details: result.error.details ?? {} });
      }
      const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: outputKey }));
      const outputIpc = await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
      if (outputIpc.byteLength !== result.bytes) {
        throw new AirlockError(
          'INTERNAL',
          `step output was corrupted in transit (${outputIpc.byteLength} of ${result.bytes} bytes)`,
        );
      }
      return { outputIpc, logs: result.logs, durationMs: result.durationMs, warnings: result.warnings };
    } finally {
      if (keys.length > 0) {
        await s3
          .send(
            new DeleteObjectsCommand({
              Bucket: bucket,
              Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
            }),
          )
          .catch(() => undefined);
      }
    }
  }
}
