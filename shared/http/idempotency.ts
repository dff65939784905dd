import { createHash } from 'node:crypto';
import type { Actor } from '../catalog/index.js';
import { AirlockError, conflict, invalid, isConflict } from '../errors/index.js';
import type { CatalogItem, CatalogStore, ItemKey, ObjectStore } from '../store/ports.js';

/** The `details.reason` of the error for a key reused with a different request (HTTP 422). */
export const KEY_REUSED = 'idempotencyKeyReused';

/** The response header marking an answer replayed from an earlier request with the same key. */
export const REPLAYED_HEADER = 'idempotent-replayed';

/** How long a finished request's result answers retries (24 h). */
export const DEFAULT_KEY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * How long a claim whose request never finished (its process died) blocks the key. Longer
 * than any request may run (a Lambda runs at most 15 min), so a live request is never
 * taken over; after it, a retry may apply the mutation (the first attempt never answered).
 */
export const DEFAULT_CLAIM_LEASE_MS = 15 * 60 * 1000;

/** Result bodies larger than this are kept in the object store, the item holds a pointer. */
const INLINE_BODY_BYTES = 200 * 1024;

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** What a request is, for telling a retry from a different request with the same key. */
export interface RequestFingerprint {
  method: string;
  /** Path and query string, as sent. */
  target: string;
  /** SHA-256 (hex) of the body bytes. */
  bodyHash: string;
}

/** A stored answer: replayed byte for byte. */
export interface StoredResponse {
  status: number;
  contentType: string;
  body: string;
}

/** What {@link IdempotencyKeys.claim} found. */
export type Claim =
  | { kind: 'claimed'; release(): Promise<void>; complete(r: StoredResponse): Promise<void> }
  | { kind: 'replay'; response: StoredResponse };

interface KeyData {
  state: 'pending' | 'done';
  request: string;
  expiresAt: string;
  status?: number;
  contentType?: string;
  body?: string;
  bodyObject?: string;
}

/** SHA-256 of bytes or text, lowercase hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The hash binding a key to its request (method, target, body hash). */
export function requestHash(f: RequestFingerprint): string {
  return sha256Hex(`${f.method.toUpperCase()}\n${f.target}\n${f.bodyHash}`);
}

/** Checks an `Idempotency-Key` header value: 1–255 visible ASCII characters. */
export function checkIdempotencyKey(key: string): string {
  if (!KEY_PATTERN.test(key)) {
    throw invalid('the Idempotency-Key header must be 1 to 255 visible ASCII characters (a UUID is a good choice)');
  }
  return key;
}

/**
 * `Idempotency-Key` records kept through the {@link CatalogStore} port (SQLite or
 * DynamoDB), one item per (person, key): a retried mutation answers with the first
 * attempt's result and applies once.
 *
 * Timeline the conditional writes guard against:
 * 1. request A claims `(ann, k1)` with a put conditioned on the item being absent and
 *    records the hash of its method, path and body (state `pending`);
 * 2. a duplicate B arriving now finds the item: same hash and `pending` → CONFLICT
 *    "in progress" (it never applies); a different hash → 422, the key is someone else's;
 * 3. A finishes and stores its status and body with a put conditioned on the version it
 *    claimed (a claim taken over after its lease expired cannot be overwritten by the
 *    late original);
 * 4. any later retry with the same hash gets exactly those bytes back.
 * A failed request (4xx) is stored like a success; a 5xx releases the key, so a retry
 * tries again. Records expire after the TTL (checked on read; an expired record is
 * taken over with a version-conditioned put).
 */
export class IdempotencyKeys {
  private readonly ttlMs: number;
  private readonly leaseMs: number;
  private readonly now: () => number;

  constructor(
    private readonly store: CatalogStore,
    private readonly objects: ObjectStore,
    options: { ttlMs?: number; leaseMs?: number; now?: () => number } = {},
  ) {
    this.ttlMs = options.ttlMs ?? DEFAULT_KEY_TTL_MS;
    this.leaseMs = options.leaseMs ?? DEFAULT_CLAIM_LEASE_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * Claims `key` for `actor`'s person and this request, or returns the stored answer of
   * the earlier request with the same key. Throws CONFLICT while that request is still
   * in flight and INVALID (`details.reason` {@link KEY_REUSED}) when the key was used for
   * a different request.
   */
  async claim(actor: Actor, key: string, fingerprint: RequestFingerprint): Promise<Claim> {
    const itemKey: ItemKey = { pk: `idem#${actor.person}`, sk: checkIdempotencyKey(key) };
    const request = requestHash(fingerprint);
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await this.store.get(itemKey);
      const expired = existing ? Date.parse((existing.data as unknown as KeyData).expiresAt) <= this.now() : true;
      if (existing && !expired) return this.answerFrom(existing, request, key);
      const v = (existing?.v ?? 0) + 1;
      const pending: KeyData = {
        state: 'pending',
        request,
        expiresAt: new Date(this.now() + this.leaseMs).toISOString(),
      };
      try {
        await this.store.put(
          { ...itemKey, v, data: { ...pending } },
          existing ? { kind: 'version', v: existing.v ?? 0 } : { kind: 'absent' },
        );
      } catch (e) {
        if (isConflict(e)) continue; // another request claimed it between the read and the write: read again
        throw e;
      }
      return {
        kind: 'claimed',
        release: () => this.release(itemKey, v),
        complete: (response) => this.complete(itemKey, v, request, response),
      };
    }
    throw conflict(`the request with Idempotency-Key '${key}' is in progress; retry shortly`, { idempotencyKey: key });
  }

  private async answerFrom(item: CatalogItem, request: string, key: string): Promise<Claim> {
    const data = item.data as unknown as KeyData;
    if (data.request !== request) {
      throw new AirlockError(
        'INVALID',
        `Idempotency-Key '${key}' was already used for a different request (method, path or body differ); use a new key for a new request`,
        { details: { reason: KEY_REUSED, idempotencyKey: key } },
      );
    }
    if (data.state === 'pending') {
      throw conflict(`the request with Idempotency-Key '${key}' is in progress; retry shortly`, {
        idempotencyKey: key,
        reason: 'inProgress',
      });
    }
    const body = data.bodyObject
      ? new TextDecoder().decode(await this.objects.get(data.bodyObject))
      : (data.body ?? '');
    return {
      kind: 'replay',
      response: { status: data.status ?? 200, contentType: data.contentType ?? 'application/json', body },
    };
  }

  private async complete(itemKey: ItemKey, v: number, request: string, response: StoredResponse): Promise<void> {
    const data: KeyData = {
      state: 'done',
      request,
      expiresAt: new Date(this.now() + this.ttlMs).toISOString(),
      status: response.status,
      contentType: response.contentType,
    };
    if (Buffer.byteLength(response.body) > INLINE_BODY_BYTES) {
      const object = `idempotency/${sha256Hex(response.body)}.json`;
      await this.objects.put(object, new TextEncoder().encode(response.body));
      data.bodyObject = object;
    } else {
      data.body = response.body;
    }
    await this.store.put({ ...itemKey, v: v + 1, data: { ...data } }, { kind: 'version', v });
  }

  private async release(itemKey: ItemKey, v: number): Promise<void> {
    try {
      await this.store.transact([{ op: 'delete', key: itemKey, condition: { kind: 'version', v } }]);
    } catch (e) {
      if (!isConflict(e)) throw e; // taken over after the lease: not ours to delete
    }
  }
}
