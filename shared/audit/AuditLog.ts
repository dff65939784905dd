import { conflict, invalid, isConflict, isNotFound } from '../errors/index.js';
import type { CatalogItem, CatalogStore, ObjectStore } from '../store/index.js';
import { backoffDelay } from '../store/index.js';
import type { AuditLogQuery } from './auditQuery.js';
import {
  AUDIT_ANCHOR_PREFIX,
  AUDIT_PARTITION,
  type AuditAnchor,
  type AuditEntry,
  type AuditOutcome,
  anchorKey,
  auditSeqKey,
  entryHash,
  GENESIS_HASH,
  requestHash,
} from './hashChain.js';
import { redactDetails, redactSecretsInText } from './redactSecrets.js';
import { type AuditVerification, type ChainSource, verifyAuditChain } from './verifyAuditChain.js';

/** What the enforcement point records about one request. */
export interface AuditRecord {
  person: string;
  agent?: string;
  action: string;
  target: string;
  outcome: AuditOutcome;
  /** The request's hash, when the caller computed it (e.g. keyed); otherwise see `request`. */
  requestHash?: string;
  /**
   * The request itself, only to hash it ({@link requestHash}); never stored. Without it
   * and without `requestHash`, the hash covers `{ action, target }`.
   */
  request?: unknown;
  /** Small facts; redacted before storing (secrets cut, SQL literals replaced, sizes capped). */
  details?: Record<string, unknown>;
}

/** How hard an append tries when other writers keep winning the next seq. */
export interface AuditRetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  /** Write an anchor whenever an append reaches a multiple of this seq (default 1000; 0 = only on demand). */
  anchorEvery?: number;
  /** The partition of the chain (default `audit`). */
  partition?: string;
  /** Object key prefix of anchors (default `audit/anchors/`). */
  anchorPrefix?: string;
  /** Appends retry on CONFLICT with full-jitter backoff up to this bound (default 50 attempts, 2–250 ms). */
  retry?: AuditRetryPolicy;
  /** The clock (tests). */
  now?: () => Date;
  /**
   * Called when a periodic anchor cannot be written or an existing anchor disagrees with
   * the chain. The append itself has succeeded by then, so it is not failed (a caller
   * retrying it would log the request twice). Default: a process warning.
   */
  onAnchorProblem?: (message: string, error?: unknown) => void;
  /** Page size of verification and log reads (default 1000, the store's maximum page). */
  pageSize?: number;
}

const DEFAULT_RETRY: AuditRetryPolicy = { maxAttempts: 50, baseDelayMs: 2, maxDelayMs: 250 };
/** Largest canonical size of an entry's details; bigger details are replaced by a note of their size. */
export const MAX_DETAILS_BYTES = 4096;
const MAX_NAME_LENGTH = 512;

/** A time strictly after `previous` (ISO strings of equal width compare like times), at least `now`. */
function monotonicTime(now: Date, previous: string | undefined): string {
  const t = now.toISOString();
  if (previous === undefined || t > previous) return t;
  return new Date(Date.parse(previous) + 1).toISOString();
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function name(field: string, value: unknown, optional = false): string | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'string' || value === '' || value.length > MAX_NAME_LENGTH) {
    throw invalid(`an audit record needs ${field} as a non-empty string of at most ${MAX_NAME_LENGTH} characters`, {
      field,
    });
  }
  return redactSecretsInText(value);
}

function parseAnchor(bytes: Uint8Array, seq: number): AuditAnchor {
  const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<AuditAnchor>;
  if (value.seq !== seq || typeof value.hash !== 'string' || typeof value.time !== 'string') {
    throw new Error(`expected {seq: ${seq}, hash, time}, got ${JSON.stringify(value).slice(0, 200)}`);
  }
  return { seq: value.seq, hash: value.hash, time: value.time };
}

