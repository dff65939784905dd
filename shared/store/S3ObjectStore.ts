import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { AirlockError, notFound } from '../errors/index.js';
import { assertObjectKey, LOCAL_TEMP_DIR } from './objectKeys.js';
import type { ObjectInfo, ObjectStore } from './ports.js';
import { classifyAwsError, DEFAULT_RETRY_POLICY, type RetryPolicy, type Sleep, withRetry } from './retry.js';

/** The user-metadata entry (`x-amz-meta-sha256`) holding the hex SHA-256 of an object's bytes. */
export const SHA256_METADATA = 'sha256';

/** Options of {@link openS3ObjectStore}. */
export interface S3ObjectStoreOptions {
  bucket: string;
  /** A client to use; the default is {@link createS3Client}. */
  client?: S3Client;
  /** Where {@link S3ObjectStore.localPath} keeps downloaded objects (default `<tmp>/airlock-object-cache/<bucket>`). */
  cacheDir?: string;
  /** Files larger than this are uploaded in parts (default 64 MiB). */
  multipartThreshold?: number;
  /** Part size of multipart uploads (default 16 MiB; S3 requires ≥ 5 MiB except the last part). */
  partSize?: number;
  /** Retry policy for throttling, 5xx and network failures (every request here is idempotent). */
  retry?: RetryPolicy;
  /** Injected clock, for tests. */
  sleep?: Sleep;
}

/**
 * An S3 client configured for the adapters: SDK retries off (the store retries, re-opening
 * file streams, which the SDK cannot), path-style addressing when an endpoint is set
 * (`AWS_ENDPOINT_URL_S3`, e.g. s3rver or MinIO), and checksums only where requested: the
 * store supplies its own SHA-256, so the SDK never switches to `aws-chunked` trailers,
 * which emulators such as s3rver store verbatim as part of the object.
 */
export function createS3Client(config: S3ClientConfig = {}): S3Client {
  const endpointSet = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL ?? config.endpoint);
  const regionSet = Boolean(process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? config.region);
  return new S3Client({
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_SUPPORTED',
    ...(endpointSet ? { forcePathStyle: true } : {}),
    ...(endpointSet && !regionSet ? { region: 'us-east-1' } : {}),
    ...config,
  });
}

function errorName(error: unknown): string {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : '';
}

function isMissing(error: unknown): boolean {
  const name = errorName(error);
  return (
    name === 'NoSuchKey' ||
    name === 'NotFound' ||
    (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode === 404
  );
}

function integrityError(key: string, expected: string, actual: string): AirlockError {
  return new AirlockError(
    'INTERNAL',
    `object '${key}' failed its integrity check: SHA-256 ${actual} does not match the stored ${expected}`,
    { details: { key, expected, actual, integrity: 'sha256' } },
  );
}

/** Hashes a stream as it passes through. */
class HashingTransform extends Transform {
  readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.hash.update(chunk);
    this.push(chunk);
    callback();
  }
}

interface FileDigest {
  size: number;
  sha256: Buffer;
  parts: Buffer[];
}

/** One streaming pass over a file: the whole-file SHA-256 and, when parted, each part's. */
async function digestFile(path: string, partSize: number | undefined): Promise<FileDigest> {
  const whole = createHash('sha256');
  const parts: Buffer[] = [];
  let part = partSize ? createHash('sha256') : undefined;
  let inPart = 0;
  let size = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    whole.update(chunk);
    size += chunk.length;
    if (!partSize || !part) continue;
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(partSize - inPart, chunk.length - offset);
      part.update(chunk.subarray(offset, offset + take));
      inPart += take;
      offset += take;
      if (inPart === partSize) {
        parts.push(part.digest());
        part = createHash('sha256');
        inPart = 0;
      }
    }
  }
  if (part && inPart > 0) parts.push(part.digest());
  return { size, sha256: whole.digest(), parts };
}

