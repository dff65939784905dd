import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Actor } from '../shared/catalog/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { CapSettings, DEFAULT_CAPS, mayChangeCaps, parseCapValue } from '../shared/query/index.js';
import { MemoryCatalogStore } from '../shared/store/MemoryCatalogStore.js';
import { airlock, tempDir } from './support/cli.js';

const OWNER = 'olga';
const owner: Actor = { person: OWNER };

describe('cap values', () => {
  it.each([
    ['maxRows', '0'],
    ['maxRows', '-5'],
    ['maxRows', '1.5'],
    ['maxRows', 'Infinity'],
    ['maxRows', 'lots'],
    ['maxBytesScanned', '0B'],
    ['maxBytesScanned', '0.5B'],
    ['maxBytesScanned', '10 parsecs'],
    ['maxBytesScanned', '99999999PiB'],
    ['timeoutMs', '0s'],
    ['timeoutMs', '30 days'],
    ['timeoutMs', '25d'],
    ['maxConcurrent', '1001'],
    ['dailyBytes', '-1GiB'],
  ] as const)('refuses %s = %s with INVALID naming the cap', (cap, text) => {
    expect(() => parseCapValue(cap, text)).toThrow(
      expect.objectContaining({ code: 'INVALID', message: expect.stringContaining(`cap ${cap} must be`) }),
    );
  });

  it.each([
    ['maxRows', '1000', 1000],
    ['maxBytesScanned', '1048576', 1048576],
    ['maxBytesScanned', '500MB', 500_000_000],
    ['maxBytesScanned', '10GiB', 10 * 1024 ** 3],
    ['maxBytesScanned', '1.5KiB', 1536],
    ['timeoutMs', '30000', 30_000],
    ['timeoutMs', '500ms', 500],
    ['timeoutMs', '1.5s', 1500],
    ['timeoutMs', '2m', 120_000],
    ['timeoutMs', '1h', 3_600_000],
    ['dailyBytes', '1TiB', 1024 ** 4],
  ] as const)('reads %s = %s as %d', (cap, text, expected) => {
    expect(parseCapValue(cap, text)).toBe(expected);
  });
});

