import type { CatalogItem, CatalogStore } from '../store/ports.js';
import { conflict, isConflict } from '../errors/index.js';

/** What happened to one delivered object. */
export type IngestionStatus = 'merged' | 'awaiting_approval' | 'failed' | 'refused' | 'skipped';

/** The recorded outcome of one object event (as `airlock ingest list --json` prints it). */
export interface IngestionRecord {
  /** SHA-256 (hex, first 16 digits) of bucket, key, version id and sequencer: the event's identity. */
  id: string;
  status: IngestionStatus;
  bucket: string;
  key: string;
  /** `null` for an unversioned bucket. */
  versionId: string | null;
  sequencer: string;
  /** The person the ingestion acted as (a service person, e.g. `ingest`). */
  person: string;
  table?: string;
  /** The ingest branch (kept for inspection when the ingestion failed or awaits approval). */
  branch?: string;
  target?: string;
  rows?: number;
  /** The import commit on the ingest branch. */
  commit?: string;
  /** The target's new head after the merge. */
  mergeCommit?: string;
  approvalId?: string;
  /** Why it failed, was refused or skipped. */
  error?: { code: string; message: string };
  started: string;
  finished: string;
}

/** The claim of one event: who is processing it, and the outcome once done. */
export interface EventClaim {
  state: 'started' | 'done';
  started: string;
  record?: IngestionRecord;
}

const CLAIMS = 'ingest#event';
const KEYS = 'ingest#key';
const LOG = 'ingest#log';

/**
 * The ingestion bookkeeping in the catalog store (any adapter: SQLite, DynamoDB):
 * - one claim item per event identity (`ingest#event`/<id>), created with an `absent`
 *   condition, so of two deliveries of the same event exactly one processes it;
 * - one item per object key (`ingest#key`/<bucket>/<key>) holding the newest sequencer
 *   processed, advanced by compare-and-set on its version, so an older event arriving
 *   later is recognised;
 * - one log item per finished ingestion (`ingest#log`, time-ordered) for listing.
 */
export class IngestionLog {
  constructor(private readonly store: CatalogStore) {}

  /**
   * Claims an event. Returns `claimed` (this caller processes it), or the existing claim.
   * A claim left `started` for longer than `leaseMs` (its processor died) is taken over
   * by compare-and-set on its version, so only one taker wins.
   */
  async claim(
    id: string,
    now: Date,
    leaseMs: number,
  ): Promise<{ claimed: true } | { claimed: false; claim: EventClaim }> {
    const item: CatalogItem = { pk: CLAIMS, sk: id, v: 1, data: { state: 'started', started: now.toISOString() } };
    try {
      await this.store.put(item, { kind: 'absent' });
      return { claimed: true };
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
    const existing = await this.store.get({ pk: CLAIMS, sk: id });
    if (!existing) return this.claim(id, now, leaseMs); // released in between
    const claim = existing.data as unknown as EventClaim;
    if (claim.state === 'started' && now.getTime() - Date.parse(claim.started) > leaseMs) {
      try {
        await this.store.put({ ...item, v: (existing.v ?? 1) + 1 }, { kind: 'version', v: existing.v ?? 1 });
        return { claimed: true };
      } catch (e) {
        if (!isConflict(e)) throw e;
        const again = await this.store.get({ pk: CLAIMS, sk: id });
        return { claimed: false, claim: (again?.data ?? claim) as unknown as EventClaim };
      }
    }
    return { claimed: false, claim };
  }

  /** Gives a claim up (after an infrastructure failure), so the redelivery processes the event at once. */
  async release(id: string): Promise<void> {
    await this.store.transact([{ op: 'delete', key: { pk: CLAIMS, sk: id } }]);
  }

  /**
   * Records where a key has got to. Returns the newer sequencer already processed for the
   * key when there is one (then nothing is written), else advances the key to `sequencer`.
   */
  async advanceKey(
    bucket: string,
    key: string,
    sequencer: string,
    id: string,
    compare: (a: string, b: string) => number,
  ): Promise<{ newer?: { sequencer: string; id: string } }> {
    const itemKey = { pk: KEYS, sk: `${bucket}/${key}` };
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await this.store.get(itemKey);
      const seen = current?.data as { sequencer: string; id: string } | undefined;
      if (seen && compare(seen.sequencer, sequencer) > 0) return { newer: seen };
      if (seen && compare(seen.sequencer, sequencer) === 0) return {};
      try {
        const v = (current?.v ?? 0) + 1;
        await this.store.put(
          { ...itemKey, v, data: { sequencer, id } },
          current ? { kind: 'version', v: current.v ?? 0 } : { kind: 'absent' },
        );
        return {};
      } catch (e) {
        if (!isConflict(e)) throw e; // another event of this key moved it: compare again
      }
    }
    throw conflict(
      `the newest sequencer of ${bucket}/${key} kept changing under 20 attempts; the event will be retried`,
      {
        key,
      },
    );
  }

  /** Marks the claim done and appends the record to the listable log, in one transaction. */
  async finish(record: IngestionRecord): Promise<void> {
    await this.store.transact([
      {
        op: 'put',
        item: { pk: CLAIMS, sk: record.id, data: { state: 'done', started: record.started, record } },
      },
      { op: 'put', item: { pk: LOG, sk: `${record.finished}#${record.id}`, t: record.finished, data: { ...record } } },
    ]);
  }

  /** Finished ingestions, newest first. */
  async list(options: { limit?: number; status?: IngestionStatus } = {}): Promise<IngestionRecord[]> {
    const limit = options.limit ?? 50;
    const out: IngestionRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.query(LOG, { reverse: true, limit: 200, ...(cursor ? { cursor } : {}) });
      for (const item of page.items) {
        const record = item.data as unknown as IngestionRecord;
        if (!options.status || record.status === options.status) out.push(record);
        if (out.length >= limit) return out;
      }
      cursor = page.cursor;
    } while (cursor);
    return out;
  }

  /** The record of one finished ingestion by its id, or undefined (unknown, or still in progress). */
  async get(id: string): Promise<IngestionRecord | undefined> {
    const item = await this.store.get({ pk: CLAIMS, sk: id });
    return (item?.data as unknown as EventClaim | undefined)?.record;
  }
}
