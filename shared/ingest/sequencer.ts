import { invalid } from '../errors/index.js';

/**
 * Orders two S3 event sequencers of the SAME object key: negative when `a` happened
 * before `b`, 0 when equal, positive after. A sequencer is a hexadecimal number whose
 * string length may differ between events, so the shorter is padded with leading zeros
 * and the two compared as numbers of equal width (never as plain strings: `'ff'` is not
 * after `'0100'`). Sequencers of different keys carry no order.
 */
export function compareSequencers(a: string, b: string): number {
  const x = normalise(a);
  const y = normalise(b);
  const width = Math.max(x.length, y.length);
  const px = x.padStart(width, '0');
  const py = y.padStart(width, '0');
  return px < py ? -1 : px > py ? 1 : 0;
}

function normalise(s: string): string {
  if (!/^[0-9A-Fa-f]{1,64}$/.test(s)) throw invalid(`sequencer '${s.slice(0, 80)}' is not a hexadecimal value`);
  return s.toUpperCase();
}

/** A sequencer for an object seen by listing (no event): its modification time in ms, as 16 hex digits. */
export function sequencerFromTime(time: Date): string {
  return time.getTime().toString(16).toUpperCase().padStart(16, '0');
}
