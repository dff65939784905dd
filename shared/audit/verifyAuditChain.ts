/**
 * Verification of the audit chain: recompute every hash and link from entry 1, compare
 * with the anchors, and when something does not fit, say precisely what happened to which
 * entry.
 *
 * Two passes, the second only on failure. The first streams the partition page by page
 * with O(1) memory and stops at the first item that does not continue the chain. The
 * second reads the whole partition and classifies that item by looking at the rest of the
 * chain (does its predecessor appear later? does another item claim its seq? …).
 */
import type { CatalogItem } from '../store/index.js';
import { type AuditAnchor, type AuditEntry, entryHash, GENESIS_HASH, seqOfKey } from './hashChain.js';

/**
 * What was done to the chain:
 * - `altered`: an entry's content changed (its hash no longer matches, or its successor
 *   records a different hash for it because the hash was recomputed);
 * - `deleted`: entries are missing from the middle of the chain;
 * - `inserted`: an item that is not part of the chain was added (an extra key, a copy, or
 *   a forged entry that later entries do not link to);
 * - `reordered`: entries are present but not in chain order (moved or swapped keys);
 * - `truncated`: the chain ends before the last anchor, or an anchor's hash differs from
 *   the entry at its seq (the chain was cut back and continued or rewritten);
 * - `anchor_invalid`: an anchor object is unreadable.
 */
export type AuditTamperKind = 'altered' | 'deleted' | 'inserted' | 'reordered' | 'truncated' | 'anchor_invalid';

/** The first thing wrong with the chain. */
export interface AuditProblem {
  kind: AuditTamperKind;
  /** The entry (chain position) the problem names. */
  seq: number;
  /** The store sort key of the offending item, when one item is at fault. */
  key?: string;
  /** One sentence naming the entry and what is wrong with it. */
  message: string;
}

/** The newest entry's position. */
export interface AuditHead {
  seq: number;
  hash: string;
  time: string;
}

interface VerificationBase {
  /** Entries that continue the chain correctly (all of them when `ok`). */
  entries: number;
  /** Anchors found in the object store. */
  anchors: number;
  /** The last good entry. */
  head?: AuditHead;
  /** The anchor with the highest seq. */
  lastAnchor?: AuditAnchor;
  /** Wall time of the verification, in milliseconds. */
  ms: number;
  /** `entries / seconds`. */
  entriesPerSecond: number;
}

/** The result of verifying an audit chain. */
export type AuditVerification =
  | (VerificationBase & { ok: true })
  | (VerificationBase & { ok: false; problem: AuditProblem });

/** What verification reads: the partition in key order (restartable) and the anchors. */
export interface ChainSource {
  /** Every item of the chain's partition in ascending sort-key order. Called at most twice. */
  items(): AsyncIterable<CatalogItem>;
  /** The anchors, or the first unreadable one. */
  anchors: AuditAnchor[] | { invalid: { seq: number; key: string; why: string } };
}

const HEX64 = /^[0-9a-f]{64}$/;
const short = (hash: string) => hash.slice(0, 12);

/** One item of the partition, as far as verification understood it. */
interface Slot {
  key: string;
  keySeq: number | undefined;
  entry: AuditEntry | undefined;
  /** Why the item is not a well-formed entry. */
  malformed?: string;
  /** The recomputed hash, when the item is well-formed. */
  actualHash?: string;
  /** Well-formed and its recomputed hash equals its recorded hash. */
  intact: boolean;
}

function shapeProblem(data: Record<string, unknown>): string | undefined {
  const str = (name: string) => typeof data[name] === 'string' && data[name] !== '';
  if (!Number.isSafeInteger(data.seq) || (data.seq as number) < 1) return 'its seq is not a positive integer';
  for (const name of ['time', 'person', 'action', 'target', 'outcome', 'requestHash']) {
    if (!str(name)) return `its ${name} is missing or not a string`;
  }
  if (data.agent !== undefined && !str('agent')) return 'its agent is not a string';
  if (data.details !== undefined && (typeof data.details !== 'object' || data.details === null))
    return 'its details are not an object';
  if (typeof data.prevHash !== 'string' || !HEX64.test(data.prevHash)) return 'its prevHash is not a SHA-256 hash';
  if (typeof data.hash !== 'string' || !HEX64.test(data.hash)) return 'its hash is not a SHA-256 hash';
  return undefined;
}

function toSlot(item: CatalogItem): Slot {
  const slot: Slot = { key: item.sk, keySeq: seqOfKey(item.sk), entry: undefined, intact: false };
  const why = shapeProblem(item.data);
  if (why) {
    slot.malformed = why;
    return slot;
  }
  const entry = item.data as unknown as AuditEntry;
  slot.entry = entry;
  slot.actualHash = entryHash(entry);
  slot.intact = slot.actualHash === entry.hash;
  return slot;
}