/**
 * The tamper-evident audit trail: an append-only SHA-256 hash chain of {@link AuditEntry}
 * items in one partition of the {@link CatalogStore}, with its head anchored in the
 * {@link ObjectStore} (S3 Object Lock on AWS) every `anchorEvery` entries and on demand.
 *
 * Appends use the catalog's optimistic protocol: entry n+1 is a put conditional on its key
 * being absent, prepared against the head this writer last saw:
 *
 *   A sees head 41 ─┐                ┌─ A puts 42 (prevHash = hash 41) if absent → ok
 *   B sees head 41 ─┴────────────────┴─ B puts 42 (prevHash = hash 41) if absent → CONFLICT
 *                                       B re-reads head 42, puts 43 (prevHash = hash 42) → ok
 *
 * so each seq holds exactly one entry and each entry links to the one actually before it:
 * concurrent writers (threads, processes, Lambda instances) never fork the chain.
 *
 * @example
 * const audit = new AuditLog(lake.stores.store, lake.stores.objects);
 * await audit.append({ person: 'ann', agent: 'bot', action: 'query', target: 'main', outcome: 'ok',
 *   request: { sql }, details: { sql: redactSql(sql), rows: 12 } });
 * const result = await audit.verify(); // { ok: true, entries, entriesPerSecond, … }
 */
export class AuditLog {
  private readonly anchorEvery: number;
  private readonly partition: string;
  private readonly anchorPrefix: string;
  private readonly retry: AuditRetryPolicy;
  private readonly now: () => Date;
  private readonly onAnchorProblem: (message: string, error?: unknown) => void;
  private readonly pageSize: number;
  /** The newest entry this instance appended or read: entries never change, so it is safe to prepare against. */
  private cachedHead: AuditEntry | undefined;
  private conflicts = 0;

  constructor(
    private readonly store: CatalogStore,
    private readonly objects: ObjectStore,
    options: AuditLogOptions = {},
  ) {
    this.anchorEvery = options.anchorEvery ?? 1000;
    if (!Number.isSafeInteger(this.anchorEvery) || this.anchorEvery < 0) {
      throw invalid(`anchorEvery must be a whole number ≥ 0, got ${options.anchorEvery}`);
    }
    this.partition = options.partition ?? AUDIT_PARTITION;
    this.anchorPrefix = options.anchorPrefix ?? AUDIT_ANCHOR_PREFIX;
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.now = options.now ?? (() => new Date());
    this.onAnchorProblem =
      options.onAnchorProblem ?? ((message) => process.emitWarning(message, { code: 'AIRLOCK_AUDIT_ANCHOR' }));
    this.pageSize = options.pageSize ?? 1000;
  }

  /** CONFLICTs this instance lost while appending (each was retried). */
  get conflictsSeen(): number {
    return this.conflicts;
  }

  /**
   * Appends one entry and returns it as stored. Validates and redacts the record first
   * (secret-looking values cut, SQL literals replaced, details capped at
   * {@link MAX_DETAILS_BYTES}); `request` is hashed and dropped. Throws `CONFLICT` only
   * when other writers won the next seq `retry.maxAttempts` times in a row.
   */
  async append(record: AuditRecord): Promise<AuditEntry> {
    const body = this.prepare(record);
    let head = this.cachedHead;
    let fresh = false;
    if (!head) {
      head = await this.readHead();
      fresh = true;
    }
    for (let attempt = 1; ; attempt++) {
      const seq = (head?.seq ?? 0) + 1;
      const time = monotonicTime(this.now(), head?.time);
      const unhashed: Omit<AuditEntry, 'hash'> = { seq, time, ...body, prevHash: head?.hash ?? GENESIS_HASH };
      const entry: AuditEntry = { ...unhashed, hash: entryHash(unhashed) };
      try {
        // The invariant of the chain: only one writer can ever create seq n (absent-only put).
        await this.store.put(
          { pk: this.partition, sk: auditSeqKey(seq), t: time, data: entry as unknown as Record<string, unknown> },
          { kind: 'absent' },
        );
      } catch (error) {
        if (!isConflict(error)) throw error;
        this.conflicts += 1;
        if (attempt >= this.retry.maxAttempts) {
          throw conflict(
            `the audit chain kept moving: gave up appending after ${attempt} attempts (last tried seq ${seq})`,
            { partition: this.partition, seq, attempts: attempt },
            error,
          );
        }
        // A stale remembered head costs one re-read; losing a race on a fresh head backs off first.
        if (fresh) await sleep(backoffDelay(attempt, this.retry));
        head = await this.readHead();
        fresh = true;
        continue;
      }
      this.cachedHead = entry;
      if (this.anchorEvery > 0 && seq % this.anchorEvery === 0) await this.writeAnchor(entry);
      return entry;
    }
  }

