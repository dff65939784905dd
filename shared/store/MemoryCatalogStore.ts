import { conflict, invalid } from '../errors/index.js';
import { assertItem, assertTransaction, transactionFingerprint } from './itemRules.js';
import type { CatalogItem, CatalogStore, Condition, ItemKey, QueryOptions, QueryPage, WriteOp } from './ports.js';

const keyOf = (k: ItemKey) => `${k.pk}\u0000${k.sk}`;
const clone = (item: CatalogItem): CatalogItem => structuredClone(item);

/** True when `item` satisfies `condition` (undefined item = absent). Shared by adapters that evaluate conditions in process. */
export function conditionHolds(item: CatalogItem | undefined, condition: Condition | undefined): boolean {
  if (!condition) return true;
  switch (condition.kind) {
    case 'absent':
      return item === undefined;
    case 'exists':
      return item !== undefined;
    case 'version':
      return item !== undefined && item.v === condition.v;
  }
}

/** Selects and orders the items of one partition per {@link QueryOptions}; shared by in-process adapters. */
export function selectRange(items: CatalogItem[], options: QueryOptions): CatalogItem[] {
  const field = options.index === 'time' ? 't' : 'sk';
  const value = (i: CatalogItem) => (field === 't' ? i.t : i.sk);
  let out = items.filter((i) => value(i) !== undefined);
  const v = (i: CatalogItem) => value(i) as string;
  const tie = (a: CatalogItem, b: CatalogItem) => (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : 0);
  if (options.prefix !== undefined) out = out.filter((i) => v(i).startsWith(options.prefix as string));
  if (options.gt !== undefined) out = out.filter((i) => v(i) > (options.gt as string));
  if (options.gte !== undefined) out = out.filter((i) => v(i) >= (options.gte as string));
  if (options.lt !== undefined) out = out.filter((i) => v(i) < (options.lt as string));
  if (options.lte !== undefined) out = out.filter((i) => v(i) <= (options.lte as string));
  out.sort((a, b) => (v(a) < v(b) ? -1 : v(a) > v(b) ? 1 : tie(a, b)));
  if (options.reverse) out.reverse();
  return out;
}

/**
 * An in-memory {@link CatalogStore} for unit tests and models. Single process only;
 * semantics match the durable adapters (it runs in the contract suite too).
 */
export class MemoryCatalogStore implements CatalogStore {
  private readonly items = new Map<string, CatalogItem>();
  private readonly partitions = new Map<string, Map<string, CatalogItem>>();
  /** Sort keys of each partition in order, rebuilt lazily after an out-of-order insert. */
  private readonly sortedKeys = new Map<string, string[]>();
  private readonly tokens = new Map<string, string>();

  async get(key: ItemKey): Promise<CatalogItem | undefined> {
    const item = this.items.get(keyOf(key));
    return item && clone(item);
  }

  async getMany(keys: readonly ItemKey[]): Promise<CatalogItem[]> {
    const out: CatalogItem[] = [];
    for (const k of keys) {
      const item = this.items.get(keyOf(k));
      if (item) out.push(clone(item));
    }
    return out;
  }

  private set(item: CatalogItem): void {
    this.items.set(keyOf(item), item);
    let partition = this.partitions.get(item.pk);
    if (!partition) this.partitions.set(item.pk, (partition = new Map()));
    const isNew = !partition.has(item.sk);
    partition.set(item.sk, item);
    const keys = this.sortedKeys.get(item.pk);
    if (isNew && keys) {
      const last = keys[keys.length - 1];
      if (last === undefined || last < item.sk) keys.push(item.sk);
      else this.sortedKeys.delete(item.pk);
    }
  }

  private remove(key: ItemKey): void {
    this.items.delete(keyOf(key));
    this.partitions.get(key.pk)?.delete(key.sk);
    this.sortedKeys.delete(key.pk);
  }

  /** The partition's sort keys in order, without re-sorting on every read. */
  private orderedKeys(pk: string): string[] {
    const partition = this.partitions.get(pk);
    if (!partition) return [];
    let keys = this.sortedKeys.get(pk);
    if (!keys) {
      keys = [...partition.keys()].sort();
      this.sortedKeys.set(pk, keys);
    }
    return keys;
  }

  /** Sort-key range of a partition by binary search: O(log n + page), so long logs stay cheap. */
  private keyRange(pk: string, options: QueryOptions): CatalogItem[] {
    const keys = this.orderedKeys(pk);
    const partition = this.partitions.get(pk) as Map<string, CatalogItem>;
    const lowerBound = (x: string, strict: boolean) => {
      let lo = 0;
      let hi = keys.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        const k = keys[mid] as string;
        if (strict ? k <= x : k < x) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    let start = 0;
    let end = keys.length;
    if (options.gte !== undefined) start = Math.max(start, lowerBound(options.gte, false));
    if (options.gt !== undefined) start = Math.max(start, lowerBound(options.gt, true));
    if (options.lte !== undefined) end = Math.min(end, lowerBound(options.lte, true));
    if (options.lt !== undefined) end = Math.min(end, lowerBound(options.lt, false));
    if (options.prefix !== undefined) {
      start = Math.max(start, lowerBound(options.prefix, false));
      let e = start;
      while (e < end && (keys[e] as string).startsWith(options.prefix)) e++;
      end = e;
    }
    const slice = start < end ? keys.slice(start, end) : [];
    if (options.reverse) slice.reverse();
    return slice.map((k) => partition.get(k) as CatalogItem);
  }

  async query(pk: string, options: QueryOptions = {}): Promise<QueryPage> {
    const all =
      options.index === 'time'
        ? selectRange([...(this.partitions.get(pk)?.values() ?? [])], options)
        : this.keyRange(pk, options);
    const start = options.cursor ? Number(options.cursor) : 0;
    const limit = options.limit ?? 1000;
    const page = all.slice(start, start + limit);
    const next = start + page.length;
    return next < all.length ? { items: page.map(clone), cursor: String(next) } : { items: page.map(clone) };
  }

  async put(item: CatalogItem, condition?: Condition): Promise<void> {
    assertItem(item);
    const existing = this.items.get(keyOf(item));
    if (!conditionHolds(existing, condition)) {
      throw conflict(`condition failed on ${item.pk}/${item.sk}`, { pk: item.pk, sk: item.sk });
    }
    this.set(clone(item));
  }

  async transact(ops: readonly WriteOp[], token?: string): Promise<void> {
    // Same rules as the durable adapters: ≤ 100 operations, one per item, items ≤ 350 KiB.
    assertTransaction(ops);
    const fingerprint = transactionFingerprint(ops);
    const seen = token === undefined ? undefined : this.tokens.get(token);
    if (seen === fingerprint) return;
    if (seen !== undefined) {
      throw invalid(`transaction token '${token}' was already used for different operations`, { token });
    }
    ops.forEach((op, index) => {
      const key = op.op === 'put' ? op.item : op.key;
      if (!conditionHolds(this.items.get(keyOf(key)), op.condition)) {
        throw conflict(`transaction cancelled: condition failed on ${key.pk}/${key.sk}`, {
          pk: key.pk,
          sk: key.sk,
          index,
        });
      }
    });
    for (const op of ops) {
      if (op.op === 'put') this.set(clone(op.item));
      else if (op.op === 'delete') this.remove(op.key);
    }
    if (token !== undefined) this.tokens.set(token, fingerprint);
  }

  async close(): Promise<void> {}
}
