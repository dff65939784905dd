import { setTimeout as sleep } from 'node:timers/promises';
import { AirlockError, conflict, denied, invalid, isConflict, notFound } from '../errors/index.js';
import type { CatalogItem, CatalogStore, ObjectStore, WriteOp } from '../store/ports.js';
import { MAX_TRANSACTION_ITEMS } from '../store/ports.js';
import { BranchLog, logPk, monotonicTime, registryKey, syncKey } from './branchLog.js';
import { sha256Hex } from './canonical.js';
import { type TableDiff, diffTrees } from './diffTrees.js';
import { Documents, docPut, itemsOf, type PreparedDoc } from './documents.js';
import { type BranchHead, type SyncedBase, syncItems, validSyncPoint, walkMergeBase } from './mergeBase.js';
import { type TableConflict, mergeTrees, sameSchema } from './mergeTrees.js';
import type {
  Actor,
  BranchEvent,
  Commit,
  CommitKind,
  DataFile,
  TableConstraints,
  TableSchema,
  TableVersion,
  Tree,
} from './model.js';
import { validateRefName, validateTableName } from './names.js';
import { looksLikeCommitId, parseRef } from './refs.js';

/** Checks table-level constraints that need the data (unique keys) before a version is committed. */
export interface ConstraintValidator {
  /** Throws INVALID naming the violation when `version` breaks its constraints. */
  validate(version: TableVersion): Promise<void>;
}

/** One change to one table, applied to the branch head at commit time. */
export type TableChange =
  /** Adds files. Commutes with concurrent appends: rebased onto whatever head wins. */
  | { kind: 'append'; table: string; files: DataFile[]; schema: TableSchema; constraints: TableConstraints }
  /** Replaces the table's version (overwrite, schema change, create). `base` = the version the change was prepared against. */
  | {
      kind: 'put';
      table: string;
      base: string | null;
      version: Omit<TableVersion, 'parent' | 'table'>;
    }
  /** Removes the table. */
  | { kind: 'drop'; table: string; base: string };

/** Options of a commit. */
export interface CommitOptions {
  actor: Actor;
  message: string;
  runId?: string | null;
}

/** Options of a merge. */
export interface MergeOptions extends CommitOptions {
  dryRun?: boolean;
  /**
   * Serializable isolation: the table versions (null = absent) the merged work read on the
   * target. The merge conflicts when any of them differs on the target's head, checked
   * against the same head the merge event is conditional on.
   */
  readSet?: Record<string, string | null>;
  /**
   * Always record a merge commit, even when the target could fast-forward, so the
   * target's first-parent history holds only published states (pipeline runs use this:
   * `target~1` is the state before the run, never one of its intermediate commits).
   */
  noFastForward?: boolean;
  /**
   * Merge only these exact sides (an approved merge is bound to them): the source ref must
   * resolve to `sourceCommit` and the target's head must be `targetHead`, checked against
   * the same head the merge event is conditional on. CONFLICT naming what moved otherwise.
   */
  expect?: { sourceCommit?: string; targetHead?: string };
}

/** What a resolved ref points at. */
export interface ResolvedRef {
  commit: Commit;
  /** Set when the ref's base is a branch: its name and current head event. */
  branch?: BranchHead;
  /** True when the ref is exactly a branch head (no `@time`, no `~N`). */
  isHead: boolean;
}

/** The outcome of a commit. */
export interface CommitResult {
  commit: Commit;
  branch: string;
  seq: number;
  /** How many times the optimistic append was attempted (1 = no contention). */
  attempts: number;
}

/** The outcome (or, with dryRun, the plan) of a merge. */
export interface MergeResult {
  status: 'merged' | 'fast-forward' | 'up-to-date' | 'conflict';
  source: string;
  target: string;
  sourceCommit: string;
  /** Target head before the merge. */
  targetHead: string;
  base: string | null;
  /** The new target head (absent for dry runs, up-to-date and conflicts). */
  commit?: string;
  conflicts: TableConflict[];
  /** What changes on the target. */
  changes: TableDiff[];
  dryRun: boolean;
}

/** A branch as listed. */
export interface BranchInfo {
  name: string;
  head: string;
  protected: boolean;
  updated: string;
  seq: number;
}

/** A table as listed. */
export interface TableInfo {
  name: string;
  version: string;
  rowCount: number;
  bytes: number;
  files: number;
}

/** Construction options of a {@link Catalog}. */
export interface CatalogOptions {
  now?: () => Date;
  validator?: ConstraintValidator;
  /** Optimistic-append attempts before giving up with CONFLICT. */
  maxAttempts?: number;
  /**
   * How commits and reverts reach the store (merges and branch changes are always one
   * transaction):
   * - `'inline'`: ONE conditional put of the log item, which carries the new documents
   *   inline; their own items are written right behind it (see {@link Catalog}).
   * - `'transaction'`: ONE transaction of the document items and the log item.
   * Default: `'inline'` on a remote store (`store.remote`, DynamoDB), where every request
   * is a round trip; `'transaction'` embedded, where one local transaction is one fsync.
   */
  writes?: 'inline' | 'transaction';
}

/** Writes that make commits' documents exist as items, and the commits they cover. */
interface Durability {
  ops: WriteOp[];
  commits: string[];
}
const DURABLE: Durability = { ops: [], commits: [] };

/** A resolved ref plus, when the ref was read through a log event, that event (with its inline documents). */
interface Located extends ResolvedRef {
  event?: BranchEvent;
}

/** Where a write starts: a head to prepare against, and whether it was read by this call (not remembered). */
interface Start {
  head: BranchEvent | undefined;
  fresh: boolean;
}

const isLive = (event: BranchEvent | undefined): event is BranchEvent =>
  event !== undefined && event.type !== 'delete' && event.commit !== null;

const EMPTY_TREE: Tree = { tables: {} };
const tagKey = (name: string) => ({ pk: 'tags', sk: name });
const CONFIG_KEY = { pk: 'config', sk: 'lake' };

/** Lake-wide catalog settings, stored in the catalog itself. */
export interface LakeSettings {
  protectedBranches: string[];
}

