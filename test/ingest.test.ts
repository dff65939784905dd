/**
 * S3-upload ingestion on DynamoDB Local + s3rver: the `ingest` Lambda handler invoked with
 * real S3 event notification shapes (direct and SQS-wrapped), and the local poller that
 * `airlock serve` runs, fed by uploads through `@aws-sdk/client-s3`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { handler as IngestHandler } from '../functions/ingest.js';
import { DATA_PLANE_ASSET } from '../infra/AirlockStack.js';
import { buildLambdaAsset } from '../infra/lambdaAssets.js';
import { openApprovals } from '../shared/approvals/index.js';
import { AuditLog } from '../shared/audit/index.js';
import {
  IngestionLog,
  compareSequencers,
  ingestionId,
  ingestNeedsApproval,
  ingestObject,
  parseLandingKey,
  startLandingPoller,
} from '../shared/ingest/index.js';
import { S3LandingSource, listLanding } from '../shared/ingest/S3LandingSource.js';
import { Lake } from '../shared/lake/Lake.js';
import { lakeLocation } from '../shared/lake/openLake.js';
import { tempDir } from './support/cli.js';
import { awsBackendEnv, s3ClientFor } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

let lake: Lake;
let s3: S3Client;
let bucket: string;
let handler: typeof IngestHandler;
const dir = tempDir('airlock-ingest-');

/** An S3 event notification (event version 2.1) for one upload, shaped as S3 delivers it. */
function s3Event(key: string, sequencer: string, options: { versionId?: string; eventName?: string } = {}) {
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventTime: new Date().toISOString(),
        eventName: options.eventName ?? 'ObjectCreated:Put',
        userIdentity: { principalId: 'AWS:AIDAEXAMPLE' },
        requestParameters: { sourceIPAddress: '203.0.113.7' },
        responseElements: {
          'x-amz-request-id': 'C3D13FE58DE4C810',
          'x-amz-id-2': 'FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD',
        },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: 'airlock-landing',
          bucket: { name: bucket, ownerIdentity: { principalId: 'A3NL1KOZZKExample' }, arn: `arn:aws:s3:::${bucket}` },
          object: {
            // S3 URL-encodes keys in events (spaces as '+').
            key: encodeURIComponent(key).replace(/%2F/g, '/').replace(/%20/g, '+'),
            size: 1024,
            eTag: 'd41d8cd98f00b204e9800998ecf8427e',
            ...(options.versionId ? { versionId: options.versionId } : {}),
            sequencer,
          },
        },
      },
    ],
  };
}

