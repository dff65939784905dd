/**
 * Approvals over HTTP (`/v1/approvals`, mirroring `airlock approvals --json`): the approver
 * is the request's actor, agents are refused, approve executes once and honours
 * `Idempotency-Key`. The Hono app in process over an embedded SQLite lake, and the api
 * Lambda's handler over DynamoDB Local + s3rver.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Approval, openApprovals, prepareMergeApproval } from '../shared/approvals/index.js';
import type { Actor } from '../shared/catalog/index.js';
import { AuditLog } from '../shared/audit/index.js';
import { GuardedLake } from '../shared/auth/index.js';
import { createHttpApp, REPLAYED_HEADER } from '../shared/http/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { lakeLocation } from '../shared/lake/openLake.js';
import { overwrite } from './support/catalogFixtures.js';
import { tempDir } from './support/cli.js';
import { awsBackendEnv } from './support/emulators.js';
import { functionUrlEvent } from './support/functionUrlEvents.js';
import { useEmulators } from './support/useEmulators.js';

const bot: Actor = { person: 'dana', agent: 'bot' };
const SOURCE = 'agent/bot/fix';
const lakes: Lake[] = [];
afterAll(async () => {
  for (const lake of lakes) await lake.close();
});

async function served() {
  const { lake } = await Lake.init({ backend: 'local', dir: join(tempDir(), 'lake') });
  lakes.push(lake);
  await lake.catalog.createBranch(SOURCE, 'main', bot);
  await lake.catalog.commit(SOURCE, [overwrite('raw.events', null, 5)], { actor: bot, message: 'add' });
  const { approvals } = openApprovals(lake);
  const approval = await approvals.request(bot, await prepareMergeApproval(lake.catalog, bot, SOURCE, 'main'));
  // The actor comes from test headers here; `airlock serve` resolves it from the bearer token.
  const app = createHttpApp({
    lake,
    approvals,
    actorFor: (request) => {
      const person = request.headers.get('x-person') ?? 'nobody';
      const agent = request.headers.get('x-agent');
      return agent ? { person, agent } : { person };
    },
  });
  const call = async (
    method: string,
    path: string,
    as: Actor,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const res = await app.request(path, {
      method,
      headers: {
        'x-person': as.person,
        ...(as.agent ? { 'x-agent': as.agent } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as any };
  };
  return { lake, approval, call };
}

describe('/v1/approvals', () => {
  it('lists and shows approvals as the CLI prints them', async () => {
    const { approval, call } = await served();
    const listed = await call('GET', '/v1/approvals?status=pending', { person: 'bob' });
    expect(listed.status).toBe(200);
    expect(listed.body.map((a: Approval) => a.id)).toEqual([approval.id]);
    expect((await call('GET', `/v1/approvals/${approval.id}`, { person: 'bob' })).body).toEqual(approval);
    expect((await call('GET', '/v1/approvals/0123456789ab', { person: 'bob' })).status).toBe(404);
    expect((await call('GET', '/v1/approvals?status=maybe', { person: 'bob' })).status).toBe(400);
  });

  it('refuses an agent and the requester, then executes once for another person, replaying by key', async () => {
    const { lake, approval, call } = await served();
    const head = (await lake.catalog.head('main')).commit;
    const path = `/v1/approvals/${approval.id}/approve`;

    expect((await call('POST', path, { person: 'bob', agent: 'helper' })).status).toBe(403);
    expect((await call('POST', path, { person: 'dana' })).status).toBe(403);
    expect((await lake.catalog.head('main')).commit).toBe(head);

    const first = await call('POST', path, { person: 'bob' }, undefined, { 'idempotency-key': 'approve-1' });
    const retry = await call('POST', path, { person: 'bob' }, undefined, { 'idempotency-key': 'approve-1' });

    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'executed', decidedBy: { person: 'bob' } });
    expect(retry.headers.get(REPLAYED_HEADER)).toBe('true');
    expect(retry.body).toEqual(first.body);
    expect((await lake.catalog.head('main')).commit).toBe(first.body.result.commit);
  });

  it('answers NOT_FOUND on a server that was given no approvals service', async () => {
    const { lake } = await served();
    const bare = createHttpApp({ lake, actorFor: () => ({ person: 'bob' }) });
    const res = await bare.request('/v1/approvals');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('does not serve approvals');
  });

  it('rejects with a reason, and only with one', async () => {
    const { approval, call } = await served();
    const path = `/v1/approvals/${approval.id}/reject`;
    expect((await call('POST', path, { person: 'bob' }, {})).status).toBe(400);
    expect((await call('POST', path, { person: 'bob' }, { reason: 'x', extra: 1 })).status).toBe(400);
    const rejected = await call('POST', path, { person: 'bob' }, { reason: 'needs review' });
    expect(rejected.body).toMatchObject({ status: 'rejected', reason: 'needs review' });
    const late = await call('POST', `/v1/approvals/${approval.id}/approve`, { person: 'bob' });
    expect(late.status).toBe(409);
  });
});

describe('/v1/approvals through the api Lambda (DynamoDB Local + s3rver)', () => {
  it('lists and approves with the bearer token of a person, auditing the decision', async () => {
    const emulators = await useEmulators();
    const saved = { ...process.env };
    Object.assign(process.env, awsBackendEnv(emulators, 'airlock-apprl'));
    try {
      const { lake } = await Lake.init(lakeLocation({}));
      lakes.push(lake);
      await lake.catalog.createBranch(SOURCE, 'main', bot);
      await lake.catalog.commit(SOURCE, [overwrite('raw.events', null, 5)], { actor: bot, message: 'add' });
      const { approvals } = openApprovals(lake, { audit: false });
      const approval = await approvals.request(bot, await prepareMergeApproval(lake.catalog, bot, SOURCE, 'main'));
      const owner = { person: lake.owner };
      const token = (await new GuardedLake(lake).createToken(owner, {})).token;
      const { handler } = await import('../functions/api.js');
      const call = async (method: string, path: string) => {
        const r = await handler(functionUrlEvent({ method, path, headers: { authorization: `Bearer ${token}` } }));
        const text = r.isBase64Encoded ? Buffer.from(r.body, 'base64').toString('utf8') : r.body;
        return { status: r.statusCode, body: JSON.parse(text) };
      };

      const listed = await call('GET', '/v1/approvals');
      const approved = await call('POST', `/v1/approvals/${approval.id}/approve`);

      expect(listed.body.map((a: Approval) => a.id)).toEqual([approval.id]);
      expect(approved.body).not.toHaveProperty('error');
      expect(approved.status).toBe(200);
      expect(approved.body).toMatchObject({ status: 'executed', decidedBy: owner, result: { status: 'merged' } });
      expect((await lake.catalog.head('main')).commit).toBe(approved.body.result.commit);
      const decided = await new AuditLog(lake.stores.store, lake.stores.objects).log({ action: 'approval.approve' });
      expect(decided.map((e) => [e.person, e.outcome])).toEqual([[owner.person, 'approved']]);
    } finally {
      process.env = saved;
    }
  }, 300_000);
});