/**
 * The catalog service: branches, tags, commits, merges and reverts over the store ports.
 *
 * Invariants kept here:
 * - a branch head only moves by a conditional append to its log (see `BranchLog`), and a
 *   merge appends the merge event and its sync records in ONE transaction;
 * - a commit is readable from the moment its log item exists: the item carries the
 *   documents its event introduced (commit, tree, new table versions) inline when they
 *   are small (≤ 64 KiB), and every log read primes the document cache with them;
 * - the documents of every event that is NOT its branch's head exist as items, and so do
 *   those of every commit anything else points at (a branch created from it, a tag, a
 *   merge source, a sync record). Only a head may lean on its inline copy;
 * - resolving a ref, reading a head and finding a merge base between synced branches
 *   take a bounded number of store reads, whatever the history length.
 *
 * The write protocol that keeps the second invariant without a transaction per commit
 * (the `'inline'` writes of a remote store):
 *
 *   commit n+1 on a branch whose head is event n
 *   1. is n's documents known durable here? (this process wrote them and saw the puts
 *      succeed — awaiting its own write if still in flight — or re-wrote them)
 *      yes → ONE `PutItem` of log item n+1, `attribute_not_exists`, documents inline
 *      no  → ONE transaction: re-put n's documents from n's inline copy + that append
 *   2. once the append landed, commit() returns; the documents' own items are written
 *      right behind it (idempotent puts), and the next append of this process awaits them.
 *
 * A crash between 1 and 2 leaves a head whose items are missing but which is fully
 * readable through its log item; the next writer, in any process, re-puts them before it
 * appends (1, "no"). Anything that makes a commit reachable from elsewhere (branch create,
 * tag, merge, sync record) first makes its documents durable the same way. Until its
 * items land, a just-made commit is found by id only in the process that made it (or
 * read its branch); {@link flush} waits for them, and closing the store does too.
 * Documents too big to inline are written as items before the event, as are all
 * documents of a merge (inside its one transaction).
 *
 * Heads are remembered per process (log items never change), so in the steady state of
 * one long-lived writer a commit does no read and one `PutItem`. A remembered head may be
 * stale: then the conditional append fails and the writer reads the head and tries again
 * (`withRetries`), and an outcome that writes nothing (a conflict, a refusal, a dry run)
 * is only ever reported against a head read from the store.
 */
export class Catalog {
  readonly docs: Documents;
  readonly log: BranchLog;
  private readonly now: () => Date;
  private readonly validator: ConstraintValidator | undefined;
  private readonly maxAttempts: number;
  private readonly writes: 'inline' | 'transaction';
  /**
   * Sync points this process wrote or read. A stale copy is harmless: it is checked
   * against the heads' counters, which any newer record would have changed (`SyncPoint`).
   */
  private readonly syncs = new Map<string, CatalogItem>();
  private settings: LakeSettings | undefined;

  constructor(
    readonly store: CatalogStore,
    readonly objects: ObjectStore,
    options: CatalogOptions = {},
  ) {
    this.docs = new Documents(store, objects);
    this.log = new BranchLog(store, this.docs);
    this.now = options.now ?? (() => new Date());
    this.validator = options.validator;
    this.maxAttempts = options.maxAttempts ?? 60;
    this.writes = options.writes ?? (store.remote ? 'inline' : 'transaction');
  }

  /**
   * Waits until the document items of every commit this instance made have been written
   * (on a remote store they are written right behind the commit's log item). Commits are
   * readable through their branch before that; call it before handing a commit id to a
   * process that looks it up by id alone. Closing a DynamoDB store also waits for them.
   */
  async flush(): Promise<void> {
    await this.docs.flush();
  }

  // ---------------------------------------------------------------- lake

  /** Creates `main` (protected) with an empty root commit. Idempotent and safe to race. */
  async init(actor: Actor): Promise<{ created: boolean; head: string }> {
    const existing = await this.log.last('main');
    if (existing) return { created: false, head: existing.commit ?? '' };
    const time = this.now().toISOString();
    const tree = await this.docs.prepareTree(EMPTY_TREE);
    const root = Documents.sealCommit({
      parents: [],
      tree: tree.id,
      author: actor.person,
      agent: actor.agent ?? null,
      message: 'Initialize lake',
      time,
      runId: null,
      kind: 'init',
      generation: 1,
      origin: { branch: 'main', seq: 1, chainStart: 1 },
    });
    const event: BranchEvent = {
      branch: 'main',
      seq: 1,
      type: 'create',
      commit: root.id,
      time,
      actor,
      incarnation: 1,
      chainStart: 1,
      imports: 0,
      info: { init: true },
    };
    const settings: LakeSettings = { protectedBranches: ['main'] };
    try {
      await this.store.transact([
        tree.op,
        this.docs.prepareCommit(root).op,
        BranchLog.appendOp(event),
        { op: 'put', item: { ...registryKey('main'), data: { name: 'main', created: time } } },
        { op: 'put', item: { ...CONFIG_KEY, v: 1, data: { ...settings } }, condition: { kind: 'absent' } },
      ]);
      this.docs.markDurable([root.id]);
      this.log.remember(event);
      return { created: true, head: root.id };
    } catch (e) {
      if (!isConflict(e)) throw e;
      const winner = await this.log.last('main');
      return { created: false, head: winner?.commit ?? '' };
    }
  }

  /** True when the lake has been initialised. One read. */
  async isInitialized(): Promise<boolean> {
    return (await this.log.last('main')) !== undefined;
  }

  /** Lake settings (cached per instance; they change only by admin action). */
  async lakeSettings(): Promise<LakeSettings> {
    if (!this.settings) {
      const item = await this.store.get(CONFIG_KEY);
      this.settings = (item?.data as unknown as LakeSettings | undefined) ?? { protectedBranches: ['main'] };
    }
    return this.settings;
  }

  /**
   * Adds protected-branch patterns (a branch name, or a prefix ending in `*` such as
   * `release/*`) to the lake's settings. Protection is only ever added here, never removed,
   * so applying a deployment's list on every start is safe; concurrent calls are merged
   * (version-checked write, retried). Returns the protected patterns after the change.
   */
  async protectBranches(patterns: readonly string[]): Promise<string[]> {
    for (const p of patterns) {
      const name = p.endsWith('*') ? p.slice(0, -1).replace(/\/$/, '') : p;
      if (name === '' && p !== '*') throw invalid(`'${p}' is not a branch name or pattern (e.g. main, release/*)`);
      if (name !== '') validateRefName('branch', name);
    }
    for (let attempt = 1; ; attempt++) {
      const item = await this.store.get(CONFIG_KEY);
      const current = (item?.data as unknown as LakeSettings | undefined) ?? { protectedBranches: ['main'] };
      const next = [...new Set([...current.protectedBranches, ...patterns])];
      if (next.length === current.protectedBranches.length) {
        this.settings = current;
        return next;
      }
      const settings: LakeSettings = { ...current, protectedBranches: next };
      try {
        await this.store.put(
          { ...CONFIG_KEY, v: (item?.v ?? 0) + 1, data: { ...settings } },
          item ? { kind: 'version', v: item.v ?? 0 } : { kind: 'absent' },
        );
        this.settings = settings;
        return next;
      } catch (e) {
        if (!isConflict(e) || attempt >= 8) throw e;
      }
    }
  }