const GENESIS: AuditHead = { seq: 0, hash: GENESIS_HASH, time: '' };

/**
 * Verifies a chain read from `source`. Returns `ok` with counts and throughput, or the
 * first problem with its kind, the seq it names and a message.
 */
export async function verifyAuditChain(source: ChainSource, now: () => number = performance.now.bind(performance)) {
  const started = now();
  const finish = (base: Omit<VerificationBase, 'ms' | 'entriesPerSecond'>, problem?: AuditProblem) => {
    const ms = now() - started;
    const entriesPerSecond = ms > 0 ? Math.round((base.entries / ms) * 1000) : 0;
    const result = { ...base, ms, entriesPerSecond };
    return problem ? { ...result, ok: false as const, problem } : { ...result, ok: true as const };
  };
  if (!Array.isArray(source.anchors)) {
    const { seq, key, why } = source.anchors.invalid;
    return finish(
      { entries: 0, anchors: 0 },
      { kind: 'anchor_invalid', seq, key, message: `the anchor ${key} (seq ${seq}) is unreadable: ${why}` },
    );
  }
  const anchors = new Map(source.anchors.map((a) => [a.seq, a]));
  const lastAnchor = source.anchors.reduce<AuditAnchor | undefined>((m, a) => (!m || a.seq > m.seq ? a : m), undefined);
  const counts = { anchors: anchors.size, ...(lastAnchor ? { lastAnchor } : {}) };

  let prev = GENESIS;
  let entries = 0;
  for await (const item of source.items()) {
    const slot = toSlot(item);
    const entry = slot.entry;
    const fits =
      slot.intact &&
      entry !== undefined &&
      slot.keySeq === prev.seq + 1 &&
      entry.seq === slot.keySeq &&
      entry.prevHash === prev.hash &&
      (anchors.get(entry.seq)?.hash ?? entry.hash) === entry.hash;
    if (!fits) {
      const slots: Slot[] = [];
      for await (const again of source.items()) slots.push(toSlot(again));
      const problem = classify(slots, entries, anchors);
      return finish({ entries, ...counts, ...(prev.seq > 0 ? { head: prev } : {}) }, problem);
    }
    prev = { seq: (entry as AuditEntry).seq, hash: (entry as AuditEntry).hash, time: (entry as AuditEntry).time };
    entries += 1;
  }
  const base = { entries, ...counts, ...(prev.seq > 0 ? { head: prev } : {}) };
  if (lastAnchor && lastAnchor.seq > prev.seq) {
    const gone =
      prev.seq + 1 === lastAnchor.seq
        ? `entry ${lastAnchor.seq} was`
        : `entries ${prev.seq + 1}–${lastAnchor.seq} were`;
    const message =
      prev.seq === 0
        ? `the audit chain is empty, but an anchor records entry ${lastAnchor.seq} (hash ${short(lastAnchor.hash)}): ${gone} removed (truncated)`
        : `the audit chain ends at entry ${prev.seq}, but an anchor records entry ${lastAnchor.seq} (hash ${short(lastAnchor.hash)}): ${gone} removed (truncated)`;
    return finish(base, { kind: 'truncated', seq: prev.seq + 1, message });
  }
  return finish(base);
}

/**
 * Explains why `slots[at]` does not continue the chain formed by `slots[0..at)` (which
 * all fit). The checks go from the most local evidence (the item itself) to the most
 * global (where else its seq and its predecessor appear).
 */
