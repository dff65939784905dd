/**
 * `airlock doctor` (issue 6, point 5): the pre-launch checklist fails on a lake that is not
 * ready — broad agent tokens, one approver, unanchored audit trail, untagged personal data
 * (by name and by sampled values, cards by Luhn), a token without expiry, a person without
 * a role, a broken audit chain — and passes once each item is fixed. Real SQLite lake,
 * real Parquet and DuckDB sampling; the CLI's `--json` shape and exit codes end to end.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog, auditSeqKey } from '../shared/audit/index.js';
import { AuthDirectory } from '../shared/auth/index.js';
import type { Actor } from '../shared/catalog/index.js';
import {
  type DoctorReport,
  doctorSourcesOf,
  luhnValid,
  piiKindOfName,
  piiKindOfValue,
  piiKindOfValues,
  runDoctor,
  tagColumns,
} from '../shared/doctor/index.js';
import { isDenied, isInvalid } from '../shared/errors/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { airlock, tempDir } from './support/cli.js';

const lakes: Lake[] = [];
afterAll(async () => {
  for (const lake of lakes) await lake.close();
});

const CSV = [
  'id,email,contact,ref,note,order_no',
  '1,ann@example.com,ann.lee@corp.example.org,4111 1111 1111 1111,first order,1234567812345678',
  '2,bo@example.com,bo@mail.example.net,5500 0000 0000 0004,gift,2234567812345678',
  '3,cy@example.com,cy@corp.example.org,4012 8888 8888 1881,,3234567812345678',
].join('\n');

const failing = (report: DoctorReport) =>
  report.checks
    .filter((c) => !c.ok)
    .map((c) => c.id)
    .sort();

/** A lake that is not ready for launch: every item of the checklist but the caps and protection fails. */
async function unreadyLake() {
  const dir = join(tempDir(), 'lake');
  const { lake } = await Lake.init({ backend: 'local', dir });
  lakes.push(lake);
  const owner: Actor = { person: lake.owner };
  const file = join(tempDir(), 'customers.csv');
  writeFileSync(file, CSV);
  await lake.catalog.createBranch('dev', 'main', owner);
  await lake.importTable(owner, { table: 'crm.customers', file, branch: 'dev' });
  await lake.catalog.merge('dev', 'main', { actor: owner, message: 'customers' });
  const directory = new AuthDirectory(lake.stores.store);
  await directory.addPerson('bea', 'writer', owner.person);
  const broad = await directory.createToken({ person: 'bea', agent: 'bot', scopes: ['read', 'merge:main'] });
  const plain = await directory.createToken({ person: 'bea', scopes: ['read'] });
  // Damage that only direct store writes can make: a token without expiry, a person without a role.
  const tokenKey = { pk: 'auth', sk: `token#${plain.info.id}` };
  const token = await lake.stores.store.get(tokenKey);
  const { expires: _expires, ...endless } = (token as NonNullable<typeof token>).data;
  await lake.stores.store.put({ ...tokenKey, data: endless });
  await lake.stores.store.put({ pk: 'auth', sk: 'person#dan', data: { name: 'dan', created: 'x', createdBy: 'x' } });
  const audit = new AuditLog(lake.stores.store, lake.stores.objects, { anchorEvery: 0 });
  await audit.append({ person: owner.person, action: 'query', target: 'main', outcome: 'ok' });
  return { lake, dir, owner, directory, audit, broadToken: broad.info.id, endlessToken: plain.info.id };
}

