import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { notFound } from '../errors/index.js';
import type { ObjectInfo, ObjectStore } from './ports.js';

/**
 * An in-memory {@link ObjectStore} for unit tests. `localPath` writes the object to a
 * temp file once so file-reading engines can use it.
 */
export class MemoryObjectStore implements ObjectStore {
  private readonly objects = new Map<string, Uint8Array>();
  private readonly files = new Map<string, string>();
  private dir: string | undefined;

  async put(key: string, body: Uint8Array): Promise<void> {
    this.objects.set(key, new Uint8Array(body));
  }

  async putFile(key: string, path: string): Promise<void> {
    this.objects.set(key, new Uint8Array(await readFile(path)));
  }

  async get(key: string): Promise<Uint8Array> {
    const body = this.objects.get(key);
    if (!body) throw notFound(`object '${key}' not found`, { key });
    return new Uint8Array(body);
  }

  async localPath(key: string): Promise<string> {
    const known = this.files.get(key);
    if (known) return known;
    const body = await this.get(key);
    this.dir ??= mkdtempSync(join(tmpdir(), 'airlock-memobj-'));
    const path = join(this.dir, key.replaceAll('/', '__'));
    writeFileSync(path, body);
    this.files.set(key, path);
    return path;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const body = this.objects.get(key);
    return body ? { key, size: body.byteLength } : undefined;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const key of [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort()) {
      yield { key, size: (this.objects.get(key) as Uint8Array).byteLength };
    }
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }

  async close(): Promise<void> {}
}