async function upload(key: string, body: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

const head = async (branch = 'main') => (await lake.catalog.head(branch)).commit;
const rowsOf = async (table: string, ref = 'main') => (await lake.catalog.getTable(ref, table)).version.rowCount;

beforeAll(async () => {
  const emulators = await useEmulators();
  Object.assign(process.env, awsBackendEnv(emulators, 'airlock-ingest'), {
    AIRLOCK_INGEST_TARGET: 'main',
    AIRLOCK_INGEST_GATE: 'none',
  });
  bucket = process.env.AIRLOCK_BUCKET as string;
  lake = (await Lake.init(lakeLocation({}))).lake;
  s3 = s3ClientFor(emulators.s3Endpoint);
  ({ handler } = await import('../functions/ingest.js'));
});

afterAll(async () => {
  await lake?.close();
  s3?.destroy();
});

describe('the ingest Lambda handler', () => {
  it('imports an uploaded CSV on an ingest branch and merges it into main, as the ingest person', async () => {
    await upload('landing/sales/orders/2026-12-01.csv', 'id,amount\n1,10.5\n2,20\n3,30\n');

    const result = await handler(s3Event('landing/sales/orders/2026-12-01.csv', '0055AED6DCD90281E5'));

    expect(result.outcomes).toEqual([
      expect.objectContaining({ status: 'merged', table: 'sales.orders', rows: 3, duplicate: false }),
    ]);
    expect(await rowsOf('sales.orders')).toBe(3);
    const [merge] = await lake.catalog.history('main', 1);
    expect(merge?.author).toBe('ingest');
    const [record] = await new IngestionLog(lake.stores.store).list({ limit: 1 });
    expect(record).toMatchObject({
      status: 'merged',
      table: 'sales.orders',
      rows: 3,
      person: 'ingest',
      key: 'landing/sales/orders/2026-12-01.csv',
    });
    expect(record?.branch).toMatch(/^ingest\/sales\.orders\/[0-9a-f]{12}$/);
    const audit = await new AuditLog(lake.stores.store, lake.stores.objects).log({ limit: 5 });
    expect(audit.some((e) => e.person === 'ingest' && e.action === 'ingest' && e.outcome === 'ok')).toBe(true);
  });

  it('decodes URL-encoded keys and ingests JSONL', async () => {
    await upload('landing/sales/events/day one.jsonl', '{"id":1,"kind":"a"}\n{"id":2,"kind":"b"}\n');

    const result = await handler(s3Event('landing/sales/events/day one.jsonl', '0055AED6DCD90281F0'));

    expect(result.outcomes[0]).toMatchObject({ status: 'merged', table: 'sales.events', rows: 2 });
    expect(await rowsOf('sales.events')).toBe(2);
  });

  it('imports a duplicate delivery of the same event once', async () => {
    await upload('landing/sales/dupes/a.csv', 'id\n1\n2\n');
    const event = s3Event('landing/sales/dupes/a.csv', '0055AED6DCD9028200', { versionId: 'v1' });

    const first = await handler(event);
    const mainAfterFirst = await head();
    const second = await handler(event);

    expect(first.outcomes[0]).toMatchObject({ status: 'merged', duplicate: false });
    expect(second.outcomes[0]).toMatchObject({ status: 'merged', duplicate: true, id: first.outcomes[0]?.id });
    expect(await head()).toBe(mainAfterFirst);
    expect(await rowsOf('sales.dupes')).toBe(2);
    const log = await lake.catalog.history('main', 20);
    expect(log.filter((c) => c.message.includes(first.outcomes[0]?.id as string))).toHaveLength(1);
  });

  it('skips an older event that arrives after a newer one for the same key, and says so', async () => {
    await upload('landing/sales/late/x.csv', 'id\n7\n');
    const newer = await handler(s3Event('landing/sales/late/x.csv', '0062A8C1C4F5D6E3B0', { versionId: 'v2' }));
    const mainBefore = await head();

    const older = await handler(s3Event('landing/sales/late/x.csv', '0062A8C1C4F5D6E300', { versionId: 'v1' }));

    expect(newer.outcomes[0]).toMatchObject({ status: 'merged' });
    expect(older.outcomes[0]).toMatchObject({ status: 'skipped', duplicate: false });
    const record = await new IngestionLog(lake.stores.store).get(older.outcomes[0]?.id as string);
    expect(record?.error?.message).toContain('newer upload');
    expect(record?.error?.message).toContain('0062A8C1C4F5D6E3B0');
    expect(await head()).toBe(mainBefore);
    expect(await rowsOf('sales.late')).toBe(1);
  });

  it('records a file that breaks the table constraints as a failed ingestion, leaves main untouched and keeps the branch', async () => {
    const seed = join(dir, 'customers.csv');
    writeFileSync(seed, 'id,name\n1,ann\n2,bob\n');
    await lake.catalog.createBranch('seed-customers', 'main', { person: lake.owner });
    await lake.importTable(
      { person: lake.owner },
      { table: 'crm.customers', file: seed, branch: 'seed-customers', unique: ['id'] },
    );
    await lake.catalog.merge('seed-customers', 'main', { actor: { person: lake.owner }, message: 'seed' });
    const mainBefore = await head();
    await upload('landing/crm/customers/bad.csv', 'id,name\n3,cy\n3,dee\n');

    const result = await handler(s3Event('landing/crm/customers/bad.csv', '0055AED6DCD9028300'));

    expect(result.outcomes[0]).toMatchObject({ status: 'failed', table: 'crm.customers' });
    const record = await new IngestionLog(lake.stores.store).get(result.outcomes[0]?.id as string);
    expect(record?.error?.code).toBe('INVALID');
    expect(record?.error?.message).toMatch(/unique|duplicate/i);
    expect(await head()).toBe(mainBefore);
    expect(await rowsOf('crm.customers')).toBe(2);
    expect((await lake.catalog.listBranches()).map((b) => b.name)).toContain(record?.branch);
  });

  it('refuses keys outside landing/, bad names and unknown formats, recording why', async () => {
    const mainBefore = await head();

    const outside = await handler(s3Event('uploads/sales/orders/a.csv', '0055AED6DCD9028400'));
    const badName = await handler(s3Event('landing/Sales-EU/orders/a.csv', '0055AED6DCD9028401'));
    const badFormat = await handler(s3Event('landing/sales/orders/a.xlsx', '0055AED6DCD9028402'));

    const log = new IngestionLog(lake.stores.store);
    for (const [result, text] of [
      [outside, 'outside landing/'],
      [badName, 'names no valid table'],
      [badFormat, 'unsupported file type'],
    ] as const) {
      expect(result.outcomes[0]?.status).toBe('refused');
      const record = await log.get(result.outcomes[0]?.id as string);
      expect(record?.error?.message).toContain(text);
    }
    expect(await head()).toBe(mainBefore);
  });

  it('ignores records that are not ObjectCreated events', async () => {
    const result = await handler(
      s3Event('landing/sales/orders/a.csv', '0055AED6DCD9028500', { eventName: 'ObjectRemoved:Delete' }),
    );

    expect(result.outcomes).toEqual([]);
    expect(result.ignored[0]).toContain('ObjectRemoved:Delete');
  });

  it('takes SQS-wrapped S3 events and reports only malformed or failed messages', async () => {
    await upload('landing/sales/queued/q.csv', 'id\n1\n2\n3\n4\n');
    const body = JSON.stringify(s3Event('landing/sales/queued/q.csv', '0055AED6DCD9028600'));

    const result = await handler({
      Records: [
        { eventSource: 'aws:sqs', messageId: 'm-1', body },
        { eventSource: 'aws:sqs', messageId: 'm-2', body: '{"Event":"s3:TestEvent"}' },
        { eventSource: 'aws:sqs', messageId: 'm-3', body: 'not json' },
      ],
    });

    expect(result.outcomes).toEqual([expect.objectContaining({ status: 'merged', rows: 4 })]);
    expect(result.batchItemFailures).toEqual([]);
    expect(result.ignored).toEqual(['s3:TestEvent', expect.stringContaining('message m-3')]);
    expect(await rowsOf('sales.queued')).toBe(4);
  });
});

describe('the bundled ingest handler (the code directory the stack deploys)', () => {
  it('ingests an upload like the sources do', async () => {
    const { dir: assetDir } = buildLambdaAsset(DATA_PLANE_ASSET);
    const bundled = (await import(pathToFileURL(join(assetDir, 'ingest.mjs')).href)) as { handler: typeof handler };
    await upload('landing/sales/bundled/b.csv', 'id,amount\n1,2.5\n2,3.5\n');

    const result = await bundled.handler(s3Event('landing/sales/bundled/b.csv', '0055AED6DCD9028A00'));

    expect(result.outcomes).toEqual([expect.objectContaining({ status: 'merged', table: 'sales.bundled', rows: 2 })]);
    expect(await rowsOf('sales.bundled')).toBe(2);
  }, 300_000);
});

describe('redelivery while or after another worker processed the event', () => {
  it('refuses (CONFLICT, so the delivery is retried) an event another worker is processing', async () => {
    const event = { bucket, key: 'landing/sales/busy/b.csv', sequencer: '0055AED6DCD9028800' };
    await new IngestionLog(lake.stores.store).claim(ingestionId(event), new Date(), 60_000);

    const attempt = ingestObject(lake, event, { source: new S3LandingSource(s3) });

    await expect(attempt).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('another worker'),
    });
  });

  it('takes over the event of a worker that died after importing, and merges its import without importing again', async () => {
    await upload('landing/sales/orphan/o.csv', 'id\n1\n2\n3\n');
    const event = { bucket, key: 'landing/sales/orphan/o.csv', sequencer: '0055AED6DCD9028900' };
    const id = ingestionId(event);
    // The dead worker: claimed 20 minutes ago, made the branch, imported, never merged.
    await new IngestionLog(lake.stores.store).claim(id, new Date(Date.now() - 20 * 60_000), 60_000);
    const branch = `ingest/sales.orphan/${id.slice(0, 12)}`;
    await lake.catalog.createBranch(branch, 'main', { person: 'ingest' });
    const file = join(dir, 'o.csv');
    writeFileSync(file, 'id\n1\n2\n3\n');
    await lake.importTable(
      { person: 'ingest' },
      { table: 'sales.orphan', file, branch, message: `Ingest [ingestion ${id}]` },
    );

    const { record, duplicate } = await ingestObject(lake, event, { source: new S3LandingSource(s3) });

    expect(duplicate).toBe(false);
    expect(record).toMatchObject({ status: 'merged', branch, rows: 3 });
    expect(await rowsOf('sales.orphan')).toBe(3);
  });
});