/** Fixes every failing item of {@link unreadyLake} with the commands the doctor suggests. */
async function makeReady({
  lake,
  owner,
  directory,
  audit,
  broadToken,
  endlessToken,
}: Awaited<ReturnType<typeof unreadyLake>>) {
  await directory.revokeToken(broadToken);
  await directory.revokeToken(endlessToken);
  await directory.createToken({ person: 'bea', agent: 'bot', scopes: ['read', 'write:agent/bot/*', 'run'] });
  await lake.stores.store.put({
    pk: 'auth',
    sk: 'person#dan',
    data: { name: 'dan', role: 'reader', created: 'x', createdBy: 'x' },
  });
  await directory.addPerson('cleo', 'approver', owner.person);
  await lake.catalog.createBranch('fix/pii', 'main', owner);
  await tagColumns(lake.catalog, owner, {
    branch: 'fix/pii',
    table: 'crm.customers',
    columns: ['email', 'contact', 'ref'],
    tag: 'pii',
  });
  await lake.catalog.merge('fix/pii', 'main', { actor: owner, message: 'tag pii' });
  await audit.anchor();
}

describe('recognising personal data', () => {
  it('by column name', () => {
    expect(piiKindOfName('email')).toBe('email');
    expect(piiKindOfName('customerEmail')).toBe('email');
    expect(piiKindOfName('phone_number')).toBe('phone');
    expect(piiKindOfName('card_number')).toBe('card');
    expect(piiKindOfName('SSN')).toBe('national_id');
    expect(piiKindOfName('national_id')).toBe('national_id');
    expect(piiKindOfName('amount')).toBeUndefined();
    expect(piiKindOfName('telemetry')).toBeUndefined();
  });

  it('by value, with the Luhn checksum telling cards from other long numbers', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(piiKindOfValue('4111 1111 1111 1111')).toBe('card');
    expect(piiKindOfValue('4111 1111 1111 1112')).toBeUndefined();
    expect(piiKindOfValue('ann@example.com')).toBe('email');
    expect(piiKindOfValue('+44 20 7946 0958')).toBe('phone');
    expect(piiKindOfValue('078-05-1120')).toBe('national_id');
    expect(piiKindOfValue('DE89370400440532013000')).toBe('iban');
    expect(piiKindOfValue('hello world')).toBeUndefined();
    expect(piiKindOfValues(['a@b.io', 'c@d.io', 'n/a'])).toBe('email');
    expect(piiKindOfValues(['a@b.io', 'x', 'y'])).toBeUndefined();
  });
});

