/**
 * `Idempotency-Key` on the HTTP mutations: over real loopback HTTP on an embedded (SQLite)
 * lake with bearer tokens, and through the api Lambda handler with function-URL (v2)
 * events on DynamoDB Local + s3rver. A retry returns the first answer byte for byte and
 * applies once (the commit log shows it); a concurrent duplicate never applies twice; the
 * same key for a different request is refused with 422.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { handler as ApiHandler } from '../functions/api.js';
import { GuardedLake } from '../shared/auth/index.js';
import { bearerActor, guardedHttpLake, withRequestScope } from '../shared/auth/http.js';
import type { Actor } from '../shared/catalog/index.js';
import { IdempotencyKeys, type RunningServer, createHttpApp, listen } from '../shared/http/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { lakeLocation } from '../shared/lake/openLake.js';
import { tempDir } from './support/cli.js';
import { type UrlCall, functionUrlEvent } from './support/functionUrlEvents.js';
import { awsBackendEnv } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

const csv = (ids: number[]) => `id,amount\n${ids.map((i) => `${i},${i * 10}`).join('\n')}\n`;
/** Commits on a branch's first-parent history (bounded: these tests make few). */
const commitsOn = async (lake: Lake, branch: string) => (await lake.catalog.history(branch, 1000)).length;

describe('Idempotency-Key over loopback HTTP (SQLite)', () => {
  let lake: Lake;
  let owner: Actor;
  let server: RunningServer;
  let ownerToken: string;
  let annToken: string;

  beforeAll(async () => {
    lake = (await Lake.init({ backend: 'local', dir: join(tempDir('airlock-http-idem-'), 'lake') })).lake;
    owner = { person: lake.owner };
    const guard = new GuardedLake(lake);
    ownerToken = (await guard.createToken(owner, {})).token;
    await guard.addUser(owner, { name: 'ann', role: 'writer' });
    annToken = (await guard.createToken(owner, { person: 'ann' })).token;
    await lake.catalog.createBranch('dev', 'main', owner);
    const app = createHttpApp({
      lake: guardedHttpLake(guard),
      actorFor: bearerActor(guard),
      pipelines: { runs: guard },
    });
    server = await listen(withRequestScope(app), { port: 0, host: '127.0.0.1' });
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await lake?.close();
  });

  async function send(
    method: string,
    path: string,
    body: string | undefined,
    headers: Record<string, string>,
    token = ownerToken,
  ) {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...headers },
      ...(body !== undefined ? { body } : {}),
    });
    return {
      status: res.status,
      text: await res.text(),
      replayed: res.headers.get('idempotent-replayed'),
      contentType: res.headers.get('content-type'),
    };
  }
  const importCsv = (branch: string, ids: number[], key?: string, token?: string) =>
    send(
      'POST',
      `/v1/tables/raw.events/import?branch=${branch}`,
      csv(ids),
      { 'content-type': 'text/csv', ...(key ? { 'idempotency-key': key } : {}) },
      token,
    );
  const createBranch = (body: unknown, key?: string, token?: string) =>
    send(
      'POST',
      '/v1/branches',
      JSON.stringify(body),
      { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
      token,
    );

  it('answers a retried import with the first answer byte for byte and commits once', async () => {
    const key = randomUUID();
    const before = await commitsOn(lake, 'dev');

    const first = await importCsv('dev', [1, 2, 3], key);
    const retry = await importCsv('dev', [1, 2, 3], key);

    expect(first.status).toBe(200);
    expect(retry).toEqual({ ...first, replayed: 'true' });
    expect(first.replayed).toBeNull();
    expect(await commitsOn(lake, 'dev')).toBe(before + 1);
    expect((await lake.catalog.getTable('dev', 'raw.events')).version.rowCount).toBe(3);
  });

  it('applies mutations without a key every time', async () => {
    const before = await commitsOn(lake, 'dev');

    await importCsv('dev', [10]);
    await importCsv('dev', [11]);

    expect(await commitsOn(lake, 'dev')).toBe(before + 2);
  });

  it('refuses the same key for a different body or path with 422, and applies nothing', async () => {
    const key = randomUUID();
    await importCsv('dev', [20], key);
    const before = await commitsOn(lake, 'dev');

    const otherBody = await importCsv('dev', [21], key);
    const otherPath = await createBranch({ name: 'reuse' }, key);

    expect(otherBody.status).toBe(422);
    expect(JSON.parse(otherBody.text).error).toMatchObject({ code: 'INVALID', details: { idempotencyKey: key } });
    expect(JSON.parse(otherBody.text).error.message).toContain('different request');
    expect(otherPath.status).toBe(422);
    expect(await commitsOn(lake, 'dev')).toBe(before);
    expect((await lake.catalog.listBranches()).map((b) => b.name)).not.toContain('reuse');
  });

  it('applies concurrent duplicates once: each gets the answer or 409 in progress', async () => {
    const key = randomUUID();
    const before = await commitsOn(lake, 'dev');

    const answers = await Promise.all(Array.from({ length: 6 }, () => importCsv('dev', [30, 31], key)));
    const settled = await importCsv('dev', [30, 31], key);

    expect(await commitsOn(lake, 'dev')).toBe(before + 1);
    expect(settled.status).toBe(200);
    const applied = answers.filter((a) => a.status === 200);
    expect(applied.length).toBeGreaterThanOrEqual(1);
    for (const a of applied) expect(a.text).toBe(settled.text);
    for (const a of answers.filter((x) => x.status !== 200)) {
      expect(a.status).toBe(409);
      expect(JSON.parse(a.text).error.message).toContain('in progress');
    }
  });

  it('stores a failed first request (4xx) as its result', async () => {
    const key = randomUUID();

    const first = await createBranch({ name: 'late', from: 'later' }, key);
    await lake.catalog.createBranch('later', 'main', owner);
    const retry = await createBranch({ name: 'late', from: 'later' }, key);
    const fresh = await createBranch({ name: 'late', from: 'later' });

    expect(first.status).toBe(404);
    expect(retry).toEqual({ ...first, replayed: 'true' });
    expect(fresh.status).toBe(200);
  });

  it("keeps each person's keys apart", async () => {
    const key = randomUUID();

    const mine = await createBranch({ name: 'mine-1' }, key, ownerToken);
    const hers = await createBranch({ name: 'hers-1' }, key, annToken);

    expect([mine.status, hers.status]).toEqual([200, 200]);
    expect((await lake.catalog.listBranches()).map((b) => b.name)).toEqual(
      expect.arrayContaining(['mine-1', 'hers-1']),
    );
  });

  it('honours the key on every kind of mutation (tag, merge, delete)', async () => {
    const tagKey = randomUUID();
    const mergeKey = randomUUID();
    const deleteKey = randomUUID();
    const json = { 'content-type': 'application/json' };
    await createBranch({ name: 'to-merge', from: 'dev' });
    await importCsv('to-merge', [40]);
    await createBranch({ name: 'target', from: 'dev' });
    const targetBefore = await commitsOn(lake, 'target');

    const tag = () =>
      send('POST', '/v1/tags', JSON.stringify({ name: 't1', ref: 'dev' }), { ...json, 'idempotency-key': tagKey });
    const merge = () =>
      send('POST', '/v1/merge', JSON.stringify({ source: 'to-merge', into: 'target' }), {
        ...json,
        'idempotency-key': mergeKey,
      });
    const remove = () => send('DELETE', '/v1/branches/to-merge', undefined, { 'idempotency-key': deleteKey });
    const answers = [await tag(), await merge(), await remove()];
    const retries = [await tag(), await merge(), await remove()];

    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(retries).toEqual(answers.map((a) => ({ ...a, replayed: 'true' })));
    expect(await commitsOn(lake, 'target')).toBe(targetBefore + 1);
  });

  it('refuses a malformed key with 400', async () => {
    const res = await createBranch({ name: 'bad-key' }, 'x'.repeat(256));

    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).error.message).toContain('Idempotency-Key');
  });
});