describe('CapSettings (in the catalog store)', () => {
  let store: MemoryCatalogStore;
  let settings: CapSettings;
  beforeEach(() => {
    store = new MemoryCatalogStore();
    settings = new CapSettings(store, { owner: OWNER });
  });

  it('gives the safe defaults when nothing is set', async () => {
    const effective = await settings.effective('ann');

    expect(effective.caps).toEqual(DEFAULT_CAPS);
    expect(Object.values(effective.sources)).toEqual(Array(5).fill('default'));
  });

  it('resolves cap by cap: person override ▸ lake setting ▸ default', async () => {
    await settings.set(owner, {}, { maxRows: 100, dailyBytes: 5000 });
    await settings.set(owner, { person: 'ann' }, { maxRows: 7 });

    const ann = await settings.effective('ann');

    expect(ann.caps).toMatchObject({ maxRows: 7, dailyBytes: 5000, timeoutMs: DEFAULT_CAPS.timeoutMs });
    expect(ann.sources).toMatchObject({ maxRows: 'person', dailyBytes: 'lake', timeoutMs: 'default' });
    expect((await settings.effective('bob')).caps.maxRows).toBe(100);
  });

  it.each([0, -1, 1.5, Number.POSITIVE_INFINITY, Number.NaN, '10', null])(
    'refuses to set maxRows to %s and stores nothing',
    async (value) => {
      await expect(settings.set(owner, {}, { maxRows: value })).rejects.toMatchObject({
        code: 'INVALID',
        message: expect.stringContaining('cap maxRows must be a whole number from 1'),
        details: expect.objectContaining({ cap: 'maxRows' }),
      });
      expect(await store.get({ pk: 'config', sk: 'caps' })).toBeUndefined();
    },
  );

  it('refuses an unknown cap by name', async () => {
    await expect(settings.set(owner, {}, { maxRowz: 5 } as never)).rejects.toMatchObject({
      code: 'INVALID',
      message: expect.stringContaining("unknown cap 'maxRowz'"),
    });
  });

  it("lets only the lake's owner change caps, never an agent (not even the owner's)", async () => {
    expect(mayChangeCaps(owner, OWNER)).toBe(true);
    expect(mayChangeCaps({ person: OWNER, agent: 'bot' }, OWNER)).toBe(false);
    expect(mayChangeCaps({ person: 'ann' }, OWNER)).toBe(false);
    await expect(settings.set({ person: OWNER, agent: 'bot' }, {}, { maxRows: 10 ** 9 })).rejects.toMatchObject({
      code: 'DENIED',
    });
    await expect(settings.set({ person: 'ann' }, { person: 'ann' }, { dailyBytes: 10 ** 15 })).rejects.toMatchObject({
      code: 'DENIED',
    });
  });

  it('keeps both of two concurrent changes to different caps (version compare-and-set)', async () => {
    await Promise.all([
      settings.set(owner, { person: 'ann' }, { maxRows: 11 }),
      new CapSettings(store, { owner: OWNER }).set(owner, { person: 'ann' }, { timeoutMs: 22_000 }),
      new CapSettings(store, { owner: OWNER }).set(owner, { person: 'ann' }, { maxConcurrent: 3 }),
    ]);

    expect((await settings.effective('ann')).override).toEqual({ maxRows: 11, timeoutMs: 22_000, maxConcurrent: 3 });
  });

  it('unset makes a cap fall back to the next level', async () => {
    await settings.set(owner, {}, { maxRows: 100 });
    await settings.set(owner, { person: 'ann' }, { maxRows: 7, timeoutMs: 1000 });

    const afterOne = await settings.unset(owner, { person: 'ann' }, ['maxRows']);
    const afterAll = await settings.unset(owner, { person: 'ann' });

    expect(afterOne.caps).toMatchObject({ maxRows: 100, timeoutMs: 1000 });
    expect(afterOne.sources).toMatchObject({ maxRows: 'lake', timeoutMs: 'person' });
    expect(afterAll.override).toEqual({});
    expect(afterAll.sources.timeoutMs).toBe('default');
  });
});

