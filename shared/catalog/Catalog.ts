import { setTimeout as sleep } from 'node:timers/promises';
import { AirlockError, conflict, denied, invalid, isConflict, notFound } from '../errors/index.js';
import type { CatalogItem, CatalogStore, ObjectStore, WriteOp } from '../store/ports.js';
import { MAX_TRANSACTION_ITEMS } from '../store/ports.js';
import { BranchLog, logPk, monotonicTime, registryKey } from './branchLog.js';
import { sha256Hex } from './canonical.js';
import { type TableDiff, diffTrees } from './diffTrees.js';
import { Documents, type PreparedDoc } from './documents.js';
import { type BranchHead, syncItems, syncedBase, walkMergeBase } from './mergeBase.js';
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
}

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
 * - documents (table versions, trees, commits) are written before the event that makes
 *   them reachable, so a crash leaves at most unreferenced documents;
 * - resolving a ref, reading a head and finding a merge base between synced branches
 *   take a bounded number of store reads, whatever the history length.
 */
export class Catalog {
  readonly docs: Documents;
  readonly log: BranchLog;
  private readonly now: () => Date;
  private readonly validator: ConstraintValidator | undefined;
  private readonly maxAttempts: number;
  private settings: LakeSettings | undefined;

  constructor(
    readonly store: CatalogStore,
    readonly objects: ObjectStore,
    options: CatalogOptions = {},
  ) {
    this.docs = new Documents(store, objects);
    this.log = new BranchLog(store);
    this.now = options.now ?? (() => new Date());
    this.validator = options.validator;
    this.maxAttempts = options.maxAttempts ?? 60;
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

  /** True when `branch` is protected (changes only by merge or revert). */
  async isProtected(branch: string): Promise<boolean> {
    const { protectedBranches } = await this.lakeSettings();
    return protectedBranches.some((p) => (p.endsWith('*') ? branch.startsWith(p.slice(0, -1)) : p === branch));
  }

  // ---------------------------------------------------------------- refs

  /** The current head event of a live branch; NOT_FOUND otherwise. One read. */
  async head(branch: string): Promise<BranchEvent> {
    const event = await this.log.last(branch);
    if (!event || event.type === 'delete' || event.commit === null) {
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
    const parsed = parseRef(ref);
    const branchEvent = await this.log.last(parsed.base);
    let commitId: string | undefined;
    let branch: BranchHead | undefined;
    if (branchEvent && (branchEvent.type !== 'delete' || parsed.at)) {
      if (branchEvent.type !== 'delete') branch = { name: parsed.base, event: branchEvent };
      if (parsed.at) {
        const past = await this.log.asOf(parsed.base, parsed.at);
        if (!past || past.commit === null) {
          throw notFound(`branch '${parsed.base}' had no head at ${parsed.at}`, { ref });
        }
        commitId = past.commit;
      } else {
        commitId = branchEvent.commit as string;
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
    if (parsed.back > 0) commit = await this.ancestor(commit, parsed.back, ref);
    return { commit, ...(branch ? { branch } : {}), isHead: !parsed.at && parsed.back === 0 && !!branch };
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
    const source = await this.resolve(from);
    const previous = await this.log.last(name);
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
        source.commit.id,
        { name, incarnation: seq, imports: 0 },
        { name: source.branch.name, incarnation: other.incarnation, imports: other.imports },
      )) {
        ops.push({ op: 'put', item });
      }
    }
    await this.appendOrConflict(name, ops, event, `branch '${name}' was created concurrently`);
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
    const { commit } = await this.resolve(ref);
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
   * Applies table changes to a branch as one commit. Optimistic: it reads the head,
   * builds the new tree, and appends conditionally; when another writer won, it re-reads
   * and re-applies. Appends always re-apply (they commute); `put` and `drop` re-apply only
   * if their table is still at the version they were prepared against, else CONFLICT
   * naming the table. Protected branches refuse direct commits.
   */
  async commit(branch: string, changes: TableChange[], options: CommitOptions): Promise<CommitResult> {
    if (changes.length === 0) throw invalid('nothing to commit');
    for (const c of changes) validateTableName(c.table);
    if (new Set(changes.map((c) => c.table)).size !== changes.length) {
      throw invalid('a commit changes each table at most once');
    }
    await this.assertNotProtected(branch);
    return this.withRetries(branch, async (head, attempt) => {
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
   * Runs one optimistic attempt after another until the conditional append lands.
   * `attempt` builds the event and its writes against the given head; a CONFLICT on the
   * log append means another writer won, so we re-read and try again with backoff.
   */
  private async withRetries(
    branch: string,
    attempt: (head: BranchEvent, n: number) => Promise<PreparedEvent>,
  ): Promise<CommitResult> {
    for (let n = 1; n <= this.maxAttempts; n++) {
      const head = await this.head(branch);
      const prepared = await attempt(head, n);
      try {
        await this.writeEvent(prepared);
        return { commit: prepared.commit, branch, seq: prepared.event.seq, attempts: n };
      } catch (e) {
        if (!(isConflict(e) && e.details.pk === logPk(branch))) throw e;
        await sleep(Math.random() * Math.min(200, 5 * 2 ** Math.min(n, 6)));
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
    };
  }

  /**
   * Writes documents, then the event, atomically where it fits: when everything fits in
   * one transaction it is one round trip; otherwise the (content-addressed, idempotent)
   * documents go first and the event with its sync records is the one transaction.
   */
  private async writeEvent(p: PreparedEvent): Promise<void> {
    const control: WriteOp[] = [BranchLog.appendOp(p.event), ...p.extra];
    const token = sha256Hex(`${p.event.branch}:${p.event.seq}:${p.event.commit}`).slice(0, 32);
    const docOps = p.docs.map((d) => d.op);
    if (docOps.length + control.length <= MAX_TRANSACTION_ITEMS) {
      await this.store.transact([...docOps, ...control], token);
      return;
    }
    for (let i = 0; i < docOps.length; i += MAX_TRANSACTION_ITEMS) {
      await this.store.transact(docOps.slice(i, i + MAX_TRANSACTION_ITEMS));
    }
    await this.store.transact(control, token);
  }

  private async appendOrConflict(branch: string, ops: WriteOp[], event: BranchEvent, message: string): Promise<void> {
    try {
      await this.store.transact(ops, sha256Hex(`${branch}:${event.seq}:${event.type}`).slice(0, 32));
    } catch (e) {
      if (isConflict(e) && e.details.pk === logPk(branch)) throw conflict(message, { branch }, e);
      throw e;
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
    const source = await this.resolve(sourceRef);
    if (source.branch?.name === target && source.isHead) throw invalid(`cannot merge '${target}' into itself`);
    let outcome: MergeResult | undefined;
    const result = await this.withRetries(target, async (head, attempt) => {
      const ours = await this.docs.getCommit(head.commit as string);
      const baseId = await this.mergeBase(source, { name: target, event: head }, ours);
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
      const load = (ids: string[]) => this.docs.getTableVersions(ids);
      const syncOps = (commit: string, event: BranchEvent): WriteOp[] =>
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
      if (baseId === ours.id && !options.noFastForward) {
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
        return { event, commit: source.commit, docs: [], extra: syncOps(source.commit.id, event) };
      }
      const baseTree = baseId ? await this.treeOf(await this.docs.getCommit(baseId)) : EMPTY_TREE;
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
        extraOps: (_commit, event) => syncOps(source.commit.id, event),
        info: { source: sourceRef, ...(options.runId ? { runId: options.runId } : {}) },
      });
    }).catch((e) => {
      if (e instanceof EarlyExit) return e.result;
      throw e;
    });
    if ('status' in result) return result;
    return { ...(outcome as MergeResult), commit: result.commit.id };
  }

  /**
   * The merge base of a source and a target branch. Between branches that were created
   * from or merged into each other, one read of their sync point (validated against both
   * heads); otherwise a generation-ordered walk of the commit graph.
   */
  async mergeBase(source: ResolvedRef, target: BranchHead, targetCommit: Commit): Promise<string | undefined> {
    if (source.isHead && source.branch) {
      const synced = await syncedBase(this.store, target, source.branch);
      if (synced) return synced;
    }
    return (await walkMergeBase(this.docs, source.commit, targetCommit))?.id;
  }

  /**
   * Reverts a commit on a branch: a new commit restoring the tables the commit changed
   * (relative to its first parent). A three-way merge with the reverted commit as base,
   * so later changes to other tables stay and later changes to the same tables conflict.
   * O(tables), copies no data. Allowed on protected branches (it is itself undoable).
   */
  async revert(commitRef: string, branch: string, options: { actor: Actor; message?: string }): Promise<CommitResult> {
    const { commit } = await this.resolve(commitRef);
    if (commit.parents.length === 0) throw invalid('cannot revert the first commit of the lake');
    const parent = await this.docs.getCommit(commit.parents[0] as string);
    const [baseTree, theirsTree] = [await this.treeOf(commit), await this.treeOf(parent)];
    return this.withRetries(branch, async (head, attempt) => {
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
  docs: PreparedDoc[];
  extra: WriteOp[];
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