/**
 * The {@link ObjectStore} on one S3 bucket.
 *
 * Guarantees:
 * - Integrity end to end: every object carries the SHA-256 of its bytes in its metadata
 *   (`x-amz-meta-sha256`), and uploads also send it as `x-amz-checksum-sha256` so S3
 *   itself rejects bytes corrupted in transit. Every read (`get`, `localPath`) recomputes
 *   the hash and fails (`INTERNAL`, `details.integrity`) when it differs. Objects written
 *   by other tools (no metadata) are checked by the SDK against S3's own checksum when S3
 *   returns one.
 * - `putFile` streams: files are hashed in one pass, then sent as a stream with a known
 *   length, or in parts above {@link S3ObjectStoreOptions.multipartThreshold}; nothing is
 *   buffered whole. A failed multipart upload is aborted.
 * - `localPath` downloads an object once into the cache directory (temporary file, verify,
 *   fsync, atomic rename), so concurrent readers never see a partial file.
 * - Throttling, 5xx and network errors are retried with backoff; all requests here are
 *   idempotent because objects are immutable.
 */
export class S3ObjectStore implements ObjectStore {
  /** The bucket holding the objects. */
  readonly bucket: string;
  /** Where {@link localPath} keeps verified downloads (one file per key, never rewritten). */
  readonly cacheDir: string;
  private readonly client: S3Client;
  private readonly ownsClient: boolean;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly policy: RetryPolicy;
  private readonly sleep: Sleep | undefined;
  private readonly downloads = new Map<string, Promise<string>>();

  constructor(options: S3ObjectStoreOptions) {
    this.bucket = options.bucket;
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? createS3Client();
    this.cacheDir = options.cacheDir ?? join(tmpdir(), 'airlock-object-cache', encodeURIComponent(options.bucket));
    this.partSize = Math.max(5 * 1024 * 1024, options.partSize ?? 16 * 1024 * 1024);
    this.multipartThreshold = Math.max(this.partSize, options.multipartThreshold ?? 64 * 1024 * 1024);
    this.policy = options.retry ?? DEFAULT_RETRY_POLICY;
    this.sleep = options.sleep;
  }

