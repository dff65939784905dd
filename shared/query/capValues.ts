import { invalid } from '../errors/index.js';
import type { QueryCaps } from './types.js';

/** The name of one cap, as errors name it (`cap maxRows=…`). */
export type CapName = keyof QueryCaps;

/** Every cap, in the order people read them. */
export const CAP_NAMES: readonly CapName[] = Object.freeze([
  'maxRows',
  'maxBytesScanned',
  'timeoutMs',
  'maxConcurrent',
  'dailyBytes',
]);

/**
 * The largest value each cap may be set to. Every cap is finite by construction; the
 * ceilings below are where a larger number would stop meaning what it says.
 */
export const CAP_CEILINGS: Readonly<Record<CapName, number>> = Object.freeze({
  maxRows: Number.MAX_SAFE_INTEGER,
  maxBytesScanned: Number.MAX_SAFE_INTEGER,
  // setTimeout's largest delay: past it Node fires the timer at once (the query would be
  // interrupted immediately, the opposite of what a large timeout asks for).
  timeoutMs: 2 ** 31 - 1,
  // The governor reads one store item per slot on every query: keep that read bounded.
  maxConcurrent: 1000,
  dailyBytes: Number.MAX_SAFE_INTEGER,
});

/** What kind of quantity a cap holds: how its text is read and how it is shown. */
export const CAP_KINDS: Readonly<Record<CapName, 'count' | 'bytes' | 'ms'>> = Object.freeze({
  maxRows: 'count',
  maxBytesScanned: 'bytes',
  timeoutMs: 'ms',
  maxConcurrent: 'count',
  dailyBytes: 'bytes',
});

/** True when `name` is a cap's name. */
export function isCapName(name: string): name is CapName {
  return (CAP_NAMES as readonly string[]).includes(name);
}

/**
 * Checks one cap value: a whole number from 1 to the cap's ceiling. Zero, negative,
 * fractional, infinite and non-numeric values are refused with an INVALID error naming
 * the cap, so a cap can never be switched off by accident (there is no "unlimited").
 */
export function checkCapValue(cap: CapName, value: unknown): number {
  const ceiling = CAP_CEILINGS[cap];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > ceiling) {
    throw invalid(
      `cap ${cap} must be a whole number from 1 to ${ceiling}, got ${formatRaw(value)}; every cap is finite and positive`,
      { cap, value: formatRaw(value), min: 1, max: ceiling },
    );
  }
  return value;
}

/** Checks every value of a partial set of caps (unknown names refused). */
export function checkCaps(caps: Record<string, unknown>): Partial<QueryCaps> {
  const out: Partial<QueryCaps> = {};
  for (const [name, value] of Object.entries(caps)) {
    if (!isCapName(name)) throw invalid(`unknown cap '${name}'; the caps are ${CAP_NAMES.join(', ')}`, { cap: name });
    out[name] = checkCapValue(name, value);
  }
  return out;
}

const SIZE_UNITS: Readonly<Record<string, bigint>> = Object.freeze({
  '': 1n,
  b: 1n,
  kb: 1000n,
  mb: 1000n ** 2n,
  gb: 1000n ** 3n,
  tb: 1000n ** 4n,
  pb: 1000n ** 5n,
  k: 1000n,
  m: 1000n ** 2n,
  g: 1000n ** 3n,
  t: 1000n ** 4n,
  p: 1000n ** 5n,
  kib: 1024n,
  mib: 1024n ** 2n,
  gib: 1024n ** 3n,
  tib: 1024n ** 4n,
  pib: 1024n ** 5n,
});

const DURATION_UNITS: Readonly<Record<string, bigint>> = Object.freeze({
  '': 1n,
  ms: 1n,
  s: 1000n,
  sec: 1000n,
  m: 60_000n,
  min: 60_000n,
  h: 3_600_000n,
  d: 86_400_000n,
});

const QUANTITY = /^\s*(\d+)(?:\.(\d+))?\s*([a-z]*)\s*$/i;

/**
 * Reads a decimal quantity with an optional unit exactly (no floating point), as a whole
 * number of base units; undefined when the text is not a quantity or not whole.
 */
function quantity(text: string, units: Readonly<Record<string, bigint>>): number | undefined {
  const m = QUANTITY.exec(text);
  if (!m) return undefined;
  const unit = units[(m[3] ?? '').toLowerCase()];
  if (unit === undefined) return undefined;
  const fraction = m[2] ?? '';
  const scale = 10n ** BigInt(fraction.length);
  const scaled = BigInt(`${m[1]}${fraction}`) * unit;
  if (scaled % scale !== 0n) return undefined;
  const whole = scaled / scale;
  return whole <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(whole) : Number.POSITIVE_INFINITY;
}

/**
 * Reads a cap value typed by a person: a count (`10000`), a size (`500MB`, `10GiB`,
 * `1.5GB`; K/KB, M/MB, G/GB, T/TB are powers of 1000 and KiB/MiB/GiB/TiB powers of 1024,
 * as DuckDB reads them) or a duration (`30000` ms, `500ms`, `30s`, `2m`, `1h`, `1d`), per the
 * cap's kind; then checks it with {@link checkCapValue}. Throws INVALID naming the cap.
 *
 * @example
 * parseCapValue('maxBytesScanned', '10GiB'); // 10737418240
 * parseCapValue('timeoutMs', '2m');          // 120000
 */
export function parseCapValue(cap: CapName, text: string): number {
  const kind = CAP_KINDS[cap];
  const value = quantity(text, kind === 'bytes' ? SIZE_UNITS : kind === 'ms' ? DURATION_UNITS : { '': 1n });
  if (value === undefined) {
    const expected =
      kind === 'bytes'
        ? 'a size such as 1048576, 500MB or 10GiB'
        : kind === 'ms'
          ? 'milliseconds or a duration such as 30000, 500ms, 30s, 2m or 1h'
          : 'a whole number such as 1000';
    throw invalid(`cap ${cap} must be ${expected}, got '${text}'`, { cap, value: text });
  }
  return checkCapValue(cap, value);
}

/** A cap value for people: sizes in binary units, durations in the largest exact unit. */
export function formatCapValue(cap: CapName, value: number): string {
  const kind = CAP_KINDS[cap];
  if (kind === 'bytes') {
    for (const [unit, size] of [
      ['TiB', 1024 ** 4],
      ['GiB', 1024 ** 3],
      ['MiB', 1024 ** 2],
      ['KiB', 1024],
    ] as const) {
      if (value >= size) {
        const n = value / size;
        return `${Number.isInteger(n) ? n : n.toFixed(1)} ${unit}${Number.isInteger(n) ? '' : ` (${value} B)`}`;
      }
    }
    return `${value} B`;
  }
  if (kind === 'ms') {
    for (const [unit, size] of [
      ['h', 3_600_000],
      ['min', 60_000],
      ['s', 1000],
    ] as const) {
      if (value >= size && value % size === 0) return `${value / size} ${unit}`;
    }
    return `${value} ms`;
  }
  return String(value);
}

function formatRaw(value: unknown): string {
  return typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
}
