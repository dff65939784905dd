/**
 * `airlock serve` (the built CLI, as a child process) on a lake in DynamoDB Local + s3rver:
 * a file uploaded through `@aws-sdk/client-s3` to landing/ shows up as a table on main,
 * and `airlock ingest list` reports it.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lake } from '../shared/lake/Lake.js';
import { airlock } from './support/cli.js';
import { awsBackendEnv, s3ClientFor } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'airlock.mjs');
let env: NodeJS.ProcessEnv;
let s3Endpoint: string;

beforeAll(async () => {
  const emulators = await useEmulators();
  s3Endpoint = emulators.s3Endpoint;
  env = {
    ...awsBackendEnv(emulators, 'airlock-ingest-serve'),
    AIRLOCK_INGEST_POLL_MS: '200',
    AIRLOCK_INGEST_GATE: 'none',
  };
  const init = await airlock(['init', '--json'], { env });
  expect(init.code, init.stderr).toBe(0);
});

describe('airlock serve on an s3rver-backed lake', () => {
  const children: Array<ReturnType<typeof spawn>> = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });

  it('ingests an upload to landing/ into main, and ingest list reports it', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr?.on('data', (d) => {
        stderr += d;
        if (stderr.includes('Ingesting uploads')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`serve exited early (${code}): ${stderr}`)));
    });
    const s3 = s3ClientFor(s3Endpoint);
    await s3.send(
      new PutObjectCommand({
        Bucket: env.AIRLOCK_BUCKET,
        Key: 'landing/shop/items/batch-1.csv',
        Body: 'sku,price\na1,1.5\nb2,2.5\nc3,3.5\n',
      }),
    );
    s3.destroy();

    Object.assign(process.env, env); // the in-process lake reaches the emulators as the CLI does
    const lake = await Lake.open({
      backend: 'aws',
      table: env.AIRLOCK_DYNAMODB_TABLE as string,
      bucket: env.AIRLOCK_BUCKET as string,
    });
    let rows: number | undefined;
    try {
      for (let i = 0; i < 300 && rows === undefined; i++) {
        rows = await lake.catalog
          .getTable('main', 'shop.items')
          .then((t) => t.version.rowCount)
          .catch(() => undefined);
        if (rows === undefined) await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await lake.close();
    }
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    const list = await airlock(['ingest', 'list', '--json'], { env });

    expect(rows, stderr).toBe(3);
    expect(stderr).toMatch(/landing\/shop\/items\/batch-1\.csv → merged/);
    expect(list.json).toEqual([
      expect.objectContaining({ status: 'merged', table: 'shop.items', rows: 3, person: 'ingest' }),
    ]);
    expect(await exited).toBe(0);
  });

  it('refuses an unknown --status with a usage error', async () => {
    const bad = await airlock(['ingest', 'list', '--status', 'done', '--json'], { env });

    expect(bad.code).toBe(2);
    expect(bad.json.error.message).toContain('--status must be one of');
  });
});
