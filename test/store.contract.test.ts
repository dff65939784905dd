/**
 * THE store contract: written once, run against every adapter. A new backend is one more
 * entry in `catalogAdapters` or `objectAdapters`. Semantics are checked against real
 * engines (SQLite files, DynamoDB Local, local files, s3rver) — never against mocks.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAirlockError } from '../shared/errors/index.js';
import { ensureDynamoTable, openDynamoCatalogStore } from '../shared/store/DynamoCatalogStore.js';
import { LocalObjectStore } from '../shared/store/LocalObjectStore.js';
import { MemoryCatalogStore } from '../shared/store/MemoryCatalogStore.js';
import type { CatalogItem, CatalogStore, ObjectStore, WriteOp } from '../shared/store/ports.js';
import { ensureBucket, openS3ObjectStore } from '../shared/store/S3ObjectStore.js';
import { openSqliteCatalogStore } from '../shared/store/SqliteCatalogStore.js';
import { dynamoClientFor, s3ClientFor, uniqueName } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

const run = promisify(execFile);
const emulators = await useEmulators();
const scratch = mkdtempSync(join(tmpdir(), 'airlock-store-contract-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs `fn` and returns the Airlock error it throws (failing when it does not throw one). */
async function failure(fn: () => Promise<unknown>): Promise<{ code: string; details: Record<string, unknown> }> {
  try {
    await fn();
  } catch (error) {
    if (isAirlockError(error)) return error;
    throw error;
  }
  throw new Error('expected an Airlock error, but the call succeeded');
}

const pad = (n: number) => String(n).padStart(4, '0');

interface CatalogAdapter {
  name: string;
  open(): Promise<CatalogStore>;
}

const catalogAdapters: CatalogAdapter[] = [
  { name: 'Memory', open: async () => new MemoryCatalogStore() },
  { name: 'SQLite', open: async () => openSqliteCatalogStore(join(scratch, `${randomUUID()}.db`)) },
  {
    name: 'DynamoDB Local',
    open: async () => {
      const client = dynamoClientFor(emulators.dynamoEndpoint);
      const tableName = uniqueName('airlock-contract');
      await ensureDynamoTable(client, tableName);
      return openDynamoCatalogStore({
        tableName,
        client,
        retry: { maxAttempts: 8, baseDelayMs: 5, maxDelayMs: 100 },
      });
    },
  },
];

