import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AirlockError, invalid } from '../errors/index.js';

/**
 * Token text: `airlock_` + a 16-hex-digit id + a 43-character base64url secret (32 random
 * bytes). The id is looked up; only the secret's SHA-256 is stored, and the presented
 * secret's hash is compared with `timingSafeEqual`.
 */
const TOKEN_PATTERN = /^airlock_([0-9a-f]{16})([A-Za-z0-9_-]{43})$/;

/** Default token lifetime: 7 days. */
export const DEFAULT_TOKEN_TTL_MS = 7 * 24 * 3600 * 1000;
/** Longest token lifetime: 90 days (every token expires). */
export const MAX_TOKEN_TTL_MS = 90 * 24 * 3600 * 1000;

/** A freshly minted token: its text (shown once) and what is stored of it. */
export interface MintedToken {
  id: string;
  text: string;
  hash: string;
}

/** Mints a token: random id and secret. */
export function mintToken(): MintedToken {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, text: `airlock_${id}${secret}`, hash: hashSecret(secret) };
}

/** Lowercase hex SHA-256 of a token's secret part. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/**
 * Splits a presented token into id and secret; DENIED (never echoing the text) when it
 * is not a well-formed Airlock token.
 */
export function parseToken(text: string): { id: string; secret: string } {
  const m = TOKEN_PATTERN.exec(text.trim());
  if (!m) throw new AirlockError('DENIED', 'the token is malformed (expected airlock_… as printed by token create)');
  return { id: m[1] as string, secret: m[2] as string };
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

const TTL_UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a TTL such as `30m`, `12h` or `7d`; INVALID past {@link MAX_TOKEN_TTL_MS} or malformed. */
export function parseTtl(text: string): number {
  const m = /^(\d{1,6})([mhd])$/.exec(text.trim());
  if (!m) throw invalid(`--ttl must look like 30m, 12h or 7d, got '${text}'`);
  const ms = Number(m[1]) * (TTL_UNITS[m[2] as string] as number);
  if (ms <= 0) throw invalid('--ttl must be positive');
  if (ms > MAX_TOKEN_TTL_MS) throw invalid(`--ttl is at most 90d (every token expires), got '${text}'`);
  return ms;
}