describe('the checklist', () => {
  it('fails on a fresh lake only because one person cannot be the approver of everything', async () => {
    const { lake } = await Lake.init({ backend: 'local', dir: join(tempDir(), 'lake') });
    lakes.push(lake);
    const report = await runDoctor(doctorSourcesOf(lake));
    expect(report.ok).toBe(false);
    expect(failing(report)).toEqual(['approval-gate']);
    expect(report.checks.find((c) => c.id === 'approval-gate')?.fix).toBe('airlock user add <name> --role approver');
    expect(report.checks.map((c) => c.id)).toEqual([
      'agents-read-only',
      'protected-branches',
      'caps-finite',
      'approval-gate',
      'audit-chain',
      'audit-anchor',
      'pii-tagged',
      'token-expiry',
      'person-role',
    ]);
  });

  it('fails each item that is not ready, naming what and how to fix it', async () => {
    const ready = await unreadyLake();
    const report = await runDoctor(doctorSourcesOf(ready.lake));
    expect(failing(report)).toEqual([
      'agents-read-only',
      'approval-gate',
      'audit-anchor',
      'person-role',
      'pii-tagged',
      'token-expiry',
    ]);
    const byId = Object.fromEntries(report.checks.map((c) => [c.id, c]));
    expect(byId['agents-read-only']?.message).toContain(`${ready.broadToken} (bea/bot: read merge:main)`);
    expect(byId['agents-read-only']?.fix).toContain(`airlock token revoke ${ready.broadToken}`);
    const pii = byId['pii-tagged']?.message ?? '';
    expect(pii).toContain('crm.customers.email (email, by name)');
    expect(pii).toContain('crm.customers.contact (email, by values)');
    expect(pii).toContain('crm.customers.ref (card, by values)');
    expect(pii).not.toContain('order_no');
    expect(pii).not.toContain('note');
    expect(byId['pii-tagged']?.fix).toContain('airlock table tag crm.customers email,contact,ref pii --branch fix/pii');
    expect(byId['token-expiry']?.message).toContain(ready.endlessToken);
    expect(byId['person-role']?.message).toBe('people without a role: dan');
    expect(byId['audit-anchor']?.fix).toMatch(/^airlock audit anchor/);
  }, 120_000);

  it('passes once every item is fixed', async () => {
    const ready = await unreadyLake();
    await makeReady(ready);
    const report = await runDoctor(doctorSourcesOf(ready.lake));
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checks.every((c) => c.fix === undefined)).toBe(true);
    const columns = (await ready.lake.catalog.getTable('main', 'crm.customers')).version.schema.fields;
    expect(columns.filter((f) => f.tags.includes('pii')).map((f) => f.name)).toEqual(['email', 'contact', 'ref']);
  }, 120_000);

  it('fails the audit chain when an entry was deleted', async () => {
    const ready = await unreadyLake();
    await makeReady(ready);
    await ready.audit.append({ person: 'bea', action: 'query', target: 'main', outcome: 'ok' });
    await ready.audit.append({ person: 'bea', action: 'query', target: 'main', outcome: 'ok' });
    await ready.lake.stores.store.transact([{ op: 'delete', key: { pk: 'audit', sk: auditSeqKey(2) } }]);
    const report = await runDoctor(doctorSourcesOf(ready.lake));
    expect(failing(report)).toEqual(['audit-anchor', 'audit-chain']);
    expect(report.checks.find((c) => c.id === 'audit-chain')?.message).toMatch(/broken at entry 2/);
  }, 120_000);

  it('flags an anchor that is old while newer entries are not anchored', async () => {
    const ready = await unreadyLake();
    await makeReady(ready);
    await ready.audit.append({ person: 'bea', action: 'query', target: 'main', outcome: 'ok' });
    const later = () => new Date(Date.now() + 2 * 24 * 3600 * 1000);
    const report = await runDoctor(doctorSourcesOf(ready.lake, { now: later }));
    expect(failing(report)).toEqual(['audit-anchor']);
  }, 120_000);
});

describe('tagging columns', () => {
  it('refuses unknown columns, bad tags and protected branches, changing nothing', async () => {
    const { lake, owner } = await unreadyLake();
    const head = (await lake.catalog.head('main')).commit;
    const tag = (branch: string, columns: string[], t = 'pii') =>
      tagColumns(lake.catalog, owner, { branch, table: 'crm.customers', columns, tag: t });
    await expect(tag('main', ['email'])).rejects.toSatisfy(isDenied);
    await lake.catalog.createBranch('t', 'main', owner);
    await expect(tag('t', ['nope'])).rejects.toSatisfy(isInvalid);
    await expect(tag('t', ['email'], 'PII!')).rejects.toSatisfy(isInvalid);
    expect((await lake.catalog.head('main')).commit).toBe(head);
    expect((await lake.catalog.head('t')).commit).toBe(head);
  }, 120_000);
});

describe('airlock doctor (CLI)', () => {
  it('prints {ok, checks} and exits 1 while an item fails, 0 once all pass', async () => {
    const ready = await unreadyLake();
    const failed = await airlock(['doctor', '--json', '--lake', ready.dir]);
    expect(failed.code).toBe(1);
    expect(failed.json.ok).toBe(false);
    for (const check of failed.json.checks) {
      expect(Object.keys(check).sort()).toEqual(check.ok ? ['id', 'message', 'ok'] : ['fix', 'id', 'message', 'ok']);
    }
    expect(failed.json.checks.filter((c: { ok: boolean }) => !c.ok)).toHaveLength(6);

    await makeReady(ready);
    const passed = await airlock(['doctor', '--json', '--lake', ready.dir]);
    expect(passed.code).toBe(0);
    expect(passed.json.ok).toBe(true);
    const text = await airlock(['doctor', '--lake', ready.dir]);
    expect(text.stdout).toContain('PASS  pii-tagged');
    expect(text.stdout).toContain('All checks pass.');
  }, 120_000);
});
