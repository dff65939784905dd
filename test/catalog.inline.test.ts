/**
 * The inline write protocol (see `Catalog`): a commit is ONE conditional put of its log
 * item carrying its documents inline, with the document items written behind it. These
 * tests inject the crash the protocol is built for — the log put lands, the process dies
 * before the document puts — and check that nothing is lost: the head stays readable
 * through its log item, the next writer (from any process) re-puts the documents before
 * it appends, anything that points at such a head makes its documents durable first,
 * and after any interleaving the documents of every non-head event exist as items.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Actor, Catalog, type TableChange } from '../shared/catalog/index.js';
import { logPk, seqSk } from '../shared/catalog/branchLog.js';
import { type InlineDoc, docKey } from '../shared/catalog/documents.js';
import { isAirlockError } from '../shared/errors/index.js';
import {
  type CatalogItem,
  type CatalogStore,
  type Condition,
  type ItemKey,
  type ObjectStore,
  type QueryOptions,
  type WriteOp,
  ensureDynamoTable,
  MemoryCatalogStore,
  MemoryObjectStore,
  openDynamoCatalogStore,
  openSqliteCatalogStore,
} from '../shared/store/index.js';
import { alice, append, overwrite } from './support/catalogFixtures.js';
import { tempDir } from './support/cli.js';
import { dynamoClientFor, type EmulatorEndpoints, uniqueName } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

const processCrashed = () => new Error('process crashed');
const isProcessCrash = (e: unknown) => e instanceof Error && e.message === 'process crashed';

/**
 * The store as one process sees it. After {@link crashAfterNextAppend}, the process dies
 * right after its next branch-log write lands: every later write is lost (it throws, and
 * nothing reaches the store), exactly like a kill between the log put and the document puts.
 */
class CrashableStore implements CatalogStore {
  readonly remote: boolean | undefined;
  readonly putMany?: (items: readonly CatalogItem[]) => Promise<void>;
  crashed = false;
  private armed = false;
  /** Store calls by kind, for the round-trip assertions. */
  calls: string[] = [];

  constructor(readonly inner: CatalogStore) {
    this.remote = inner.remote;
    const batch = inner.putMany?.bind(inner);
    if (batch) {
      this.putMany = async (items) => {
        this.calls.push(`putMany ${items.length}`);
        if (this.crashed) throw processCrashed();
        await batch(items);
      };
    }
  }

  crashAfterNextAppend(): void {
    this.armed = true;
  }

  get(key: ItemKey) {
    this.calls.push('get');
    return this.inner.get(key);
  }
  getMany(keys: readonly ItemKey[]) {
    this.calls.push('getMany');
    return this.inner.getMany(keys);
  }
  query(pk: string, options?: QueryOptions) {
    this.calls.push('query');
    return this.inner.query(pk, options);
  }
  async put(item: CatalogItem, condition?: Condition) {
    this.calls.push(`put ${item.pk.split('#')[0]}${condition ? ` if ${condition.kind}` : ''}`);
    if (this.crashed) throw processCrashed();
    await this.inner.put(item, condition);
    this.landed([item]);
  }
  async transact(ops: readonly WriteOp[], token?: string) {
    this.calls.push(`transact ${ops.length}`);
    if (this.crashed) throw processCrashed();
    await this.inner.transact(ops, token);
    this.landed(ops.flatMap((op) => (op.op === 'put' ? [op.item] : [])));
  }
  close() {
    return Promise.resolve();
  }

  private landed(items: CatalogItem[]): void {
    if (this.armed && items.some((i) => i.pk.startsWith('log#'))) {
      this.armed = false;
      this.crashed = true;
    }
  }
}

interface Backend {
  name: string;
  open(): Promise<{ store: CatalogStore; objects: ObjectStore }>;
}

