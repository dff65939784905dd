import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { Field } from '../shared/catalog/model.js';
import { parquetFileStats, type QueryCaps, type SnapshotTable } from '../shared/query/index.js';

/** Generous caps for tests that are not about caps. */
export const TEST_CAPS: QueryCaps = {
  maxRows: 1_000_000,
  maxBytesScanned: 10 * 1024 ** 3,
  timeoutMs: 60_000,
  maxConcurrent: 4,
  dailyBytes: 100 * 1024 ** 3,
};

/** A scratch directory with a DuckDB that writes real Parquet files into it. */
export class ParquetFixture {
  private constructor(
    readonly dir: string,
    private readonly db: DuckDBInstance,
  ) {}

  static async create(): Promise<ParquetFixture> {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-query-test-'));
    return new ParquetFixture(dir, await DuckDBInstance.create(':memory:'));
  }

  /** Writes one Parquet file from a SELECT and returns its path. */
  async write(file: string, select: string, rowGroupSize = 122_880): Promise<string> {
    const path = join(this.dir, file);
    const c = await this.db.connect();
    try {
      await c.run(`COPY (${select}) TO '${path}' (FORMAT parquet, ROW_GROUP_SIZE ${rowGroupSize})`);
    } finally {
      c.closeSync();
    }
    return path;
  }

  /** A snapshot table over files written from the given SELECTs (one file each). */
  async table(name: string, fields: Field[], selects: string[]): Promise<SnapshotTable> {
    const files = [];
    for (const [i, select] of selects.entries()) {
      const path = await this.write(`${name.replace('.', '_')}-${i}.parquet`, select);
      files.push({ key: `data/${name}/${i}.parquet`, path, ...(await parquetFileStats(path)) });
    }
    return { name, schema: { fields }, files };
  }

  async close(): Promise<void> {
    this.db.closeSync();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A field with no tags. */
export const field = (name: string, type: Field['type'], tags: string[] = []): Field => ({
  name,
  type,
  nullable: true,
  tags,
});
