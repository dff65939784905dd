/**
 * Ingestion benchmark (issue 7). Run: `npx tsx bench/ingest.bench.ts` (not part of npm test).
 *
 * Starts DynamoDB Local and s3rver, then, interleaved in ONE run on the same lake:
 * - "ingest": `ingestObject` for one uploaded 100-row CSV (claim, per-key sequencer,
 *   fresh branch, download with GetObject, import, merge into main, record, audit);
 * - "baseline": what a person would do by hand for the same file, without the
 *   bookkeeping: create a branch, `Lake.importTable` from a local copy, merge into main;
 * - "duplicate": the same event delivered again (must be a no-op).
 * Prints median and minimum per operation and the ratios. Env: BENCH_OPS (15).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ingestObject } from '../shared/ingest/index.js';
import { S3LandingSource } from '../shared/ingest/S3LandingSource.js';
import { Lake } from '../shared/lake/Lake.js';
import { lakeLocation } from '../shared/lake/openLake.js';
import { tempDir } from '../test/support/cli.js';
import { awsBackendEnv, s3ClientFor, startEmulators } from '../test/support/emulators.js';

const OPS = Number(process.env.BENCH_OPS ?? 15);
const emulators = await startEmulators();
try {
  Object.assign(process.env, awsBackendEnv(emulators, 'airlock-ingest-bench'));
  const bucket = process.env.AIRLOCK_BUCKET as string;
  const { lake } = await Lake.init(lakeLocation({}));
  const s3 = s3ClientFor(emulators.s3Endpoint);
  const source = new S3LandingSource(s3);
  const dir = tempDir('airlock-ingest-bench-');
  const csv = `id,amount\n${Array.from({ length: 100 }, (_, i) => `${i},${i * 1.5}`).join('\n')}\n`;
  const local = join(dir, 'batch.csv');
  writeFileSync(local, csv);
  const owner = { person: lake.owner };
  const times: Record<'ingest' | 'baseline' | 'duplicate', number[]> = { ingest: [], baseline: [], duplicate: [] };

  for (let i = -2; i < OPS; i++) {
    // Two warm-up rounds, not recorded.
    const key = `landing/bench/events/${i + 2}.csv`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: csv }));
    const event = { bucket, key, sequencer: (1000 + i + 2).toString(16).padStart(16, '0') };
    let t = performance.now();
    const { record } = await ingestObject(lake, event, { source });
    const ingestMs = performance.now() - t;
    if (record.status !== 'merged')
      throw new Error(`ingestion ${record.id}: ${record.status} ${record.error?.message}`);
    t = performance.now();
    const again = await ingestObject(lake, event, { source });
    const duplicateMs = performance.now() - t;
    if (!again.duplicate) throw new Error('a duplicate was processed again');
    t = performance.now();
    const branch = `bench/by-hand-${i + 2}`;
    await lake.catalog.createBranch(branch, 'main', owner);
    await lake.importTable(owner, { table: 'bench.manual', file: local, branch });
    await lake.catalog.merge(branch, 'main', { actor: owner, message: 'by hand' });
    const baselineMs = performance.now() - t;
    if (i >= 0) {
      times.ingest.push(ingestMs);
      times.duplicate.push(duplicateMs);
      times.baseline.push(baselineMs);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const min = (xs: number[]) => Math.min(...xs);
  const rows = (['ingest', 'duplicate', 'baseline'] as const).map(
    (k) =>
      `| ${k} | ${median(times[k]).toFixed(0)} ms | ${min(times[k]).toFixed(0)} ms | ${(median(times[k]) / median(times.baseline)).toFixed(2)}× |`,
  );
  console.log(
    [
      `Ingestion of one 100-row CSV on DynamoDB Local + s3rver, ${OPS} samples each, interleaved`,
      '',
      '| operation | median | min | vs baseline (median) |',
      '|---|---|---|---|',
      ...rows,
    ].join('\n'),
  );
  await lake.close();
  s3.destroy();
} finally {
  await emulators.stop();
}