describe.each(catalogAdapters)('CatalogStore contract: $name', (adapter) => {
  let store: CatalogStore;
  /** A partition of its own for each test, so tests share one store without interfering. */
  const partition = (name: string) => `${name}#${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    store = await adapter.open();
  });
  afterAll(async () => {
    await store?.close();
  });

  describe('items and conditional puts', () => {
    it('round-trips an item with its time, version and nested body', async () => {
      const item: CatalogItem = {
        pk: partition('doc'),
        sk: 'a',
        t: '2024-01-01T00:00:00.000Z',
        v: 3,
        data: { s: 'é€😀', n: 1.5, b: true, z: null, list: [1, { x: 'y' }], nested: { deep: { deeper: [] } } },
      };
      await store.put(item);
      expect(await store.get(item)).toEqual(item);
    });

    it('reads a missing item as undefined', async () => {
      expect(await store.get({ pk: partition('doc'), sk: 'missing' })).toBeUndefined();
    });

    it('writes with an absent condition only when the key is free, and names the item on conflict', async () => {
      const pk = partition('log');
      await store.put({ pk, sk: '0001', data: { by: 'first' } }, { kind: 'absent' });
      const error = await failure(() => store.put({ pk, sk: '0001', data: { by: 'second' } }, { kind: 'absent' }));
      expect(error.code).toBe('CONFLICT');
      expect(error.details).toMatchObject({ pk, sk: '0001' });
      expect((await store.get({ pk, sk: '0001' }))?.data).toEqual({ by: 'first' });
    });

    it('writes with an exists condition only over an existing item', async () => {
      const pk = partition('ref');
      const error = await failure(() => store.put({ pk, sk: 'x', data: { n: 1 } }, { kind: 'exists' }));
      expect(error.code).toBe('CONFLICT');
      expect(error.details).toMatchObject({ pk, sk: 'x' });
      expect(await store.get({ pk, sk: 'x' })).toBeUndefined();
      await store.put({ pk, sk: 'x', data: { n: 1 } });
      await store.put({ pk, sk: 'x', data: { n: 2 } }, { kind: 'exists' });
      expect((await store.get({ pk, sk: 'x' }))?.data).toEqual({ n: 2 });
    });

    it('compares and sets on the version, refusing a writer that read a stale version', async () => {
      const pk = partition('head');
      await store.put({ pk, sk: 'h', v: 1, data: { head: 'a' } }, { kind: 'absent' });
      await store.put({ pk, sk: 'h', v: 2, data: { head: 'b' } }, { kind: 'version', v: 1 });
      const error = await failure(() =>
        store.put({ pk, sk: 'h', v: 2, data: { head: 'c' } }, { kind: 'version', v: 1 }),
      );
      expect(error.code).toBe('CONFLICT');
      expect(error.details).toMatchObject({ pk, sk: 'h' });
      expect(await store.get({ pk, sk: 'h' })).toEqual({ pk, sk: 'h', v: 2, data: { head: 'b' } });
    });

    it('lets exactly one of many concurrent absent-conditioned appends to the same key win', async () => {
      const pk = partition('race');
      const results = await Promise.allSettled(
        Array.from({ length: 24 }, (_, writer) => store.put({ pk, sk: '0001', data: { writer } }, { kind: 'absent' })),
      );
      const winners = results.flatMap((r, writer) => (r.status === 'fulfilled' ? [writer] : []));
      expect(winners).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect((r.reason as { code?: string }).code).toBe('CONFLICT');
      }
      expect((await store.get({ pk, sk: '0001' }))?.data).toEqual({ writer: winners[0] });
    });

    it('round-trips an item of about 300 KB', async () => {
      const item: CatalogItem = { pk: partition('big'), sk: 'b', data: { blob: 'x'.repeat(300 * 1024) } };
      await store.put(item);
      expect(await store.get(item)).toEqual(item);
    });

    it('refuses an item of 400 KB with INVALID before writing anything', async () => {
      const pk = partition('big');
      const error = await failure(() => store.put({ pk, sk: 'b', data: { blob: 'x'.repeat(400 * 1024) } }));
      expect(error.code).toBe('INVALID');
      expect(error.details).toMatchObject({ pk, sk: 'b' });
      expect(await store.get({ pk, sk: 'b' })).toBeUndefined();
    });
  });

  describe('transactions', () => {
    it('applies puts, conditional deletes and checks together', async () => {
      const pk = partition('tx');
      await store.put({ pk, sk: 'old', v: 1, data: {} });
      await store.put({ pk, sk: 'guard', data: {} });
      await store.transact([
        { op: 'put', item: { pk, sk: 'new', data: { n: 1 } }, condition: { kind: 'absent' } },
        { op: 'delete', key: { pk, sk: 'old' }, condition: { kind: 'version', v: 1 } },
        { op: 'check', key: { pk, sk: 'guard' }, condition: { kind: 'exists' } },
      ]);
      expect((await store.get({ pk, sk: 'new' }))?.data).toEqual({ n: 1 });
      expect(await store.get({ pk, sk: 'old' })).toBeUndefined();
    });

    it('writes nothing when one check fails, and names the failed operation', async () => {
      const pk = partition('tx');
      const error = await failure(() =>
        store.transact([
          { op: 'put', item: { pk, sk: 'a', data: {} }, condition: { kind: 'absent' } },
          { op: 'put', item: { pk, sk: 'b', data: {} } },
          { op: 'check', key: { pk, sk: 'missing' }, condition: { kind: 'exists' } },
        ]),
      );
      expect(error.code).toBe('CONFLICT');
      expect(error.details).toMatchObject({ pk, sk: 'missing', index: 2 });
      expect(
        await store.getMany([
          { pk, sk: 'a' },
          { pk, sk: 'b' },
        ]),
      ).toEqual([]);
    });

    it('names a failed version condition in the middle of a transaction', async () => {
      const pk = partition('tx');
      await store.put({ pk, sk: 'head', v: 5, data: {} });
      const error = await failure(() =>
        store.transact([
          { op: 'put', item: { pk, sk: 'e1', data: {} }, condition: { kind: 'absent' } },
          { op: 'put', item: { pk, sk: 'head', v: 5, data: { moved: true } }, condition: { kind: 'version', v: 4 } },
          { op: 'put', item: { pk, sk: 'e2', data: {} }, condition: { kind: 'absent' } },
        ]),
      );
      expect(error.code).toBe('CONFLICT');
      expect(error.details).toMatchObject({ pk, sk: 'head', index: 1 });
      expect(await store.get({ pk, sk: 'e1' })).toBeUndefined();
      expect((await store.get({ pk, sk: 'head' }))?.data).toEqual({});
    });

    it('applies a retried transaction with the same token once', async () => {
      const pk = partition('tx');
      const token = `merge-${randomUUID()}`;
      const ops: WriteOp[] = [
        { op: 'put', item: { pk, sk: 'event-1', data: { merge: true } }, condition: { kind: 'absent' } },
        { op: 'put', item: { pk, sk: 'head', v: 1, data: { head: 'event-1' } } },
      ];
      await store.transact(ops, token);
      // Had it been applied again, the absent condition on event-1 would fail.
      await store.transact(ops, token);
      expect((await store.get({ pk, sk: 'event-1' }))?.data).toEqual({ merge: true });
      expect((await store.query(pk)).items.map((i) => i.sk)).toEqual(['event-1', 'head']);
    });

    it('fails a retry without a token when its conditions no longer hold', async () => {
      const pk = partition('tx');
      const ops: WriteOp[] = [{ op: 'put', item: { pk, sk: 'e', data: {} }, condition: { kind: 'absent' } }];
      await store.transact(ops);
      expect((await failure(() => store.transact(ops))).code).toBe('CONFLICT');
    });

    it('refuses to reuse a token for different operations', async () => {
      const pk = partition('tx');
      const token = `t-${randomUUID()}`;
      await store.transact([{ op: 'put', item: { pk, sk: 'a', data: {} } }], token);
      const error = await failure(() => store.transact([{ op: 'put', item: { pk, sk: 'b', data: {} } }], token));
      expect(error.code).toBe('INVALID');
      expect(await store.get({ pk, sk: 'b' })).toBeUndefined();
    });

    it('accepts 100 operations and refuses 101 with INVALID', async () => {
      const pk = partition('tx');
      const ops = (n: number, prefix: string): WriteOp[] =>
        Array.from({ length: n }, (_, i) => ({ op: 'put', item: { pk, sk: `${prefix}${pad(i)}`, data: { i } } }));
      await store.transact(ops(100, 'ok-'));
      const error = await failure(() => store.transact(ops(101, 'no-')));
      expect(error.code).toBe('INVALID');
      const page = await store.query(pk);
      expect(page.items).toHaveLength(100);
      expect(page.items.every((i) => i.sk.startsWith('ok-'))).toBe(true);
    });

    it('refuses two operations on the same item in one transaction', async () => {
      const pk = partition('tx');
      const error = await failure(() =>
        store.transact([
          { op: 'put', item: { pk, sk: 'a', data: {} } },
          { op: 'delete', key: { pk, sk: 'a' } },
        ]),
      );
      expect(error.code).toBe('INVALID');
      expect(await store.get({ pk, sk: 'a' })).toBeUndefined();
    });

    it('refuses a transaction holding a 400 KB item', async () => {
      const pk = partition('tx');
      const error = await failure(() =>
        store.transact([
          { op: 'put', item: { pk, sk: 'small', data: {} } },
          { op: 'put', item: { pk, sk: 'huge', data: { blob: 'x'.repeat(400 * 1024) } } },
        ]),
      );
      expect(error.code).toBe('INVALID');
      expect(await store.get({ pk, sk: 'small' })).toBeUndefined();
    });
  });

  describe('range reads', () => {
    const pk = partition('range');
    // sk: a#0000..a#0009, b#0000..b#0004; t runs opposite to sk within 'a#', absent on 'b#'.
    beforeAll(async () => {
      const ops: WriteOp[] = [];
      for (let i = 0; i < 10; i++) {
        ops.push({
          op: 'put',
          item: { pk, sk: `a#${pad(i)}`, t: `2024-01-${String(20 - i).padStart(2, '0')}T00:00:00Z`, data: { i } },
        });
      }
      for (let i = 0; i < 5; i++) ops.push({ op: 'put', item: { pk, sk: `b#${pad(i)}`, data: { i } } });
      ops.push({ op: 'put', item: { pk: `${pk}-other`, sk: 'a#0000', data: {} } });
      await store.transact(ops);
    });
    const sks = async (options: Parameters<CatalogStore['query']>[1]) =>
      (await store.query(pk, options)).items.map((i) => i.sk);

    it('reads a whole partition in key order, and nothing of other partitions', async () => {
      const all = await sks({});
      expect(all).toHaveLength(15);
      expect(all).toEqual([...all].sort());
      expect(all[0]).toBe('a#0000');
    });

    it('selects by prefix', async () => {
      expect(await sks({ prefix: 'b#' })).toEqual(['b#0000', 'b#0001', 'b#0002', 'b#0003', 'b#0004']);
    });

    it('applies exclusive and inclusive bounds', async () => {
      expect(await sks({ gt: 'a#0007', lt: 'b#0001' })).toEqual(['a#0008', 'a#0009', 'b#0000']);
      expect(await sks({ gte: 'a#0008', lte: 'b#0000' })).toEqual(['a#0008', 'a#0009', 'b#0000']);
      expect(await sks({ gt: 'b#0003' })).toEqual(['b#0004']);
      expect(await sks({ lte: 'a#0001' })).toEqual(['a#0000', 'a#0001']);
    });

    it('combines a prefix with bounds, and reads an empty range as empty', async () => {
      expect(await sks({ prefix: 'a#', gt: 'a#0007' })).toEqual(['a#0008', 'a#0009']);
      expect(await sks({ prefix: 'a#', gte: 'a#0003', lt: 'a#0005' })).toEqual(['a#0003', 'a#0004']);
      expect(await sks({ gt: 'b#', lt: 'a#' })).toEqual([]);
      expect(await sks({ prefix: 'zzz' })).toEqual([]);
    });

    it('reads in reverse with a limit: the newest first', async () => {
      expect(await sks({ prefix: 'a#', reverse: true, limit: 3 })).toEqual(['a#0009', 'a#0008', 'a#0007']);
    });

    it('pages with a cursor without skipping or repeating, and gives no cursor on the last page', async () => {
      for (const reverse of [false, true]) {
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.query(pk, { prefix: 'a#', gt: 'a#0000', limit: 4, reverse, cursor });
          expect(page.items.length).toBeLessThanOrEqual(4);
          seen.push(...page.items.map((i) => i.sk));
          cursor = page.cursor;
          pages++;
        } while (cursor);
        const expected = Array.from({ length: 9 }, (_, i) => `a#${pad(i + 1)}`);
        expect(seen).toEqual(reverse ? expected.reverse() : expected);
        expect(pages).toBe(3);
      }
    });

    it('reads the time index in time order, leaving out items without a time', async () => {
      const page = await store.query(pk, { index: 'time' });
      expect(page.items).toHaveLength(10);
      expect(page.items.map((i) => i.sk)).toEqual(Array.from({ length: 10 }, (_, i) => `a#${pad(9 - i)}`));
    });

    it('bounds, reverses and pages the time index', async () => {
      const range = { index: 'time' as const, gte: '2024-01-12', lt: '2024-01-15' };
      expect((await store.query(pk, range)).items.map((i) => i.t)).toEqual([
        '2024-01-12T00:00:00Z',
        '2024-01-13T00:00:00Z',
        '2024-01-14T00:00:00Z',
      ]);
      // "State as of" a time: the newest item at or before it.
      const asOf = await store.query(pk, { index: 'time', lte: '2024-01-15T00:00:00Z', reverse: true, limit: 1 });
      expect(asOf.items.map((i) => i.sk)).toEqual(['a#0005']);
      expect(asOf.cursor).toBeDefined();
      const next = await store.query(pk, {
        index: 'time',
        lte: '2024-01-15T00:00:00Z',
        reverse: true,
        limit: 1,
        cursor: asOf.cursor,
      });
      expect(next.items.map((i) => i.sk)).toEqual(['a#0006']);
    });
  });

  describe('volume', () => {
    it('pages a partition of 1,500 items of about 1 KB (over 1 MB) in pages of at most 1,000', async () => {
      const pk = partition('volume');
      const body = 'v'.repeat(1000);
      for (let batch = 0; batch < 15; batch++) {
        await store.transact(
          Array.from({ length: 100 }, (_, i) => {
            const n = batch * 100 + i;
            return {
              op: 'put',
              item: {
                pk,
                sk: `e#${String(n).padStart(5, '0')}`,
                t: `t${String(n).padStart(5, '0')}`,
                data: { n, body },
              },
            };
          }),
        );
      }
      for (const options of [{}, { index: 'time' as const }]) {
        const first = await store.query(pk, options);
        expect(first.items).toHaveLength(1000);
        expect(first.cursor).toBeDefined();
        const second = await store.query(pk, { ...options, cursor: first.cursor });
        expect(second.items).toHaveLength(500);
        expect(second.cursor).toBeUndefined();
        const all = [...first.items, ...second.items].map((i) => i.data.n);
        expect(all).toEqual(Array.from({ length: 1500 }, (_, n) => n));
      }
    }, 180_000);

    it('reads more than 100 keys at once, leaving out missing ones, in the order asked', async () => {
      const pk = partition('many');
      for (let batch = 0; batch < 3; batch++) {
        await store.transact(
          Array.from({ length: 80 }, (_, i) => ({
            op: 'put',
            item: { pk, sk: pad(batch * 80 + i), data: { n: batch * 80 + i } },
          })),
        );
      }
      const wanted = Array.from({ length: 260 }, (_, i) => ({ pk, sk: pad(259 - i) })); // 240..259 are missing
      const items = await store.getMany(wanted);
      expect(items.map((i) => i.data.n)).toEqual(Array.from({ length: 240 }, (_, i) => 239 - i));
    });
  });
});