let emulators: EmulatorEndpoints | undefined;
const memory: Backend = {
  name: 'Memory',
  open: async () => ({ store: new MemoryCatalogStore(), objects: new MemoryObjectStore() }),
};
const sqlite: Backend = {
  name: 'SQLite',
  open: async () => ({
    store: openSqliteCatalogStore(join(tempDir(), 'catalog.db')),
    objects: new MemoryObjectStore(),
  }),
};
const dynamo: Backend = {
  name: 'DynamoDB Local',
  open: async () => {
    if (!emulators) throw new Error('call useEmulators() in a beforeAll first');
    const client = dynamoClientFor(emulators.dynamoEndpoint);
    const tableName = uniqueName('airlock-inline');
    await ensureDynamoTable(client, tableName);
    return { store: openDynamoCatalogStore({ tableName, client }), objects: new MemoryObjectStore() };
  },
};

const opened: CatalogStore[] = [];
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
});

/** A catalog writing inline (the DynamoDB protocol) on `store`, as one process would. */
function processOn(store: CatalogStore, objects: ObjectStore): Catalog {
  return new Catalog(store, objects, { writes: 'inline' });
}

/** The keys of the documents a log item carries inline. */
async function inlineKeys(store: CatalogStore, branch: string, seq: number): Promise<ItemKey[]> {
  const item = await store.get({ pk: logPk(branch), sk: seqSk(seq) });
  const docs = (item?.data.docs ?? []) as InlineDoc[];
  return docs.map((d) => docKey(d.kind, d.id));
}

async function existing(store: CatalogStore, keys: ItemKey[]): Promise<ItemKey[]> {
  const found = await store.getMany(keys);
  return keys.filter((k) => found.some((i) => i.pk === k.pk && i.sk === k.sk));
}

/**
 * A lake whose branch `dev` has a head written by a process that died right after its log
 * put: the head's documents exist only inline. `other` (from main) exists for merges.
 */
async function crashedHead(backend: Backend) {
  const { store, objects } = await backend.open();
  opened.push(store);
  const setup = processOn(store, objects);
  await setup.init(alice);
  await setup.createBranch('dev', 'main', alice);
  await setup.createBranch('other', 'main', alice);
  await setup.commit('dev', [append('raw.events', 10)], { actor: alice, message: 'seed' });
  await setup.flush();
  const crashing = new CrashableStore(store);
  const doomed = processOn(crashing, objects);
  crashing.crashAfterNextAppend();
  const made = await doomed.commit('dev', [append('raw.events', 5), append('raw.users', 3)], {
    actor: alice,
    message: 'the last words',
  });
  await doomed.flush();
  const keys = await inlineKeys(store, 'dev', made.seq);
  return { store, objects, made, keys, crashing };
}

