import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Catalog } from '../shared/catalog/index.js';
import { isAirlockError } from '../shared/errors/index.js';
import { alice, fakeFile, idSchema, memoryCatalog } from './support/catalogFixtures.js';

/**
 * Model-based property test: random sequences of branch / commit / merge / revert run
 * against the real catalog and against a deliberately naive model (full ancestor sets for
 * merge bases, file-set rules for three-way merges). After every step both must agree on
 * the outcome and on every branch's tables, file by file.
 */

type Files = string[];
type ModelTree = Record<string, Files>;
interface ModelCommit {
  parents: string[];
  tree: ModelTree;
}

const BRANCHES = ['main', 'a', 'b', 'c'];
const TABLES = ['raw.t1', 'raw.t2'];

type Op =
  | { kind: 'create'; branch: number; from: number }
  | { kind: 'append'; branch: number; table: number }
  | { kind: 'overwrite'; branch: number; table: number }
  | { kind: 'merge'; source: number; target: number }
  | { kind: 'revert'; branch: number };

/** a diverges from b on different tables (merged), then ff, up-to-date, a conflict and a revert. */
const EVERY_OUTCOME: Op[] = [
  { kind: 'create', branch: 1, from: 0 },
  { kind: 'append', branch: 1, table: 0 },
  { kind: 'create', branch: 2, from: 1 },
  { kind: 'append', branch: 2, table: 1 },
  { kind: 'append', branch: 1, table: 0 },
  { kind: 'merge', source: 2, target: 1 },
  { kind: 'merge', source: 1, target: 2 },
  { kind: 'merge', source: 1, target: 2 },
  { kind: 'create', branch: 3, from: 1 },
  { kind: 'overwrite', branch: 3, table: 0 },
  { kind: 'overwrite', branch: 1, table: 0 },
  { kind: 'merge', source: 3, target: 1 },
  { kind: 'revert', branch: 1 },
];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      branch: fc.integer({ min: 1, max: 3 }),
      from: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      branch: fc.integer({ min: 0, max: 3 }),
      table: fc.integer({ min: 0, max: 1 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('overwrite' as const),
      branch: fc.integer({ min: 0, max: 3 }),
      table: fc.integer({ min: 0, max: 1 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('merge' as const),
      source: fc.integer({ min: 0, max: 3 }),
      target: fc.integer({ min: 0, max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('revert' as const), branch: fc.integer({ min: 0, max: 3 }) }) },
);

const sameSet = (a: Files | undefined, b: Files | undefined) =>
  a === b || (!!a && !!b && a.length === b.length && a.every((x) => b.includes(x)));
const subset = (a: Files, b: Files) => a.every((x) => b.includes(x));

class Model {
  commits = new Map<string, ModelCommit>();
  heads = new Map<string, string>();

  ancestors(id: string): Set<string> {
    const out = new Set<string>();
    const stack = [id];
    while (stack.length) {
      const c = stack.pop() as string;
      if (out.has(c)) continue;
      out.add(c);
      stack.push(...(this.commits.get(c)?.parents ?? []));
    }
    return out;
  }

  /** All best common ancestors (no candidate is an ancestor of another). */
  mergeBases(a: string, b: string): string[] {
    const common = [...this.ancestors(a)].filter((x) => this.ancestors(b).has(x));
    return common.filter((c) => !common.some((d) => d !== c && this.ancestors(d).has(c)));
  }

  /** Three-way merge on file sets; undefined on conflict. */
  static mergeTrees(base: ModelTree, ours: ModelTree, theirs: ModelTree): ModelTree | undefined {
    const out: ModelTree = {};
    for (const t of new Set([...Object.keys(base), ...Object.keys(ours), ...Object.keys(theirs)])) {
      const [B, O, T] = [base[t], ours[t], theirs[t]];
      let r: Files | undefined;
      if (sameSet(O, T) || sameSet(T, B)) r = O;
      else if (sameSet(O, B)) r = T;
      else if (B && O && T && subset(B, O) && subset(B, T)) r = [...new Set([...O, ...T])];
      else return undefined;
      if (r) out[t] = r;
    }
    return out;
  }
}

async function realTree(catalog: Catalog, commit: string): Promise<ModelTree> {
  const c = await catalog.docs.getCommit(commit);
  const tree = await catalog.treeOf(c);
  const versions = await catalog.docs.getTableVersions(Object.values(tree.tables));
  const out: ModelTree = {};
  for (const [name, id] of Object.entries(tree.tables)) out[name] = versions.get(id)?.files.map((f) => f.key) ?? [];
  return out;
}

function normalise(tree: ModelTree): Record<string, string[]> {
  const entries = Object.entries(tree).map(([k, v]): [string, string[]] => [k, [...v].sort()]);
  return Object.fromEntries(entries.sort((x, y) => (x[0] < y[0] ? -1 : 1)));
}

async function outcome<T>(f: () => Promise<T>): Promise<{ ok: T } | { code: string }> {
  try {
    return { ok: await f() };
  } catch (e) {
    if (isAirlockError(e)) return { code: e.code };
    throw e;
  }
}

describe('catalog against a naive model', () => {
  it('agrees on outcomes and on every branch after random branch/commit/merge/revert sequences', async () => {
    const seen: Record<string, number> = {};
    const count = (k: string) => {
      seen[k] = (seen[k] ?? 0) + 1;
    };
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const { catalog } = await memoryCatalog();
        const model = new Model();
        const root = (await catalog.resolve('main')).commit.id;
        model.commits.set(root, { parents: [], tree: {} });
        model.heads.set('main', root);
        for (const b of ['a', 'b']) {
          await catalog.createBranch(b, 'main', alice);
          model.heads.set(b, root);
        }

        for (const op of ops) {
          switch (op.kind) {
            case 'create': {
              const name = BRANCHES[op.branch] as string;
              const from = BRANCHES[op.from] as string;
              const r = await outcome(() => catalog.createBranch(name, from, alice));
              if (model.heads.has(name) || !model.heads.has(from)) expect('ok' in r).toBe(false);
              else {
                expect(r).toHaveProperty('ok');
                model.heads.set(name, model.heads.get(from) as string);
              }
              break;
            }
            case 'append':
            case 'overwrite': {
              const branch = BRANCHES[op.branch] as string;
              const table = TABLES[op.table] as string;
              const file = fakeFile(1);
              const head = model.heads.get(branch);
              const current = head ? model.commits.get(head)?.tree : undefined;
              const base = current?.[table] ? (await catalog.getTable(branch, table)).id : null;
              const change =
                op.kind === 'append'
                  ? { kind: 'append' as const, table, files: [file], schema: idSchema, constraints: { unique: [] } }
                  : {
                      kind: 'put' as const,
                      table,
                      base,
                      version: {
                        schema: idSchema,
                        constraints: { unique: [] },
                        files: [file],
                        rowCount: 1,
                        bytes: file.bytes,
                        op: 'overwrite' as const,
                      },
                    };
              const r = await outcome(() => catalog.commit(branch, [change], { actor: alice, message: op.kind }));
              if (!head) expect(r).toEqual({ code: 'NOT_FOUND' });
              else if (branch === 'main') expect(r).toEqual({ code: 'DENIED' });
              else {
                expect(r).toHaveProperty('ok');
                const id = (r as { ok: { commit: { id: string } } }).ok.commit.id;
                const tree = { ...(current as ModelTree) };
                tree[table] = op.kind === 'append' ? [...(tree[table] ?? []), file.key] : [file.key];
                model.commits.set(id, { parents: [head], tree });
                model.heads.set(branch, id);
              }
              break;
            }
            case 'merge': {
              const source = BRANCHES[op.source] as string;
              const target = BRANCHES[op.target] as string;
              const r = await outcome(() => catalog.merge(source, target, { actor: alice, message: 'm' }));
              const s = model.heads.get(source);
              const t = model.heads.get(target);
              if (!s || !t || source === target) {
                expect('ok' in r).toBe(false);
                break;
              }
              const bases = model.mergeBases(s, t);
              const candidates = bases.map((b) => {
                if (b === s) return { status: 'up-to-date' };
                if (b === t) return { status: 'fast-forward' };
                const tree = Model.mergeTrees(
                  (model.commits.get(b) as ModelCommit).tree,
                  (model.commits.get(t) as ModelCommit).tree,
                  (model.commits.get(s) as ModelCommit).tree,
                );
                return tree ? { status: 'merged', tree } : { status: 'conflict' };
              });
              const statuses = candidates.map((c) => c.status);
              count(`merge:${'code' in r ? 'conflict' : r.ok.status}`);
              if ('code' in r) {
                expect(r.code).toBe('CONFLICT');
                expect(statuses).toContain('conflict');
                break;
              }
              const result = r.ok;
              expect(statuses).toContain(result.status);
              if (result.status === 'fast-forward') model.heads.set(target, s);
              if (result.status === 'merged') {
                const id = result.commit as string;
                model.commits.set(id, { parents: [t, s], tree: await realTree(catalog, id) });
                const expected = candidates
                  .filter((c) => c.status === 'merged')
                  .map((c) => normalise(c.tree as ModelTree));
                expect(expected).toContainEqual(normalise((model.commits.get(id) as ModelCommit).tree));
                model.heads.set(target, id);
              }
              break;
            }
            case 'revert': {
              const branch = BRANCHES[op.branch] as string;
              const head = model.heads.get(branch);
              const r = await outcome(() => catalog.revert(branch, branch, { actor: alice }));
              if (!head) {
                expect(r).toEqual({ code: 'NOT_FOUND' });
                break;
              }
              const c = model.commits.get(head) as ModelCommit;
              if (c.parents.length === 0) {
                expect(r).toEqual({ code: 'INVALID' });
                break;
              }
              const parent = model.commits.get(c.parents[0] as string) as ModelCommit;
              const tree = Model.mergeTrees(c.tree, c.tree, parent.tree) as ModelTree;
              if (JSON.stringify(normalise(tree)) === JSON.stringify(normalise(c.tree))) {
                expect(r).toEqual({ code: 'INVALID' });
                break;
              }
              expect(r).toHaveProperty('ok');
              count('revert');
              const id = (r as { ok: { commit: { id: string } } }).ok.commit.id;
              model.commits.set(id, { parents: [head], tree });
              model.heads.set(branch, id);
              break;
            }
          }
          for (const [branch, head] of model.heads) {
            const real = await catalog.resolve(branch);
            expect(real.commit.id).toBe(head);
            expect(normalise(await realTree(catalog, head))).toEqual(
              normalise((model.commits.get(head) as ModelCommit).tree),
            );
          }
        }
      }),
      {
        numRuns: 100,
        // One fixed sequence that reaches every merge outcome and a revert, so the coverage
        // check below holds whatever the random runs happen to draw.
        examples: [[EVERY_OUTCOME]],
      },
    );
    // The generator must reach every interesting case, or the property proves little.
    for (const k of ['merge:fast-forward', 'merge:merged', 'merge:conflict', 'merge:up-to-date', 'revert']) {
      expect(seen[k] ?? 0, `${k} never happened: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    }
  }, 300_000);
});
