import { invalid, isAirlockError } from '../shared/errors/index.js';
import {
  type IngestOutcome,
  type S3EventRecord,
  ingestConfigFromEnv,
  ingestObject,
  parseS3Record,
} from '../shared/ingest/index.js';
import { S3LandingSource } from '../shared/ingest/S3LandingSource.js';
import { Lake } from '../shared/lake/Lake.js';
import { createS3Client } from '../shared/store/S3ObjectStore.js';

/** An S3 event notification (delivered straight to the function). */
export interface S3Event {
  Records: S3EventRecord[];
}

/** An SQS batch whose message bodies are S3 event notifications (when routed through a queue). */
export interface SqsEvent {
  Records: Array<{ eventSource: 'aws:sqs'; messageId: string; body: string }>;
}

/** What the handler returns: the outcome per record; for SQS batches, the messages to retry. */
export interface IngestHandlerResult {
  outcomes: Array<Pick<IngestOutcome['record'], 'id' | 'status' | 'key' | 'table' | 'rows'> & { duplicate: boolean }>;
  ignored: string[];
  batchItemFailures?: Array<{ itemIdentifier: string }>;
}

/** The lake and the landing source, opened once per container; a failed open is retried next time. */
let opened: Promise<{ lake: Lake; source: S3LandingSource }> | undefined;
function context() {
  opened ??= Lake.openFromEnv().then(
    (lake) => ({ lake, source: new S3LandingSource(createS3Client()) }),
    (error: unknown) => {
      opened = undefined;
      throw error;
    },
  );
  return opened;
}

/**
 * The `ingest` Lambda: each S3 `ObjectCreated` record under `landing/` becomes one
 * `ingestObject` call (shared/ingest), acting as the service person
 * `AIRLOCK_INGEST_PERSON` (default `ingest`) into `AIRLOCK_INGEST_TARGET` (default
 * `main`), gated by `AIRLOCK_INGEST_GATE`. Refused keys, failed imports, duplicates and
 * superseded events are recorded outcomes, not errors. An infrastructure failure throws
 * (S3 → Lambda asynchronous retries, then the dead-letter queue); in an SQS batch it is
 * reported per message (`batchItemFailures`) so only those messages are redelivered.
 */
export async function handler(event: S3Event | SqsEvent): Promise<IngestHandlerResult> {
  if (!event || !Array.isArray((event as { Records?: unknown }).Records)) {
    throw invalid('ingest: expected an S3 event notification or an SQS batch ({Records: [...]})');
  }
  const config = ingestConfigFromEnv();
  const { lake, source } = await context();
  const options = { source, target: config.target, gate: config.gate, actor: { person: config.person } };
  const result: IngestHandlerResult = { outcomes: [], ignored: [] };
  const ingestRecords = async (records: S3EventRecord[]) => {
    for (const record of records) {
      const parsed = parseS3Record(record);
      if (parsed.kind === 'ignored') {
        result.ignored.push(parsed.reason);
        continue;
      }
      const { duplicate, record: r } = await ingestObject(lake, parsed.event, options);
      result.outcomes.push({
        id: r.id,
        status: r.status,
        key: r.key,
        duplicate,
        ...(r.table ? { table: r.table } : {}),
        ...(r.rows !== undefined ? { rows: r.rows } : {}),
      });
    }
  };
  const records = event.Records as Array<S3EventRecord & { messageId?: string; body?: string }>;
  if (records.length > 0 && records.every((r) => r.eventSource === 'aws:sqs')) {
    result.batchItemFailures = [];
    for (const message of records) {
      try {
        const body = JSON.parse(message.body ?? '') as { Records?: S3EventRecord[]; Event?: string };
        if (body.Event === 's3:TestEvent') {
          result.ignored.push('s3:TestEvent');
          continue;
        }
        await ingestRecords(body.Records ?? []);
      } catch (error) {
        // A malformed message will never succeed: record it as ignored rather than redeliver it forever.
        if (error instanceof SyntaxError || (isAirlockError(error) && error.code === 'INVALID')) {
          result.ignored.push(`message ${message.messageId}: ${error.message}`);
          continue;
        }
        console.error(`ingest: message ${message.messageId} failed`, error);
        result.batchItemFailures.push({ itemIdentifier: String(message.messageId) });
      }
    }
    return result;
  }
  await ingestRecords(records);
  return result;
}