  /** The newest entry, read from the store (undefined while the chain is empty). One read. */
  async head(): Promise<AuditEntry | undefined> {
    return this.readHead();
  }

  /**
   * Writes the current chain head as an anchor now (e.g. at shutdown, or from a schedule)
   * and returns it; undefined when the chain is empty. An existing anchor at the same seq
   * is never overwritten: when it differs from the chain, the chain was tampered with and
   * this throws `CONFLICT` naming the seq.
   */
  async anchor(): Promise<AuditAnchor | undefined> {
    const head = await this.readHead();
    if (!head) return undefined;
    const anchor = { seq: head.seq, hash: head.hash, time: head.time };
    const existing = await this.readAnchor(head.seq);
    if (existing && existing.hash !== head.hash) {
      throw conflict(
        `the anchor at seq ${head.seq} records hash ${existing.hash.slice(0, 12)}, but the chain's entry ${head.seq} hashes to ${head.hash.slice(0, 12)}: run 'airlock audit verify'`,
        { seq: head.seq, anchorHash: existing.hash, entryHash: head.hash },
      );
    }
    if (!existing) await this.objects.put(anchorKey(head.seq, this.anchorPrefix), this.anchorBytes(anchor));
    return anchor;
  }

  /** Every anchor, in seq order. Throws `INVALID` naming an unreadable one. */
  async anchors(): Promise<AuditAnchor[]> {
    const listed = await this.listAnchors();
    if (!Array.isArray(listed)) {
      const { key, why } = listed.invalid;
      throw invalid(`the audit anchor ${key} is unreadable: ${why}`, { key });
    }
    return listed;
  }

  /**
   * Recomputes the whole chain from entry 1 (paging through the store) and checks it
   * against every anchor. Returns `ok` with counts and throughput, or the first problem:
   * its kind (`altered`, `deleted`, `inserted`, `reordered`, `truncated`,
   * `anchor_invalid`), the seq it names and a message saying what is wrong.
   */
  async verify(): Promise<AuditVerification> {
    const source: ChainSource = { items: () => this.allItems(), anchors: await this.listAnchors() };
    return verifyAuditChain(source);
  }

  /**
   * Entries matching `query`, newest first: "why did this happen". With `since`, reads the
   * time index from that instant on; filters are applied while paging, so the cost is the
   * number of entries at or after `since` (or in the chain) that had to be skipped.
   */
  async log(query: AuditLogQuery = {}): Promise<AuditEntry[]> {
    const limit = query.limit ?? 50;
    if (!Number.isSafeInteger(limit) || limit < 1) throw invalid(`limit must be a positive whole number, got ${limit}`);
    const sinceDate = query.since === undefined ? undefined : new Date(query.since);
    if (sinceDate && Number.isNaN(sinceDate.getTime())) throw invalid(`since is not a time: '${String(query.since)}'`);
    const since = sinceDate?.toISOString();
    const action = query.action;
    const matchAction =
      action === undefined
        ? () => true
        : action.endsWith('*')
          ? (a: string) => a.startsWith(action.slice(0, -1))
          : (a: string) => a === action;
    const out: AuditEntry[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.query(this.partition, {
        reverse: true,
        limit: this.pageSize,
        ...(since !== undefined ? { index: 'time' as const, gte: since } : {}),
        ...(cursor ? { cursor } : {}),
      });
      for (const item of page.items) {
        const e = item.data as unknown as AuditEntry;
        if (query.actor) {
          if (e.person !== query.actor.person) continue;
          if (query.actor.agent !== undefined && e.agent !== query.actor.agent) continue;
        }
        if (!matchAction(e.action)) continue;
        if (query.target !== undefined && e.target !== query.target) continue;
        if (query.outcome !== undefined && e.outcome !== query.outcome) continue;
        out.push(e);
        if (out.length >= limit) return out;
      }
      cursor = page.cursor;
    } while (cursor);
    return out;
  }