  private retrying<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, {
      policy: this.policy,
      sleep: this.sleep,
      retryable: (e) => !isMissing(e) && classifyAwsError(e) !== 'fatal',
    });
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    assertObjectKey(key);
    const sha = createHash('sha256').update(body).digest();
    await this.retrying(() =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: body.byteLength,
          ChecksumSHA256: sha.toString('base64'),
          Metadata: { [SHA256_METADATA]: sha.toString('hex') },
        }),
      ),
    );
  }

  async putFile(key: string, path: string, options: { move?: boolean } = {}): Promise<void> {
    assertObjectKey(key);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') throw notFound(`file '${path}' does not exist`, { path });
      throw error;
    }
    const parted = size > this.multipartThreshold;
    const digest = await digestFile(path, parted ? this.partSize : undefined);
    if (parted) await this.uploadParts(key, path, digest);
    else {
      await this.retrying(() =>
        this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: createReadStream(path),
            ContentLength: digest.size,
            ChecksumSHA256: digest.sha256.toString('base64'),
            Metadata: { [SHA256_METADATA]: digest.sha256.toString('hex') },
          }),
        ),
      );
    }
    if (options.move) await unlink(path);
  }

  private async uploadParts(key: string, path: string, digest: FileDigest): Promise<void> {
    const created = await this.retrying(() =>
      this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          ChecksumAlgorithm: 'SHA256',
          Metadata: { [SHA256_METADATA]: digest.sha256.toString('hex') },
        }),
      ),
    );
    const uploadId = created.UploadId as string;
    try {
      const done: { PartNumber: number; ETag?: string; ChecksumSHA256: string }[] = [];
      const next = { index: 0 };
      const worker = async () => {
        for (let i = next.index++; i < digest.parts.length; i = next.index++) {
          const start = i * this.partSize;
          const length = Math.min(this.partSize, digest.size - start);
          const checksum = (digest.parts[i] as Buffer).toString('base64');
          const res = await this.retrying(() =>
            this.client.send(
              new UploadPartCommand({
                Bucket: this.bucket,
                Key: key,
                UploadId: uploadId,
                PartNumber: i + 1,
                Body: createReadStream(path, { start, end: start + length - 1 }),
                ContentLength: length,
                ChecksumSHA256: checksum,
              }),
            ),
          );
          done[i] = { PartNumber: i + 1, ETag: res.ETag, ChecksumSHA256: checksum };
        }
      };
      await Promise.all(Array.from({ length: Math.min(4, digest.parts.length) }, worker));
      await this.retrying(() =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: done },
          }),
        ),
      );
    } catch (error) {
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined);
      throw error;
    }
  }

  private async fetch(key: string): Promise<GetObjectCommandOutput> {
    assertObjectKey(key);
    try {
      return await this.retrying(() =>
        this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' })),
      );
    } catch (error) {
      if (isMissing(error)) throw notFound(`object '${key}' does not exist`, { key, bucket: this.bucket });
      throw error;
    }
  }

  async get(key: string): Promise<Uint8Array> {
    const res = await this.fetch(key);
    const bytes = await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
    const expected = res.Metadata?.[SHA256_METADATA];
    if (expected !== undefined) {
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== expected) throw integrityError(key, expected, actual);
    }
    return bytes;
  }

  async localPath(key: string): Promise<string> {
    assertObjectKey(key);
    const target = join(this.cacheDir, ...key.split('/'));
    // Objects are immutable: a cached file is the object, forever.
    if (
      await stat(target).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return target;
    let pending = this.downloads.get(key);
    if (!pending) {
      pending = this.download(key, target).finally(() => this.downloads.delete(key));
      this.downloads.set(key, pending);
    }
    return pending;
  }

  private async download(key: string, target: string): Promise<string> {
    const res = await this.fetch(key);
    const tempDir = join(this.cacheDir, LOCAL_TEMP_DIR);
    await mkdir(tempDir, { recursive: true });
    await mkdir(dirname(target), { recursive: true });
    const temp = join(tempDir, randomUUID());
    const hashing = new HashingTransform();
    try {
      await pipeline(res.Body as Readable, hashing, createWriteStream(temp, { flags: 'wx' }));
      const expected = res.Metadata?.[SHA256_METADATA];
      const actual = hashing.hash.digest('hex');
      if (expected !== undefined && actual !== expected) throw integrityError(key, expected, actual);
      const handle = await open(temp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, target);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    return target;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertObjectKey(key);
    try {
      const res = await this.retrying(() => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return { key, size: res.ContentLength ?? 0 };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      const page = await this.retrying(() =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            ...(prefix ? { Prefix: prefix } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key !== undefined) yield { key: o.Key, size: o.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    assertObjectKey(key);
    try {
      await this.retrying(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }
}

/**
 * Opens the S3 object store on `bucket` (which must exist: {@link ensureBucket}).
 *
 * @example
 * const objects = openS3ObjectStore({ bucket: process.env.AIRLOCK_BUCKET! });
 */
export function openS3ObjectStore(options: S3ObjectStoreOptions): S3ObjectStore {
  return new S3ObjectStore(options);
}

/** Creates `bucket` when missing (idempotent; used by `airlock init`). */
export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return;
  } catch (error) {
    if (!isMissing(error) && errorName(error) !== 'NoSuchBucket') throw error;
  }
  const region = await client.config.region();
  try {
    await client.send(
      new CreateBucketCommand({
        Bucket: bucket,
        ...(region && region !== 'us-east-1'
          ? { CreateBucketConfiguration: { LocationConstraint: region as never } }
          : {}),
      }),
    );
  } catch (error) {
    if (errorName(error) !== 'BucketAlreadyOwnedByYou') throw error;
  }
}
