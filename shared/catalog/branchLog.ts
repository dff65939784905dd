import type { CatalogStore, ItemKey, WriteOp } from '../store/ports.js';
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

/**
 * Reads and appends branch events. A branch is an append-only log; its head is its last
 * event. Appends are conditional on the next sequence number being absent, which is the
 * whole of optimistic concurrency:
 *
 *   writer A reads head seq 7 ─┐            ┌─ A puts seq 8 if absent → ok
 *   writer B reads head seq 7 ─┴────────────┴─ B puts seq 8 if absent → CONFLICT, B re-reads
 *
 * so two writers can never both believe they advanced the same head.
 */
export class BranchLog {
  constructor(private readonly store: CatalogStore) {}

  /** The last event of a branch (including a `delete`), or undefined if it never existed. One read. */
  async last(branch: string): Promise<BranchEvent | undefined> {
    const page = await this.store.query(logPk(branch), { reverse: true, limit: 1 });
    return page.items[0]?.data as BranchEvent | undefined;
  }

  /** The event at `seq`, or undefined. One read. */
  async at(branch: string, seq: number): Promise<BranchEvent | undefined> {
    const item = await this.store.get({ pk: logPk(branch), sk: seqSk(seq) });
    return item?.data as BranchEvent | undefined;
  }

  /** The last event at or before `time` (ISO-8601 UTC), via the time index. One read. */
  async asOf(branch: string, time: string): Promise<BranchEvent | undefined> {
    const page = await this.store.query(logPk(branch), { index: 'time', lte: time, reverse: true, limit: 1 });
    return page.items[0]?.data as BranchEvent | undefined;
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
      out.push(...page.items.map((i) => i.data as unknown as BranchEvent));
      cursor = page.cursor;
    } while (cursor && out.length < limit);
    return out;
  }

  /**
   * The write that appends `event`: a put conditional on its sequence number being absent.
   * Times are made monotonic per log by the caller so the time index orders like seq.
   */
  static appendOp(event: BranchEvent): WriteOp {
    return {
      op: 'put',
      item: { pk: logPk(event.branch), sk: seqSk(event.seq), t: event.time, data: { ...event } },
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
