/**
 * Rules every durable {@link CatalogStore} adapter enforces the same way, so that code
 * that works embedded (SQLite) also works on DynamoDB: item size, transaction shape, and
 * the fingerprint that makes a transaction token idempotent.
 */
import { createHash } from 'node:crypto';
import { invalid } from '../errors/index.js';
import { type CatalogItem, type ItemKey, MAX_TRANSACTION_ITEMS, type WriteOp } from './ports.js';

/**
 * The largest item any adapter accepts: 350 KiB, a margin under DynamoDB's 400 KB item
 * limit. Callers spill bigger documents to the object store and keep a pointer item.
 */
export const MAX_ITEM_BYTES = 350 * 1024;

/** The stored size of an item, counted like DynamoDB does (attribute names + values, UTF-8). */
export function itemSizeBytes(item: CatalogItem): number {
  let size = 2 + Buffer.byteLength(item.pk) + 2 + Buffer.byteLength(item.sk);
  size += 1 + Buffer.byteLength(JSON.stringify(item.data));
  if (item.t !== undefined) size += 1 + Buffer.byteLength(item.t);
  if (item.v !== undefined) size += 1 + 21;
  return size;
}

/** Throws `INVALID` when an item is malformed or larger than {@link MAX_ITEM_BYTES}. */
export function assertItem(item: CatalogItem): void {
  if (typeof item.pk !== 'string' || item.pk === '' || typeof item.sk !== 'string' || item.sk === '') {
    throw invalid('an item needs a non-empty pk and sk', { pk: item.pk, sk: item.sk });
  }
  if (item.t !== undefined && (typeof item.t !== 'string' || item.t === '')) {
    throw invalid('an item time index value must be a non-empty string', { pk: item.pk, sk: item.sk });
  }
  if (item.v !== undefined && !Number.isFinite(item.v)) {
    throw invalid('an item version must be a finite number', { pk: item.pk, sk: item.sk, v: item.v });
  }
  if (typeof item.data !== 'object' || item.data === null || Array.isArray(item.data)) {
    throw invalid('an item body must be a JSON object', { pk: item.pk, sk: item.sk });
  }
  const size = itemSizeBytes(item);
  if (size > MAX_ITEM_BYTES) {
    throw invalid(
      `item ${item.pk}/${item.sk} is ${size} bytes, over the ${MAX_ITEM_BYTES}-byte limit; store large documents in the object store`,
      { pk: item.pk, sk: item.sk, bytes: size, limit: MAX_ITEM_BYTES },
    );
  }
}

/** The key an operation touches. */
export function keyOfOp(op: WriteOp): ItemKey {
  return op.op === 'put' ? { pk: op.item.pk, sk: op.item.sk } : { pk: op.key.pk, sk: op.key.sk };
}

/**
 * Throws `INVALID` for a transaction no adapter may accept: more than
 * {@link MAX_TRANSACTION_ITEMS} operations, two operations on the same item (DynamoDB
 * refuses those), or an invalid item.
 */
export function assertTransaction(ops: readonly WriteOp[]): void {
  if (ops.length > MAX_TRANSACTION_ITEMS) {
    throw invalid(`a transaction holds at most ${MAX_TRANSACTION_ITEMS} items, got ${ops.length}`, {
      count: ops.length,
      limit: MAX_TRANSACTION_ITEMS,
    });
  }
  const seen = new Map<string, number>();
  ops.forEach((op, index) => {
    if (op.op === 'put') assertItem(op.item);
    const key = keyOfOp(op);
    const id = `${key.pk}\u0000${key.sk}`;
    const first = seen.get(id);
    if (first !== undefined) {
      throw invalid(`a transaction may touch ${key.pk}/${key.sk} only once (operations ${first} and ${index})`, {
        pk: key.pk,
        sk: key.sk,
        index,
        firstIndex: first,
      });
    }
    seen.set(id, index);
  });
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** SHA-256 (hex) of the canonical JSON of a transaction: equal for equal operations whatever the key order. */
export function transactionFingerprint(ops: readonly WriteOp[]): string {
  return createHash('sha256').update(canonical(ops)).digest('hex');
}
