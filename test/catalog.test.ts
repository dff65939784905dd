import { describe, expect, it } from 'vitest';
import { Catalog } from '../shared/catalog/index.js';
import { isConflict, isDenied, isInvalid, isNotFound } from '../shared/errors/index.js';
import { alice, append, idSchema, memoryCatalog, overwrite } from './support/catalogFixtures.js';

describe('branches and refs', () => {
  it('init is idempotent and creates a protected main', async () => {
    const { catalog } = await memoryCatalog();
    const again = await catalog.init(alice);
    expect(again.created).toBe(false);
    const branches = await catalog.listBranches();
    expect(branches.map((b) => [b.name, b.protected])).toEqual([['main', true]]);
  });

  it('adds protected branches and prefix patterns, never removes any, and keeps concurrent additions', async () => {
    const { catalog } = await memoryCatalog();
    const other = new Catalog(catalog.store, catalog.objects);
    await Promise.all([catalog.protectBranches(['release/*']), other.protectBranches(['prod'])]);
    const fresh = new Catalog(catalog.store, catalog.objects);
    expect((await fresh.lakeSettings()).protectedBranches.sort()).toEqual(['main', 'prod', 'release/*']);
    expect(await fresh.protectBranches([])).toEqual(expect.arrayContaining(['main', 'prod', 'release/*']));
    await fresh.createBranch('release/1.0', 'main', alice);
    await expect(fresh.commit('release/1.0', [append('raw.events')], { actor: alice, message: 'x' })).rejects.toSatisfy(
      isDenied,
    );
    await fresh.createBranch('releases', 'main', alice); // not under release/
    await fresh.commit('releases', [append('raw.events')], { actor: alice, message: 'x' });
    await expect(fresh.protectBranches(['../x'])).rejects.toSatisfy(isInvalid);
    await expect(fresh.protectBranches(['/*'])).rejects.toSatisfy(isInvalid);
  });

  it('refuses direct commits to a protected branch', async () => {
    const { catalog } = await memoryCatalog();
    await expect(catalog.commit('main', [append('raw.events')], { actor: alice, message: 'x' })).rejects.toSatisfy(
      isDenied,
    );
  });

  it('creates, deletes and restores a branch', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('dev', 'main', alice);
    const c = await catalog.commit('dev', [append('raw.events')], { actor: alice, message: 'add' });
    await catalog.deleteBranch('dev', alice);
    await expect(catalog.resolve('dev')).rejects.toSatisfy(isNotFound);
    expect((await catalog.listBranches()).map((b) => b.name)).toEqual(['main']);
    await catalog.restoreBranch('dev', alice);
    expect((await catalog.resolve('dev')).commit.id).toBe(c.commit.id);
  });

  it('refuses to create an existing branch', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('dev', 'main', alice);
    await expect(catalog.createBranch('dev', 'main', alice)).rejects.toSatisfy(isConflict);
  });

  it.each(['', 'a..b', 'x@y', 'a~1', 'trailing/', '-'.repeat(201)])('refuses the branch name %j', async (name) => {
    const { catalog } = await memoryCatalog();
    await expect(catalog.createBranch(name, 'main', alice)).rejects.toSatisfy(isInvalid);
  });

  it('resolves ~N, @time, tags and unique commit prefixes', async () => {
    const { catalog, time } = await memoryCatalog();
    await catalog.createBranch('dev', 'main', alice);
    const ids: string[] = [];
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await catalog.commit('dev', [append('raw.events')], { actor: alice, message: `c${i}` })).commit.id);
      times.push(time());
    }
    expect((await catalog.resolve('dev~1')).commit.id).toBe(ids[3]);
    expect((await catalog.resolve('dev~4')).commit.id).toBe(ids[0]);
    const root = (await catalog.resolve('main')).commit.id;
    expect((await catalog.resolve('dev~5')).commit.id).toBe(root);
    await expect(catalog.resolve('dev~6')).rejects.toSatisfy(isNotFound);
    const at = new Date((times[1] as number) + 500).toISOString();
    expect((await catalog.resolve(`dev@${at}`)).commit.id).toBe(ids[1]);
    expect((await catalog.resolve(`dev@${at}~1`)).commit.id).toBe(ids[0]);
    await catalog.createTag('v1', 'dev~2', alice);
    expect((await catalog.resolve('v1')).commit.id).toBe(ids[2]);
    expect((await catalog.resolve((ids[2] as string).slice(0, 10))).commit.id).toBe(ids[2]);
    await expect(catalog.resolve('nope')).rejects.toSatisfy(isNotFound);
    await expect(catalog.resolve('dev@not-a-time')).rejects.toSatisfy(isInvalid);
  });

  it('walks ~N across a fast-forward into the source branch history', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('a', 'main', alice);
    const a1 = await catalog.commit('a', [append('raw.a')], { actor: alice, message: 'a1' });
    const a2 = await catalog.commit('a', [append('raw.a')], { actor: alice, message: 'a2' });
    const m = await catalog.merge('a', 'main', { actor: alice, message: 'merge' });
    expect(m.status).toBe('fast-forward');
    expect((await catalog.resolve('main')).commit.id).toBe(a2.commit.id);
    expect((await catalog.resolve('main~1')).commit.id).toBe(a1.commit.id);
    const history = await catalog.history('main');
    expect(history.map((c) => c.message)).toEqual(['a2', 'a1', 'Initialize lake']);
  });
});