describe('Lake.query honours the configured caps', () => {
  const dir = tempDir('airlock-caps-');
  let lake: Lake;
  let lakeOwner: Actor;
  /** Bytes the test query scans (the whole table). */
  let tableBytes: number;
  const sql = 'SELECT count(*) AS n, sum(amount) AS total FROM raw.events';

  beforeAll(async () => {
    lake = (await Lake.init({ backend: 'local', dir: join(dir, 'lake') })).lake;
    lakeOwner = { person: lake.owner };
    await lake.catalog.createBranch('dev', 'main', lakeOwner);
    const csv = join(dir, 'events.csv');
    writeFileSync(csv, `id,amount\n${Array.from({ length: 50 }, (_, i) => `${i},${i * 1.5}`).join('\n')}\n`);
    await lake.importTable(lakeOwner, { table: 'raw.events', file: csv, branch: 'dev' });
    tableBytes = (await lake.query(lakeOwner, { sql, ref: 'dev' })).stats.bytesScanned;
    expect(tableBytes).toBeGreaterThan(0);
  }, 120_000);
  afterAll(() => lake?.close());
  beforeEach(async () => {
    await lake.unsetQueryCaps(lakeOwner, {});
    for (const person of ['ann', 'bob']) await lake.unsetQueryCaps(lakeOwner, { person });
  });

  it('a lake-wide cap turns an accepted query into a refusal naming the cap and the numbers', async () => {
    const before = await lake.query({ person: 'ann' }, { sql, ref: 'dev' });
    await lake.setQueryCaps(lakeOwner, {}, { maxBytesScanned: tableBytes - 1 });

    const refused = await lake.query({ person: 'ann' }, { sql, ref: 'dev' }).catch((e: unknown) => e);

    expect(before.rows[0]?.n).toBe(50);
    expect(refused).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      message: expect.stringContaining(`would scan ${tableBytes} bytes`),
      details: expect.objectContaining({ cap: 'maxBytesScanned', limit: tableBytes - 1, bytes: tableBytes }),
    });
  });

  it("a person's override beats the lake setting, and another person still gets the lake setting", async () => {
    await lake.setQueryCaps(lakeOwner, {}, { maxBytesScanned: tableBytes - 1 });
    await lake.setQueryCaps(lakeOwner, { person: 'ann' }, { maxBytesScanned: tableBytes });

    const ann = await lake.query({ person: 'ann', agent: 'analyst' }, { sql, ref: 'dev' });
    const bob = await lake.query({ person: 'bob' }, { sql, ref: 'dev' }).catch((e: unknown) => e);

    expect(ann.rows[0]?.n).toBe(50);
    expect(bob).toMatchObject({ code: 'LIMIT_EXCEEDED', details: { cap: 'maxBytesScanned' } });
  });

  it("a person's daily budget is shared by all their agents", async () => {
    // Room for exactly two more scans of the table today, on top of what earlier tests charged.
    const used = (await lake.query({ person: 'ann' }, { sql, ref: 'dev' })).stats.bytesScanned;
    const { caps } = await lake.queryCaps(lakeOwner, { person: 'ann' });
    expect(caps.dailyBytes).toBe(DEFAULT_CAPS.dailyBytes);
    const governorUsage = await dailyUsage(lake, 'ann');
    await lake.setQueryCaps(lakeOwner, { person: 'ann' }, { dailyBytes: governorUsage + 2 * used });

    await lake.query({ person: 'ann', agent: 'a1' }, { sql, ref: 'dev' });
    await lake.query({ person: 'ann', agent: 'a2' }, { sql, ref: 'dev' });
    const third = await lake.query({ person: 'ann', agent: 'a3' }, { sql, ref: 'dev' }).catch((e: unknown) => e);
    const bob = await lake.query({ person: 'bob', agent: 'a1' }, { sql, ref: 'dev' });

    expect(third).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      message: expect.stringContaining('daily scanned-bytes budget exceeded for ann'),
      details: expect.objectContaining({ cap: 'dailyBytes', person: 'ann', limit: governorUsage + 2 * used }),
    });
    expect(bob.rows[0]?.n).toBe(50);
  });

  it('an agent of the owner may not raise caps', async () => {
    await expect(
      lake.setQueryCaps({ person: lakeOwner.person, agent: 'bot' }, {}, { maxRows: 10 ** 9 }),
    ).rejects.toMatchObject({ code: 'DENIED' });
    expect((await lake.queryCaps(lakeOwner)).sources.maxRows).toBe('default');
  });

  it('a request may lower a cap, never raise it', async () => {
    await lake.setQueryCaps(lakeOwner, { person: 'ann' }, { maxRows: 3 });
    const all = 'SELECT id FROM raw.events ORDER BY id';

    const lowered = await lake.query({ person: 'ann' }, { sql: all, ref: 'dev', caps: { maxRows: 2 } });
    const raised = await lake.query({ person: 'ann' }, { sql: all, ref: 'dev', caps: { maxRows: 1000 } });

    expect(lowered.rows).toHaveLength(2);
    expect(raised.rows).toHaveLength(3);
    expect(raised.stats.truncated).toBe(true);
  });
});

/** Today's scanned bytes of a person, read from the same store the lake's governor writes. */
async function dailyUsage(lake: Lake, person: string): Promise<number> {
  const { QueryGovernor } = await import('../shared/query/index.js');
  return (await new QueryGovernor(lake.stores.store).usage(person)).bytes;
}

