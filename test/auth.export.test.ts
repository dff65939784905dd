import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Approvals } from '../shared/approvals/index.js';
import type { AuthActor, GuardedLake } from '../shared/auth/index.js';
import type { Lake } from '../shared/lake/Lake.js';
import { castOfActors, csvFile, guardedLake } from './auth.fixtures.js';
import { airlock, tempDir } from './support/cli.js';

/** Exports beyond masks, filters and caps through the guard's approvals; `table tag` through the guard. */
let lake: Lake;
let guard: GuardedLake;
let approvals: Approvals;
let dir: string;
let cast: Record<string, AuthActor>;
const actor = (name: string) => cast[name] as AuthActor;

async function refusal(
  p: Promise<unknown>,
): Promise<{ code: string; message: string; details?: { approvalId?: string } }> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err as { code: string; message: string; details?: { approvalId?: string } },
  );
  expect(e, 'expected a refusal').toBeDefined();
  return e as { code: string; message: string; details?: { approvalId?: string } };
}

async function objectsUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of lake.stores.objects.list(prefix)) keys.push(o.key);
  return keys;
}

beforeAll(async () => {
  ({ lake, guard, approvals, dir } = await guardedLake('airlock-export-'));
  cast = await castOfActors(guard);
  const owner = guard.owner;
  await guard.createBranch(owner, { name: 'seed' });
  await guard.importTable(owner, {
    table: 'sales.orders',
    file: csvFile(
      dir,
      'orders.csv',
      'id,email,amount\n1,ann@example.com,10\n2,bob@example.com,20\n3,cid@example.com,30\n',
    ),
    branch: 'seed',
    tags: { email: ['pii'] },
  });
  await guard.importTable(owner, {
    table: 'ops.events',
    file: csvFile(dir, 'events.csv', 'id,kind\n1,a\n2,b\n3,c\n4,d\n5,e\n'),
    branch: 'seed',
  });
  await guard.merge(owner, { source: 'seed', into: 'main' });
}, 120_000);