describe('commits', () => {
  it('appends rebase onto concurrent appends without conflict', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('dev', 'main', alice);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        catalog.commit('dev', [append('raw.events', i + 1)], { actor: alice, message: `c${i}` }),
      ),
    );
    expect(new Set(results.map((r) => r.seq)).size).toBe(8);
    const { version } = await catalog.getTable('dev', 'raw.events');
    expect(version.files).toHaveLength(8);
    expect(version.rowCount).toBe(36);
    expect(await catalog.history('dev', 100)).toHaveLength(9 + 0);
  });

  it('an overwrite prepared against a stale version conflicts and names the table', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('dev', 'main', alice);
    await catalog.commit('dev', [append('raw.events')], { actor: alice, message: 'c0' });
    const { id } = await catalog.getTable('dev', 'raw.events');
    await catalog.commit('dev', [append('raw.events')], { actor: alice, message: 'c1' });
    const err = await catalog
      .commit(
        'dev',
        [
          {
            kind: 'put',
            table: 'raw.events',
            base: id,
            version: {
              schema: idSchema,
              constraints: { unique: [] },
              files: [],
              rowCount: 0,
              bytes: 0,
              op: 'overwrite',
            },
          },
        ],
        { actor: alice, message: 'overwrite' },
      )
      .catch((e) => e);
    expect(isConflict(err)).toBe(true);
    expect(err.details.tables).toEqual(['raw.events']);
  });

  it('drops a table', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('dev', 'main', alice);
    await catalog.commit('dev', [append('raw.events')], { actor: alice, message: 'c0' });
    const { id } = await catalog.getTable('dev', 'raw.events');
    await catalog.commit('dev', [{ kind: 'drop', table: 'raw.events', base: id }], { actor: alice, message: 'drop' });
    expect(await catalog.listTables('dev')).toEqual([]);
    expect((await catalog.listTables('dev~1')).map((t) => t.name)).toEqual(['raw.events']);
  });

  it.each(['../x', 'a/b', '', 'x'.repeat(300), 'noschema', 'A.B', 'a.b.c'])(
    'refuses the table name %j',
    async (name) => {
      const { catalog } = await memoryCatalog();
      await catalog.createBranch('dev', 'main', alice);
      await expect(catalog.commit('dev', [append(name)], { actor: alice, message: 'x' })).rejects.toSatisfy(isInvalid);
    },
  );
});

