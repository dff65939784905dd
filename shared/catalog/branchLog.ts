import type { CatalogItem, CatalogStore, ItemKey, WriteOp } from '../store/ports.js';
import type { Documents, InlineDoc } from './documents.js';
import type { BranchEvent } from './model.js';

/** Width of the zero-padded sequence number in log sort keys (string order = numeric order). */
const SEQ_WIDTH = 12;

/** The partition holding a branch's event log. */
export const logPk = (branch: string) => `log#${branch}`;
/** The sort key of event `seq`. */
export const seqSk = (seq: number) => String(seq).padStart(SEQ_WIDTH, '0');
/** The registry item listing a branch (written in the same transaction as its create/delete event). */
export const registryKey = (branch: string): ItemKey => ({ pk: 'branches', sk: branch });
/** The sync point between two branches (see `mergeBase.ts`). */
export const syncKey = (a: string, b: string): ItemKey => ({ pk: `sync#${a}`, sk: b });

/** The most branch heads remembered per process (forgetting one only costs a read). */
const HEAD_CACHE_LIMIT = 10_000;

/**
 * Reads and appends branch events. A branch is an append-only log; its head is its last
 * event. Appends are conditional on the next sequence number being absent, which is the
 * whole of optimistic concurrency:
 *
 *   writer A reads head seq 7 ─┐            ┌─ A puts seq 8 if absent → ok
 *   writer B reads head seq 7 ─┴────────────┴─ B puts seq 8 if absent → CONFLICT, B re-reads
 *
 * so two writers can never both believe they advanced the same head.
 *
 * A log item may carry the documents its event introduced (commit, tree, new table
 * versions) inline, under `docs`. Every read here strips them from the event, primes the
 * document cache with them and keeps them attached to the returned event object
 * ({@link inlineDocs}), so a head is readable through its log item alone — even when its
 * separate document items were never written (see `Catalog` for the protocol).
 *
 * Log items never change once written, so the last event seen per branch is kept
 * ({@link cached}): a writer may prepare its next event against it without a read; if it
 * is stale, the conditional append fails and the writer reads the head again.
 */
export class BranchLog {
  private readonly heads = new Map<string, BranchEvent>();
  private readonly inline = new WeakMap<BranchEvent, InlineDoc[]>();

  constructor(
    private readonly store: CatalogStore,
    private readonly docs: Documents,
  ) {}

  /** The last event of a branch (including a `delete`), or undefined if it never existed. One read. */
  async last(branch: string): Promise<BranchEvent | undefined> {
    const page = await this.store.query(logPk(branch), { reverse: true, limit: 1 });
    const item = page.items[0];
    if (!item) return undefined;
    const event = this.fromItem(item);
    this.remember(event);
    return event;
  }

  /** The event at `seq`, or undefined. One read. */
  async at(branch: string, seq: number): Promise<BranchEvent | undefined> {
    const item = await this.store.get({ pk: logPk(branch), sk: seqSk(seq) });
    return item && this.fromItem(item);
  }

  /** The last event at or before `time` (ISO-8601 UTC), via the time index. One read. */
  async asOf(branch: string, time: string): Promise<BranchEvent | undefined> {
    const page = await this.store.query(logPk(branch), { index: 'time', lte: time, reverse: true, limit: 1 });
    const item = page.items[0];
    return item && this.fromItem(item);
  }

  /** Events with seq in [from, to], newest first, at most `limit`. One read per page. */
  async range(branch: string, from: number, to: number, limit: number): Promise<BranchEvent[]> {
    const out: BranchEvent[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.query(logPk(branch), {
        gte: seqSk(from),
        lte: seqSk(to),
        reverse: true,
        limit: limit - out.length,
        ...(cursor ? { cursor } : {}),
      });
      out.push(...page.items.map((i) => this.fromItem(i)));
      cursor = page.cursor;
    } while (cursor && out.length < limit);
    return out;
  }

  /**
   * The newest event of `branch` this process has seen (read or appended), without a
   * read. It may be stale: use it only to prepare a conditional append, never to answer a
   * read.
   */
  cached(branch: string): BranchEvent | undefined {
    const event = this.heads.get(branch);
    if (event) this.reprime(event);
    return event;
  }

  /** Records an event this process read or appended, when it is the newest seen of its branch. */
  remember(event: BranchEvent, inline?: InlineDoc[]): void {
    if (inline) this.inline.set(event, inline);
    const known = this.heads.get(event.branch);
    if (known && known.seq > event.seq) return;
    if (!known && this.heads.size >= HEAD_CACHE_LIMIT) this.heads.clear();
    this.heads.set(event.branch, event);
  }

  /** The documents the log item of `event` carries inline, when this process read or wrote it. */
  inlineDocs(event: BranchEvent): InlineDoc[] | undefined {
    return this.inline.get(event);
  }

  /** Primes the document cache again from an event's inline documents (the cache may have been cleared). */
  reprime(event: BranchEvent): void {
    const docs = this.inline.get(event);
    if (docs) this.docs.prime(docs);
  }

  private fromItem(item: CatalogItem): BranchEvent {
    const { docs, ...event } = item.data as unknown as BranchEvent & { docs?: InlineDoc[] };
    if (Array.isArray(docs)) {
      this.docs.prime(docs);
      this.inline.set(event, docs);
    }
    return event;
  }

  /**
   * The write that appends `event`: a put conditional on its sequence number being absent,
   * carrying `inline` documents in the same item when given. Times are made monotonic per
   * log by the caller so the time index orders like seq.
   */
  static appendOp(event: BranchEvent, inline?: InlineDoc[]): WriteOp & { op: 'put' } {
    return {
      op: 'put',
      item: {
        pk: logPk(event.branch),
        sk: seqSk(event.seq),
        t: event.time,
        data: { ...event, ...(inline ? { docs: inline } : {}) },
      },
      condition: { kind: 'absent' },
    };
  }
}

/** A time strictly after `previous` (ISO strings of equal width compare like times), at least `now`. */
export function monotonicTime(now: Date, previous: string | undefined): string {
  const t = now.toISOString();
  if (previous === undefined || t > previous) return t;
  return new Date(Date.parse(previous) + 1).toISOString();
}