describe('an export of a masked table', () => {
  let approvalId: string;

  it('is an approval request (APPROVAL_REQUIRED), audited as approval_required', async () => {
    const e = await refusal(guard.exportTable(actor('writer'), { table: 'sales.orders', file: join(dir, 'w.csv') }));
    expect(e.code).toBe('APPROVAL_REQUIRED');
    expect(e.message).toContain('masked columns email');
    approvalId = String(e.details?.approvalId);
    const a = await approvals.get(approvalId);
    expect(a).toMatchObject({ action: 'export', status: 'pending', requester: { person: 'walt' } });
    expect(a.binding).toMatchObject({ table: 'sales.orders', ref: 'main' });
    expect(a.binding.version).toBe((await lake.catalog.getTable('main', 'sales.orders')).id);
    expect(existsSync(join(dir, 'w.csv'))).toBe(false);
    // The same export asked again is the same approval; another person's is their own.
    const again = await refusal(
      guard.exportTable(actor('writer'), { table: 'sales.orders', file: join(dir, 'w.csv') }),
    );
    expect(again.details?.approvalId).toBe(approvalId);
    const other = await refusal(
      guard.exportTable(actor('reader'), { table: 'sales.orders', file: join(dir, 'r.csv') }),
    );
    expect(other.code).toBe('APPROVAL_REQUIRED');
    expect(other.details?.approvalId).not.toBe(approvalId);
    expect((await approvals.get(String(other.details?.approvalId))).requester.person).toBe('rita');
    const [entry] = await guard.audit.log({ actor: { person: 'walt' }, action: 'table.export', limit: 1 });
    expect(entry).toMatchObject({ outcome: 'approval_required', details: { approvalId } });
  });

  it('before it is executed, the download is APPROVAL_REQUIRED with the same id', async () => {
    const e = await refusal(
      guard.exportTable(actor('writer'), { table: 'sales.orders', file: join(dir, 'early.csv'), approval: approvalId }),
    );
    expect(e.code).toBe('APPROVAL_REQUIRED');
    expect(e.details?.approvalId).toBe(approvalId);
    expect(existsSync(join(dir, 'early.csv'))).toBe(false);
  });

  it('approved by an admin, executes once to exports/<id>/<table>.<format>; a replayed approve is a no-op', async () => {
    const done = await approvals.approve(actor('admin'), approvalId);
    expect(done.status).toBe('executed');
    const key = `exports/${approvalId}/sales.orders.csv`;
    expect(done.result).toMatchObject({ key, rows: 3, format: 'csv' });
    expect(Number(done.result?.bytes)).toBe((await lake.stores.objects.head(key))?.size);
    const objects = await objectsUnder(`exports/${approvalId}/`);
    expect(objects.filter((k) => k.endsWith('.csv'))).toEqual([key]);

    const again = await approvals.approve(actor('admin'), approvalId);
    expect(again.status).toBe('executed');
    expect(again.result).toEqual(done.result);
    expect(await objectsUnder(`exports/${approvalId}/`)).toEqual(objects);
  });

  it('the requester downloads the raw values; so may an agent of theirs', async () => {
    const r = await guard.exportTable(actor('writer'), {
      table: 'sales.orders',
      file: join(dir, 'raw.csv'),
      approval: approvalId,
    });
    expect(r.rows).toBe(3);
    const text = readFileSync(join(dir, 'raw.csv'), 'utf8');
    expect(text).toContain('ann@example.com');
    expect(text).toContain('cid@example.com');
    await guard.exportTable(actor('agent of writer'), {
      table: 'sales.orders',
      file: join(dir, 'raw-bot.csv'),
      approval: approvalId,
    });
    expect(readFileSync(join(dir, 'raw-bot.csv'), 'utf8')).toBe(text);
    const [entry] = await guard.audit.log({
      actor: { person: 'walt', agent: 'wbot' },
      action: 'table.export',
      limit: 1,
    });
    expect(entry).toMatchObject({ outcome: 'ok', details: { rows: 3 } });
  });

  it('anyone else is DENIED (even the approving admin) and nothing is written', async () => {
    for (const name of ['reader', 'admin', 'agent of admin']) {
      const file = join(dir, `other-${name.replaceAll(' ', '-')}.csv`);
      const e = await refusal(guard.exportTable(actor(name), { table: 'sales.orders', file, approval: approvalId }));
      expect(e.code).toBe('DENIED');
      expect(existsSync(file)).toBe(false);
    }
    const [entry] = await guard.audit.log({ actor: { person: 'rita' }, action: 'table.export', limit: 1 });
    expect(entry?.outcome).toBe('denied');
  });

  it('a download in another format than approved is INVALID', async () => {
    const e = await refusal(
      guard.exportTable(actor('writer'), { table: 'sales.orders', file: join(dir, 'raw.json'), approval: approvalId }),
    );
    expect(e.code).toBe('INVALID');
  });
});

describe('an export whose table changed after the request', () => {
  it('is void when approved, and nothing is exported', async () => {
    await guard.createBranch(actor('writer'), { name: 'wdev' });
    const e = await refusal(
      guard.exportTable(actor('writer'), { table: 'sales.orders', ref: 'wdev', file: join(dir, 'x.parquet') }),
    );
    expect(e.code).toBe('APPROVAL_REQUIRED');
    const id = String(e.details?.approvalId);
    await guard.importTable(actor('writer'), {
      table: 'sales.orders',
      file: csvFile(dir, 'more.csv', 'id,email,amount\n9,zed@example.com,90\n'),
      branch: 'wdev',
      mode: 'append',
    });
    const void_ = await refusal(approvals.approve(actor('admin'), id));
    expect(void_.code).toBe('CONFLICT');
    expect(void_.message).toContain('moved');
    expect((await approvals.get(id)).status).toBe('void');
    expect(await objectsUnder(`exports/${id}/`)).toEqual([]);
    const d = await refusal(
      guard.exportTable(actor('writer'), { table: 'sales.orders', file: join(dir, 'x.parquet'), approval: id }),
    );
    expect(d.code).toBe('CONFLICT');
  });
});