describe('merge, diff and revert', () => {
  it('unions appends made on both sides of a three-way merge', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('base', 'main', alice);
    await catalog.commit('base', [append('raw.events', 5)], { actor: alice, message: 'seed' });
    await catalog.merge('base', 'main', { actor: alice, message: 'seed' });
    await catalog.createBranch('a', 'main', alice);
    await catalog.createBranch('b', 'main', alice);
    await catalog.commit('a', [append('raw.events', 1)], { actor: alice, message: 'a' });
    await catalog.commit('b', [append('raw.events', 2)], { actor: alice, message: 'b' });
    expect((await catalog.merge('a', 'main', { actor: alice, message: 'm1' })).status).toBe('fast-forward');
    const m2 = await catalog.merge('b', 'main', { actor: alice, message: 'm2' });
    expect(m2.status).toBe('merged');
    expect(m2.changes).toMatchObject([{ table: 'raw.events', rowsAdded: 2, rowsRemoved: 0 }]);
    expect((await catalog.getTable('main', 'raw.events')).version.rowCount).toBe(8);
    const head = (await catalog.resolve('main')).commit;
    expect(head.parents).toHaveLength(2);
    expect(head.kind).toBe('merge');
  });

  it('reports overlapping overwrites as a conflict naming the table, and leaves the target untouched', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('a', 'main', alice);
    await catalog.createBranch('b', 'main', alice);
    await catalog.commit('a', [append('raw.events', 1)], { actor: alice, message: 'a' });
    await catalog.commit('b', [append('raw.events', 2)], { actor: alice, message: 'b' });
    await catalog.merge('a', 'main', { actor: alice, message: 'm1' });
    const before = (await catalog.resolve('main')).commit.id;
    const dry = await catalog.merge('b', 'main', { actor: alice, message: 'm2', dryRun: true });
    expect(dry.status).toBe('conflict');
    expect(dry.conflicts.map((c) => c.table)).toEqual(['raw.events']);
    const err = await catalog.merge('b', 'main', { actor: alice, message: 'm2' }).catch((e) => e);
    expect(isConflict(err)).toBe(true);
    expect(err.details.tables).toEqual(['raw.events']);
    expect((await catalog.resolve('main')).commit.id).toBe(before);
  });

  it('a dry run reports the plan and writes nothing', async () => {
    const { catalog, store } = await memoryCatalog();
    await catalog.createBranch('a', 'main', alice);
    await catalog.commit('a', [append('raw.events', 3)], { actor: alice, message: 'a' });
    store.reset();
    const plan = await catalog.merge('a', 'main', { actor: alice, message: 'm', dryRun: true });
    expect(plan.status).toBe('fast-forward');
    expect(plan.changes).toMatchObject([{ table: 'raw.events', status: 'added', rowsAdded: 3 }]);
    expect(store.writes).toBe(0);
  });

  it('merging twice is up to date the second time', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('a', 'main', alice);
    await catalog.commit('a', [append('raw.events', 3)], { actor: alice, message: 'a' });
    await catalog.merge('a', 'main', { actor: alice, message: 'm' });
    expect((await catalog.merge('a', 'main', { actor: alice, message: 'm' })).status).toBe('up-to-date');
  });

  it('with noFastForward records a merge commit whose first parent is the previous target head', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('a', 'main', alice);
    const before = (await catalog.resolve('main')).commit.id;
    const a = await catalog.commit('a', [append('raw.events', 3)], { actor: alice, message: 'a' });
    const r = await catalog.merge('a', 'main', { actor: alice, message: 'publish', noFastForward: true });
    expect(r.status).toBe('merged');
    const head = (await catalog.resolve('main')).commit;
    expect(head.id).toBe(r.commit);
    expect(head.parents).toEqual([before, a.commit.id]);
    expect((await catalog.resolve('main~1')).commit.id).toBe(before);
    expect((await catalog.getTable('main', 'raw.events')).version.rowCount).toBe(3);
  });

  it('diffs rows added and removed per table', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('a', 'main', alice);
    await catalog.commit('a', [append('raw.events', 3), append('raw.users', 4)], { actor: alice, message: 'a' });
    const diff = await catalog.diff('main', 'a');
    expect(diff).toMatchObject([
      { table: 'raw.events', status: 'added', rowsAdded: 3 },
      { table: 'raw.users', status: 'added', rowsAdded: 4 },
    ]);
    expect(await catalog.diff('a', 'a')).toEqual([]);
  });

  it('revert restores the tables a commit changed and keeps later changes to other tables', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('a', 'main', alice);
    await catalog.commit('a', [append('raw.events', 3)], { actor: alice, message: 'one' });
    const bad = await catalog.commit('a', [append('raw.events', 100)], { actor: alice, message: 'bad' });
    await catalog.commit('a', [append('raw.users', 7)], { actor: alice, message: 'other' });
    const r = await catalog.revert(bad.commit.id, 'a', { actor: alice });
    expect(r.commit.kind).toBe('revert');
    expect((await catalog.getTable('a', 'raw.events')).version.rowCount).toBe(3);
    expect((await catalog.getTable('a', 'raw.users')).version.rowCount).toBe(7);
  });

  it('revert conflicts when the table changed after the reverted commit', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('a', 'main', alice);
    const one = await catalog.commit('a', [append('raw.events', 3)], { actor: alice, message: 'one' });
    await catalog.commit('a', [append('raw.events', 5)], { actor: alice, message: 'two' });
    await expect(catalog.revert(one.commit.id, 'a', { actor: alice })).rejects.toSatisfy(isConflict);
  });
});

describe('cost does not grow with history', () => {
  async function readsAt(historyLength: number) {
    const { catalog, store } = await memoryCatalog();
    await catalog.createBranch('long', 'main', alice);
    let base: string | null = null;
    for (let i = 0; i < historyLength; i++) {
      await catalog.commit('long', [overwrite('raw.history', base)], { actor: alice, message: `c${i}` });
      base = (await catalog.getTable('long', 'raw.history')).id;
    }
    await catalog.merge('long', 'main', { actor: alice, message: 'ff' });
    await catalog.createBranch('side', 'main', alice);
    await catalog.commit('side', [append('raw.other', 1)], { actor: alice, message: 's' });
    await catalog.merge('side', 'main', { actor: alice, message: 'side' });
    await catalog.createBranch('feature', 'main', alice);
    await catalog.commit('feature', [append('raw.events', 1)], { actor: alice, message: 'f' });
    await catalog.commit('long', [append('raw.events', 1)], { actor: alice, message: 'more' });
    const fresh = () => new Catalog(store, catalog.objects);
    const measure = async (f: () => Promise<unknown>) => {
      store.reset();
      await f();
      return store.reads;
    };
    return {
      head: await measure(() => fresh().head('main')),
      resolve: await measure(() => fresh().resolve('long')),
      resolveBack: await measure(() => fresh().resolve('long~3')),
      mergeBase: await measure(async () => {
        const c = fresh();
        const source = await c.resolve('feature');
        const head = await c.head('main');
        const target = await c.docs.getCommit(head.commit as string);
        store.reset();
        await c.mergeBase(source, { name: 'main', event: head }, target);
      }),
      mergeDryRun: await measure(() => fresh().merge('long', 'main', { actor: alice, message: 'x', dryRun: true })),
    };
  }

  it('takes the same number of store reads at history 10 and 5,000', async () => {
    const short = await readsAt(10);
    const long = await readsAt(5000);
    expect(long).toEqual(short);
    expect(short.mergeBase).toBe(1);
  }, 400_000);
});
