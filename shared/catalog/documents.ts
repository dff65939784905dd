import { invalid, notFound } from '../errors/index.js';
import type { CatalogStore, ItemKey, ObjectStore, WriteOp } from '../store/ports.js';
import { canonicalJson, contentId } from './canonical.js';
import type { Commit, TableVersion, Tree } from './model.js';

/** Documents larger than this (canonical JSON bytes) live in the object store, not in an item. */
export const SPILL_BYTES = 64 * 1024;

type DocKind = 'commit' | 'tree' | 'tv';

/** The item key of a content-addressed document. Sharded by the first two hex digits. */
export function docKey(kind: DocKind, id: string): ItemKey {
  return { pk: `${kind}#${id.slice(0, 2)}`, sk: id };
}

/** A document ready to be written: its id and the write operation that stores it. */
export interface PreparedDoc {
  id: string;
  op: WriteOp;
}

/**
 * Immutable, content-addressed documents (commits, trees, table versions) on top of the
 * two ports. Small documents are items; large ones spill to the object store under
 * `meta/<kind>/<id>.json` with a pointer item, so items stay far below DynamoDB's limit.
 * Because documents never change, reads are cached per process.
 */
export class Documents {
  private readonly cache = new Map<string, unknown>();
  private static readonly CACHE_LIMIT = 20_000;

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
    return { id: commit.id, op: { op: 'put', item: { ...docKey('commit', commit.id), data: { ...commit } } } };
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
    let data: Record<string, unknown> = doc;
    if (Buffer.byteLength(json) > SPILL_BYTES) {
      const key = `meta/${kind}/${id}.json`;
      if (!(await this.objects.head(key))) await this.objects.put(key, Buffer.from(json));
      data = { spilled: key };
    }
    this.remember(`${kind}:${id}`, doc);
    return { id, op: { op: 'put', item: { ...docKey(kind, id), data } } };
  }

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