describe('CatalogStore contract: SQLite across OS processes', () => {
  it('loses and duplicates no sequence number when processes append to one log concurrently', async () => {
    const path = join(scratch, `shared-${randomUUID()}.db`);
    await openSqliteCatalogStore(path).close(); // create the schema once, like `airlock init`
    const writers = 4;
    const each = 25;
    const fixture = join(import.meta.dirname, 'fixtures', 'storeSqliteAppender.ts');
    const outputs = await Promise.all(
      Array.from({ length: writers }, (_, w) =>
        run(process.execPath, ['--import', 'tsx', fixture, path, 'log#main', `w${w}`, String(each)], {
          cwd: join(import.meta.dirname, '..'),
        }),
      ),
    );
    const reports = outputs.map(
      (o) => JSON.parse(o.stdout.trim()) as { writer: string; won: number; conflicts: number },
    );
    expect(reports.map((r) => r.won)).toEqual(Array(writers).fill(each));

    const store = openSqliteCatalogStore(path);
    const items = (await store.query('log#main')).items;
    await store.close();
    expect(items.map((i) => i.data.seq)).toEqual(Array.from({ length: writers * each }, (_, i) => i + 1));
    for (let w = 0; w < writers; w++) expect(items.filter((i) => i.data.writer === `w${w}`)).toHaveLength(each);
  });
});

