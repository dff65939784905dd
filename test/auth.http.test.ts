import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GuardedLake } from '../shared/auth/index.js';
import { bearerActor, guardedHttpLake, withRequestScope } from '../shared/auth/http.js';
import { createHttpApp, listen, type RunningServer } from '../shared/http/index.js';
import type { Lake } from '../shared/lake/Lake.js';
import { csvFile, guardedLake } from './auth.fixtures.js';

/**
 * The HTTP API as `airlock serve` wires it (bearer tokens, every operation through the
 * guard), over a real Node HTTP server.
 */
let lake: Lake;
let guard: GuardedLake;
let server: RunningServer;
let ritaToken: string;
let waltToken: string;

const call = (path: string, init: RequestInit & { token?: string } = {}) =>
  fetch(`${server.url}${path}`, {
    ...init,
    headers: {
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...(init.headers as Record<string, string> | undefined),
    },
  });

const query = async (token: string, sql: string) => {
  const r = await call('/v1/query', { method: 'POST', token, body: JSON.stringify({ sql }) });
  expect(r.status).toBe(200);
  return (await r.json()) as { rows: Array<Record<string, unknown>> };
};

beforeAll(async () => {
  let dir: string;
  ({ lake, guard, dir } = await guardedLake('airlock-auth-http-'));
  const owner = guard.owner;
  await guard.createBranch(owner, { name: 'seed' });
  await guard.importTable(owner, {
    table: 'sales.orders',
    file: csvFile(dir, 'o.csv', 'id,email,region\n1,ann@example.com,EU\n2,bob@example.com,US\n3,cid@example.com,EU\n'),
    branch: 'seed',
    tags: { email: ['pii'] },
  });
  await guard.merge(owner, { source: 'seed', into: 'main' });
  await guard.addUser(owner, { name: 'rita', role: 'reader' });
  await guard.addUser(owner, { name: 'walt', role: 'writer' });
  await guard.setRowFilter(owner, { table: 'sales.orders', principal: { person: 'rita' }, predicate: "region = 'US'" });
  await guard.addGrant(owner, { person: 'walt', grant: { on: 'table', pattern: 'sales.orders', right: 'unmask' } });
  ritaToken = (await guard.createToken(owner, { person: 'rita' })).token;
  waltToken = (await guard.createToken(owner, { person: 'walt' })).token;
  const app = createHttpApp({ lake: guardedHttpLake(guard), actorFor: bearerActor(guard) });
  server = await listen(withRequestScope(app), { port: 0, host: '127.0.0.1' });
}, 300_000);

afterAll(async () => {
  await server?.close();
  await lake?.close();
});

describe('HTTP with bearer tokens', () => {
  it('keeps /v1/health and /v1/openapi.json public', async () => {
    expect((await call('/v1/health')).status).toBe(200);
    expect((await call('/v1/openapi.json')).status).toBe(200);
  });

  it('answers 401 with the JSON error body without a token', async () => {
    const r = await call('/v1/branches');
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: { code: 'DENIED', message: expect.stringMatching(/bearer token/) } });
  });

  it('answers 401 for a malformed, unknown or revoked token, never echoing it', async () => {
    const { token, id } = await guard.createToken(guard.owner, { person: 'rita' });
    await guard.revokeToken(guard.owner, { id });
    for (const bad of ['nonsense-SECRET', `airlock_${'0'.repeat(16)}${'S'.repeat(43)}`, token]) {
      const r = await call('/v1/branches', { token: bad });
      expect(r.status).toBe(401);
      const text = await r.text();
      expect(JSON.parse(text).error.code).toBe('DENIED');
      expect(text).not.toContain(bad.slice(-20));
    }
    const basic = await call('/v1/branches', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.status).toBe(401);
  });

  it('the same query by two people returns different rows', async () => {
    const sql = 'SELECT id, email FROM sales.orders ORDER BY id';
    const rita = await query(ritaToken, sql);
    const walt = await query(waltToken, sql);
    expect(rita.rows.map((r) => r.id)).toEqual([2]);
    expect(rita.rows[0]?.email).toMatch(/^[0-9a-f]{64}$/);
    expect(walt.rows).toEqual([
      { id: 1, email: 'ann@example.com' },
      { id: 2, email: 'bob@example.com' },
      { id: 3, email: 'cid@example.com' },
    ]);
  });

  it('masks hold over CSV streaming too', async () => {
    const r = await call('/v1/query', {
      method: 'POST',
      token: ritaToken,
      body: JSON.stringify({ sql: 'SELECT email FROM sales.orders', format: 'csv' }),
    });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).not.toMatch(/@example\.com/);
    expect(text.trim().split('\n')).toHaveLength(2);
  });

  it('audits each request as the token holder, with the SQL literals redacted', async () => {
    await query(ritaToken, "SELECT count(*) AS n FROM sales.orders WHERE email = 'ann@example.com'");
    const head = await guard.audit.head();
    expect(head).toMatchObject({ person: 'rita', action: 'query', outcome: 'ok' });
    expect(JSON.stringify(head)).not.toContain('ann@example.com');
    expect(JSON.stringify(head)).not.toContain(ritaToken);
  });

  it('catalog reads go through the guard as the caller (a denied read is audited)', async () => {
    const r = await call('/v1/branches', { token: ritaToken });
    expect(r.status).toBe(200);
    expect(((await r.json()) as Array<{ name: string }>).map((b) => b.name)).toContain('main');
    const head = await guard.audit.head();
    expect(head).toMatchObject({ person: 'rita', action: 'branch.list', outcome: 'ok' });
  });
});
