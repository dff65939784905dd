/**
 * Secrets never enter the audit trail. Two rules, applied to everything an entry stores:
 * 1. a member whose NAME says it holds a secret (`token`, `password`, `authorization`,
 *    `apiKey`, `secret`, `cookie`, `credentials`…) is replaced by {@link REDACTED} whatever
 *    its value;
 * 2. a string VALUE that looks like a credential is cut out wherever it appears: bearer
 *    headers, JWTs, Airlock tokens (`airlock_…`, `alk_…`), AWS access keys, GitHub, Slack
 *    and Stripe tokens, PEM private keys, passwords in URLs, and long high-entropy runs of
 *    mixed-case letters and digits (random API keys). Lowercase hex digests (commit ids,
 *    content hashes) are kept: they identify data and are not secrets.
 * The rules err on the side of redacting: a false positive costs a detail, a false negative
 * leaks a credential into an immutable log.
 */
import { redactSql } from './redactSql.js';

/** What a redacted secret becomes. */
export const REDACTED = '[redacted]';

/** Member names whose values are secrets whatever they look like. */
const SECRET_NAME =
  /pass(word|wd|phrase)|secret|token|api[-_]?key|access[-_]?key|authori[sz]ation|credential|cookie|private[-_]?key|session[-_]?id|signature|^(auth|pass|pwd|pin)$/i;
/** Member names holding SQL text, redacted with {@link redactSql} rather than dropped. */
const SQL_NAME = /^(sql|query|statement|predicate|filter)$/i;

const SECRET_PATTERNS: readonly RegExp[] = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
  /\b(?:Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
  /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
  /\b(?:airlock|alk)_[A-Za-z0-9_-]{8,}/g,
  /\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b/g,
  /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk_(?:live|test)_[A-Za-z0-9]{16,})/g,
];
/** `scheme://user:password@host` keeps the user and host, drops the password. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi;
/** Candidate runs for the entropy rule. */
const LONG_RUN = /[A-Za-z0-9+/_=-]{24,}/g;

/** Shannon entropy of `text` in bits per character. */
function entropy(text: string): number {
  const counts = new Map<string, number>();
  for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / text.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** True for a random-looking key: upper and lower case letters and digits, high entropy, no long words. */
function looksRandom(run: string): boolean {
  const core = run.replace(/[=]+$/, '');
  if (core.length < 24) return false;
  if (!/[A-Z]/.test(core) || !/[a-z]/.test(core) || !/\d/.test(core)) return false;
  return entropy(core) >= 3.5;
}

/**
 * True when `text` holds something that looks like a credential (see the module rules).
 *
 * @example
 * looksLikeSecret('Authorization: Bearer abcdefgh12345678') // → true
 * looksLikeSecret('merge agent/bot/fix into main')           // → false
 */
export function looksLikeSecret(text: string): boolean {
  return redactSecretsInText(text) !== text;
}

/** `text` with every credential-looking part replaced by {@link REDACTED}. */
export function redactSecretsInText(text: string): string {
  let out = text;
  for (const pattern of SECRET_PATTERNS) out = out.replace(pattern, REDACTED);
  out = out.replace(URL_PASSWORD, `$1${REDACTED}@`);
  out = out.replace(LONG_RUN, (run) => (looksRandom(run) ? REDACTED : run));
  return out;
}

/** True when a member called `name` holds a secret by its name alone. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Limits that keep an entry's details small. */
export interface RedactLimits {
  /** Longest string kept whole (longer ones are cut, saying how much was dropped). */
  maxString: number;
  /** Most array items kept. */
  maxItems: number;
  /** Deepest nesting kept. */
  maxDepth: number;
}

const DEFAULT_LIMITS: RedactLimits = { maxString: 1024, maxItems: 50, maxDepth: 6 };

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…[+${text.length - max} chars]`;
}

/**
 * A copy of a JSON-like value that is safe to store in the audit trail: secret-named
 * members replaced, SQL-named members passed through {@link redactSql}, credential-like
 * strings cut out, long strings and arrays shortened, non-JSON values (functions,
 * symbols, bigints) rendered as strings or dropped.
 *
 * @example
 * redactDetails({ sql: "SELECT * FROM t WHERE ssn = '123-45-6789'", token: 'alk_x' })
 * // → { sql: 'SELECT * FROM t WHERE ssn = ?', token: '[redacted]' }
 */
export function redactDetails(value: unknown, limits: Partial<RedactLimits> = {}): unknown {
  const l = { ...DEFAULT_LIMITS, ...limits };
  const walk = (v: unknown, depth: number): unknown => {
    if (v === null || typeof v === 'boolean') return v;
    if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'string') return cut(redactSecretsInText(v), l.maxString);
    if (v instanceof Date) return v.toISOString();
    if (typeof v !== 'object') return undefined;
    if (depth >= l.maxDepth) return '[too deep]';
    if (Array.isArray(v)) {
      const items = v.slice(0, l.maxItems).map((x) => walk(x, depth + 1) ?? null);
      if (v.length > l.maxItems) items.push(`…[+${v.length - l.maxItems} items]`);
      return items;
    }
    const out: Record<string, unknown> = {};
    for (const [name, member] of Object.entries(v as Record<string, unknown>)) {
      if (member === undefined) continue;
      if (isSecretName(name) && typeof member !== 'boolean' && typeof member !== 'number') out[name] = REDACTED;
      else if (SQL_NAME.test(name) && typeof member === 'string')
        out[name] = cut(redactSecretsInText(redactSql(member)), l.maxString);
      else {
        const safe = walk(member, depth + 1);
        if (safe !== undefined) out[name] = safe;
      }
    }
    return out;
  };
  return walk(value, 0);
}
