/**
 * Ports of the catalog: the two storage abstractions every backend implements.
 *
 * `CatalogStore` is a small, strongly consistent, partitioned key-value store with
 * conditional writes and atomic multi-item transactions: exactly the subset of DynamoDB
 * that Airlock relies on, and what SQLite gives embedded. `ObjectStore` holds immutable
 * blobs (Parquet data files, spilled documents, audit anchors).
 *
 * Adapters implement these faithfully and decide no policy. One contract suite
 * (`test/store.contract.test.ts`) runs against every adapter.
 */

/** One item: a partition key, a sort key, an optional time index, a version and a JSON body. */
export interface CatalogItem {
  /** Partition key, e.g. `log#main`. */
  pk: string;
  /** Sort key within the partition; ordered by plain string comparison (bytewise UTF-8). */
  sk: string;
  /**
   * Optional secondary sort key (an ISO-8601 UTC time) indexed per partition, for
   * "state as of time" look-ups. Items without `t` are absent from the time index.
   */
  t?: string;
  /**
   * Version of a mutable item, for compare-and-set. Adapters store it as given; callers
   * bump it and write with `{ kind: 'version', v: previous }`.
   */
  v?: number;
  /** The body: any JSON object. Adapters keep it verbatim. */
  data: Record<string, unknown>;
}

/** The key of an item. */
export interface ItemKey {
  pk: string;
  sk: string;
}

/**
 * A write condition, evaluated atomically with the write.
 * - `absent`: no item with this key exists (DynamoDB `attribute_not_exists(pk)`).
 * - `exists`: an item with this key exists.
 * - `version`: an item exists and its `v` equals the given number.
 */
export type Condition = { kind: 'absent' } | { kind: 'exists' } | { kind: 'version'; v: number };

/** One operation of a transaction. */
export type WriteOp =
  | { op: 'put'; item: CatalogItem; condition?: Condition }
  | { op: 'delete'; key: ItemKey; condition?: Condition }
  | { op: 'check'; key: ItemKey; condition: Condition };

/** The largest transaction any adapter accepts (DynamoDB `TransactWriteItems` limit). */
export const MAX_TRANSACTION_ITEMS = 100;

/** Options of a range read within one partition. Bounds apply to `sk`, or to `t` with `index: 'time'`. */
export interface QueryOptions {
  /** Read the time index (`t`) instead of the sort key. */
  index?: 'time';
  /** Only keys starting with this prefix. */
  prefix?: string;
  gt?: string;
  gte?: string;
  lt?: string;
  lte?: string;
  /** Descending order (newest first). */
  reverse?: boolean;
  /** At most this many items in this page (adapters may return fewer, then give a cursor). */
  limit?: number;
  /** Continue after a previous page. Opaque. */
  cursor?: string;
}

/** One page of a range read. `cursor` is set when more items may follow. */
export interface QueryPage {
  items: CatalogItem[];
  cursor?: string;
}

/**
 * The catalog store port. Every read is strongly consistent (it sees every write that
 * completed before it started). Writes that fail their condition throw an error with code
 * `CONFLICT` whose `details` name the item (`pk`, `sk`, and `index` within a transaction).
 */
export interface CatalogStore {
  /**
   * True when every request is a network round trip (DynamoDB). The catalog then appends
   * a commit as ONE conditional put of its log item, carrying the commit's small documents
   * inline, and writes the document items behind it; an embedded store leaves this unset
   * and gets one local transaction (one fsync) per commit instead. See `Catalog`.
   */
  readonly remote?: boolean;
  /** Reads one item, or `undefined`. */
  get(key: ItemKey): Promise<CatalogItem | undefined>;
  /** Reads many items by key (any number; adapters batch). Missing items are omitted. */
  getMany(keys: readonly ItemKey[]): Promise<CatalogItem[]>;
  /** Reads one page of a partition in key (or time) order. */
  query(pk: string, options?: QueryOptions): Promise<QueryPage>;
  /** Writes one item, atomically checking `condition` first. */
  put(item: CatalogItem, condition?: Condition): Promise<void>;
  /**
   * Optional: writes items unconditionally in as few requests as the backend allows
   * (DynamoDB `BatchWriteItem`). NOT atomic — after a failure, any subset may have been
   * written — so only for idempotent writes such as content-addressed documents. Callers
   * fall back to {@link transact} when an adapter lacks it.
   */
  putMany?(items: readonly CatalogItem[]): Promise<void>;
  /**
   * Applies all operations or none (at most {@link MAX_TRANSACTION_ITEMS}). `token` makes
   * the call idempotent: a retry with the same token and operations applies at most once
   * (DynamoDB `ClientRequestToken`). Throws `CONFLICT` naming the first failed operation.
   */
  transact(ops: readonly WriteOp[], token?: string): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** Metadata of a stored object. */
export interface ObjectInfo {
  key: string;
  size: number;
}

/**
 * The object store port: immutable blobs under string keys. Keys never get rewritten
 * with different content by Airlock (they are unique or content-addressed), so caches of
 * objects never go stale.
 */
export interface ObjectStore {
  /** Stores bytes under `key`. */
  put(key: string, body: Uint8Array): Promise<void>;
  /** Stores a local file under `key`, streaming (may move the file when `move` is set). */
  putFile(key: string, path: string, options?: { move?: boolean }): Promise<void>;
  /** Reads an object fully; throws `NOT_FOUND` when missing. Verifies integrity. */
  get(key: string): Promise<Uint8Array>;
  /**
   * Returns a local file path holding the object, for engines that read files (DuckDB).
   * Local adapters return the object's own path; remote ones download to a cache.
   */
  localPath(key: string): Promise<string>;
  /** Size of an object, or `undefined` when missing. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Lists all objects under a prefix, paging internally, in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Removes an object (no error when missing). Only garbage collection calls it. */
  delete(key: string): Promise<void>;
  /** Releases resources. */
  close(): Promise<void>;
}