  /** True when `branch` is protected (changes only by merge or revert). */
  async isProtected(branch: string): Promise<boolean> {
    const { protectedBranches } = await this.lakeSettings();
    return protectedBranches.some((p) => (p.endsWith('*') ? branch.startsWith(p.slice(0, -1)) : p === branch));
  }

  // ---------------------------------------------------------------- refs

  /** The current head event of a live branch; NOT_FOUND otherwise. One read. */
  async head(branch: string): Promise<BranchEvent> {
    return this.live(branch, await this.log.last(branch));
  }

  /** `event` when it is a live head of `branch`; NOT_FOUND otherwise. */
  private live(branch: string, event: BranchEvent | undefined): BranchEvent {
    if (!isLive(event)) {
      throw notFound(
        `unknown branch '${branch}'${event ? ' (it was deleted; `airlock branch restore` brings it back)' : ''}`,
        {
          branch,
        },
      );
    }
    return event;
  }

  /**
   * Resolves a ref (branch, tag, commit id or unique prefix, `ref@time`, `ref~N`) to a
   * commit with a bounded number of reads: ≤ 3 to find the base, plus one per branch
   * boundary crossed by `~N` (never one per commit).
   */
  async resolve(ref: string): Promise<ResolvedRef> {
    const { event: _event, ...resolved } = await this.locate(ref);
    return resolved;
  }

  /** {@link resolve}, keeping the log event the commit was read through (for its inline documents). */
  private async locate(ref: string): Promise<Located> {
    const parsed = parseRef(ref);
    const branchEvent = await this.log.last(parsed.base);
    let commitId: string | undefined;
    let branch: BranchHead | undefined;
    let event: BranchEvent | undefined;
    if (branchEvent && (branchEvent.type !== 'delete' || parsed.at)) {
      if (branchEvent.type !== 'delete') branch = { name: parsed.base, event: branchEvent };
      if (parsed.at) {
        const past = await this.log.asOf(parsed.base, parsed.at);
        if (!past || past.commit === null) {
          throw notFound(`branch '${parsed.base}' had no head at ${parsed.at}`, { ref });
        }
        commitId = past.commit;
        event = past;
      } else {
        commitId = branchEvent.commit as string;
        event = branchEvent;
      }
    } else if (parsed.at) {
      throw invalid(`'${ref}': @<time> applies to branches only, and '${parsed.base}' is not a branch`);
    } else {
      const tag = await this.store.get(tagKey(parsed.base));
      if (tag) commitId = tag.data.commit as string;
      else if (looksLikeCommitId(parsed.base)) commitId = (await this.docs.findCommitByPrefix(parsed.base))?.id;
    }
    if (!commitId) throw notFound(`unknown ref '${ref}': not a branch, tag or commit`, { ref });
    let commit = await this.docs.getCommit(commitId);
    if (parsed.back > 0) {
      commit = await this.ancestor(commit, parsed.back, ref);
      event = undefined;
    }
    return {
      commit,
      ...(branch ? { branch } : {}),
      isHead: !parsed.at && parsed.back === 0 && !!branch,
      ...(event ? { event } : {}),
    };
  }

  /**
   * The n-th first-parent ancestor. A commit's `origin` places it in the log it was made
   * on; the events before it back to that log's chain start are exactly its first-parent
   * chain, so each hop is one read by sequence number.
   */
  private async ancestor(start: Commit, n: number, ref: string): Promise<Commit> {
    let commit = start;
    let remaining = n;
    while (remaining > 0) {
      if (commit.parents.length === 0) {
        throw notFound(`'${ref}' goes back past the first commit`, { ref });
      }
      const { branch, seq, chainStart } = commit.origin;
      const step = Math.min(remaining, seq - chainStart);
      if (step === 0) {
        commit = await this.docs.getCommit(commit.parents[0] as string);
        remaining -= 1;
        continue;
      }
      const event = await this.log.at(branch, seq - step);
      if (!event?.commit) throw new AirlockError('INTERNAL', `branch log ${branch} has no event ${seq - step}`);
      commit = await this.docs.getCommit(event.commit);
      remaining -= step;
    }
    return commit;
  }

  /** The tree of a commit. */
  async treeOf(commit: Commit): Promise<Tree> {
    return this.docs.getTree(commit.tree);
  }

  // ---------------------------------------------------------------- branches and tags

  /** Creates a branch at a ref. O(1): copies no data. */
  async createBranch(name: string, from: string, actor: Actor): Promise<BranchEvent> {
    validateRefName('branch', name);
    const previousRead = this.log.last(name);
    previousRead.catch(() => undefined);
    const source = await this.locate(from);
    const previous = await previousRead;
    if (previous && previous.type !== 'delete') {
      throw conflict(`branch '${name}' already exists`, { branch: name });
    }
    const seq = (previous?.seq ?? 0) + 1;
    const time = monotonicTime(this.now(), previous?.time);
    const event: BranchEvent = {
      branch: name,
      seq,
      type: 'create',
      commit: source.commit.id,
      time,
      actor,
      incarnation: seq,
      chainStart: seq,
      imports: 0,
      info: { from },
    };
    const ops: WriteOp[] = [
      BranchLog.appendOp(event),
      { op: 'put', item: { ...registryKey(name), data: { name, created: time, from } } },
    ];
    if (source.branch && source.branch.name !== name) {
      const other = source.branch.event;
      for (const item of syncItems(
        source.commit,
        { name, incarnation: seq, imports: 0 },
        { name: source.branch.name, incarnation: other.incarnation, imports: other.imports },
      )) {
        ops.push({ op: 'put', item });
      }
    }
    const needs = await this.durability(source.commit, source.event);
    await this.appendOrConflict(name, ops, event, `branch '${name}' was created concurrently`, needs);
    return event;
  }