describe('IdempotencyKeys on the SQLite store', () => {
  let lake: Lake;
  let now = Date.parse('2026-01-01T00:00:00Z');
  const person = { person: 'ann' };
  const request = { method: 'POST', target: '/v1/branches', bodyHash: 'a'.repeat(64) };
  const other = { ...request, bodyHash: 'b'.repeat(64) };

  beforeAll(async () => {
    lake = (await Lake.init({ backend: 'local', dir: join(tempDir('airlock-idem-keys-'), 'lake') })).lake;
  });
  afterAll(() => lake?.close());
  const keys = () =>
    new IdempotencyKeys(lake.stores.store, lake.stores.objects, { ttlMs: 1000, leaseMs: 500, now: () => now });

  it('lets a key be used for another request once its result expired', async () => {
    const first = await keys().claim(person, 'k-expire', request);
    if (first.kind !== 'claimed') throw new Error('expected a claim');
    await first.complete({ status: 200, contentType: 'application/json', body: '{"a":1}' });

    await expect(keys().claim(person, 'k-expire', other)).rejects.toMatchObject({
      details: { reason: 'idempotencyKeyReused' },
    });
    now += 1001;
    const later = await keys().claim(person, 'k-expire', other);

    expect(later.kind).toBe('claimed');
  });

  it('takes over a claim whose request never finished once its lease ran out; the late original cannot overwrite it', async () => {
    const stuck = await keys().claim(person, 'k-lease', request);
    if (stuck.kind !== 'claimed') throw new Error('expected a claim');

    await expect(keys().claim(person, 'k-lease', request)).rejects.toMatchObject({ code: 'CONFLICT' });
    now += 501;
    const retry = await keys().claim(person, 'k-lease', request);
    if (retry.kind !== 'claimed') throw new Error('expected a claim');
    await retry.complete({ status: 201, contentType: 'application/json', body: '{"b":2}' });

    await expect(stuck.complete({ status: 200, contentType: 'application/json', body: '{}' })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    const replay = await keys().claim(person, 'k-lease', request);
    expect(replay).toEqual({
      kind: 'replay',
      response: { status: 201, contentType: 'application/json', body: '{"b":2}' },
    });
  });

  it('keeps a large result in the object store and replays it whole', async () => {
    const big = JSON.stringify({ rows: 'x'.repeat(300 * 1024) });
    const first = await keys().claim(person, 'k-big', request);
    if (first.kind !== 'claimed') throw new Error('expected a claim');
    await first.complete({ status: 200, contentType: 'application/json', body: big });

    const replay = await keys().claim(person, 'k-big', request);

    expect(replay.kind === 'replay' && replay.response.body === big).toBe(true);
  });

  it('frees the key when the request failed with a server error (release)', async () => {
    const first = await keys().claim(person, 'k-release', request);
    if (first.kind !== 'claimed') throw new Error('expected a claim');
    await first.release();

    expect((await keys().claim(person, 'k-release', other)).kind).toBe('claimed');
  });
});

type Handler = typeof ApiHandler;
const urlEvent = (call: UrlCall) => functionUrlEvent<Parameters<Handler>[0]>(call);

describe('Idempotency-Key through the api Lambda (function-URL events, DynamoDB Local + s3rver)', () => {
  let lake: Lake;
  let handler: Handler;
  let auth: Record<string, string>;

  beforeAll(async () => {
    const emulators = await useEmulators();
    Object.assign(process.env, awsBackendEnv(emulators, 'airlock-idem'));
    lake = (await Lake.init(lakeLocation({}))).lake;
    const owner = { person: lake.owner };
    await lake.catalog.createBranch('dev', 'main', owner);
    auth = { authorization: `Bearer ${(await new GuardedLake(lake).createToken(owner, {})).token}` };
    ({ handler } = await import('../functions/api.js'));
  }, 300_000);

  afterAll(() => lake?.close());

  const upload = (ids: number[], key: string) =>
    handler(
      urlEvent({
        method: 'POST',
        path: '/v1/tables/raw.events/import',
        query: 'branch=dev&format=csv',
        headers: { ...auth, 'content-type': 'application/octet-stream', 'idempotency-key': key },
        body: csv(ids),
        base64: true,
      }),
    );

  it('commits a retried upload once and answers the retry with the same bytes', async () => {
    const key = randomUUID();
    const before = await commitsOn(lake, 'dev');

    const first = await upload([1, 2, 3, 4], key);
    const retry = await upload([1, 2, 3, 4], key);

    expect(first.statusCode).toBe(200);
    expect(JSON.parse(first.body)).toMatchObject({ table: 'raw.events', rows: 4, branch: 'dev' });
    expect(retry.statusCode).toBe(200);
    expect(retry.body).toBe(first.body);
    expect((retry as { headers?: Record<string, string> }).headers?.['idempotent-replayed']).toBe('true');
    expect(await commitsOn(lake, 'dev')).toBe(before + 1);
  });

  it('applies concurrent duplicate invocations once', async () => {
    const key = randomUUID();
    const before = await commitsOn(lake, 'dev');

    const answers = await Promise.all(Array.from({ length: 5 }, () => upload([50, 51], key)));

    expect(await commitsOn(lake, 'dev')).toBe(before + 1);
    const statuses = answers.map((a) => a.statusCode);
    expect(statuses).toContain(200);
    expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
    const bodies = new Set(answers.filter((a) => a.statusCode === 200).map((a) => a.body));
    expect(bodies.size).toBe(1);
  });

  it('refuses the key for a different upload with 422, and creates a branch once when retried', async () => {
    const key = randomUUID();
    await upload([60], key);
    const reused = await upload([61], key);
    expect(reused.statusCode).toBe(422);

    const branchKey = randomUUID();
    await lake.catalog.createBranch('feature', 'dev', { person: lake.owner });
    const create = () =>
      handler(
        urlEvent({
          method: 'POST',
          path: '/v1/branches',
          headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': branchKey },
          body: JSON.stringify({ name: 'from-lambda', from: 'feature' }),
        }),
      );
    const first = await create();
    const retry = await create();
    expect(first.statusCode).toBe(200);
    expect(retry.body).toBe(first.body);
    expect((await lake.catalog.listBranches()).filter((b) => b.name === 'from-lambda')).toHaveLength(1);
  });
});
