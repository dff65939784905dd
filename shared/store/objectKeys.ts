import { invalid } from '../errors/index.js';

/** The top-level folder a local object store keeps its temporary files in; no key may live there. */
export const LOCAL_TEMP_DIR = '.airlock-tmp';

/**
 * Throws `INVALID` unless `key` is a safe relative object key: non-empty, `/`-separated,
 * no empty, `.` or `..` segment, no leading `/`, no backslash, no NUL, and not under the
 * local store's temporary folder. Both object stores enforce it, so a key that works
 * embedded works on S3 and can never escape a directory (local root or download cache).
 */
export function assertObjectKey(key: string): void {
  const bad = (why: string) => invalid(`invalid object key '${key}': ${why}`, { key });
  if (typeof key !== 'string' || key === '') throw bad('empty');
  if (key.includes('\\')) throw bad('backslash');
  if (key.includes('\u0000')) throw bad('NUL character');
  if (key.startsWith('/')) throw bad('absolute');
  if (Buffer.byteLength(key) > 1024) throw bad('longer than 1024 bytes');
  const segments = key.split('/');
  for (const s of segments) {
    if (s === '') throw bad('empty segment');
    if (s === '.' || s === '..') throw bad(`'${s}' segment`);
  }
  if (segments[0] === LOCAL_TEMP_DIR) throw bad(`'${LOCAL_TEMP_DIR}' is reserved`);
}