describe('an export beyond the query caps', () => {
  it('within caps and unmasked: exported directly', async () => {
    const r = await guard.exportTable(actor('reader'), { table: 'ops.events', file: join(dir, 'events-ok.csv') });
    expect(r.rows).toBe(5);
    expect(readFileSync(join(dir, 'events-ok.csv'), 'utf8')).toContain('kind');
  });

  it('more rows than the person may query: an approval, then the approved export has every row', async () => {
    await guard.setCaps(guard.owner, { person: 'rita' }, { maxRows: 2 });
    const e = await refusal(guard.exportTable(actor('reader'), { table: 'ops.events', file: join(dir, 'ev.jsonl') }));
    expect(e.code).toBe('APPROVAL_REQUIRED');
    expect(e.message).toContain('5 rows over the cap of 2');
    const id = String(e.details?.approvalId);
    // Another person's caps are their own: walt still exports directly.
    expect((await guard.exportTable(actor('writer'), { table: 'ops.events', file: join(dir, 'ev-w.csv') })).rows).toBe(
      5,
    );
    expect((await approvals.approve(actor('admin'), id)).result).toMatchObject({
      key: `exports/${id}/ops.events.jsonl`,
      rows: 5,
    });
    await guard.exportTable(actor('reader'), { table: 'ops.events', file: join(dir, 'ev.jsonl'), approval: id });
    expect(readFileSync(join(dir, 'ev.jsonl'), 'utf8').trim().split('\n')).toHaveLength(5);
  });

  it('more bytes than the person may scan: an approval', async () => {
    await guard.setCaps(guard.owner, { person: 'rita' }, { maxRows: 1000, maxBytesScanned: 10 });
    const e = await refusal(guard.exportTable(actor('reader'), { table: 'ops.events', file: join(dir, 'ev2.csv') }));
    expect(e.code).toBe('APPROVAL_REQUIRED');
    expect(e.message).toContain('over the cap of 10');
  });
});

describe('tagColumns through the guard', () => {
  it('a writer tags on their own branch; audited', async () => {
    await guard.createBranch(actor('writer'), { name: 'wtag' });
    const r = await guard.tagColumns(actor('writer'), {
      table: 'ops.events',
      branch: 'wtag',
      columns: ['kind'],
      tag: 'pii',
    });
    const { version } = await lake.catalog.getTable('wtag', 'ops.events');
    expect(version.schema.fields.find((f) => f.name === 'kind')?.tags).toEqual(['pii']);
    const [entry] = await guard.audit.log({ actor: { person: 'walt' }, action: 'table.tag', limit: 1 });
    expect(entry).toMatchObject({ outcome: 'ok', target: 'ops.events@wtag', details: { commit: r.commit.id } });
  });

  it('a reader is DENIED, and so is anyone on a protected branch', async () => {
    const head = (await lake.catalog.head('wtag')).commit;
    const e = await refusal(
      guard.tagColumns(actor('reader'), { table: 'ops.events', branch: 'wtag', columns: ['id'], tag: 'pii' }),
    );
    expect(e.code).toBe('DENIED');
    expect((await lake.catalog.head('wtag')).commit).toBe(head);
    for (const name of ['writer', 'owner']) {
      const p = await refusal(
        guard.tagColumns(actor(name), { table: 'ops.events', branch: 'main', columns: ['id'], tag: 'pii' }),
      );
      expect(p.code).toBe('DENIED');
      expect(p.message).toContain('protected');
    }
    const [entry] = await guard.audit.log({ actor: { person: 'rita' }, action: 'table.tag', limit: 1 });
    expect(entry?.outcome).toBe('denied');
  });

  it("removing pii: an agent's removal is an approval request, a non-admin person is DENIED, an admin may", async () => {
    await guard.createBranch(actor('agent of writer'), { name: 'agent/wbot/untag', from: 'wtag' });
    const head = (await lake.catalog.head('agent/wbot/untag')).commit;
    const untag = { table: 'ops.events', columns: ['kind'], tag: 'pii', remove: true };
    const a = await refusal(guard.tagColumns(actor('agent of writer'), { ...untag, branch: 'agent/wbot/untag' }));
    expect(a.code).toBe('APPROVAL_REQUIRED');
    const unmaskId = String(a.details?.approvalId);
    expect((await approvals.get(unmaskId)).action).toBe('unmask');
    expect((await lake.catalog.head('agent/wbot/untag')).commit).toBe(head);
    // An agent never approves; an admin's approval removes the tag once, as the agent.
    expect((await refusal(approvals.approve(actor('agent of admin'), unmaskId))).code).toBe('DENIED');
    const done = await approvals.approve(actor('admin'), unmaskId);
    expect(done.status).toBe('executed');
    const untagged = await lake.catalog.getTable('agent/wbot/untag', 'ops.events');
    expect(untagged.version.schema.fields.find((f) => f.name === 'kind')?.tags).toEqual([]);
    expect((await approvals.approve(actor('admin'), unmaskId)).result).toEqual(done.result);
    const [commit] = await lake.catalog.history('agent/wbot/untag', 1);
    expect(commit?.id).toBe(done.result?.commit);
    expect(commit?.agent).toBe('wbot');
    // Adding a tag is an ordinary write for the agent on its own branch.
    await guard.tagColumns(actor('agent of writer'), {
      table: 'ops.events',
      branch: 'agent/wbot/untag',
      columns: ['kind'],
      tag: 'pii',
    });

    const w = await refusal(guard.tagColumns(actor('writer'), { ...untag, branch: 'wtag' }));
    expect(w.code).toBe('DENIED');
    await guard.tagColumns(actor('admin'), { ...untag, branch: 'wtag' });
    const { version } = await lake.catalog.getTable('wtag', 'ops.events');
    expect(version.schema.fields.find((f) => f.name === 'kind')?.tags).toEqual([]);
    const [entry] = await guard.audit.log({ actor: { person: 'ada' }, action: 'table.untag', limit: 1 });
    expect(entry?.outcome).toBe('ok');
  });
});

