import { randomUUID } from 'node:crypto';
import { isConflict, limitExceeded } from '../errors/index.js';
import type { CatalogItem, CatalogStore, Condition } from '../store/ports.js';
import type { QueryCaps, QueryGovernorLike } from './types.js';

/** Options of a {@link QueryGovernor}. */
export interface QueryGovernorOptions {
  /** Clock (tests move it). Defaults to `Date.now`. */
  now?: () => number;
  /**
   * How long a slot lease lives beyond the query's timeout before another query may
   * reclaim it (covers a process that died holding the slot). Default 30 s.
   */
  leaseGraceMs?: number;
  /** Compare-and-set attempts on the budget item before giving up. Default 20. */
  maxCasAttempts?: number;
}

/** A held concurrency slot. Release it exactly once, after the query. */
export interface SlotLease {
  person: string;
  slot: number;
  leaseId: string;
  release(): Promise<void>;
}

/** A person's scanned bytes on one UTC day. */
export interface BudgetUsage {
  person: string;
  day: string;
  bytes: number;
  queries: number;
}

const slotPk = (person: string) => `qslot#${person}`;
const budgetPk = (person: string) => `qbudget#${person}`;
const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
/** The condition that an item is still as read: the same version, or still absent. */
const expected = (item: CatalogItem | undefined): Condition =>
  item ? { kind: 'version', v: item.v ?? 0 } : { kind: 'absent' };

/**
 * Per-person query governance that holds across processes and machines because it lives
 * in the {@link CatalogStore}: at most `caps.maxConcurrent` running queries per person,
 * and at most `caps.dailyBytes` scanned per person per UTC day. Agents act for a person
 * and draw on that person's slots and budget: callers pass `actor.person`, never the agent.
 *
 * Items:
 * - `qslot#<person>` / `slot#<i>` (i < maxConcurrent): `{ state: 'held', leaseId, expiresAt }`
 *   or `{ state: 'free' }`. Taken with a conditional write (`absent` for a new slot,
 *   `version` CAS for a free or expired one), so two queries racing for one slot cannot
 *   both win: the loser's condition fails and it tries the next slot.
 * - `qbudget#<person>` / `<YYYY-MM-DD>`: `{ bytes, queries }`, incremented by version CAS
 *   with retries, so concurrent charges never lose an update.
 *
 * {@link admit} writes a slot and the budget in one conditional transaction (one store
 * write per admitted query, one more to release it); `acquireSlot` and `charge` do each
 * half alone.
 *
 * @example
 * const governor = new QueryGovernor(store);
 * const admission = await governor.admit(actor.person, caps, estimatedBytes);
 * try { … run … } finally { await admission.release(); }
 */
export class QueryGovernor implements QueryGovernorLike {
  private readonly now: () => number;
  private readonly leaseGraceMs: number;
  private readonly maxCasAttempts: number;

  constructor(
    private readonly store: CatalogStore,
    options: QueryGovernorOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.leaseGraceMs = options.leaseGraceMs ?? 30_000;
    this.maxCasAttempts = options.maxCasAttempts ?? 20;
  }

