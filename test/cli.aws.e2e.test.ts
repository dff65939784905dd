import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { airlock, tempDir } from './support/cli.js';
import { awsBackendEnv } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

/** The same CLI contract with AIRLOCK_BACKEND=aws against DynamoDB Local and s3rver. */
describe('the CLI on the AWS backend (DynamoDB Local + s3rver)', () => {
  let env: NodeJS.ProcessEnv;
  const dir = tempDir('airlock-aws-e2e-');

  beforeAll(async () => {
    const emulators = await useEmulators();
    env = awsBackendEnv(emulators, 'airlock-cli');
  }, 300_000);

  it('init creates the table and bucket, then every command works end to end', async () => {
    const run = (args: string[]) => airlock([...args, '--json'], { env });
    const init = await run(['init']);
    expect(init.code, init.stdout + init.stderr).toBe(0);
    expect(init.json).toMatchObject({ created: true, branch: 'main' });
    expect((await run(['init'])).json).toMatchObject({ created: false });

    expect((await run(['branch', 'create', 'ingest'])).code).toBe(0);
    const csv = join(dir, 'events.csv');
    writeFileSync(csv, 'id,country,amount\n1,DE,1.5\n2,FR,2.5\n3,DE,4\n');
    const imported = await run(['table', 'import', 'raw.events', csv, '--branch', 'ingest', '--unique', 'id']);
    expect(imported.code, imported.stdout + imported.stderr).toBe(0);
    expect(imported.json).toMatchObject({ rows: 3, created: true });

    const show = await run(['table', 'show', 'raw.events', '--ref', 'ingest']);
    expect(show.json).toMatchObject({ name: 'raw.events', rowCount: 3 });

    const merged = await run(['merge', 'ingest', '--into', 'main']);
    expect(merged.json).toMatchObject({ status: 'fast-forward' });

    const q = await run([
      'query',
      'SELECT country, sum(amount) AS total FROM raw.events GROUP BY country ORDER BY country',
    ]);
    expect(q.code, q.stdout + q.stderr).toBe(0);
    expect(q.json.rows).toEqual([
      { country: 'DE', total: 5.5 },
      { country: 'FR', total: 2.5 },
    ]);

    const dup = join(dir, 'dup.csv');
    writeFileSync(dup, 'id,country,amount\n3,US,9\n');
    expect((await run(['branch', 'create', 'more'])).code).toBe(0);
    const refused = await run(['table', 'import', 'raw.events', dup, '--branch', 'more']);
    expect(refused.code).toBe(1);
    expect(refused.json.error.message).toMatch(/duplicate value of unique key \(id\).*3/);

    const log = await run(['log', 'main']);
    expect(log.json.map((c: { message: string }) => c.message)).toEqual([
      expect.stringContaining('raw.events'),
      'Initialize lake',
    ]);
    const exported = join(dir, 'out.csv');
    expect((await run(['table', 'export', 'raw.events', exported])).json).toMatchObject({ rows: 3 });
  }, 300_000);
});