  // ------------------------------------------------------------------ internals

  private prepare(record: AuditRecord): Omit<AuditEntry, 'seq' | 'time' | 'prevHash' | 'hash'> {
    const person = name('person', record.person) as string;
    const agent = name('agent', record.agent, true);
    const action = name('action', record.action) as string;
    const target = name('target', record.target) as string;
    const outcome = name('outcome', record.outcome) as string;
    const hash = record.requestHash ?? requestHash(record.request === undefined ? { action, target } : record.request);
    if (!/^[0-9a-f]{64}$/.test(hash)) throw invalid('requestHash must be 64 lowercase hex characters');
    const body: Omit<AuditEntry, 'seq' | 'time' | 'prevHash' | 'hash'> = {
      person,
      ...(agent !== undefined ? { agent } : {}),
      action,
      target,
      outcome,
      requestHash: hash,
    };
    if (record.details !== undefined) {
      let details = redactDetails(record.details) as Record<string, unknown>;
      const bytes = Buffer.byteLength(JSON.stringify(details));
      if (bytes > MAX_DETAILS_BYTES) details = { omitted: `details of ${bytes} bytes exceed ${MAX_DETAILS_BYTES}` };
      if (Object.keys(details).length > 0) body.details = details;
    }
    return body;
  }

  private async readHead(): Promise<AuditEntry | undefined> {
    const page = await this.store.query(this.partition, { reverse: true, limit: 1 });
    const head = page.items[0]?.data as unknown as AuditEntry | undefined;
    if (head) this.cachedHead = head;
    return head;
  }

  private anchorBytes(anchor: AuditAnchor): Uint8Array {
    return Buffer.from(`${JSON.stringify({ seq: anchor.seq, hash: anchor.hash, time: anchor.time })}\n`);
  }

  private async readAnchor(seq: number): Promise<AuditAnchor | undefined> {
    try {
      return parseAnchor(await this.objects.get(anchorKey(seq, this.anchorPrefix)), seq);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /**
   * Writes the anchor of `entry` unless one exists. Anchors are immutable (Object Lock on
   * AWS): an existing anchor that disagrees means the chain was cut back and re-grown
   * past it, and overwriting it would erase the evidence, so it is reported instead.
   */
  private async writeAnchor(entry: AuditEntry): Promise<void> {
    const anchor = { seq: entry.seq, hash: entry.hash, time: entry.time };
    try {
      const existing = await this.readAnchor(entry.seq);
      if (existing) {
        if (existing.hash !== entry.hash) {
          this.onAnchorProblem(
            `audit anchor ${entry.seq} records hash ${existing.hash.slice(0, 12)} but entry ${entry.seq} hashes to ${entry.hash.slice(0, 12)}; the anchor was kept (run 'airlock audit verify')`,
          );
        }
        return;
      }
      await this.objects.put(anchorKey(entry.seq, this.anchorPrefix), this.anchorBytes(anchor));
    } catch (error) {
      this.onAnchorProblem(
        `could not write the audit anchor at seq ${entry.seq}: ${error instanceof Error ? error.message : String(error)}`,
        error,
      );
    }
  }

  private async listAnchors(): Promise<ChainSource['anchors']> {
    const out: AuditAnchor[] = [];
    for await (const info of this.objects.list(this.anchorPrefix)) {
      const rest = info.key.slice(this.anchorPrefix.length);
      const m = /^(\d{12})\.json$/.exec(rest);
      const seq = m ? Number(m[1]) : Number.NaN;
      if (!m || seq < 1) {
        return { invalid: { seq: 0, key: info.key, why: 'its key is not <12-digit seq>.json' } };
      }
      try {
        out.push(parseAnchor(await this.objects.get(info.key), seq));
      } catch (error) {
        return { invalid: { seq, key: info.key, why: error instanceof Error ? error.message : String(error) } };
      }
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  private async *allItems(): AsyncGenerator<CatalogItem> {
    let cursor: string | undefined;
    do {
      const page = await this.store.query(this.partition, { limit: this.pageSize, ...(cursor ? { cursor } : {}) });
      yield* page.items;
      cursor = page.cursor;
    } while (cursor);
  }
}
