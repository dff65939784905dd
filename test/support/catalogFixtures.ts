import { Catalog, type CatalogOptions } from '../../shared/catalog/index.js';
import type { Actor, DataFile, TableChange, TableSchema } from '../../shared/catalog/index.js';
import { MemoryCatalogStore } from '../../shared/store/MemoryCatalogStore.js';
import { MemoryObjectStore } from '../../shared/store/MemoryObjectStore.js';
import type { CatalogStore, ItemKey, QueryOptions, WriteOp, CatalogItem, Condition } from '../../shared/store/ports.js';

export const alice: Actor = { person: 'alice' };
export const bot: Actor = { person: 'alice', agent: 'bot' };

export const idSchema: TableSchema = {
  fields: [
    { name: 'id', type: 'Int64', nullable: false, tags: [] },
    { name: 'amount', type: 'Float64', nullable: true, tags: [] },
  ],
};

let fileCounter = 0;
/** A manifest entry for a data file that exists only in the catalog (the catalog never reads data). */
export function fakeFile(rows = 10): DataFile {
  fileCounter += 1;
  return {
    key: `data/test/file-${process.pid}-${fileCounter}-${Math.random().toString(36).slice(2)}.parquet`,
    rows,
    bytes: rows * 16,
    columns: { id: { min: 0, max: rows, nulls: 0 } },
  };
}

export function append(table: string, rows = 10): TableChange {
  return { kind: 'append', table, files: [fakeFile(rows)], schema: idSchema, constraints: { unique: [] } };
}

/** A change replacing a table with one file (keeps manifests small in long-history tests). */
export function overwrite(table: string, base: string | null, rows = 10): TableChange {
  const file = fakeFile(rows);
  return {
    kind: 'put',
    table,
    base,
    version: {
      schema: idSchema,
      constraints: { unique: [] },
      files: [file],
      rowCount: rows,
      bytes: file.bytes,
      op: 'overwrite',
    },
  };
}

/** Counts store calls by kind: the "store reads" of the cost-does-not-grow tests. */
export class CountingStore implements CatalogStore {
  reads = 0;
  writes = 0;
  constructor(private readonly inner: CatalogStore) {}
  reset() {
    this.reads = 0;
    this.writes = 0;
  }
  get(key: ItemKey) {
    this.reads++;
    return this.inner.get(key);
  }
  getMany(keys: readonly ItemKey[]) {
    this.reads++;
    return this.inner.getMany(keys);
  }
  query(pk: string, options?: QueryOptions) {
    this.reads++;
    return this.inner.query(pk, options);
  }
  put(item: CatalogItem, condition?: Condition) {
    this.writes++;
    return this.inner.put(item, condition);
  }
  transact(ops: readonly WriteOp[], token?: string) {
    this.writes++;
    return this.inner.transact(ops, token);
  }
  close() {
    return this.inner.close();
  }
}

/** A catalog on in-memory stores, initialised, with a controllable clock. */
export async function memoryCatalog(options: CatalogOptions = {}) {
  const store = new CountingStore(new MemoryCatalogStore());
  const objects = new MemoryObjectStore();
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const catalog = new Catalog(store, objects, {
    now: () => new Date((clock += 1000)),
    ...options,
  });
  await catalog.init(alice);
  return { catalog, store, objects, advance: (ms: number) => (clock += ms), time: () => clock };
}
