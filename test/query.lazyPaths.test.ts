import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import type { DataFile } from '../shared/catalog/index.js';
import { DEFAULT_CAPS, parquetFileStats, runQuery, type SnapshotTable } from '../shared/query/index.js';
import { tempDir } from './support/cli.js';

/** Two files of raw.events: ids 0..999 and 1000..1999, given WITHOUT local paths. */
async function table(): Promise<{ table: SnapshotTable; paths: Map<string, string> }> {
  const dir = tempDir('airlock-lazy-');
  const c = await (await DuckDBInstance.create(':memory:')).connect();
  const paths = new Map<string, string>();
  const files: DataFile[] = [];
  for (const [i, from] of [0, 1000].entries()) {
    const path = join(dir, `f${i}.parquet`);
    await c.run(`COPY (SELECT range AS id FROM range(${from}, ${from + 1000})) TO '${path}' (FORMAT parquet)`);
    const key = `data/raw/events/f${i}.parquet`;
    paths.set(key, path);
    files.push({ key, ...(await parquetFileStats(path)) });
  }
  c.closeSync();
  return {
    table: { name: 'raw.events', schema: { fields: [{ name: 'id', type: 'Int64', nullable: true, tags: [] }] }, files },
    paths,
  };
}

describe('snapshot files are resolved lazily (on S3: downloaded) only when the query reads them', () => {
  it('a query refused by a cap resolves no file; a pruned query resolves only the files it reads', async () => {
    const { table: events, paths } = await table();
    const resolved: string[] = [];
    const resolvePath = async (f: DataFile) => {
      resolved.push(f.key);
      return paths.get(f.key) as string;
    };
    await expect(
      runQuery({
        sql: 'SELECT count(*) FROM raw.events',
        tables: [events],
        caps: { ...DEFAULT_CAPS, maxBytesScanned: 10 },
        resolvePath,
      }),
    ).rejects.toThrow(/max bytes scanned exceeded/);
    expect(resolved).toEqual([]);
    const r = await runQuery({
      sql: 'SELECT count(*) AS n FROM raw.events WHERE id >= 1500',
      tables: [events],
      caps: DEFAULT_CAPS,
      resolvePath,
    });
    expect(r.rows).toEqual([{ n: 500 }]);
    expect(resolved).toEqual(['data/raw/events/f1.parquet']);
  });
});