function classify(slots: Slot[], at: number, anchors: Map<number, AuditAnchor>): AuditProblem {
  const x = slots[at] as Slot;
  const p = at > 0 ? (slots[at - 1]?.entry as AuditEntry) : undefined;
  const pSeq = p?.seq ?? 0;
  const pHash = p?.hash ?? GENESIS_HASH;
  const expected = pSeq + 1;
  const after = p ? `entry ${pSeq}` : 'the start of the chain';
  const key = x.key;

  if (x.keySeq === undefined) {
    return {
      kind: 'inserted',
      seq: x.entry?.seq ?? expected,
      key,
      message: `an extra item under key '${key}' sits after ${after}; no entry is stored under such a key (inserted)`,
    };
  }
  const s = x.keySeq;
  if (!x.entry) {
    return { kind: 'altered', seq: s, key, message: `entry ${s} was altered: ${x.malformed}` };
  }
  const e = x.entry;
  if (!x.intact) {
    return {
      kind: 'altered',
      seq: s,
      key,
      message: `entry ${s} was altered: its content hashes to ${short(x.actualHash as string)}, but it records ${short(e.hash)}`,
    };
  }

  // x is a genuine-looking entry. Where does its predecessor sit, and who else claims its seq?
  const predAt = slots.findIndex((o) => o.intact && o.entry?.hash === e.prevHash);
  if (predAt > at) {
    const pred = slots[predAt] as Slot;
    return {
      kind: 'reordered',
      seq: s,
      key,
      message: `entry ${e.seq} (stored at ${s}) comes before the entry it follows, entry ${pred.entry?.seq} (stored at ${pred.keySeq ?? `'${pred.key}'`}): entries were reordered`,
    };
  }
  const twinAt = slots.findIndex((o, i) => i !== at && o.intact && o.entry?.seq === e.seq);
  if (twinAt >= 0) {
    const twin = slots[twinAt] as Slot;
    const where = `${twin.keySeq ?? `'${twin.key}'`} and ${s}`;
    return twin.entry?.hash === e.hash
      ? {
          kind: 'inserted',
          seq: e.seq,
          key,
          message: `entry ${e.seq} appears twice (stored at ${where}): a copy was inserted`,
        }
      : {
          kind: 'inserted',
          seq: e.seq,
          key,
          message: `two different entries claim seq ${e.seq} (stored at ${where}): an entry was inserted at ${e.seq} and the entries after it were shifted`,
        };
  }
  const storedAt = (seq: number) => slots.findIndex((o, i) => i > at && o.intact && o.entry?.seq === seq);
  if (e.seq > expected) {
    const missing = `${expected}${e.seq - 1 > expected ? `–${e.seq - 1}` : ''}`;
    for (let seq = expected; seq < e.seq; seq++) {
      const elsewhere = storedAt(seq);
      if (elsewhere >= 0) {
        return {
          kind: 'reordered',
          seq: expected,
          key,
          message: `entry ${seq} is stored out of place (at ${slots[elsewhere]?.keySeq ?? `'${slots[elsewhere]?.key}'`}), after entry ${e.seq} (stored at ${s}): entries were reordered`,
        };
      }
    }
    const plural = e.seq - expected > 1;
    return {
      kind: 'deleted',
      seq: expected,
      key,
      message:
        e.seq === s
          ? `${plural ? 'entries' : 'entry'} ${missing} ${plural ? 'are' : 'is'} missing: ${after} is followed by entry ${e.seq} (deleted)`
          : `${plural ? 'entries' : 'entry'} ${missing} ${plural ? 'are' : 'is'} missing and later entries were moved down to close the gap (entry ${e.seq} is stored at ${s}) (deleted)`,
    };
  }
  if (e.seq !== s) {
    // Right entry, wrong key: the chain content is in order but its keys were moved.
    return {
      kind: 'reordered',
      seq: e.seq,
      key,
      message: `entry ${e.seq} is stored under the key of seq ${s}: entries were moved`,
    };
  }
  if (e.prevHash !== pHash) {
    const follower = slots.findIndex((o, i) => i > at && o.intact && o.entry?.prevHash === pHash);
    if (follower >= 0) {
      const f = slots[follower] as Slot;
      return {
        kind: 'reordered',
        seq: s,
        key,
        message: `entry ${s} does not follow ${after}; the entry stored at ${f.keySeq ?? `'${f.key}'`} does: entries were reordered`,
      };
    }
    const anchorP = p ? anchors.get(pSeq) : undefined;
    if (!p || anchorP?.hash === pHash) {
      return {
        kind: 'inserted',
        seq: s,
        key,
        message: `entry ${s} does not follow ${after}${anchorP ? `, which matches its anchor` : ''} (it records ${short(e.prevHash)}, expected ${short(pHash)}): entry ${s} was forged or inserted`,
      };
    }
    return {
      kind: 'altered',
      seq: pSeq,
      key: slots[at - 1]?.key as string,
      message: `entry ${pSeq} was altered and its hash recomputed: entry ${s} records its predecessor as ${short(e.prevHash)}, but entry ${pSeq} now hashes to ${short(pHash)}`,
    };
  }
  const anchor = anchors.get(s);
  if (anchor && anchor.hash !== e.hash) {
    const next = slots[at + 1];
    if (next?.intact && next.entry?.seq === s + 1 && next.entry.prevHash !== e.hash) {
      return {
        kind: 'altered',
        seq: s,
        key,
        message: `entry ${s} was altered and its hash recomputed: it matches neither its anchor (${short(anchor.hash)}) nor what entry ${s + 1} records (${short(next.entry.prevHash)})`,
      };
    }
    return {
      kind: 'truncated',
      seq: s,
      key,
      message: `entry ${s} does not match the anchor written when the chain reached seq ${s} (anchor ${short(anchor.hash)}, entry ${short(e.hash)}): the chain was truncated or rewritten at or before entry ${s}`,
    };
  }
  return { kind: 'altered', seq: s, key, message: `entry ${s} does not continue the chain after ${after}` };
}
