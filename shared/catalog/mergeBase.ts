import type { CatalogItem, CatalogStore } from '../store/ports.js';
import { syncKey } from './branchLog.js';
import type { Documents } from './documents.js';
import type { BranchEvent, Commit } from './model.js';

/**
 * A sync point: the newest commit two branches are known to share, with the
 * incarnation and import counters of both branches when it was recorded.
 *
 * Claim: if neither branch has merged anything in (imports unchanged) and neither was
 * re-created (incarnation unchanged) since the record, the recorded commit is their
 * merge base. Since the record, each branch only gained first-parent commits made on
 * it, which the other branch cannot contain, so the shared history is unchanged.
 * Any merge bumps `imports`, invalidating every record of that branch, and the walk
 * below takes over — slower, but always right. (The same argument makes a stale copy of
 * a record harmless: a newer record exists only after a merge or a re-creation, which
 * changes the counters the old copy is checked against.)
 */
export interface SyncPoint {
  commit: string;
  /** The tree of `commit`, so a merge reads the base tree without reading the commit first (absent in older records). */
  tree?: string;
  /** Incarnation and imports of the branch in the pk (`sync#<a>`). */
  a: { incarnation: number; imports: number };
  /** Incarnation and imports of the branch in the sk. */
  b: { incarnation: number; imports: number };
}

/** A branch head as seen when a merge starts. */
export interface BranchHead {
  name: string;
  event: BranchEvent;
}

/** The merge base a valid sync point gives: the shared commit and, when recorded, its tree. */
export interface SyncedBase {
  commit: string;
  tree?: string;
}

/** Reads the sync point of (a, b) and returns its commit when still valid for these heads. One read. */
export async function syncedBase(store: CatalogStore, a: BranchHead, b: BranchHead): Promise<string | undefined> {
  return validSyncPoint(await store.get(syncKey(a.name, b.name)), a, b)?.commit;
}

/** The base recorded by the sync-point item of (a, b) (already read), when still valid for these heads. */
export function validSyncPoint(item: CatalogItem | undefined, a: BranchHead, b: BranchHead): SyncedBase | undefined {
  if (!item) return undefined;
  const sync = item.data as unknown as SyncPoint;
  const matches = (side: SyncPoint['a'], head: BranchEvent) =>
    side.incarnation === head.incarnation && side.imports === head.imports;
  if (!matches(sync.a, a.event) || !matches(sync.b, b.event)) return undefined;
  return { commit: sync.commit, ...(sync.tree ? { tree: sync.tree } : {}) };
}

/** The two sync items recorded when branches a and b come to share `commit`. */
export function syncItems(
  commit: Pick<Commit, 'id' | 'tree'>,
  a: { name: string; incarnation: number; imports: number },
  b: typeof a,
): CatalogItem[] {
  const side = (x: typeof a) => ({ incarnation: x.incarnation, imports: x.imports });
  const shared = { commit: commit.id, tree: commit.tree };
  return [
    { ...syncKey(a.name, b.name), data: { ...shared, a: side(a), b: side(b) } },
    { ...syncKey(b.name, a.name), data: { ...shared, a: side(b), b: side(a) } },
  ];
}

const FROM_A = 1;
const FROM_B = 2;
const STALE = 4;

/**
 * The best common ancestor of two commits by walking the commit graph newest-generation
 * first (git's "paint down to common"): a commit reached from both sides is a candidate
 * and everything below it is stale; the walk stops when only stale commits remain.
 * Cost grows with the distance from the heads to their merge base, not with history.
 * Returns undefined for unrelated histories.
 */
export async function walkMergeBase(docs: Documents, a: Commit, b: Commit): Promise<Commit | undefined> {
  if (a.id === b.id) return a;
  const flags = new Map<string, number>([
    [a.id, FROM_A],
    [b.id, FROM_B],
  ]);
  const commits = new Map<string, Commit>([
    [a.id, a],
    [b.id, b],
  ]);
  const queue: Commit[] = [a, b];
  const results: Commit[] = [];
  const anyActive = () => queue.some((c) => ((flags.get(c.id) ?? 0) & STALE) === 0);
  while (queue.length > 0 && anyActive()) {
    queue.sort((x, y) => x.generation - y.generation);
    const current = queue.pop() as Commit;
    let f = flags.get(current.id) ?? 0;
    if ((f & (FROM_A | FROM_B)) === (FROM_A | FROM_B) && (f & STALE) === 0) {
      results.push(current);
      f |= STALE;
      flags.set(current.id, f);
    }
    const parents = await docs.getCommits(current.parents);
    for (const id of current.parents) {
      const parent = parents.get(id) as Commit;
      const before = flags.get(id);
      const after = (before ?? 0) | f;
      if (before === after) continue;
      flags.set(id, after);
      commits.set(id, parent);
      if (!queue.some((c) => c.id === id)) queue.push(parent);
    }
  }
  results.sort((x, y) => y.generation - x.generation);
  return results[0];
}
