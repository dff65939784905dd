import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Lake } from '../shared/lake/Lake.js';
import { airlock, lakeState, tempDir } from './support/cli.js';

const dir = tempDir('airlock-e2e-');
const lake = join(dir, 'lake');
const L = ['--lake', lake];

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

beforeAll(async () => {
  expect((await airlock(['init', '--json', ...L])).json).toMatchObject({ created: true, branch: 'main' });
  await airlock(['branch', 'create', 'dev', ...L]);
  const events = file('events.csv', 'id,email,amount\n1,a@x.com,1.5\n2,b@x.com,2.5\n3,c@x.com,3.5\n');
  const r = await airlock([
    'table',
    'import',
    'raw.events',
    events,
    '--branch',
    'dev',
    '--unique',
    'id',
    '--tag',
    'email=pii',
    '--json',
    ...L,
  ]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

describe('the CLI contract', () => {
  it('init is idempotent', async () => {
    const r = await airlock(['init', '--json', ...L]);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ created: false });
  });

  it('table show --json gives name, version, rowCount and schema fields with tags', async () => {
    const r = await airlock(['table', 'show', 'raw.events', '--ref', 'dev', '--json', ...L]);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({
      name: 'raw.events',
      rowCount: 3,
      schema: {
        fields: [
          { name: 'id', type: 'Int64', tags: [] },
          { name: 'email', type: 'Utf8', tags: ['pii'] },
          { name: 'amount', type: 'Float64', tags: [] },
        ],
      },
    });
    expect(r.json.version).toMatch(/^[0-9a-f]{64}$/);
  });

  it('query --json prints columns, rows and stats', async () => {
    const r = await airlock([
      'query',
      'SELECT id, amount FROM raw.events WHERE id >= $min ORDER BY id',
      '--param',
      'min=2',
      '--ref',
      'dev',
      '--json',
      ...L,
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.columns.map((c: { name: string }) => c.name)).toEqual(['id', 'amount']);
    expect(r.json.rows).toEqual([
      { id: 2, amount: 2.5 },
      { id: 3, amount: 3.5 },
    ]);
    expect(r.json.stats).toMatchObject({ rowsReturned: 2 });
    expect(r.json.stats.bytesScanned).toBeGreaterThan(0);
  });

  it('log --json is an array, newest first, with the contract fields', async () => {
    const r = await airlock(['log', 'dev', '--json', ...L]);
    expect(r.code).toBe(0);
    expect(r.json[0]).toMatchObject({
      author: expect.any(String),
      agent: null,
      message: expect.stringContaining('raw.events'),
    });
    expect(Object.keys(r.json[0])).toEqual(
      expect.arrayContaining(['id', 'parents', 'author', 'agent', 'message', 'time']),
    );
    expect(r.json[0].parents).toEqual([r.json[1].id]);
    expect(r.json.at(-1).parents).toEqual([]);
  });

  it('exports a table and re-imports it identically', async () => {
    const out = join(dir, 'export.parquet');
    expect((await airlock(['table', 'export', 'raw.events', out, '--ref', 'dev', ...L])).code).toBe(0);
    await airlock(['branch', 'create', 'roundtrip', '--from', 'dev', ...L]);
    const r = await airlock(['table', 'import', 'raw.copy', out, '--branch', 'roundtrip', '--json', ...L]);
    expect(r.json).toMatchObject({ rows: 3, created: true });
    const q = await airlock([
      'query',
      'SELECT count(*) AS n FROM (SELECT * FROM raw.events EXCEPT SELECT * FROM raw.copy)',
      '--ref',
      'roundtrip',
      '--json',
      ...L,
    ]);
    expect(q.json.rows).toEqual([{ n: 0 }]);
  });

  it('merges with --dry-run first, then for real, and exits 3 on a conflict', async () => {
    const plan = await airlock(['merge', 'dev', '--into', 'main', '--dry-run', '--json', ...L]);
    expect(plan.json).toMatchObject({ status: 'fast-forward', dryRun: true });
    expect((await airlock(['table', 'list', '--json', ...L])).json).toEqual([]);
    const merged = await airlock(['merge', 'dev', '--into', 'main', '--json', ...L]);
    expect(merged.json).toMatchObject({ status: 'fast-forward' });
    await airlock(['branch', 'create', 'a', ...L]);
    await airlock(['branch', 'create', 'b', ...L]);
    const one = file('one.csv', 'id,email,amount\n10,x@y.z,1\n');
    const two = file('two.csv', 'id,email,amount\n20,x@y.z,2\n');
    await airlock(['table', 'import', 'raw.events', one, '--branch', 'a', '--mode', 'overwrite', ...L]);
    await airlock(['table', 'import', 'raw.events', two, '--branch', 'b', '--mode', 'overwrite', ...L]);
    expect((await airlock(['merge', 'a', '--into', 'main', ...L])).code).toBe(0);
    const before = await lakeState(lake);
    const conflict = await airlock(['merge', 'b', '--into', 'main', '--json', ...L]);
    expect(conflict.code).toBe(3);
    expect(conflict.json.error.code).toBe('CONFLICT');
    expect(conflict.json.error.message).toContain('raw.events');
    expect(await lakeState(lake)).toEqual(before);
  });

  it('usage errors exit 2 with a JSON error body', async () => {
    const r = await airlock(['merge', 'dev', '--json', ...L]);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('USAGE');
    expect(r.json.error.message).toContain('--into');
  });

  it('init --protect (or AIRLOCK_PROTECTED_BRANCHES) adds protected branches to an existing lake', async () => {
    const r = await airlock(['init', '--protect', 'release/*,prod', '--json', ...L]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.protectedBranches).toEqual(['main', 'release/*', 'prod']);
    expect((await airlock(['branch', 'create', 'release/2', '--json', ...L])).code).toBe(0);
    const f = file('r.csv', 'id\n1\n');
    const denied = await airlock(['table', 'import', 'raw.r', f, '--branch', 'release/2', '--json', ...L]);
    expect(denied.code).toBe(4);
    const branches = await airlock(['branch', 'list', '--json', ...L]);
    expect(branches.json.find((b: { name: string }) => b.name === 'release/2').protected).toBe(true);
  });

  it('the Lambda handlers open their lake with AIRLOCK_PROTECTED_BRANCHES applied (Lake.openFromEnv)', async () => {
    const opened = await Lake.openFromEnv({ AIRLOCK_LAKE: lake, AIRLOCK_PROTECTED_BRANCHES: ' staging , prod ' });
    try {
      expect(await opened.catalog.isProtected('staging')).toBe(true);
      expect(await opened.catalog.isProtected('release/9')).toBe(true); // kept from init --protect
      expect(await opened.catalog.isProtected('dev')).toBe(false);
    } finally {
      await opened.close();
    }
  });

  it('protected branches refuse direct imports with exit 4', async () => {
    const f = file('p.csv', 'id\n1\n');
    const r = await airlock(['table', 'import', 'raw.p', f, '--branch', 'main', '--json', ...L]);
    expect(r.code).toBe(4);
    expect(r.json.error.code).toBe('DENIED');
  });
});

describe('bad input changes nothing', () => {
  const cases: Array<[string, () => string[], number, RegExp]> = [
    ['an unknown ref', () => ['table', 'list', '--ref', 'no-such-branch'], 1, /unknown ref 'no-such-branch'/],
    [
      'an unknown branch',
      () => ['table', 'import', 'raw.x', file('u.csv', 'id\n1\n'), '--branch', 'nope'],
      1,
      /unknown branch 'nope'/,
    ],
    [
      'a malformed CSV',
      () => ['table', 'import', 'raw.bad', file('bad.csv', 'id,name\n1,"unterminated\n2,x,y,z\n'), '--branch', 'dev'],
      1,
      /bad\.csv/,
    ],
    [
      'malformed JSON',
      () => ['table', 'import', 'raw.bad', file('bad.json', '[{"id": 1}, {"id": '), '--branch', 'dev'],
      1,
      /bad\.json/,
    ],
    [
      'malformed JSONL',
      () => ['table', 'import', 'raw.bad', file('bad.jsonl', '{"id": 1}\nnot json\n'), '--branch', 'dev'],
      1,
      /bad\.jsonl/,
    ],
    [
      'a wrong type',
      () => ['table', 'import', 'raw.events', file('type.csv', 'id,email,amount\nabc,a@b.c,1\n'), '--branch', 'dev'],
      1,
      /abc/,
    ],
    [
      'a wrong type in JSON',
      () => [
        'table',
        'import',
        'raw.events',
        file('type.jsonl', '{"id": 1.5, "email": "a", "amount": 1}\n'),
        '--branch',
        'dev',
      ],
      1,
      /'id' is Float64 in the file but Int64/,
    ],
    [
      'a missing not-null column',
      () => ['table', 'import', 'raw.events', file('missing.csv', 'email,amount\na@b.c,1\n'), '--branch', 'dev'],
      1,
      /not-null column 'id' is missing/,
    ],
    [
      'a null in a not-null column',
      () => ['table', 'import', 'raw.events', file('null.csv', 'id,email,amount\n,a@b.c,1\n'), '--branch', 'dev'],
      1,
      /not-null column 'id' has 1 null/,
    ],
    [
      'a duplicate unique key within the file',
      () => ['table', 'import', 'raw.events', file('dup.csv', 'id,email,amount\n7,a,1\n7,b,2\n'), '--branch', 'dev'],
      1,
      /duplicate value of unique key \(id\).*7/,
    ],
    [
      'a unique key already in the table',
      () => ['table', 'import', 'raw.events', file('dup2.csv', 'id,email,amount\n2,a,1\n'), '--branch', 'dev'],
      1,
      /duplicate value of unique key \(id\).*2/,
    ],
    [
      'an extra column',
      () => ['table', 'import', 'raw.events', file('extra.csv', 'id,email,amount,zzz\n99,a,1,2\n'), '--branch', 'dev'],
      1,
      /'zzz' not in the table/,
    ],
    [
      'a table name with ../',
      () => ['table', 'import', '../x', file('t1.csv', 'id\n1\n'), '--branch', 'dev'],
      1,
      /invalid table name/,
    ],
    [
      'a table name with a slash',
      () => ['table', 'import', 'a/b', file('t2.csv', 'id\n1\n'), '--branch', 'dev'],
      1,
      /invalid table name/,
    ],
    [
      'an empty table name',
      () => ['table', 'import', '', file('t3.csv', 'id\n1\n'), '--branch', 'dev'],
      1,
      /invalid table name/,
    ],
    [
      'a 300-character table name',
      () => ['table', 'import', `a.${'b'.repeat(298)}`, file('t4.csv', 'id\n1\n'), '--branch', 'dev'],
      1,
      /invalid table name .*300 characters/,
    ],
    [
      'a corrupt Parquet file',
      () => [
        'table',
        'import',
        'raw.pq',
        file('corrupt.parquet', 'PAR1 this is not parquet at all'),
        '--branch',
        'dev',
      ],
      1,
      /corrupt\.parquet/,
    ],
    [
      'an unsupported file type',
      () => ['table', 'import', 'raw.x', file('x.xlsx', 'zzz'), '--branch', 'dev'],
      1,
      /unsupported file type/,
    ],
    [
      'a file that does not exist',
      () => ['table', 'import', 'raw.x', join(dir, 'nope.csv'), '--branch', 'dev'],
      1,
      /no such file/,
    ],
    ['a branch name with ..', () => ['branch', 'create', 'a..b'], 1, /invalid branch name/],
  ];

  it.each(cases)('%s: clear error, exit code, lake exactly as it was', async (_name, args, code, message) => {
    const before = await lakeState(lake);
    const objectsBefore = readdirSync(join(lake, 'objects'), { recursive: true }).sort();
    const r = await airlock([...args(), '--json', ...L]);
    expect(r.code, r.stdout + r.stderr).toBe(code);
    expect(r.json.error.message).toMatch(message);
    expect(await lakeState(lake)).toEqual(before);
    const objectsAfter = readdirSync(join(lake, 'objects'), { recursive: true }).sort();
    expect(objectsAfter.filter((f) => String(f).endsWith('.parquet'))).toEqual(
      objectsBefore.filter((f) => String(f).endsWith('.parquet')),
    );
  });

  it('a directory that is not a lake is refused with a clear error', async () => {
    const notLake = tempDir();
    writeFileSync(join(notLake, 'something.txt'), 'hello');
    const r = await airlock(['branch', 'list', '--json', '--lake', notLake]);
    expect(r.code).toBe(1);
    expect(r.json.error.message).toMatch(/is not an Airlock lake/);
    expect(readdirSync(notLake)).toEqual(['something.txt']);
  });
});