describe('the CLI: table export --approval (dist/cli.mjs; run npm run build first)', () => {
  it('the requester downloads the approved raw export (exit 0); before approval exit 5; anyone else exit 4', async () => {
    const cli = tempDir('airlock-export-cli-');
    const L = ['--lake', join(cli, 'lake')];
    const as = (token: string) => ({ env: { AIRLOCK_TOKEN: token } });
    expect((await airlock(['init', ...L])).code).toBe(0);
    await airlock(['branch', 'create', 'dev', ...L]);
    const people = csvFile(cli, 'people.csv', 'id,email\n1,ann@example.com\n2,bob@example.com\n');
    expect(
      (await airlock(['table', 'import', 'raw.people', people, '--branch', 'dev', '--tag', 'email=pii', ...L])).code,
    ).toBe(0);
    expect((await airlock(['merge', 'dev', '--into', 'main', ...L])).code).toBe(0);
    const tokens: Record<string, string> = {};
    for (const [name, role] of [
      ['walt', 'writer'],
      ['ada', 'admin'],
      ['rita', 'reader'],
    ]) {
      expect((await airlock(['user', 'add', name as string, '--role', role as string, ...L])).code).toBe(0);
      tokens[name as string] = (
        await airlock(['token', 'create', '--user', name as string, '--json', ...L])
      ).json.token;
    }
    const out = join(cli, 'people-out.csv');
    const asked = await airlock(['table', 'export', 'raw.people', out, '--json', ...L], as(tokens.walt as string));
    expect(asked.code).toBe(5);
    expect(asked.json).toMatchObject({ status: 'awaiting_approval' });
    const id = String(asked.json.approvalId);
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    const early = await airlock(
      ['table', 'export', 'raw.people', out, '--approval', id, ...L],
      as(tokens.walt as string),
    );
    expect(early.code).toBe(5);
    expect(existsSync(out)).toBe(false);

    expect((await airlock(['approvals', 'approve', id, ...L], as(tokens.ada as string))).code).toBe(0);
    const got = await airlock(
      ['table', 'export', 'raw.people', out, '--approval', id, '--json', ...L],
      as(tokens.walt as string),
    );
    expect(got.code).toBe(0);
    expect(got.json).toMatchObject({ rows: 2, approval: id });
    expect(readFileSync(out, 'utf8')).toContain('bob@example.com');

    const other = join(cli, 'rita.csv');
    const denied = await airlock(
      ['table', 'export', 'raw.people', other, '--approval', id, ...L],
      as(tokens.rita as string),
    );
    expect(denied.code).toBe(4);
    expect(existsSync(other)).toBe(false);
  }, 300_000);
});
