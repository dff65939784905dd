import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryGovernor, runQuery, type SnapshotTable } from '../shared/query/index.js';
import { MemoryCatalogStore } from '../shared/store/MemoryCatalogStore.js';
import { ParquetFixture, TEST_CAPS, field } from './query.fixtures.js';

const caps = { ...TEST_CAPS, maxConcurrent: 2, dailyBytes: 1000, timeoutMs: 30_000 };

describe('QueryGovernor: concurrency slots', () => {
  it('refuses a query beyond maxConcurrent, naming the cap and the numbers', async () => {
    const g = new QueryGovernor(new MemoryCatalogStore());
    await g.admit('ann', caps, 0);
    await g.admit('ann', caps, 0);
    await expect(g.admit('ann', caps, 0)).rejects.toMatchObject({
      code: 'LIMIT_EXCEEDED',
      message: expect.stringMatching(/max concurrent queries exceeded: ann already runs 2 queries, 2 allowed/),
    });
  });

  it('gives a released slot to the next query', async () => {
    const g = new QueryGovernor(new MemoryCatalogStore());
    const first = await g.admit('ann', caps, 0);
    await g.admit('ann', caps, 0);
    await first.release();
    await expect(g.admit('ann', caps, 0)).resolves.toMatchObject({ slot: first.slot });
  });

  it('reclaims the slot of a crashed query once its lease expired', async () => {
    let now = Date.parse('2024-05-01T10:00:00Z');
    const g = new QueryGovernor(new MemoryCatalogStore(), { now: () => now, leaseGraceMs: 5000 });
    await g.admit('ann', caps, 0);
    await g.admit('ann', caps, 0); // never released: the process "died"
    await expect(g.admit('ann', caps, 0)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    now += caps.timeoutMs + 5001;
    await expect(g.admit('ann', caps, 0)).resolves.toBeDefined();
  });

  it('lets exactly maxConcurrent of many racing queries in (conditional writes)', async () => {
    const g = new QueryGovernor(new MemoryCatalogStore());
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, () => g.admit('ann', { ...caps, maxConcurrent: 3 }, 0)),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
  });

  it('takes the slot and charges the budget in one store transaction, and a refusal writes nothing', async () => {
    const store = new MemoryCatalogStore();
    const writes: string[] = [];
    const counted = Object.assign(Object.create(store) as MemoryCatalogStore, {
      put: (...a: Parameters<MemoryCatalogStore['put']>) => {
        writes.push('put');
        return store.put(...a);
      },
      transact: (...a: Parameters<MemoryCatalogStore['transact']>) => {
        writes.push('transact');
        return store.transact(...a);
      },
    });
    const g = new QueryGovernor(counted);

    await g.admit('ann', caps, 600);
    const admitted = [...writes];
    await expect(g.admit('ann', caps, 500)).rejects.toMatchObject({ details: { cap: 'dailyBytes' } });

    expect(admitted).toEqual(['transact']);
    expect(writes).toEqual(['transact']);
  });

  it('charges exactly the queries it admits when many race', async () => {
    const g = new QueryGovernor(new MemoryCatalogStore());

    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, () => g.admit('ann', { ...caps, maxConcurrent: 3, dailyBytes: 10_000 }, 7)),
    );

    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
    expect(await g.usage('ann')).toMatchObject({ bytes: 21, queries: 3 });
  });

  it('keeps persons apart', async () => {
    const g = new QueryGovernor(new MemoryCatalogStore());
    await g.admit('ann', caps, 0);
    await g.admit('ann', caps, 0);
    await expect(g.admit('bob', caps, 0)).resolves.toBeDefined();
  });
});

describe('QueryGovernor: daily scanned-bytes budget', () => {
  it('refuses a query that would pass the daily budget, with the numbers', async () => {
    const g = new QueryGovernor(new MemoryCatalogStore(), { now: () => Date.parse('2024-05-01T12:00:00Z') });
    await (await g.admit('ann', caps, 600)).release();
    await expect(g.admit('ann', caps, 500)).rejects.toMatchObject({
      code: 'LIMIT_EXCEEDED',
      message: expect.stringMatching(
        /daily scanned-bytes budget exceeded for ann: 600 bytes used today \(2024-05-01 UTC\) \+ 500 .* > 1000 allowed/,
      ),
    });
    expect((await g.usage('ann')).bytes).toBe(600);
  });

  it('gives the slot back when the budget refuses', async () => {
    const g = new QueryGovernor(new MemoryCatalogStore());
    await expect(g.admit('ann', { ...caps, maxConcurrent: 1 }, 5000)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    await expect(g.admit('ann', { ...caps, maxConcurrent: 1 }, 1)).resolves.toBeDefined();
  });

  it('starts a fresh budget on a new UTC day', async () => {
    let now = Date.parse('2024-05-01T23:59:00Z');
    const g = new QueryGovernor(new MemoryCatalogStore(), { now: () => now });
    await g.charge('ann', 1000, 1000);
    await expect(g.charge('ann', 1, 1000)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    now += 2 * 60_000;
    await expect(g.charge('ann', 1, 1000)).resolves.toMatchObject({ day: '2024-05-02', bytes: 1 });
  });

  it('loses no update under concurrent charges (version CAS with retries)', async () => {
    const g = new QueryGovernor(new MemoryCatalogStore());
    await Promise.all(Array.from({ length: 25 }, () => g.charge('ann', 7, 10_000)));
    expect(await g.usage('ann')).toMatchObject({ bytes: 175, queries: 25 });
  });
});

describe('runQuery with governance', () => {
  let fx: ParquetFixture;
  let t: SnapshotTable;
  beforeAll(async () => {
    fx = await ParquetFixture.create();
    t = await fx.table('a.t', [field('id', 'Int64')], ['SELECT i AS id FROM range(10) r(i)']);
  });
  afterAll(() => fx.close());

  it("charges the person's budget (agents included) and releases the slot afterwards", async () => {
    const store = new MemoryCatalogStore();
    const governor = new QueryGovernor(store);
    const bytes = t.files[0]?.bytes ?? 0;
    const q = {
      sql: 'SELECT count(*) AS n FROM a.t',
      tables: [t],
      caps: { ...caps, maxConcurrent: 1, dailyBytes: bytes * 2 },
    };
    // The person, then an agent acting for the person: one budget, one slot.
    await runQuery({ ...q, governance: { governor, person: 'ann' } });
    await runQuery({ ...q, governance: { governor, person: 'ann' } });
    expect(await governor.usage('ann')).toMatchObject({ bytes: bytes * 2, queries: 2 });
    await expect(runQuery({ ...q, governance: { governor, person: 'ann' } })).rejects.toMatchObject({
      code: 'LIMIT_EXCEEDED',
      message: expect.stringMatching(/daily scanned-bytes budget/),
    });
    // Slots were released after each query (maxConcurrent 1 admitted the second one).
    await expect(governor.acquireSlot('ann', 1, 1000)).resolves.toBeDefined();
  });

  it('releases the slot when the query fails', async () => {
    const governor = new QueryGovernor(new MemoryCatalogStore());
    const q = { tables: [t], caps: { ...caps, maxConcurrent: 1 }, governance: { governor, person: 'bob' } };
    await expect(runQuery({ ...q, sql: "SELECT 1 / 0::INT AS x, error('boom') FROM a.t" })).rejects.toBeDefined();
    await expect(runQuery({ ...q, sql: 'SELECT count(*) AS n FROM a.t' })).resolves.toMatchObject({
      rows: [{ n: 10 }],
    });
  });
});
