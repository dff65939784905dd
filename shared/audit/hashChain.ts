/**
 * The audit trail's data: entries, their hash chain, and where they are kept.
 *
 * Entry n records the hash of entry n-1 (`prevHash`) and its own hash over everything
 * else, so changing, removing, adding or moving any entry breaks a link that
 * {@link verifyAuditChain} finds. Entry 1 follows {@link GENESIS_HASH}.
 */
import { createHmac } from 'node:crypto';
import { canonicalJson, sha256Hex } from '../catalog/index.js';
import { isSecretName, REDACTED } from './redactSecrets.js';

/**
 * What came of a request. The enforcement point decides; the trail records. The common
 * values are listed; others are allowed so a new gate does not need a schema change.
 */
export type AuditOutcome =
  | 'ok'
  | 'denied'
  | 'error'
  | 'approval_required'
  | 'approved'
  | 'rejected'
  | 'limit_exceeded'
  | (string & {});

/** One entry of the chain, as stored (the item body) and returned. */
export interface AuditEntry {
  /** Position in the chain, from 1, without gaps. */
  seq: number;
  /** When it was appended (ISO-8601 UTC); strictly increasing along the chain. */
  time: string;
  /** The person on whose authority the request ran. */
  person: string;
  /** The agent acting for the person, when one did. */
  agent?: string;
  /** What was asked, e.g. `query`, `merge`, `branch.create`, `grant.add`. */
  action: string;
  /** What it was asked of, e.g. a branch, table or `main←agent/bot/fix`. */
  target: string;
  outcome: AuditOutcome;
  /** SHA-256 (or keyed HMAC) of the canonical request, see {@link requestHash}. */
  requestHash: string;
  /** Small, redacted facts: redacted SQL, a reason, an approval id, row counts… */
  details?: Record<string, unknown>;
  /** {@link AuditEntry.hash} of entry `seq - 1`, or {@link GENESIS_HASH} for entry 1. */
  prevHash: string;
  /** Lowercase hex SHA-256 of the canonical JSON of every other member. */
  hash: string;
}

/** The chain head written to the object store. */
export interface AuditAnchor {
  seq: number;
  hash: string;
  time: string;
}

/** What entry 1 links to. */
export const GENESIS_HASH = '0'.repeat(64);

/** The partition holding the chain, unless an `AuditLog` is given another. */
export const AUDIT_PARTITION = 'audit';

/** The default object key prefix of anchors. */
export const AUDIT_ANCHOR_PREFIX = 'audit/anchors/';

/** Width of the zero-padded sequence number (string order = numeric order up to 10^12 entries). */
const SEQ_WIDTH = 12;

/** The sort key of entry `seq`. */
export const auditSeqKey = (seq: number): string => String(seq).padStart(SEQ_WIDTH, '0');

/** The sequence number a canonical sort key names, or `undefined` for any other key. */
export function seqOfKey(sk: string): number | undefined {
  if (sk.length !== SEQ_WIDTH || !/^\d+$/.test(sk)) return undefined;
  const seq = Number(sk);
  return seq >= 1 ? seq : undefined;
}

/** The object key of the anchor at `seq`. Immutable: one chain has one entry per seq. */
export const anchorKey = (seq: number, prefix: string = AUDIT_ANCHOR_PREFIX): string =>
  `${prefix}${auditSeqKey(seq)}.json`;

/** The hash of an entry: SHA-256 of the canonical JSON of all its members but `hash`. */
export function entryHash(entry: Omit<AuditEntry, 'hash'> | Record<string, unknown>): string {
  const { hash: _ignored, ...rest } = entry as Record<string, unknown>;
  return sha256Hex(canonicalJson(rest));
}

function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [name, member] of Object.entries(value as Record<string, unknown>)) {
      out[name] = isSecretName(name) && member !== undefined ? REDACTED : withoutSecrets(member);
    }
    return out;
  }
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * The request hash of an entry: SHA-256 (hex) of the canonical JSON of `request`, so the
 * same request always hashes the same whatever its key order. Members whose name marks a
 * secret (`token`, `authorization`…) are replaced before hashing, so not even a hash of a
 * credential is kept.
 *
 * The request is hashed unredacted (it binds the exact request); for a low-entropy value
 * (a national id in a WHERE clause) a plain hash can be reversed by trying every value, so
 * pass a lake secret as `key` to get an HMAC-SHA256 instead when requests may hold PII.
 *
 * @example
 * requestHash({ action: 'query', ref: 'main', sql }) // 64 hex characters
 */
export function requestHash(request: unknown, options: { key?: string | Uint8Array } = {}): string {
  const text = canonicalJson(withoutSecrets(request)) ?? 'null';
  return options.key === undefined ? sha256Hex(text) : createHmac('sha256', options.key).update(text).digest('hex');
}
