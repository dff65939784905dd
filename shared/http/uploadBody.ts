import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AirlockError, invalid } from '../errors/index.js';
import { REQUEST_BYTES_CAP } from './httpErrors.js';

/** File formats an import accepts, by `?format=` or `Content-Type`. */
export type UploadFormat = 'csv' | 'parquet' | 'json' | 'jsonl';

const FORMATS: ReadonlySet<string> = new Set(['csv', 'parquet', 'json', 'jsonl']);

/** Media types mapped to formats (parameters such as `charset` are ignored). */
const MEDIA: Readonly<Record<string, UploadFormat>> = {
  'text/csv': 'csv',
  'application/csv': 'csv',
  'application/vnd.apache.parquet': 'parquet',
  'application/x-parquet': 'parquet',
  'application/parquet': 'parquet',
  'application/json': 'json',
  'application/jsonl': 'jsonl',
  'application/x-ndjson': 'jsonl',
  'application/ndjson': 'jsonl',
  'application/jsonlines': 'jsonl',
};

/** Default largest upload: 256 MiB (JSON bodies keep their own, smaller limit). */
export const DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024;

/**
 * The format of an uploaded file: `?format=` when given, else the `Content-Type`.
 * INVALID when neither names one of csv, parquet, json, jsonl.
 */
export function uploadFormatOf(format: string | undefined, contentType: string | undefined): UploadFormat {
  if (format !== undefined) {
    if (!FORMATS.has(format)) throw invalid(`'format' must be one of csv, parquet, json, jsonl, got '${format}'`);
    return format as UploadFormat;
  }
  const media = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const known = MEDIA[media];
  if (!known) {
    throw invalid(
      `say what the uploaded file is: ?format=csv|parquet|json|jsonl or a Content-Type (${Object.keys(MEDIA).join(', ')}); got '${media || 'none'}'`,
    );
  }
  return known;
}

/** An uploaded body written to a staging file. */
export interface StagedUpload {
  /** The file (its extension says the format, which is how the importer reads it). */
  path: string;
  bytes: number;
  /** SHA-256 of the bytes, lowercase hex. */
  sha256: string;
  /** Removes the file and its directory. */
  dispose(): Promise<void>;
}

/**
 * Streams a request body to `<stagingDir>/upload-<uuid>/upload.<format>`, hashing it on
 * the way, never holding it in memory. A body larger than `maxBytes` (announced by its
 * Content-Length or found while reading) is refused with LIMIT_EXCEEDED
 * (`details.cap = maxRequestBytes`, HTTP 413) and leaves no file behind.
 */
export async function stageUpload(
  request: Request,
  options: { stagingDir: string; format: UploadFormat; maxBytes: number },
): Promise<StagedUpload> {
  const tooLarge = () =>
    new AirlockError('LIMIT_EXCEEDED', `the uploaded file is larger than ${options.maxBytes} bytes`, {
      details: { cap: REQUEST_BYTES_CAP, limit: options.maxBytes },
    });
  const announced = Number(request.headers.get('content-length') ?? Number.NaN);
  if (!request.body) throw invalid('the request has no body: send the file bytes as the body');
  if (Number.isFinite(announced) && announced > options.maxBytes) {
    await drain(request.body.getReader());
    throw tooLarge();
  }
  const dir = join(options.stagingDir, `upload-${randomUUID()}`);
  await mkdir(dir, { recursive: true });
  const dispose = () => rm(dir, { recursive: true, force: true });
  const path = join(dir, `upload.${options.format}`);
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  let bytes = 0;
  const reader = request.body.getReader();
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), failed]);
      if (done) break;
      bytes += value.byteLength;
      if (bytes > options.maxBytes) {
        await drain(reader);
        throw tooLarge();
      }
      hash.update(value);
      if (!out.write(value)) await Promise.race([new Promise<void>((r) => out.once('drain', () => r())), failed]);
    }
    await Promise.race([new Promise<void>((r) => out.end(() => r())), failed]);
  } catch (e) {
    out.destroy();
    await dispose();
    throw e;
  }
  if (bytes === 0) {
    await dispose();
    throw invalid('the uploaded file is empty');
  }
  return { path, bytes, sha256: hash.digest('hex'), dispose };
}

/** Most bytes of a refused upload read (and dropped) so that its sender still gets the 413. */
const MAX_DRAINED_BYTES = 16 * 1024 * 1024;

/**
 * Reads and drops the rest of a refused request body: a server answering 413 while the
 * client still sends makes most clients report a broken pipe (EPIPE/ECONNRESET) instead of
 * the answer. Bounded: past {@link MAX_DRAINED_BYTES} the body is cancelled (the
 * connection dropped), so a huge upload costs little.
 */
export async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  let read = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
      if (read > MAX_DRAINED_BYTES) {
        await reader.cancel();
        return;
      }
    }
  } catch {
    // The client went away: nothing left to answer.
  }
}