interface ObjectAdapter {
  name: string;
  open(): Promise<ObjectStore>;
  /** Changes an object's stored bytes behind the store's back (for adapters that verify integrity). */
  tamper?: (key: string) => Promise<void>;
}

const s3Bucket = uniqueName('airlock-contract');

const objectAdapters: ObjectAdapter[] = [
  { name: 'LocalObjectStore', open: async () => new LocalObjectStore(mkdtempSync(join(scratch, 'objects-'))) },
  {
    name: 'S3 on s3rver',
    open: async () => {
      const client = s3ClientFor(emulators.s3Endpoint);
      await ensureBucket(client, s3Bucket);
      await ensureBucket(client, s3Bucket); // idempotent
      return openS3ObjectStore({
        bucket: s3Bucket,
        client,
        cacheDir: mkdtempSync(join(scratch, 's3-cache-')),
        partSize: 5 * 1024 * 1024,
        multipartThreshold: 6 * 1024 * 1024,
      });
    },
    tamper: async (key) => {
      const file = join(emulators.s3Directory, s3Bucket, `${key}._S3rver_object`);
      const bytes = await readFile(file);
      bytes[0] = (bytes[0] ?? 0) ^ 0xff;
      await writeFile(file, bytes);
    },
  },
];

describe.each(objectAdapters)('ObjectStore contract: $name', (adapter) => {
  let objects: ObjectStore;
  const prefix = () => `t-${randomUUID().slice(0, 8)}/`;

  beforeAll(async () => {
    objects = await adapter.open();
  });
  afterAll(async () => {
    await objects?.close();
  });

  it('stores, reads and sizes bytes', async () => {
    const key = `${prefix()}data/part-0.parquet`;
    const body = randomBytes(70_000);
    await objects.put(key, body);
    expect(Buffer.from(await objects.get(key)).equals(body)).toBe(true);
    expect(await objects.head(key)).toEqual({ key, size: body.length });
  });

  it('reports a missing object as NOT_FOUND on get and localPath, and undefined on head', async () => {
    const key = `${prefix()}missing`;
    expect((await failure(() => objects.get(key))).code).toBe('NOT_FOUND');
    expect((await failure(() => objects.localPath(key))).code).toBe('NOT_FOUND');
    expect(await objects.head(key)).toBeUndefined();
  });

  it('refuses unsafe keys with INVALID', async () => {
    for (const key of ['', '../escape', 'a/../../b', '/absolute', 'a//b', 'a\\b', 'a/./b', 'trailing/']) {
      expect((await failure(() => objects.put(key, new Uint8Array([1])))).code, key).toBe('INVALID');
    }
  });

  it('streams a file in (in parts when large) and serves it back through a local path', async () => {
    const key = `${prefix()}big.bin`;
    const source = join(scratch, `src-${randomUUID()}`);
    const body = randomBytes(12 * 1024 * 1024 + 123);
    await writeFile(source, body);
    await objects.putFile(key, source);
    expect((await stat(source)).size).toBe(body.length); // copied, not moved
    expect(await objects.head(key)).toEqual({ key, size: body.length });
    const local = await objects.localPath(key);
    expect((await readFile(local)).equals(body)).toBe(true);
    expect(await objects.localPath(key)).toBe(local); // downloaded once
  });

  it('moves a file in when asked', async () => {
    const key = `${prefix()}moved.json`;
    const source = join(scratch, `src-${randomUUID()}`);
    await writeFile(source, '{"moved":true}');
    await objects.putFile(key, source, { move: true });
    await expect(stat(source)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(Buffer.from(await objects.get(key)).toString()).toBe('{"moved":true}');
  });

  it('lists more than 1,000 objects under a prefix in key order, and nothing else', async () => {
    const p = prefix();
    const keys = Array.from({ length: 1100 }, (_, i) => `${p}f/${String(i).padStart(5, '0')}`);
    const queue = [...keys].reverse();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let key = queue.pop(); key; key = queue.pop()) await objects.put(key, new Uint8Array([1, 2, 3]));
      }),
    );
    await objects.put(`${p}g`, new Uint8Array([1]));
    await objects.put(`${p.slice(0, -1)}x/other`, new Uint8Array([1]));
    const listed: string[] = [];
    for await (const info of objects.list(`${p}f/`)) {
      expect(info.size).toBe(3);
      listed.push(info.key);
    }
    expect(listed).toEqual(keys);
    const all: string[] = [];
    for await (const info of objects.list(p)) all.push(info.key);
    expect(all).toHaveLength(1101);
    expect(all.at(-1)).toBe(`${p}g`);
  }, 180_000);

  it('lists a partial name prefix', async () => {
    const p = prefix();
    for (const k of ['run-1/a', 'run-10/a', 'run-2/a', 'rum/a']) await objects.put(`${p}${k}`, new Uint8Array([0]));
    const listed: string[] = [];
    for await (const info of objects.list(`${p}run-1`)) listed.push(info.key);
    expect(listed).toEqual([`${p}run-1/a`, `${p}run-10/a`]);
  });

  it('deletes an object, and ignores a missing one', async () => {
    const key = `${prefix()}gone`;
    await objects.put(key, new Uint8Array([9]));
    await objects.delete(key);
    await objects.delete(key);
    expect(await objects.head(key)).toBeUndefined();
    expect((await failure(() => objects.get(key))).code).toBe('NOT_FOUND');
  });

  // Only stores that verify content have this test (S3: its own SHA-256 in metadata); the
  // embedded file store trusts its own disk.
  const tamper = adapter.tamper;
  if (tamper)
    it('fails reads of an object whose stored bytes were altered', async () => {
      const key = `${prefix()}tampered.parquet`;
      await objects.put(key, Buffer.from('original bytes of a data file'));
      await tamper(key);
      const onGet = await failure(() => objects.get(key));
      expect(onGet.code).toBe('INTERNAL');
      expect(onGet.details).toMatchObject({ key, integrity: 'sha256' });
      const onLocalPath = await failure(() => objects.localPath(key));
      expect(onLocalPath.details).toMatchObject({ key, integrity: 'sha256' });
    });
});

