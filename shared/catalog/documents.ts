import { invalid, notFound } from '../errors/index.js';
import type { CatalogItem, CatalogStore, ItemKey, ObjectStore, WriteOp } from '../store/ports.js';
import { canonicalJson, contentId } from './canonical.js';
import type { Commit, TableVersion, Tree } from './model.js';

/** Documents larger than this (canonical JSON bytes) live in the object store, not in an item. */
export const SPILL_BYTES = 64 * 1024;

/**
 * The most document bytes (canonical JSON, all documents together) one log item carries
 * inline. Above it, the documents are written as items before the event (see `Catalog`).
 */
export const INLINE_BYTES = 64 * 1024;

/** The kinds of content-addressed documents. */
export type DocKind = 'commit' | 'tree' | 'tv';

/** The item key of a content-addressed document. Sharded by the first two hex digits. */
export function docKey(kind: DocKind, id: string): ItemKey {
  return { pk: `${kind}#${id.slice(0, 2)}`, sk: id };
}

/** A document carried inline by a branch-log item, next to the event that introduced it. */
export interface InlineDoc {
  kind: DocKind;
  id: string;
  doc: Record<string, unknown>;
}

/** A document ready to be written: its id, its content and the write operation that stores it. */
export interface PreparedDoc {
  kind: DocKind;
  id: string;
  doc: Record<string, unknown>;
  /** Canonical JSON bytes of `doc`. */
  bytes: number;
  /** True when the document lives in the object store and its item is a pointer. */
  spilled: boolean;
  /** An unconditional, idempotent put of the document's item (content-addressed). */
  op: WriteOp & { op: 'put' };
}

/** The put of a document's item, from an inline copy. */
export function docPut(d: InlineDoc): WriteOp & { op: 'put' } {
  return { op: 'put', item: { ...docKey(d.kind, d.id), data: { ...d.doc } } };
}

/**
 * Immutable, content-addressed documents (commits, trees, table versions) on top of the
 * two ports. Small documents are items; large ones spill to the object store under
 * `meta/<kind>/<id>.json` with a pointer item, so items stay far below DynamoDB's limit.
 * Because documents never change, reads are cached per process; branch-log reads that
 * return documents inline prime the same cache ({@link prime}).
 *
 * Also tracks, per process, which commits are known to be *durable* — their commit, tree
 * and new table-version documents exist as items — which is what the catalog's write
 * protocol needs to know before it makes a commit reachable from anywhere but its own
 * log item (see `Catalog`).
 */
export class Documents {
  private readonly cache = new Map<string, unknown>();
  private static readonly CACHE_LIMIT = 20_000;
  /** Commits whose documents this process wrote (and saw succeed) or re-wrote. Forgetting one is safe. */
  private readonly durable = new Set<string>();
  /** Commits whose document items are being written behind their log item, by this process. */
  private readonly behind = new Map<string, Promise<boolean>>();

  constructor(
    private readonly store: CatalogStore,
    private readonly objects: ObjectStore,
  ) {}

  /** Computes a commit's id from its content. */
  static sealCommit(fields: Omit<Commit, 'id'>): Commit {
    return { ...fields, id: contentId(fields) };
  }

  /** Prepares a commit document (always small). */
  prepareCommit(commit: Commit): PreparedDoc {
    this.remember(`commit:${commit.id}`, commit);
    const doc = { ...commit } as unknown as Record<string, unknown>;
    return {
      kind: 'commit',
      id: commit.id,
      doc,
      bytes: Buffer.byteLength(JSON.stringify(doc)),
      spilled: false,
      op: { op: 'put', item: { ...docKey('commit', commit.id), data: doc } },
    };
  }

  /** Prepares a tree; spills it to the object store first when large. */
  async prepareTree(tree: Tree): Promise<PreparedDoc> {
    return this.prepare('tree', tree as unknown as Record<string, unknown>);
  }

  /** Prepares a table version; spills it to the object store first when large. */
  async prepareTableVersion(tv: TableVersion): Promise<PreparedDoc> {
    return this.prepare('tv', tv as unknown as Record<string, unknown>);
  }

  private async prepare(kind: DocKind, doc: Record<string, unknown>): Promise<PreparedDoc> {
    const json = canonicalJson(doc);
    const id = contentId(doc);
    const bytes = Buffer.byteLength(json);
    let data: Record<string, unknown> = doc;
    if (bytes > SPILL_BYTES) {
      const key = `meta/${kind}/${id}.json`;
      if (!(await this.objects.head(key))) await this.objects.put(key, Buffer.from(json));
      data = { spilled: key };
    }
    this.remember(`${kind}:${id}`, doc);
    return { kind, id, doc, bytes, spilled: data !== doc, op: { op: 'put', item: { ...docKey(kind, id), data } } };
  }

  /**
   * The inline form of `docs` for a log item, or undefined when they cannot go inline
   * (a spilled document, or more than {@link INLINE_BYTES} in all).
   */
  static inline(docs: readonly PreparedDoc[]): InlineDoc[] | undefined {
    let total = 0;
    for (const d of docs) {
      if (d.spilled) return undefined;
      total += d.bytes;
    }
    if (total > INLINE_BYTES) return undefined;
    return docs.map((d) => ({ kind: d.kind, id: d.id, doc: d.doc }));
  }