describe('the approval gate', () => {
  it('opens an approval request for an ingestion into a protected target; main changes only once a person approves', async () => {
    await upload('landing/sales/gated/g.csv', 'id\n1\n');
    const mainBefore = await head();

    const { record } = await ingestObject(
      lake,
      { bucket, key: 'landing/sales/gated/g.csv', sequencer: '0055AED6DCD9028700' },
      { source: new S3LandingSource(s3), gate: 'protected' },
    );

    expect(record.status).toBe('awaiting_approval');
    expect(await head()).toBe(mainBefore);
    expect(await rowsOf('sales.gated', record.branch as string)).toBe(1);
    const { approvals } = openApprovals(lake);
    const approval = await approvals.get(record.approvalId as string);
    expect(approval).toMatchObject({
      status: 'pending',
      action: 'merge',
      target: 'main',
      requester: { person: 'ingest' },
    });
    await approvals.approve({ person: lake.owner }, approval.id);
    expect(await rowsOf('sales.gated')).toBe(1);
  });

  it('needs approval only behind the gate and only for protected targets', async () => {
    await lake.catalog.createBranch('staging', 'main', { person: lake.owner });

    expect(await ingestNeedsApproval(lake, 'main', 'protected')).toBe(true);
    expect(await ingestNeedsApproval(lake, 'staging', 'protected')).toBe(false);
    expect(await ingestNeedsApproval(lake, 'main', 'none')).toBe(false);
  });
});