  /** Deletes a branch (recoverable: the log keeps everything; `restoreBranch` brings it back). */
  async deleteBranch(name: string, actor: Actor): Promise<BranchEvent> {
    if (await this.isProtected(name))
      throw denied(`branch '${name}' is protected and cannot be deleted`, { branch: name });
    const head = await this.head(name);
    const event: BranchEvent = {
      ...head,
      seq: head.seq + 1,
      type: 'delete',
      commit: null,
      time: monotonicTime(this.now(), head.time),
      actor,
      info: { previousHead: head.commit },
    };
    await this.appendOrConflict(
      name,
      [
        BranchLog.appendOp(event),
        { op: 'put', item: { ...registryKey(name), data: { name, deleted: event.time, lastHead: head.commit } } },
      ],
      event,
      `branch '${name}' moved while being deleted`,
      // the head stops being the head: its documents must exist as items
      await this.durability(head.commit as string, head),
    );
    return event;
  }

  /** Re-creates a deleted branch at the head it had when deleted. */
  async restoreBranch(name: string, actor: Actor): Promise<BranchEvent> {
    const last = await this.log.last(name);
    if (!last) throw notFound(`branch '${name}' never existed`, { branch: name });
    if (last.type !== 'delete') throw conflict(`branch '${name}' exists; nothing to restore`, { branch: name });
    return this.createBranch(name, String(last.info?.previousHead), actor);
  }

  /** Live branches with their heads. */
  async listBranches(): Promise<BranchInfo[]> {
    const registry = await this.readAll('branches');
    const live = registry.filter((i) => !i.data.deleted).map((i) => i.sk);
    const heads = await Promise.all(live.map((b) => this.log.last(b)));
    const out: BranchInfo[] = [];
    for (const [i, name] of live.entries()) {
      const head = heads[i];
      if (!head?.commit) continue;
      out.push({ name, head: head.commit, protected: await this.isProtected(name), updated: head.time, seq: head.seq });
    }
    return out;
  }

  /** Creates an immutable tag. */
  async createTag(name: string, ref: string, actor: Actor): Promise<{ name: string; commit: string }> {
    validateRefName('tag', name);
    const { commit, event } = await this.locate(ref);
    const needs = await this.durability(commit, event);
    await this.writeDocs(needs.ops);
    this.docs.markDurable(needs.commits);
    try {
      await this.store.put(
        { ...tagKey(name), data: { name, commit: commit.id, time: this.now().toISOString(), actor: { ...actor } } },
        { kind: 'absent' },
      );
    } catch (e) {
      if (isConflict(e)) throw conflict(`tag '${name}' already exists`, { tag: name });
      throw e;
    }
    return { name, commit: commit.id };
  }

  /** All tags. */
  async listTags(): Promise<Array<{ name: string; commit: string; time: string }>> {
    return (await this.readAll('tags')).map((i) => ({
      name: i.sk,
      commit: i.data.commit as string,
      time: i.data.time as string,
    }));
  }

  private async readAll(pk: string): Promise<CatalogItem[]> {
    const out: CatalogItem[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.query(pk, cursor ? { cursor } : {});
      out.push(...page.items);
      cursor = page.cursor;
    } while (cursor);
    return out;
  }

  // ---------------------------------------------------------------- tables