describe('default clients (what `airlock` builds from the environment)', () => {
  const saved = { ...process.env };
  afterAll(() => {
    for (const name of [
      'AWS_ENDPOINT_URL_DYNAMODB',
      'AWS_ENDPOINT_URL_S3',
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_REGION',
    ]) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  it('reach the emulators through the SDK-standard AWS_ENDPOINT_URL_* variables', async () => {
    process.env.AWS_ENDPOINT_URL_DYNAMODB = emulators.dynamoEndpoint;
    process.env.AWS_ENDPOINT_URL_S3 = emulators.s3Endpoint;
    process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
    process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
    delete process.env.AWS_REGION;
    const tableName = uniqueName('airlock-env');
    const bucket = uniqueName('airlock-env');
    const { createDynamoDbClient } = await import('../shared/store/DynamoCatalogStore.js');
    const { createS3Client } = await import('../shared/store/S3ObjectStore.js');
    const ddb = createDynamoDbClient();
    const s3 = createS3Client();
    await ensureDynamoTable(ddb, tableName);
    await ensureDynamoTable(ddb, tableName); // idempotent
    await ensureBucket(s3, bucket);
    ddb.destroy();
    s3.destroy();

    const store = openDynamoCatalogStore({ tableName });
    await store.put({ pk: 'p', sk: 's', data: { ok: true } }, { kind: 'absent' });
    expect((await store.get({ pk: 'p', sk: 's' }))?.data).toEqual({ ok: true });
    await store.close();

    const objects = openS3ObjectStore({ bucket, cacheDir: mkdtempSync(join(scratch, 'env-cache-')) });
    const source = join(scratch, `env-${randomUUID()}`);
    await writeFile(source, 'streamed through the default client');
    await objects.putFile('env/file.txt', source);
    expect(Buffer.from(await objects.get('env/file.txt')).toString()).toBe('streamed through the default client');
    await objects.close();
  });
});