describe('the local poller (airlock serve on s3rver)', () => {
  it('turns an upload into the same ingestion, once, and the table appears on main', async () => {
    const poller = startLandingPoller(lake, {
      source: new S3LandingSource(s3),
      list: async () => (await listLanding(s3, bucket)).filter((e) => e.key.startsWith('landing/web/')),
      intervalMs: 200,
    });
    try {
      await upload('landing/web/clicks/part-1.csv', 'id,page\n1,/\n2,/a\n');

      let rows: number | undefined;
      for (let i = 0; i < 150 && rows === undefined; i++) {
        rows = await rowsOf('web.clicks').catch(() => undefined);
        if (rows === undefined) await new Promise((r) => setTimeout(r, 200));
      }
      const again = await poller.poll();

      expect(rows).toBe(2);
      expect(again).toEqual([]);
    } finally {
      await poller.stop();
    }
  });
});

describe('the local poller, re-uploads', () => {
  it('ingests a re-upload to the same key as a new event, and an unchanged listing as nothing', async () => {
    const list = async () => (await listLanding(s3, bucket)).filter((e) => e.key.startsWith('landing/web/views/'));
    const poller = startLandingPoller(lake, { source: new S3LandingSource(s3), list, intervalMs: 3_600_000 });
    try {
      await upload('landing/web/views/latest.csv', 'id\n1\n2\n');
      const first = await poller.poll();
      await upload('landing/web/views/latest.csv', 'id\n3\n4\n5\n');
      const second = await poller.poll();
      const third = await poller.poll();

      expect(first.map((o) => o.record.status)).toEqual(['merged']);
      expect(second.map((o) => o.record.status)).toEqual(['merged']);
      expect(second[0]?.record.id).not.toBe(first[0]?.record.id);
      expect(third).toEqual([]);
      expect(await rowsOf('web.views')).toBe(5);
    } finally {
      await poller.stop();
    }
  });
});

describe('landing keys and sequencers', () => {
  it('reads namespace, table and format from a landing key', () => {
    expect(parseLandingKey('landing/sales/orders/2026/12/01.PARQUET')).toEqual({
      table: 'sales.orders',
      format: 'parquet',
      extension: '.parquet',
    });
  });

  it('orders sequencers of different lengths as hexadecimal numbers', () => {
    expect(compareSequencers('FF', '0100')).toBeLessThan(0);
    expect(compareSequencers('0055AED6DCD90281E5', '55aed6dcd90281e5')).toBe(0);
    expect(compareSequencers('0062A8C1C4F5D6E3B0', '0062A8C1C4F5D6E300')).toBeGreaterThan(0);
  });
});