describe.each([memory, sqlite, dynamo])('inline commits on $name', (backend) => {
  beforeAll(async () => {
    if (backend === dynamo) emulators ??= await useEmulators();
  }, 240_000);

  it('a crash between the log put and the document puts leaves the head readable through its log item', async () => {
    const { store, objects, made, keys, crashing } = await crashedHead(backend);
    expect(crashing.crashed).toBe(true);
    expect(keys.map((k) => k.pk.split('#')[0]).sort()).toEqual(['commit', 'tree', 'tv', 'tv']);
    expect(await existing(store, keys)).toEqual([]);

    const reader = processOn(store, objects);

    expect((await reader.resolve('dev')).commit.id).toBe(made.commit.id);
    expect(await reader.listTables('dev')).toMatchObject([
      { name: 'raw.events', rowCount: 15, files: 2 },
      { name: 'raw.users', rowCount: 3, files: 1 },
    ]);
    expect((await reader.getTable('dev', 'raw.users')).version.rowCount).toBe(3);
    expect([...(await reader.snapshot('dev')).tables.keys()].sort()).toEqual(['raw.events', 'raw.users']);
    expect((await reader.history('dev', 10)).map((c) => c.message)).toEqual([
      'the last words',
      'seed',
      'Initialize lake',
    ]);
    expect(await reader.diff('dev~1', 'dev')).toMatchObject([
      { table: 'raw.events', rowsAdded: 5 },
      { table: 'raw.users', status: 'added', rowsAdded: 3 },
    ]);
    expect((await reader.listBranches()).find((b) => b.name === 'dev')?.head).toBe(made.commit.id);
  });

  it('the next writer, from a fresh process, re-puts the crashed head documents and appends', async () => {
    const { store, objects, made, keys } = await crashedHead(backend);
    const next = processOn(store, objects);

    const after = await next.commit('dev', [append('raw.events', 1)], { actor: alice, message: 'next' });
    await next.flush();

    expect(after.seq).toBe(made.seq + 1);
    expect(after.commit.parents).toEqual([made.commit.id]);
    expect(await existing(store, keys)).toEqual(keys);
    const later = processOn(store, objects);
    expect((await later.getTable('dev', 'raw.events')).version.rowCount).toBe(16);
    expect((await later.resolve(made.commit.id)).commit.message).toBe('the last words');
  });

  it.each(['branch', 'tag', 'merge'] as const)(
    'a %s made from a head whose documents are missing makes them durable first',
    async (kind) => {
      const { store, objects, made, keys } = await crashedHead(backend);
      const fresh = processOn(store, objects);

      if (kind === 'branch') await fresh.createBranch('copy', 'dev', alice);
      if (kind === 'tag') await fresh.createTag('v1', 'dev', alice);
      if (kind === 'merge') {
        const r = await fresh.merge('dev', 'other', { actor: alice, message: 'take dev' });
        expect(r.status).toBe('fast-forward');
      }

      expect(await existing(store, keys)).toEqual(keys);
      const reader = processOn(store, objects);
      const ref = { branch: 'copy', tag: 'v1', merge: 'other' }[kind];
      expect((await reader.resolve(ref)).commit.id).toBe(made.commit.id);
      expect((await reader.resolve(made.commit.id.slice(0, 12))).commit.id).toBe(made.commit.id);
    },
  );

  it('a long-lived writer commits with one conditional put of the log item and no read', async () => {
    const { store, objects } = await backend.open();
    opened.push(store);
    const counting = new CrashableStore(store);
    const catalog = processOn(counting, objects);
    await catalog.init(alice);
    await catalog.createBranch('dev', 'main', alice);
    let base: string | null = null;
    for (let i = 0; i < 3; i++) {
      const r = await catalog.commit('dev', [overwrite('raw.t', base)], { actor: alice, message: `warm ${i}` });
      base = (await catalog.treeOf(r.commit)).tables['raw.t'] ?? null;
    }
    await catalog.flush();
    counting.calls = [];

    const r = await catalog.commit('dev', [overwrite('raw.t', base)], { actor: alice, message: 'measured' });
    const duringCommit = [...counting.calls];
    await catalog.flush();

    expect(r.attempts).toBe(1);
    expect(duringCommit[0]).toBe('put log if absent');
    expect(duringCommit.filter((c) => /^(get|getMany|query)$/.test(c))).toEqual([]);
    // the documents follow in one batched write (a transaction where the store has no batch put)
    expect(counting.calls.slice(1)).toEqual([store.putMany ? 'putMany 3' : 'transact 3']);
    const item = await store.get({ pk: logPk('dev'), sk: seqSk(r.seq) });
    expect(((item?.data.docs ?? []) as InlineDoc[]).map((d) => d.kind).sort()).toEqual(['commit', 'tree', 'tv']);
  });
});

describe('remembered heads', () => {
  it('a stale remembered head costs a re-read, never a wrong conflict', async () => {
    const store = new MemoryCatalogStore();
    const objects = new MemoryObjectStore();
    const a = processOn(store, objects);
    await a.init(alice);
    await a.createBranch('dev', 'main', alice);
    await a.commit('dev', [overwrite('raw.t', null)], { actor: alice, message: 'a1' });
    const b = processOn(store, objects);
    const v1 = (await b.getTable('dev', 'raw.t')).id;
    await b.commit('dev', [overwrite('raw.t', v1)], { actor: alice, message: 'b1' });
    const v2 = (await b.getTable('dev', 'raw.t')).id;

    // a still remembers the head before b1: its tree has v1, the caller prepared against v2
    const landed = await a.commit('dev', [overwrite('raw.t', v2)], { actor: alice, message: 'a2' });
    const stale = await a.commit('dev', [overwrite('raw.t', v2)], { actor: alice, message: 'a3' }).catch((e) => e);

    expect(landed.commit.message).toBe('a2');
    expect(isAirlockError(stale) && stale.code).toBe('CONFLICT');
    expect((await b.history('dev', 10)).map((c) => c.message)).toEqual(['a2', 'b1', 'a1', 'Initialize lake']);
  });

  it('a dry-run merge reports against the current target head, not a remembered one', async () => {
    const store = new MemoryCatalogStore();
    const objects = new MemoryObjectStore();
    const a = processOn(store, objects);
    await a.init(alice);
    await a.createBranch('dev', 'main', alice);
    await a.createBranch('feature', 'main', alice);
    await a.commit('feature', [append('raw.f')], { actor: alice, message: 'f' });
    const b = processOn(store, objects);
    await b.commit('dev', [append('raw.d')], { actor: alice, message: 'd' });

    const plan = await a.merge('feature', 'dev', { actor: alice, message: 'm', dryRun: true });

    expect(plan.status).toBe('merged');
    expect(plan.targetHead).toBe((await b.resolve('dev')).commit.id);
  });
});

