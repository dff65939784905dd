import { invalid } from '../errors/index.js';

/** A parsed ref: a base name (branch, tag or commit id/prefix), an optional time and ancestor step. */
export interface ParsedRef {
  base: string;
  /** ISO-8601 UTC time of `ref@<time>`, normalised. */
  at?: string;
  /** N of `ref~N`: the N-th first-parent ancestor. */
  back: number;
}

/**
 * Parses `base`, `base~N`, `base@<ISO-8601 time>` and `base@<time>~N`.
 *
 * @example
 * parseRef('main@2026-11-01T00:00:00Z~2') // { base: 'main', at: '2026-11-01T00:00:00.000Z', back: 2 }
 */
export function parseRef(ref: string): ParsedRef {
  if (ref.length === 0 || ref.length > 300) throw invalid(`invalid ref '${ref.slice(0, 80)}'`);
  let rest = ref;
  let back = 0;
  const tilde = /~(\d*)$/.exec(rest);
  if (tilde) {
    back = tilde[1] === '' ? 1 : Number(tilde[1]);
    if (!Number.isSafeInteger(back)) throw invalid(`invalid ancestor step in ref '${ref}'`);
    rest = rest.slice(0, tilde.index);
  }
  const atIndex = rest.indexOf('@');
  if (atIndex === -1) {
    if (rest.length === 0) throw invalid(`invalid ref '${ref}': missing a name`);
    return { base: rest, back };
  }
  const base = rest.slice(0, atIndex);
  const timeText = rest.slice(atIndex + 1);
  const ms = Date.parse(timeText);
  if (base.length === 0 || Number.isNaN(ms)) {
    throw invalid(`invalid ref '${ref}': expected <ref>@<ISO-8601 time>, e.g. main@2026-11-01T12:00:00Z`);
  }
  return { base, at: new Date(ms).toISOString(), back };
}

/** True when `text` could be a commit id or unique prefix (4–64 lowercase hex digits). */
export function looksLikeCommitId(text: string): boolean {
  return /^[0-9a-f]{4,64}$/.test(text);
}