  /** Tables of a ref with their current versions. */
  async listTables(ref: string): Promise<TableInfo[]> {
    const { commit } = await this.resolve(ref);
    const tree = await this.treeOf(commit);
    const versions = await this.docs.getTableVersions(Object.values(tree.tables));
    return Object.entries(tree.tables)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, id]) => {
        const tv = versions.get(id) as TableVersion;
        return { name, version: id, rowCount: tv.rowCount, bytes: tv.bytes, files: tv.files.length };
      });
  }

  /** One table's version at a ref; NOT_FOUND naming the table and ref. */
  async getTable(ref: string, table: string): Promise<{ id: string; version: TableVersion; commit: Commit }> {
    validateTableName(table);
    const { commit } = await this.resolve(ref);
    const tree = await this.treeOf(commit);
    const id = tree.tables[table];
    if (!id) throw notFound(`table '${table}' does not exist at '${ref}'`, { table, ref });
    return { id, version: await this.docs.getTableVersion(id), commit };
  }

  /** Every table version of a ref (for snapshots handed to the query engine). */
  async snapshot(ref: string): Promise<{ commit: Commit; tables: Map<string, { id: string; version: TableVersion }> }> {
    const { commit } = await this.resolve(ref);
    const tree = await this.treeOf(commit);
    const versions = await this.docs.getTableVersions(Object.values(tree.tables));
    const tables = new Map<string, { id: string; version: TableVersion }>();
    for (const [name, id] of Object.entries(tree.tables))
      tables.set(name, { id, version: versions.get(id) as TableVersion });
    return { commit, tables };
  }

  // ---------------------------------------------------------------- commits

  /** Throws unless `branch` exists and accepts direct commits (it is not protected). */
  async assertCommittable(branch: string): Promise<void> {
    await this.assertNotProtected(branch);
    await this.head(branch);
  }

  private async assertNotProtected(branch: string): Promise<void> {
    if (await this.isProtected(branch)) {
      throw denied(
        `branch '${branch}' is protected: it changes only by merge. Commit to another branch (airlock branch create <name> --from ${branch}) and merge it.`,
        { branch },
      );
    }
  }

  /**
   * Applies table changes to a branch as one commit. Optimistic: it takes the head (the
   * one this process last saw, else one read), builds the new tree, and appends
   * conditionally; when another writer won, it re-reads and re-applies. Appends always
   * re-apply (they commute); `put` and `drop` re-apply only if their table is still at the
   * version they were prepared against, else CONFLICT naming the table. Protected
   * branches refuse direct commits.
   */
  async commit(branch: string, changes: TableChange[], options: CommitOptions): Promise<CommitResult> {
    if (changes.length === 0) throw invalid('nothing to commit');
    for (const c of changes) validateTableName(c.table);
    if (new Set(changes.map((c) => c.table)).size !== changes.length) {
      throw invalid('a commit changes each table at most once');
    }
    const start = this.startHead(branch);
    await this.assertNotProtected(branch);
    return this.withRetries(branch, await start, async (head, attempt) => {
      const parent = await this.docs.getCommit(head.commit as string);
      const tree = await this.treeOf(parent);
      const currentIds = changes.map((c) => tree.tables[c.table]).filter((x): x is string => !!x);
      const current = await this.docs.getTableVersions(currentIds);
      const tables = { ...tree.tables };
      const written: TableVersion[] = [];
      for (const change of changes) {
        const curId = tree.tables[change.table];
        const cur = curId ? current.get(curId) : undefined;
        const next = this.applyChange(branch, change, curId, cur);
        if (next === null) delete tables[change.table];
        else written.push(next);
      }
      for (const tv of written) await this.validator?.validate(tv);
      const docs = await Promise.all(written.map((tv) => this.docs.prepareTableVersion(tv)));
      written.forEach((tv, i) => {
        tables[tv.table] = (docs[i] as PreparedDoc).id;
      });
      return this.prepareCommitEvent(head, parent, { tables }, docs, {
        kind: 'commit',
        parents: [parent.id],
        options,
        attempt,
        inlineable: true,
      });
    });
  }

  private applyChange(
    branch: string,
    change: TableChange,
    curId: string | undefined,
    cur: TableVersion | undefined,
  ): TableVersion | null {
    switch (change.kind) {
      case 'append': {
        if (!cur) {
          return {
            table: change.table,
            schema: change.schema,
            constraints: change.constraints,
            files: change.files,
            rowCount: sum(change.files, 'rows'),
            bytes: sum(change.files, 'bytes'),
            parent: null,
            op: 'create',
          };
        }
        if (!sameSchema(cur.schema, change.schema)) {
          throw conflict(
            `the schema of '${change.table}' changed on '${branch}' since the data was prepared; import again`,
            {
              branch,
              tables: [change.table],
            },
          );
        }
        const files = [...cur.files, ...change.files];
        return {
          ...cur,
          files,
          rowCount: sum(files, 'rows'),
          bytes: sum(files, 'bytes'),
          parent: curId as string,
          op: 'append',
        };
      }
      case 'put': {
        if ((curId ?? null) !== change.base) {
          throw conflict(`table '${change.table}' changed on '${branch}' since this change was prepared`, {
            branch,
            tables: [change.table],
            expected: change.base,
            actual: curId ?? null,
          });
        }
        return { ...change.version, table: change.table, parent: curId ?? null };
      }
      case 'drop': {
        if (!curId) throw notFound(`table '${change.table}' does not exist on '${branch}'`, { table: change.table });
        if (curId !== change.base) {
          throw conflict(`table '${change.table}' changed on '${branch}' since the drop was prepared`, {
            branch,
            tables: [change.table],
          });
        }
        return null;
      }
    }
  }

  /**
   * Where a write to `branch` starts: the head this process last saw (no read), else a
   * read of the head, begun at once so it overlaps the caller's other reads.
   */
  private startHead(branch: string): Promise<Start> {
    const remembered = this.log.cached(branch);
    const start = isLive(remembered)
      ? Promise.resolve({ head: remembered, fresh: false })
      : this.log.last(branch).then((head) => ({ head, fresh: true }));
    start.catch(() => undefined); // awaited later, maybe after the caller failed first
    return start;
  }

  /**
   * Runs one optimistic attempt after another until the conditional append lands.
   * `attempt` builds the event and its writes against the given head; a CONFLICT on the
   * log append means another writer won (or the remembered head was stale), so we re-read
   * and try again, with backoff when the head we lost on was read from the store.
   *
   * An attempt prepared against a remembered head that fails without writing (a table
   * conflict, NOT_FOUND, a dry run's report…) is re-run against the head read from the
   * store when that differs, so such outcomes always describe the current head.
   */
  private async withRetries(
    branch: string,
    start: Start,
    attempt: (head: BranchEvent, n: number) => Promise<PreparedEvent>,
  ): Promise<CommitResult> {
    let { head, fresh } = start;
    for (let n = 1; n <= this.maxAttempts; ) {
      if (!isLive(head)) {
        head = fresh ? this.live(branch, head) : await this.head(branch);
        fresh = true;
      }
      let prepared: PreparedEvent;
      try {
        prepared = await attempt(head, n);
      } catch (e) {
        if (fresh) throw e;
        const current = await this.head(branch);
        if (current.seq === head.seq) throw e;
        head = current;
        fresh = true;
        continue;
      }
      try {
        await this.writeEvent(prepared, head);
        return { commit: prepared.commit, branch, seq: prepared.event.seq, attempts: n };
      } catch (e) {
        if (!(isConflict(e) && e.details.pk === logPk(branch))) throw e;
        if (fresh) await sleep(Math.random() * Math.min(200, 5 * 2 ** Math.min(n, 6)));
        head = undefined;
        fresh = false;
        n += 1;
      }
    }
    throw conflict(`branch '${branch}' kept moving: gave up after ${this.maxAttempts} attempts`, { branch });
  }

  private async prepareCommitEvent(
    head: BranchEvent,
    parent: Commit,
    tree: Tree,
    docs: PreparedDoc[],
    spec: {
      kind: CommitKind;
      parents: string[];
      options: CommitOptions;
      attempt: number;
      extraOps?: (commit: Commit, event: BranchEvent) => WriteOp[];
      info?: Record<string, unknown>;
      /** Writes making the other commits this event points at durable (a merge source). */
      needs?: Durability;
      /** True when the documents may travel inline in the log item (commits, reverts). */
      inlineable: boolean;
    },
  ): Promise<PreparedEvent> {
    const treeDoc = await this.docs.prepareTree(tree);
    const seq = head.seq + 1;
    const time = monotonicTime(this.now(), head.time);
    const parentGenerations = spec.parents.length > 1 ? await this.docs.getCommits(spec.parents) : undefined;
    const generation =
      1 + Math.max(parent.generation, ...[...(parentGenerations?.values() ?? [])].map((c) => c.generation));
    const commit = Documents.sealCommit({
      parents: spec.parents,
      tree: treeDoc.id,
      author: spec.options.actor.person,
      agent: spec.options.actor.agent ?? null,
      message: spec.options.message,
      time,
      runId: spec.options.runId ?? null,
      kind: spec.kind,
      generation,
      origin: { branch: head.branch, seq, chainStart: head.chainStart },
    });
    const event: BranchEvent = {
      branch: head.branch,
      seq,
      type: spec.kind === 'init' ? 'commit' : spec.kind,
      commit: commit.id,
      time,
      actor: spec.options.actor,
      incarnation: head.incarnation,
      chainStart: head.chainStart,
      imports: head.imports + (spec.kind === 'merge' ? 1 : 0),
      ...(spec.info ? { info: spec.info } : {}),
    };
    return {
      event,
      commit,
      docs: [...docs, treeDoc, this.docs.prepareCommit(commit)],
      extra: spec.extraOps?.(commit, event) ?? [],
      needs: spec.needs ?? DURABLE,
      inlineable: spec.inlineable,
    };
  }

  /**
   * The writes that make a commit's documents exist as items, to go before (or in the same
   * transaction as) anything that points at the commit from outside its own log item.
   * Nothing when this process knows they exist; otherwise the puts of the inline copy in
   * the log item that introduced the commit — `event` when given, else one read of the
   * item at the commit's origin.
   */
  private async durability(commit: Commit | string, event?: BranchEvent): Promise<Durability> {
    const id = typeof commit === 'string' ? commit : commit.id;
    if (this.docs.isDurable(id) || (await this.docs.settled(id)) === true) return DURABLE;
    let introducing = event?.commit === id ? event : undefined;
    if (!introducing && typeof commit !== 'string') {
      const origin = await this.log.at(commit.origin.branch, commit.origin.seq);
      if (origin?.commit === id) introducing = origin;
    }
    const inline = introducing && this.log.inlineDocs(introducing);
    if (!inline) {
      // No inline copy: the documents were written as items before the event that made
      // the commit reachable (too big to inline, a merge, or a branch made from it).
      if (introducing) this.docs.markDurable([id]);
      return DURABLE;
    }
    return { ops: inline.map(docPut), commits: [id] };
  }

  /**
   * Writes an event: the head it replaces (and any commit it points at) made durable
   * first or in the same request, then the append. Inline writes: ONE conditional put of
   * the log item with the documents inline — a transaction only when the old head's
   * documents must be re-put with it — then the document items behind it. Transaction
   * writes: ONE transaction of everything when it fits, else the (idempotent) documents
   * first and then the event with its sync records.
   */
  private async writeEvent(p: PreparedEvent, head: BranchEvent): Promise<void> {
    const previous = await this.durability(head.commit as string, head);
    const before: Durability = {
      ops: uniqueDocOps([...previous.ops, ...p.needs.ops]),
      commits: [...previous.commits, ...p.needs.commits],
    };
    const inline = this.writes === 'inline' && p.inlineable ? Documents.inline(p.docs) : undefined;
    if (inline) {
      const append = BranchLog.appendOp(p.event, inline);
      const control = [...before.ops, append, ...p.extra];
      if (control.length === 1) await this.store.put(append.item, append.condition);
      else if (control.length <= MAX_TRANSACTION_ITEMS) await this.store.transact(control, transactionToken(control));
      else {
        await this.writeDocs(before.ops);
        await this.store.transact([append, ...p.extra], transactionToken([append, ...p.extra]));
      }
      this.docs.markDurable(before.commits);
      this.log.remember(p.event, inline);
      this.rememberSyncs(p.extra);
      const docOps = p.docs.map((d) => d.op);
      this.docs.writingBehind(
        p.commit.id,
        this.writeDocs(docOps).then(
          () => true,
          () => false, // the event stays readable inline; the next append re-puts the documents
        ),
      );
      return;
    }
    // A merge that records the source's tree unchanged (noFastForward onto an unchanged
    // target) puts the same tree item as the source's durability writes: once is enough,
    // and a transaction may touch an item only once.
    const docOps = uniqueDocOps([...before.ops, ...p.docs.map((d) => d.op)]);
    const control: WriteOp[] = [BranchLog.appendOp(p.event), ...p.extra];
    if (docOps.length + control.length <= MAX_TRANSACTION_ITEMS) {
      const all = [...docOps, ...control];
      await this.store.transact(all, transactionToken(all));
    } else {
      await this.writeDocs(docOps);
      await this.store.transact(control, transactionToken(control));
    }
    this.docs.markDurable([...before.commits, p.commit.id]);
    this.log.remember(p.event);
    this.rememberSyncs(p.extra);
  }

  /** Unconditional, idempotent puts of document items: one batched write where the store has one. */
  private async writeDocs(ops: readonly WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    if (this.store.putMany) {
      await this.store.putMany(itemsOf(ops));
      return;
    }
    for (let i = 0; i < ops.length; i += MAX_TRANSACTION_ITEMS) {
      await this.store.transact(ops.slice(i, i + MAX_TRANSACTION_ITEMS));
    }
  }

  private async appendOrConflict(
    branch: string,
    ops: WriteOp[],
    event: BranchEvent,
    message: string,
    needs: Durability = DURABLE,
  ): Promise<void> {
    try {
      if (needs.ops.length + ops.length <= MAX_TRANSACTION_ITEMS) {
        const all = [...needs.ops, ...ops];
        await this.store.transact(all, transactionToken(all));
      } else {
        await this.writeDocs(needs.ops);
        await this.store.transact(ops, transactionToken(ops));
      }
    } catch (e) {
      if (isConflict(e) && e.details.pk === logPk(branch)) throw conflict(message, { branch }, e);
      throw e;
    }
    this.docs.markDurable(needs.commits);
    this.log.remember(event);
    this.rememberSyncs(ops);
  }

  private rememberSyncs(ops: readonly WriteOp[]): void {
    for (const op of ops) {
      if (op.op !== 'put' || !op.item.pk.startsWith('sync#')) continue;
      if (this.syncs.size >= 10_000) this.syncs.clear();
      this.syncs.set(`${op.item.pk}\u0000${op.item.sk}`, op.item);
    }
  }

  // ---------------------------------------------------------------- merge and revert

  /**
   * Merges a ref into a branch: fast-forward when the target has not moved since the
   * merge base, otherwise a three-way merge at table granularity (appends on both sides
   * union their files). ONE conditional transaction appends the merge event and records
   * the new sync point; it happens entirely or not at all. With `dryRun`, reports what
   * would happen and writes nothing. Conflicts throw CONFLICT naming the tables (or, on a
   * dry run, return status `conflict`).
   */
  async merge(sourceRef: string, target: string, options: MergeOptions): Promise<MergeResult> {
    // Independent reads at once: the source ref, the target head (unless remembered; a
    // dry run always reads it, as it is checked by no write) and their sync point (unless
    // remembered).
    const parsed = parseRef(sourceRef);
    const key = syncKey(target, parsed.base);
    const syncRead =
      !parsed.at && parsed.back === 0 && parsed.base !== target && !this.syncs.has(`${key.pk}\u0000${key.sk}`)
        ? this.store.get(key)
        : undefined;
    syncRead?.catch(() => undefined);
    const start = options.dryRun
      ? this.log.last(target).then((head): Start => ({ head, fresh: true }))
      : this.startHead(target);
    start.catch(() => undefined);
    const source = await this.locate(sourceRef);
    if (source.branch?.name === target && source.isHead) throw invalid(`cannot merge '${target}' into itself`);
    const expected = options.expect;
    if (expected?.sourceCommit !== undefined && source.commit.id !== expected.sourceCommit) {
      throw conflict(
        `source '${sourceRef}' moved: it is at ${source.commit.id.slice(0, 12)}, expected ${expected.sourceCommit.slice(0, 12)}`,
        { moved: 'source', source: sourceRef, expected: expected.sourceCommit, actual: source.commit.id },
      );
    }
    let outcome: MergeResult | undefined;
    let needs: Durability | undefined;
    const sourceDurability = async () => {
      needs ??= await this.durability(source.commit, source.event);
      return needs;
    };
    const result = await this.withRetries(target, await start, async (head, attempt) => {
      // Checked against the head this attempt's append is conditional on: if the target
      // moves after this check, the append fails and the next attempt sees the new head.
      if (expected?.targetHead !== undefined && head.commit !== expected.targetHead) {
        throw conflict(
          `target '${target}' moved: its head is ${String(head.commit).slice(0, 12)}, expected ${expected.targetHead.slice(0, 12)}`,
          { moved: 'target', target, expected: expected.targetHead, actual: head.commit },
        );
      }
      const ours = await this.docs.getCommit(head.commit as string);
      const base = await this.findMergeBase(source, { name: target, event: head }, ours, syncRead);
      const baseId = base?.commit;
      const report = (
        status: MergeResult['status'],
        conflicts: TableConflict[],
        changes: TableDiff[],
      ): MergeResult => ({
        status,
        source: sourceRef,
        target,
        sourceCommit: source.commit.id,
        targetHead: ours.id,
        base: baseId ?? null,
        conflicts,
        changes,
        dryRun: !!options.dryRun,
      });
      if (baseId === source.commit.id) throw new EarlyExit(report('up-to-date', [], []));
      const [oursTree, theirsTree] = await Promise.all([this.treeOf(ours), this.treeOf(source.commit)]);
      const stale = staleReads(options.readSet, oursTree);
      if (stale.length > 0) {
        const r = report('conflict', stale, []);
        if (options.dryRun) throw new EarlyExit(r);
        throw conflict(
          `merge of '${sourceRef}' into '${target}' is not serializable: ${stale.map((c) => c.table).join(', ')} changed on '${target}' after being read`,
          { source: sourceRef, target, tables: stale.map((c) => c.table), conflicts: stale },
        );
      }
      // The versions of tables that differ between the sides (what the diff and the
      // merge read), fetched while the base tree is read.
      const fastForward = baseId === ours.id && !options.noFastForward;
      const baseTreeRead = fastForward ? undefined : this.baseTree(base);
      await Promise.all([this.prefetchDiffering(oursTree, theirsTree), baseTreeRead]);
      const load = (ids: string[]) => this.docs.getTableVersions(ids);
      const syncOps = (commit: Pick<Commit, 'id' | 'tree'>, event: BranchEvent): WriteOp[] =>
        source.isHead && source.branch
          ? syncItems(
              commit,
              { name: target, incarnation: event.incarnation, imports: event.imports },
              {
                name: source.branch.name,
                incarnation: source.branch.event.incarnation,
                imports: source.branch.event.imports,
              },
            ).map((item) => ({ op: 'put' as const, item }))
          : [];
      if (fastForward) {
        const changes = await diffTrees(oursTree, theirsTree, load);
        outcome = report('fast-forward', [], changes);
        if (options.dryRun) throw new EarlyExit(outcome);
        const event: BranchEvent = {
          branch: target,
          seq: head.seq + 1,
          type: 'merge',
          commit: source.commit.id,
          time: monotonicTime(this.now(), head.time),
          actor: options.actor,
          incarnation: head.incarnation,
          chainStart: head.seq + 1,
          imports: head.imports + 1,
          info: { source: sourceRef, fastForward: true, ...(options.runId ? { runId: options.runId } : {}) },
        };
        return {
          event,
          commit: source.commit,
          docs: [],
          extra: syncOps(source.commit, event),
          needs: await sourceDurability(),
          inlineable: false,
        };
      }
      const baseTree = (await baseTreeRead) ?? EMPTY_TREE;
      const merged = await mergeTrees(baseTree, oursTree, theirsTree, load);
      if (merged.conflicts.length > 0) {
        const r = report('conflict', merged.conflicts, []);
        if (options.dryRun) throw new EarlyExit(r);
        throw conflict(
          `merge of '${sourceRef}' into '${target}' conflicts on ${merged.conflicts.map((c) => `${c.table} (${c.reason})`).join('; ')}`,
          { source: sourceRef, target, tables: merged.conflicts.map((c) => c.table), conflicts: merged.conflicts },
        );
      }
      const docs: PreparedDoc[] = [];
      const tables = { ...merged.tables };
      for (const union of merged.unions) {
        const withParent = { ...union, parent: oursTree.tables[union.table] ?? null };
        await this.validator?.validate(withParent);
        const doc = await this.docs.prepareTableVersion(withParent);
        docs.push(doc);
        tables[union.table] = doc.id;
      }
      const changes = await diffTrees(oursTree, { tables }, load);
      outcome = report('merged', [], changes);
      if (options.dryRun) throw new EarlyExit(outcome);
      return this.prepareCommitEvent(head, ours, { tables }, docs, {
        kind: 'merge',
        parents: [ours.id, source.commit.id],
        options,
        attempt,
        extraOps: (_commit, event) => syncOps(source.commit, event),
        info: { source: sourceRef, ...(options.runId ? { runId: options.runId } : {}) },
        needs: await sourceDurability(),
        inlineable: false,
      });
    }).catch((e) => {
      if (e instanceof EarlyExit) return e.result;
      throw e;
    });
    if ('status' in result) return result;
    return { ...(outcome as MergeResult), commit: result.commit.id };
  }

  /** The tree of a merge base (one read when its sync point recorded the tree id); EMPTY for unrelated histories. */
  private async baseTree(base: SyncedBase | undefined): Promise<Tree> {
    if (!base) return EMPTY_TREE;
    if (base.tree) return this.docs.getTree(base.tree);
    return this.treeOf(await this.docs.getCommit(base.commit));
  }

  /** Loads (into the cache) the versions of tables that differ between two trees, when one batch read holds them. */
  private async prefetchDiffering(a: Tree, b: Tree): Promise<void> {
    const ids = new Set<string>();
    for (const name of new Set([...Object.keys(a.tables), ...Object.keys(b.tables)])) {
      const [x, y] = [a.tables[name], b.tables[name]];
      if (x === y) continue;
      if (x) ids.add(x);
      if (y) ids.add(y);
    }
    if (ids.size === 0 || ids.size > 100) return;
    // A miss here is reported by the read that needs the version, not by the prefetch.
    await this.docs.getTableVersions([...ids]).catch(() => undefined);
  }

  /**
   * The merge base of a source and a target branch. Between branches that were created
   * from or merged into each other, one read of their sync point (validated against both
   * heads); otherwise a generation-ordered walk of the commit graph.
   */
  async mergeBase(source: ResolvedRef, target: BranchHead, targetCommit: Commit): Promise<string | undefined> {
    return (await this.findMergeBase(source, target, targetCommit))?.commit;
  }

  /** {@link mergeBase}, with the base's tree when known, trying a sync point read ahead of time first. */
  private async findMergeBase(
    source: ResolvedRef,
    target: BranchHead,
    targetCommit: Commit,
    prefetched?: Promise<CatalogItem | undefined>,
  ): Promise<SyncedBase | undefined> {
    if (source.isHead && source.branch) {
      const key = syncKey(target.name, source.branch.name);
      const known = validSyncPoint(this.syncs.get(`${key.pk}\u0000${key.sk}`), target, source.branch);
      if (known) return known;
      const read = async (item: Promise<CatalogItem | undefined>) => {
        const found = await item;
        if (found) this.rememberSyncs([{ op: 'put', item: found }]);
        return validSyncPoint(found, target, source.branch as BranchHead);
      };
      const early = prefetched && (await read(prefetched));
      if (early) return early;
      const synced = await read(this.store.get(key));
      if (synced) return synced;
    }
    const walked = await walkMergeBase(this.docs, source.commit, targetCommit);
    return walked && { commit: walked.id, tree: walked.tree };
  }

  /**
   * Reverts a commit on a branch: a new commit restoring the tables the commit changed
   * (relative to its first parent). A three-way merge with the reverted commit as base,
   * so later changes to other tables stay and later changes to the same tables conflict.
   * O(tables), copies no data. Allowed on protected branches (it is itself undoable).
   */
  async revert(commitRef: string, branch: string, options: { actor: Actor; message?: string }): Promise<CommitResult> {
    const start = this.startHead(branch);
    const { commit } = await this.resolve(commitRef);
    if (commit.parents.length === 0) throw invalid('cannot revert the first commit of the lake');
    const parent = await this.docs.getCommit(commit.parents[0] as string);
    const [baseTree, theirsTree] = await Promise.all([this.treeOf(commit), this.treeOf(parent)]);
    return this.withRetries(branch, await start, async (head, attempt) => {
      const ours = await this.docs.getCommit(head.commit as string);
      const merged = await mergeTrees(baseTree, await this.treeOf(ours), theirsTree, (ids) =>
        this.docs.getTableVersions(ids),
      );
      if (merged.conflicts.length > 0) {
        throw conflict(
          `cannot revert ${commit.id.slice(0, 12)}: ${merged.conflicts.map((c) => `${c.table} (${c.reason})`).join('; ')}`,
          { tables: merged.conflicts.map((c) => c.table) },
        );
      }
      if (merged.changed.length === 0 && merged.unions.length === 0) {
        throw invalid(`nothing to revert: the changes of ${commit.id.slice(0, 12)} are not on '${branch}'`);
      }
      return this.prepareCommitEvent(head, ours, { tables: merged.tables }, [], {
        kind: 'revert',
        parents: [ours.id],
        options: { actor: options.actor, message: options.message ?? `Revert "${commit.message}"` },
        attempt,
        info: { reverted: commit.id },
        inlineable: true,
      });
    });
  }

  // ---------------------------------------------------------------- history

  /**
   * First-parent history of a ref, newest first. Reads the branch logs in pages (one
   * read per page per log crossed), not one read per commit.
   */
  async history(ref: string, limit = 50): Promise<Commit[]> {
    const { commit } = await this.resolve(ref);
    const out: Commit[] = [commit];
    let current = commit;
    while (out.length < limit && current.parents.length > 0) {
      const { branch, seq, chainStart } = current.origin;
      if (seq - 1 < chainStart) {
        current = await this.docs.getCommit(current.parents[0] as string);
        out.push(current);
        continue;
      }
      const events = await this.log.range(branch, chainStart, seq - 1, limit - out.length);
      const ids = events.map((e) => e.commit as string);
      const commits = await this.docs.getCommits(ids);
      for (const id of ids) out.push(commits.get(id) as Commit);
      current = out[out.length - 1] as Commit;
    }
    return out.slice(0, limit);
  }

  /** Table-level differences between two refs. */
  async diff(fromRef: string, toRef: string): Promise<TableDiff[]> {
    const [a, b] = await Promise.all([this.resolve(fromRef), this.resolve(toRef)]);
    return diffTrees(await this.treeOf(a.commit), await this.treeOf(b.commit), (ids) =>
      this.docs.getTableVersions(ids),
    );
  }
}