  /**
   * Admits one query of `bytes` estimated scanned bytes: takes a concurrency slot AND
   * charges the daily budget in ONE conditional transaction (one store write, one fsync
   * on SQLite, instead of one per item), after one read of the slots and the budget. A
   * query refused by either cap writes nothing. The budget is charged up front, so a
   * query that later fails still counts: it did start. Throws `LIMIT_EXCEEDED` naming the
   * cap and the numbers.
   *
   * Races: the transaction holds only if the chosen slot and the budget item are still
   * the versions read (`absent` when new). Two queries racing for one slot, or charging
   * the same budget, cannot both win: the loser's transaction fails as a whole (neither
   * its slot nor its charge is written), and it re-reads and tries again, with jitter.
   */
  async admit(person: string, caps: QueryCaps, bytes: number): Promise<SlotLease> {
    const pk = slotPk(person);
    const leaseId = randomUUID();
    const slotKeys = Array.from({ length: caps.maxConcurrent }, (_, i) => ({ pk, sk: `slot#${i}` }));
    for (let attempt = 0; attempt < this.maxCasAttempts; attempt++) {
      const now = this.now();
      const day = utcDay(now);
      const budgetKey = { pk: budgetPk(person), sk: day };
      const items = await this.store.getMany([...slotKeys, budgetKey]);
      const byKey = new Map(items.map((i) => [`${i.pk}\u0000${i.sk}`, i]));
      const budget = byKey.get(`${budgetKey.pk}\u0000${budgetKey.sk}`);
      const used = Number(budget?.data.bytes ?? 0);
      const queries = Number(budget?.data.queries ?? 0);
      const free = slotKeys.filter((k) => {
        const slot = byKey.get(`${k.pk}\u0000${k.sk}`);
        return !(slot && slot.data.state === 'held' && Number(slot.data.expiresAt) > now);
      });
      if (free.length === 0) throw this.tooManyRunning(person, caps.maxConcurrent, caps.maxConcurrent);
      if (used + bytes > caps.dailyBytes) throw this.overBudget(person, day, used, bytes, caps.dailyBytes);
      // A random free slot: racing queries of one person then rarely pick the same one.
      const key = free[Math.floor(Math.random() * free.length)] as (typeof free)[number];
      const current = byKey.get(`${key.pk}\u0000${key.sk}`);
      const v = (current?.v ?? 0) + 1;
      const slotItem: CatalogItem = {
        ...key,
        v,
        data: { state: 'held', leaseId, expiresAt: now + caps.timeoutMs + this.leaseGraceMs, acquiredAt: now },
      };
      const budgetItem: CatalogItem = {
        ...budgetKey,
        v: (budget?.v ?? 0) + 1,
        data: { bytes: used + bytes, queries: queries + 1 },
      };
      try {
        await this.store.transact([
          { op: 'put', item: slotItem, condition: expected(current) },
          { op: 'put', item: budgetItem, condition: expected(budget) },
        ]);
        return this.lease(person, Number(key.sk.slice('slot#'.length)), leaseId, v);
      } catch (e) {
        if (!isConflict(e)) throw e;
        await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)));
      }
    }
    throw limitExceeded(
      `the query slots and budget of ${person} are too contended: gave up after ${this.maxCasAttempts} attempts; retry`,
      { cap: 'maxConcurrent', person },
    );
  }

  private tooManyRunning(person: string, running: number, maxConcurrent: number) {
    return limitExceeded(
      `max concurrent queries exceeded: ${person} already runs ${running} queries, ${maxConcurrent} allowed (cap maxConcurrent=${maxConcurrent}); retry when one finishes`,
      { cap: 'maxConcurrent', limit: maxConcurrent, running, person },
    );
  }

  private overBudget(person: string, day: string, used: number, bytes: number, dailyBytes: number) {
    return limitExceeded(
      `daily scanned-bytes budget exceeded for ${person}: ${used} bytes used today (${day} UTC) + ${bytes} for this query > ${dailyBytes} allowed (cap dailyBytes=${dailyBytes})`,
      { cap: 'dailyBytes', limit: dailyBytes, used, requested: bytes, person, day },
    );
  }

  /**
   * Takes one of the person's `maxConcurrent` slots for `ttlMs` (+ grace). Throws
   * `LIMIT_EXCEEDED` when all are held by live leases.
   */
  async acquireSlot(person: string, maxConcurrent: number, ttlMs: number): Promise<SlotLease> {
    const pk = slotPk(person);
    const leaseId = randomUUID();
    let held = 0;
    // Two passes: a conflict in the first means the slots changed under us (one may have
    // been released meanwhile), so look once more before refusing.
    for (let pass = 0; pass < 2; pass++) {
      const keys = Array.from({ length: maxConcurrent }, (_, i) => ({ pk, sk: `slot#${i}` }));
      const bySk = new Map((await this.store.getMany(keys)).map((i) => [i.sk, i]));
      held = 0;
      let conflicts = 0;
      for (let i = 0; i < maxConcurrent; i++) {
        const sk = `slot#${i}`;
        const current = bySk.get(sk);
        const now = this.now();
        if (current && current.data.state === 'held' && Number(current.data.expiresAt) > now) {
          held++;
          continue;
        }
        const v = (current?.v ?? 0) + 1;
        const item: CatalogItem = {
          pk,
          sk,
          v,
          data: { state: 'held', leaseId, expiresAt: now + ttlMs + this.leaseGraceMs, acquiredAt: now },
        };
        try {
          // A free or expired slot is taken only if nobody changed it since we read it.
          await this.store.put(item, current ? { kind: 'version', v: current.v ?? 0 } : { kind: 'absent' });
          return this.lease(person, i, leaseId, v);
        } catch (e) {
          if (!isConflict(e)) throw e;
          held++;
          conflicts++;
        }
      }
      if (conflicts === 0) break;
    }
    throw this.tooManyRunning(person, held, maxConcurrent);
  }

  private lease(person: string, slot: number, leaseId: string, v: number): SlotLease {
    let released = false;
    return {
      person,
      slot,
      leaseId,
      release: async () => {
        if (released) return;
        released = true;
        try {
          await this.store.put(
            { pk: slotPk(person), sk: `slot#${slot}`, v: v + 1, data: { state: 'free' } },
            { kind: 'version', v },
          );
        } catch (e) {
          // Our lease expired and another query reclaimed the slot: it is theirs now.
          if (!isConflict(e)) throw e;
        }
      },
    };
  }

  /**
   * Adds `bytes` to the person's scanned bytes of today (UTC), refusing with
   * `LIMIT_EXCEEDED` when the total would pass `dailyBytes`. Returns the new usage.
   */
  async charge(person: string, bytes: number, dailyBytes: number): Promise<BudgetUsage> {
    const day = utcDay(this.now());
    const key = { pk: budgetPk(person), sk: day };
    for (let attempt = 0; attempt < this.maxCasAttempts; attempt++) {
      const current = await this.store.get(key);
      const used = Number(current?.data.bytes ?? 0);
      const queries = Number(current?.data.queries ?? 0);
      if (used + bytes > dailyBytes) {
        throw this.overBudget(person, day, used, bytes, dailyBytes);
      }
      const next: CatalogItem = {
        ...key,
        v: (current?.v ?? 0) + 1,
        data: { bytes: used + bytes, queries: queries + 1 },
      };
      try {
        await this.store.put(next, current ? { kind: 'version', v: current.v ?? 0 } : { kind: 'absent' });
        return { person, day, bytes: used + bytes, queries: queries + 1 };
      } catch (e) {
        if (!isConflict(e)) throw e;
        await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)));
      }
    }
    throw limitExceeded(
      `daily budget of ${person} is too contended: gave up after ${this.maxCasAttempts} attempts; retry`,
      {
        cap: 'dailyBytes',
        person,
      },
    );
  }

  /** The person's scanned bytes on `day` (default: today, UTC). */
  async usage(person: string, day: string = utcDay(this.now())): Promise<BudgetUsage> {
    const item = await this.store.get({ pk: budgetPk(person), sk: day });
    return { person, day, bytes: Number(item?.data.bytes ?? 0), queries: Number(item?.data.queries ?? 0) };
  }
}
