import { invalid } from '../errors/index.js';
import type { ObjectCreatedEvent } from './ingestObject.js';
import { decodeEventKey } from './landingKey.js';

/** One S3 event notification record (the fields ingestion reads). */
export interface S3EventRecord {
  eventSource?: string;
  eventName?: string;
  s3?: {
    bucket?: { name?: string };
    object?: { key?: string; size?: number; versionId?: string | null; sequencer?: string };
  };
}

/** What an S3 event record asks for: an object to ingest, or nothing (another event type). */
export type ParsedRecord = { kind: 'object'; event: ObjectCreatedEvent } | { kind: 'ignored'; reason: string };

/**
 * Reads an S3 event record. `ObjectCreated:*` records become {@link ObjectCreatedEvent}s
 * (key URL-decoded); other event types are ignored with a reason. A record that claims
 * to be an `ObjectCreated` event but lacks its bucket, key or sequencer is INVALID.
 */
export function parseS3Record(record: S3EventRecord): ParsedRecord {
  if (record?.eventSource !== 'aws:s3')
    return { kind: 'ignored', reason: `not an S3 record (${String(record?.eventSource)})` };
  const name = record.eventName ?? '';
  if (!name.startsWith('ObjectCreated:'))
    return { kind: 'ignored', reason: `event ${name || '(none)'} is not ObjectCreated` };
  const bucket = record.s3?.bucket?.name;
  const object = record.s3?.object;
  if (typeof bucket !== 'string' || bucket === '' || typeof object?.key !== 'string' || object.key === '') {
    throw invalid('S3 event record without s3.bucket.name or s3.object.key');
  }
  if (typeof object.sequencer !== 'string' || object.sequencer === '') {
    throw invalid(`S3 event record for ${object.key} without s3.object.sequencer`);
  }
  const versionId = typeof object.versionId === 'string' && object.versionId !== '' ? object.versionId : null;
  return {
    kind: 'object',
    event: {
      bucket,
      key: decodeEventKey(object.key),
      versionId,
      sequencer: object.sequencer,
      ...(typeof object.size === 'number' ? { size: object.size } : {}),
    },
  };
}