interface PreparedEvent {
  event: BranchEvent;
  commit: Commit;
  /** The documents the event introduces. */
  docs: PreparedDoc[];
  /** Other writes of the same transaction (sync records). */
  extra: WriteOp[];
  /** Writes making other commits the event points at durable (a merge source). */
  needs: Durability;
  /** True when the documents may travel inline in the log item. */
  inlineable: boolean;
}

/**
 * Document puts with each item once (the first kept). Documents are content-addressed, so
 * two puts of one key carry the same body; DynamoDB refuses a transaction naming an item twice.
 */
function uniqueDocOps(ops: readonly WriteOp[]): WriteOp[] {
  const seen = new Set<string>();
  return ops.filter((op) => {
    const key = op.op === 'put' ? op.item : op.key;
    const id = `${key.pk}\u0000${key.sk}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** A deterministic `ClientRequestToken` for a transaction: equal operations, equal token; others differ. */
function transactionToken(ops: readonly WriteOp[]): string {
  return sha256Hex(JSON.stringify(ops)).slice(0, 32);
}

/** Ends a merge attempt with a result that writes nothing (dry run, up to date, conflict report). */
class EarlyExit extends Error {
  constructor(readonly result: MergeResult) {
    super('early exit');
  }
}

function staleReads(readSet: Record<string, string | null> | undefined, ours: Tree): TableConflict[] {
  if (!readSet) return [];
  return Object.entries(readSet)
    .filter(([table, version]) => (ours.tables[table] ?? null) !== version)
    .map(([table]) => ({ table, reason: 'read-changed' as const }));
}

function sum(files: DataFile[], field: 'rows' | 'bytes'): number {
  return files.reduce((n, f) => n + f[field], 0);
}
