import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { invalid, notFound } from '../errors/index.js';
import { assertObjectKey, LOCAL_TEMP_DIR } from './objectKeys.js';
import type { ObjectInfo, ObjectStore } from './ports.js';
import { compareUtf8 } from './ranges.js';

function errno(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Flushes a directory entry (a rename or a new file) to disk. Best effort where unsupported. */
async function fsyncDirectory(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    // Some platforms/filesystems cannot fsync a directory; the rename is still atomic there.
    if (!['EISDIR', 'EPERM', 'EINVAL', 'EBADF', 'EACCES'].includes(errno(error) ?? '')) throw error;
  } finally {
    await handle?.close();
  }
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * An {@link ObjectStore} on the local filesystem: object `a/b.parquet` is the file
 * `<root>/a/b.parquet`.
 *
 * Guarantees: a reader never sees a partial object. Every write goes to a temporary file
 * under `<root>/.airlock-tmp/` (same filesystem), is fsynced, then renamed over the
 * destination (atomic), and the destination directory is fsynced so the rename survives
 * power loss. Keys are validated (`INVALID`) so none escapes the root. This adapter does
 * not re-verify content on read: the filesystem is trusted; the S3 adapter verifies.
 */
export class LocalObjectStore implements ObjectStore {
  /** Absolute root directory. */
  readonly root: string;
  private tempReady: Promise<string> | undefined;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private pathOf(key: string): string {
    assertObjectKey(key);
    return join(this.root, ...key.split('/'));
  }

  private async tempFile(): Promise<string> {
    this.tempReady ??= mkdir(join(this.root, LOCAL_TEMP_DIR), { recursive: true }).then(() =>
      join(this.root, LOCAL_TEMP_DIR),
    );
    try {
      return join(await this.tempReady, randomUUID());
    } catch (error) {
      this.tempReady = undefined;
      throw error;
    }
  }

  private async prepareParent(key: string, dest: string): Promise<void> {
    try {
      await mkdir(dirname(dest), { recursive: true });
    } catch (error) {
      if (errno(error) === 'EEXIST' || errno(error) === 'ENOTDIR') {
        throw invalid(`object key '${key}' collides with an existing object used as a folder`, { key }, error);
      }
      throw error;
    }
  }

  /** Moves a finished temporary file into place atomically and makes the rename durable. */
  private async commit(key: string, temp: string, dest: string): Promise<void> {
    try {
      await rename(temp, dest);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      if (errno(error) === 'EISDIR')
        throw invalid(`object key '${key}' names a folder of other objects`, { key }, error);
      throw error;
    }
    await fsyncDirectory(dirname(dest));
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    const dest = this.pathOf(key);
    await this.prepareParent(key, dest);
    const temp = await this.tempFile();
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(body);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await handle.close();
    await this.commit(key, temp, dest);
  }

  /**
   * Stores a local file. With `move: true` the file itself is renamed into the store when
   * it lives on the same filesystem (no copy); otherwise it is streamed into a temporary
   * file first. Either way the object appears atomically.
   */
  async putFile(key: string, path: string, options: { move?: boolean } = {}): Promise<void> {
    const dest = this.pathOf(key);
    await this.prepareParent(key, dest);
    if (options.move) {
      try {
        await fsyncFile(path);
        await this.commitMove(key, path, dest);
        return;
      } catch (error) {
        if (errno(error) !== 'EXDEV') throw error;
        // Another filesystem: copy below, then remove the source.
      }
    }
    const temp = await this.tempFile();
    try {
      await pipeline(createReadStream(path), createWriteStream(temp, { flags: 'wx' }));
      await fsyncFile(temp);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      if (errno(error) === 'ENOENT') throw notFound(`file '${path}' does not exist`, { path });
      throw error;
    }
    await this.commit(key, temp, dest);
    if (options.move) await unlink(path);
  }

  private async commitMove(key: string, source: string, dest: string): Promise<void> {
    try {
      await rename(source, dest);
    } catch (error) {
      if (errno(error) === 'ENOENT') throw notFound(`file '${source}' does not exist`, { path: source });
      if (errno(error) === 'EISDIR')
        throw invalid(`object key '${key}' names a folder of other objects`, { key }, error);
      throw error;
    }
    await fsyncDirectory(dirname(dest));
    await fsyncDirectory(dirname(resolve(source)));
  }

  async get(key: string): Promise<Uint8Array> {
    const path = this.pathOf(key);
    try {
      return new Uint8Array(await readFile(path));
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'EISDIR' || errno(error) === 'ENOTDIR') {
        throw notFound(`object '${key}' does not exist`, { key });
      }
      throw error;
    }
  }

  /** The object's own file (absolute). Never copy it to modify it: objects are immutable. */
  async localPath(key: string): Promise<string> {
    if ((await this.head(key)) === undefined) throw notFound(`object '${key}' does not exist`, { key });
    return this.pathOf(key);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.pathOf(key));
      return s.isFile() ? { key, size: s.size } : undefined;
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return undefined;
      throw error;
    }
  }

  /** Lists objects whose key starts with `prefix` (any string, not only a folder), in UTF-8 byte order like S3. */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash);
    if (base.split('/').some((s) => s === '..' || s === '.') || prefix.includes('\\')) return;
    const found: ObjectInfo[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return;
        throw error;
      }
      for (const entry of entries) {
        const key = keyPrefix + entry.name;
        if (keyPrefix === '' && entry.name === LOCAL_TEMP_DIR) continue;
        if (entry.isDirectory()) {
          // Descend only where keys can still match the prefix.
          const folder = `${key}/`;
          if (folder.startsWith(prefix) || prefix.startsWith(folder)) await walk(join(dir, entry.name), folder);
        } else if (entry.isFile() && key.startsWith(prefix)) {
          const s = await stat(join(dir, entry.name)).catch(() => undefined);
          if (s) found.push({ key, size: s.size });
        }
      }
    };
    await walk(base === '' ? this.root : join(this.root, ...base.split('/')), base === '' ? '' : `${base}/`);
    found.sort((a, b) => compareUtf8(a.key, b.key));
    yield* found;
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.pathOf(key));
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return;
      throw error;
    }
  }

  async close(): Promise<void> {}
}

/**
 * Opens a local object store rooted at `root` (created on first write).
 *
 * @example
 * const objects = openLocalObjectStore('.airlock/objects');
 */
export function openLocalObjectStore(root: string): LocalObjectStore {
  return new LocalObjectStore(root);
}
