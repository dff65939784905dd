import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { notFound } from '../errors/index.js';
import type { LandingSource, ObjectCreatedEvent } from './ingestObject.js';
import { LANDING_PREFIX } from './landingKey.js';
import { sequencerFromTime } from './sequencer.js';

/**
 * Downloads uploaded objects with `GetObject` — of the exact version the event names, so
 * a key overwritten since is still read as it was when the event fired. (The lake's
 * object store is not used: it caches by key, as lake objects never change, but landing
 * keys may be overwritten.)
 */
export class S3LandingSource implements LandingSource {
  constructor(private readonly client: S3Client) {}

  async download(object: { bucket: string; key: string; versionId: string | null }, path: string): Promise<void> {
    let body: Readable;
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: object.bucket,
          Key: object.key,
          ...(object.versionId ? { VersionId: object.versionId } : {}),
        }),
      );
      body = out.Body as Readable;
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NoSuchVersion' || name === 'NotFound') {
        throw notFound(`s3://${object.bucket}/${object.key} no longer exists (deleted before it was ingested)`, {
          key: object.key,
        });
      }
      throw e;
    }
    await pipeline(body, createWriteStream(path));
  }
}

/**
 * One listing of `landing/` as events (the local stand-in for S3 event notifications,
 * used by `airlock serve` against s3rver, which only emits events in-process): each
 * object becomes an {@link ObjectCreatedEvent} whose sequencer is its modification time
 * (ms, hex), with no version id (s3rver keeps no versions) and its ETag as part of its
 * identity: a re-upload to the same key is a new event, and an object listed twice is a
 * duplicate.
 */
export async function listLanding(client: S3Client, bucket: string): Promise<ObjectCreatedEvent[]> {
  const events: ObjectCreatedEvent[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: LANDING_PREFIX,
        ...(token ? { ContinuationToken: token } : {}),
      }),
    );
    for (const o of page.Contents ?? []) {
      if (!o.Key || o.Key.endsWith('/')) continue;
      events.push({
        bucket,
        key: o.Key,
        versionId: null,
        ...(o.ETag ? { eTag: o.ETag.replace(/"/g, '') } : {}),
        sequencer: sequencerFromTime(o.LastModified ?? new Date(0)),
        ...(o.Size !== undefined ? { size: o.Size } : {}),
      });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return events.sort((a, b) => (a.sequencer < b.sequencer ? -1 : a.sequencer > b.sequencer ? 1 : 0));
}