// ------------------------------------------------------------------ the invariant, under random interleavings

const BRANCHES = ['main', 'a', 'b', 'c'];
const TABLES = ['raw.t1', 'raw.t2'];
const PROCESSES = 3;

type Op =
  | { kind: 'commit'; p: number; branch: number; table: number; overwrite: boolean }
  | { kind: 'create'; p: number; branch: number; from: number }
  | { kind: 'merge'; p: number; source: number; target: number }
  | { kind: 'tag'; p: number; from: number }
  | { kind: 'delete'; p: number; branch: number }
  | { kind: 'restore'; p: number; branch: number }
  | { kind: 'revert'; p: number; branch: number }
  | { kind: 'crash'; p: number };

const p = fc.integer({ min: 0, max: PROCESSES - 1 });
const branch = fc.integer({ min: 0, max: BRANCHES.length - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('commit' as const),
      p,
      branch,
      table: fc.integer({ min: 0, max: 1 }),
      overwrite: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('create' as const), p, branch, from: branch }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('merge' as const), p, source: branch, target: branch }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tag' as const), p, from: branch }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), p, branch }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restore' as const), p, branch }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('revert' as const), p, branch }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('crash' as const), p }) },
);

async function readAll(store: CatalogStore, pk: string): Promise<CatalogItem[]> {
  const out: CatalogItem[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.query(pk, cursor ? { cursor } : {});
    out.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

/** Everything a commit needs to be read by id alone: its commit, tree and table-version items. */
async function missingDocs(store: CatalogStore, commitId: string): Promise<string[]> {
  const commit = await store.get(docKey('commit', commitId));
  if (!commit) return [`commit ${commitId.slice(0, 8)}`];
  const treeId = commit.data.tree as string;
  const tree = await store.get(docKey('tree', treeId));
  if (!tree) return [`tree ${treeId.slice(0, 8)}`];
  const ids = [...new Set(Object.values(tree.data.tables as Record<string, string>))];
  const found = await store.getMany(ids.map((id) => docKey('tv', id)));
  return ids.filter((id) => !found.some((i) => i.sk === id)).map((id) => `table version ${id.slice(0, 8)}`);
}

/** The invariant: the documents of every non-head event, tag and sync record exist as items. */
async function invariantViolations(store: CatalogStore): Promise<string[]> {
  const out: string[] = [];
  for (const b of BRANCHES) {
    const events = await readAll(store, logPk(b));
    for (const item of events.slice(0, -1)) {
      const commit = item.data.commit as string | null;
      if (commit) for (const m of await missingDocs(store, commit)) out.push(`${b}#${item.data.seq}: ${m}`);
    }
    for (const sync of await readAll(store, `sync#${b}`)) {
      for (const m of await missingDocs(store, sync.data.commit as string)) out.push(`sync ${b}/${sync.sk}: ${m}`);
    }
  }
  for (const tag of await readAll(store, 'tags')) {
    for (const m of await missingDocs(store, tag.data.commit as string)) out.push(`tag ${tag.sk}: ${m}`);
  }
  return out;
}

/** Outcomes the catalog may give to a random operation; anything else (a missing document above all) fails. */
function expected(e: unknown): boolean {
  if (isProcessCrash(e)) return true;
  if (!isAirlockError(e)) return false;
  if (/not found in the catalog/.test(e.message)) return false;
  return ['CONFLICT', 'NOT_FOUND', 'INVALID', 'DENIED'].includes(e.code);
}

describe.each([memory, sqlite])('the durability invariant on $name', (backend) => {
  it('holds after random interleavings of writers that crash between their log put and their document puts', async () => {
    let tags = 0;
    let crashes = 0;
    let repairsNeeded = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 16 }),
        async (steps) => {
          const { store, objects } = await backend.open();
          try {
            const stores = Array.from({ length: PROCESSES }, () => new CrashableStore(store));
            const processes = stores.map((s) => processOn(s, objects));
            await (processes[0] as Catalog).init(alice);
            for (const b of ['a', 'b']) await (processes[0] as Catalog).createBranch(b, 'main', alice);
            const actor: Actor = alice;
            const run = async (op: Op): Promise<unknown> => {
              const c = processes[op.p] as Catalog;
              switch (op.kind) {
                case 'commit': {
                  const b = BRANCHES[op.branch] as string;
                  const t = TABLES[op.table] as string;
                  let change: TableChange = append(t, 1);
                  if (op.overwrite) {
                    const base = await c.getTable(b, t).then(
                      (x) => x.id,
                      () => null,
                    );
                    change = overwrite(t, base, 1);
                  }
                  return c.commit(b, [change], { actor, message: op.kind });
                }
                case 'create':
                  return c.createBranch(BRANCHES[op.branch] as string, BRANCHES[op.from] as string, actor);
                case 'merge':
                  return c.merge(BRANCHES[op.source] as string, BRANCHES[op.target] as string, {
                    actor,
                    message: 'm',
                  });
                case 'tag':
                  tags += 1;
                  return c.createTag(`t${tags}`, BRANCHES[op.from] as string, actor);
                case 'delete':
                  return c.deleteBranch(BRANCHES[op.branch] as string, actor);
                case 'restore':
                  return c.restoreBranch(BRANCHES[op.branch] as string, actor);
                case 'revert':
                  return c.revert(BRANCHES[op.branch] as string, BRANCHES[op.branch] as string, { actor });
                case 'crash':
                  (stores[op.p] as CrashableStore).crashAfterNextAppend();
                  return undefined;
              }
            };
            for (const step of steps) {
              const outcomes = await Promise.allSettled(step.map(run));
              for (const o of outcomes) {
                if (o.status === 'rejected' && !expected(o.reason)) throw o.reason;
              }
              // crashed processes are restarted: a fresh catalog, remembering nothing
              for (let i = 0; i < PROCESSES; i++) {
                if (!(stores[i] as CrashableStore).crashed) continue;
                crashes += 1;
                stores[i] = new CrashableStore(store);
                processes[i] = processOn(stores[i] as CrashableStore, objects);
              }
              expect(await invariantViolations(store)).toEqual([]);
            }
            // every live head reads fully from a fresh process, whether or not its items exist
            const reader = processOn(store, objects);
            for (const b of await reader.listBranches()) {
              if ((await missingDocs(store, b.head)).length > 0) repairsNeeded += 1;
              const snapshot = await reader.snapshot(b.name);
              expect(snapshot.commit.id).toBe(b.head);
            }
          } finally {
            await store.close();
          }
        },
      ),
      { numRuns: 60 },
    );
    // The property only proves something if crashes happened and left heads to repair.
    expect(crashes).toBeGreaterThan(10);
    expect(repairsNeeded).toBeGreaterThan(0);
  }, 300_000);
});

describe('DynamoDB putMany', () => {
  beforeAll(async () => {
    emulators ??= await useEmulators();
  }, 240_000);

  it('writes more than one batch of items, and writing them again changes nothing', async () => {
    const { store } = await dynamo.open();
    opened.push(store);
    const items = Array.from({ length: 60 }, (_, i) => ({ pk: 'doc#x', sk: String(i).padStart(3, '0'), data: { i } }));

    await store.putMany?.(items);
    await store.putMany?.(items);

    const page = await store.query('doc#x', { limit: 100 });
    expect(page.items.map((i) => i.data.i)).toEqual(items.map((i) => i.data.i));
  });
});