describe('airlock caps (CLI, end to end)', () => {
  const dir = tempDir('airlock-caps-e2e-');
  const L = ['--lake', join(dir, 'lake')];
  const sql = 'SELECT count(*) AS n FROM raw.events';

  beforeAll(async () => {
    expect((await airlock(['init', '--json', ...L])).code).toBe(0);
    expect((await airlock(['branch', 'create', 'dev', ...L])).code).toBe(0);
    const csv = join(dir, 'events.csv');
    writeFileSync(csv, 'id,amount\n1,1.5\n2,2.5\n3,3.5\n');
    const r = await airlock(['table', 'import', 'raw.events', csv, '--branch', 'dev', '--json', ...L]);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);

  it('sets lake-wide caps, shows where each comes from, and a query is then refused naming the cap', async () => {
    const ok = await airlock(['query', sql, '--ref', 'dev', '--json', ...L]);
    const set = await airlock(['caps', 'set', '--max-bytes-scanned', '10B', '--timeout', '30s', '--json', ...L]);
    const show = await airlock(['caps', 'show', '--json', ...L]);
    const refused = await airlock(['query', sql, '--ref', 'dev', '--json', ...L]);

    expect(ok.code, ok.stderr).toBe(0);
    const scanned = ok.json.stats.bytesScanned as number;
    expect(set.code, set.stdout).toBe(0);
    expect(set.json).toMatchObject({ person: null, caps: { maxBytesScanned: 10, timeoutMs: 30_000 } });
    expect(show.json.sources).toEqual({
      maxRows: 'default',
      maxBytesScanned: 'lake',
      timeoutMs: 'lake',
      maxConcurrent: 'default',
      dailyBytes: 'default',
    });
    expect(refused.code).toBe(1); // LIMIT_EXCEEDED is an error (exit 1), per cli/exitCodes.ts
    expect(refused.json.error.code).toBe('LIMIT_EXCEEDED');
    expect(refused.json.error.message).toContain(`would scan ${scanned} bytes`);
    expect(refused.json.error.message).toContain('cap maxBytesScanned=10');
  });

  it("a person's override shows as such, and unset falls back to the lake", async () => {
    const set = await airlock(['caps', 'set', '--person', 'ann', '--max-rows', '5', '--json', ...L]);
    const show = await airlock(['caps', 'show', '--person', 'ann', '--json', ...L]);
    const unset = await airlock(['caps', 'unset', 'max-rows', '--person', 'ann', '--json', ...L]);

    expect(set.code, set.stdout).toBe(0);
    expect(show.json).toMatchObject({ person: 'ann', caps: { maxRows: 5, maxBytesScanned: 10 } });
    expect(show.json.sources).toMatchObject({ maxRows: 'person', maxBytesScanned: 'lake' });
    expect(unset.json.sources.maxRows).toBe('default');
  });

  it('refuses a cap of zero with INVALID naming the cap, and changes nothing', async () => {
    const bad = await airlock(['caps', 'set', '--max-rows', '0', '--json', ...L]);
    const show = await airlock(['caps', 'show', '--json', ...L]);

    expect(bad.code).toBe(1);
    expect(bad.json.error.code).toBe('INVALID');
    expect(bad.json.error.message).toContain('cap maxRows must be a whole number from 1');
    expect(show.json.sources.maxRows).toBe('default');
  });

  it('needs at least one cap to set (usage error, exit 2)', async () => {
    const r = await airlock(['caps', 'set', '--json', ...L]);

    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('USAGE');
  });

  it('prints the caps as a table for people', async () => {
    const r = await airlock(['caps', 'show', ...L]);

    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/maxBytesScanned\s+10 B\s+lake\s+--max-bytes-scanned/);
    expect(r.stdout).toMatch(/timeoutMs\s+30 s\s+lake/);
  });
});
