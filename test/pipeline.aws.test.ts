import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { airlock, tempDir } from './support/cli.js';
import { awsBackendEnv } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

const ML = join(import.meta.dirname, 'fixtures', 'pipelines', 'ml');

/** Pipeline runs with AIRLOCK_BACKEND=aws: run log and run branch in DynamoDB Local, data in s3rver. */
describe('pipeline runs on the AWS backend (DynamoDB Local + s3rver)', () => {
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    const emulators = await useEmulators();
    env = awsBackendEnv(emulators, 'airlock-runs');
  }, 300_000);

  it('runs, fails and publishes exactly as on the embedded lake', async () => {
    const run = (args: string[]) => airlock([...args, '--json'], { env });
    expect((await run(['init'])).code).toBe(0);
    expect((await run(['branch', 'create', 'dev'])).code).toBe(0);
    const csv = join(tempDir(), 'events.csv');
    writeFileSync(csv, `id,amount\n${Array.from({ length: 20 }, (_, i) => `${i + 1},${i + 1}.5`).join('\n')}\n`);
    expect((await run(['table', 'import', 'raw.events', csv, '--branch', 'dev'])).code).toBe(0);

    const failed = await run(['run', ML, '--branch', 'dev', '--param', 'tag=aws', '--param', 'fail=true']);
    expect(failed.code, failed.stdout + failed.stderr).toBe(1);
    expect(failed.json).toMatchObject({ status: 'failed', error: { step: 'train.mjs' } });
    const tablesAfterFailure = await run(['table', 'list', '--ref', 'dev']);
    expect(tablesAfterFailure.json.map((t: { name: string }) => t.name)).toEqual(['raw.events']);

    const ok = await run(['run', ML, '--branch', 'dev', '--param', 'tag=aws']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.json).toMatchObject({ status: 'succeeded', published: true, mergeStatus: 'merged' });
    const q = await run(['query', "SELECT count(*) AS n FROM ml.train WHERE run_tag = 'aws'", '--ref', 'dev']);
    expect(q.json.rows).toEqual([{ n: 16 }]);
    const list = await run(['runs', 'list']);
    expect(list.json.map((r: { status: string }) => r.status)).toEqual(['succeeded', 'failed']);
  }, 300_000);
});