  /** Caches documents read inline from a log item, so they are readable without their own items. */
  prime(docs: readonly InlineDoc[]): void {
    for (const d of docs) this.remember(`${d.kind}:${d.id}`, d.doc);
  }

  // ---------------------------------------------------------------- durability

  /** True when this process knows the documents of `commit` exist as items. */
  isDurable(commit: string): boolean {
    return this.durable.has(commit);
  }

  /** Records that the documents of these commits exist as items. */
  markDurable(commits: Iterable<string>): void {
    for (const id of commits) {
      if (this.durable.size >= Documents.CACHE_LIMIT) this.durable.clear();
      this.durable.add(id);
    }
  }

  /**
   * Registers the write of a commit's document items behind its log item. `write`
   * resolves true when every item landed; the commit then counts as durable.
   */
  writingBehind(commit: string, write: Promise<boolean>): void {
    const tracked = write.then((ok) => {
      if (this.behind.get(commit) === tracked) this.behind.delete(commit);
      if (ok) this.markDurable([commit]);
      return ok;
    });
    this.behind.set(commit, tracked);
  }

  /**
   * Waits for this process's own write of a commit's documents, if one is in flight.
   * True when it landed; false when it failed; undefined when there was none.
   */
  async settled(commit: string): Promise<boolean | undefined> {
    const write = this.behind.get(commit);
    return write === undefined ? undefined : write;
  }

  /** Waits until every document write this process started behind a log item has finished. */
  async flush(): Promise<void> {
    while (this.behind.size > 0) await Promise.all([...this.behind.values()]);
  }

  // ---------------------------------------------------------------- reads

  async getCommit(id: string): Promise<Commit> {
    return this.getOne<Commit>('commit', id);
  }

  async getTree(id: string): Promise<Tree> {
    return this.getOne<Tree>('tree', id);
  }

  async getTableVersion(id: string): Promise<TableVersion> {
    return this.getOne<TableVersion>('tv', id);
  }

  /** Reads many commits in one batched round trip (cached ones skipped). */
  async getCommits(ids: readonly string[]): Promise<Map<string, Commit>> {
    return this.getMany<Commit>('commit', ids);
  }

  /** Reads many table versions in one batched round trip (cached ones skipped). */
  async getTableVersions(ids: readonly string[]): Promise<Map<string, TableVersion>> {
    return this.getMany<TableVersion>('tv', ids);
  }

  /** Finds the commit whose id starts with `prefix` (≥ 4 hex digits); NOT_FOUND or INVALID when ambiguous. */
  async findCommitByPrefix(prefix: string): Promise<Commit | undefined> {
    if (prefix.length === 64) return this.tryGet<Commit>('commit', prefix);
    const page = await this.store.query(`commit#${prefix.slice(0, 2)}`, { prefix, limit: 2 });
    if (page.items.length > 1) {
      throw invalid(`commit prefix '${prefix}' is ambiguous: give more digits`, { prefix });
    }
    const item = page.items[0];
    return item ? (item.data as unknown as Commit) : undefined;
  }

  private async tryGet<T>(kind: DocKind, id: string): Promise<T | undefined> {
    const cached = this.cache.get(`${kind}:${id}`);
    if (cached) return cached as T;
    const item = await this.store.get(docKey(kind, id));
    if (!item) return undefined;
    const doc = await this.unspill<T>(item.data);
    this.remember(`${kind}:${id}`, doc);
    return doc;
  }

  private async getOne<T>(kind: DocKind, id: string): Promise<T> {
    const doc = await this.tryGet<T>(kind, id);
    if (!doc) throw notFound(`${kind === 'tv' ? 'table version' : kind} ${id} not found in the catalog`);
    return doc;
  }

  private async getMany<T>(kind: DocKind, ids: readonly string[]): Promise<Map<string, T>> {
    const out = new Map<string, T>();
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      const cached = this.cache.get(`${kind}:${id}`);
      if (cached) out.set(id, cached as T);
      else missing.push(id);
    }
    if (missing.length > 0) {
      const items = await this.store.getMany(missing.map((id) => docKey(kind, id)));
      for (const item of items) {
        const doc = await this.unspill<T>(item.data);
        this.remember(`${kind}:${item.sk}`, doc);
        out.set(item.sk, doc);
      }
    }
    for (const id of ids) {
      if (!out.has(id)) throw notFound(`${kind === 'tv' ? 'table version' : kind} ${id} not found in the catalog`);
    }
    return out;
  }

  private async unspill<T>(data: Record<string, unknown>): Promise<T> {
    if (typeof data.spilled === 'string') {
      const bytes = await this.objects.get(data.spilled);
      return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
    }
    return data as T;
  }

  private remember(key: string, doc: unknown): void {
    if (this.cache.size >= Documents.CACHE_LIMIT) this.cache.clear();
    this.cache.set(key, doc);
  }
}

/** The items of put operations (for stores' batched unconditional writes). */
export function itemsOf(ops: readonly WriteOp[]): CatalogItem[] {
  return ops.flatMap((op) => (op.op === 'put' ? [op.item] : []));
}
