/**
 * The `api` Lambda (functions/api.ts) invoked with function-URL events (payload format
 * 2.0) against a lake on DynamoDB Local + s3rver, compared request by request with the
 * same request over Node HTTP to `airlock serve`'s server (`createHttpApp` + `listen`) on
 * the same lake. Also runs the bundled code directory the stack deploys, to show the
 * bundle and its shipped native modules (DuckDB) work outside this checkout's sources.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { handler as ApiHandler } from '../functions/api.js';
import { DATA_PLANE_ASSET } from '../infra/AirlockStack.js';
import { buildLambdaAsset } from '../infra/lambdaAssets.js';
import { OPENAPI_DOCUMENT, type RunningServer, createHttpApp, listen } from '../shared/http/index.js';
import { GuardedLake } from '../shared/auth/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { lakeLocation } from '../shared/lake/openLake.js';
import { tempDir } from './support/cli.js';
import { awsBackendEnv } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';
import { functionUrlEvent, type UrlCall } from './support/functionUrlEvents.js';

type Handler = typeof ApiHandler;
type UrlResult = Awaited<ReturnType<Handler>>;

type Call = UrlCall;

/** A function-URL request event, with the owner's bearer token unless the call sets its own. */
function urlEvent(call: Call) {
  return functionUrlEvent<Parameters<Handler>[0]>({
    ...call,
    headers: {
      'x-forwarded-for': '203.0.113.7',
      // The function URL needs a bearer token (issue 6); the owner's, unless a call sets its own.
      ...(ownerToken ? { authorization: `Bearer ${ownerToken}` } : {}),
      ...(call.headers ?? {}),
    },
  });
}

/** What a client sees, from a Lambda result or a fetch response. */
interface Seen {
  status: number;
  contentType: string | undefined;
  body: Uint8Array;
}

function fromLambda(r: UrlResult): Seen {
  const headers = (r as { headers?: Record<string, string> }).headers ?? {};
  return {
    status: r.statusCode,
    contentType: headers['content-type'],
    body: r.isBase64Encoded ? new Uint8Array(Buffer.from(r.body, 'base64')) : new TextEncoder().encode(r.body),
  };
}

async function fromFetch(res: Response): Promise<Seen> {
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? undefined,
    body: new Uint8Array(await res.arrayBuffer()),
  };
}

const text = (s: Seen) => new TextDecoder().decode(s.body);
const json = (s: Seen) => JSON.parse(text(s));
/** A query response as a client compares it: everything but the measured `stats.elapsedMs`. */
const queryView = (s: Seen) => {
  const body = json(s);
  if (body.stats) body.stats.elapsedMs = 'measured';
  return { status: s.status, contentType: s.contentType, body };
};

let lake: Lake;
let ownerToken = '';
let server: RunningServer;
let handler: Handler;

/** The request through the Lambda handler and over HTTP to the serve-style server. */
async function both(call: Call, via: Handler = handler): Promise<{ lambda: Seen; http: Seen }> {
  const lambda = fromLambda(await via(urlEvent(call)));
  const http = await fromFetch(
    await fetch(`${server.url}${call.path}${call.query ? `?${call.query}` : ''}`, {
      method: call.method,
      headers: call.headers ?? {},
      ...(call.body !== undefined ? { body: call.body } : {}),
    }),
  );
  return { lambda, http };
}

const QUERY = { 'content-type': 'application/json' };

describe('api Lambda over function-URL events (DynamoDB Local + s3rver)', () => {
  beforeAll(async () => {
    const emulators = await useEmulators();
    // The handler opens its lake from the environment on first use, exactly as in Lambda.
    Object.assign(process.env, awsBackendEnv(emulators, 'airlock-api'));
    lake = (await Lake.init(lakeLocation({}))).lake;
    const owner = { person: lake.owner };
    await lake.catalog.createBranch('dev', 'main', owner);
    const csv = join(tempDir('airlock-api-lambda-'), 'events.csv');
    writeFileSync(csv, `id,amount\n${Array.from({ length: 20 }, (_, i) => `${i + 1},${i + 1}.5`).join('\n')}\n`);
    await lake.importTable(owner, { table: 'raw.events', file: csv, branch: 'dev' });
    ownerToken = (await new GuardedLake(lake).createToken(owner, {})).token;
    server = await listen(createHttpApp({ lake, actorFor: () => owner }), { port: 0, host: '127.0.0.1' });
    ({ handler } = await import('../functions/api.js'));
  }, 300_000);

  afterAll(async () => {
    await server?.close();
    await lake?.close();
  });

  it('refuses a request without a valid bearer token with 401 and the JSON error body', async () => {
    for (const authorization of ['', 'Bearer airlock_0000000000000000AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']) {
      const r = fromLambda(
        await handler(urlEvent({ method: 'GET', path: '/v1/branches', headers: { authorization } })),
      );
      expect(r.status).toBe(401);
      expect(json(r).error.code).toBe('DENIED');
      expect(Buffer.from(r.body).toString('utf8')).not.toContain('AAAAAAAAAAAA');
    }
  });

  it('answers health and the OpenAPI document', async () => {
    const health = await both({ method: 'GET', path: '/v1/health' });
    expect(health.lambda.status).toBe(200);
    expect(json(health.lambda)).toEqual({ status: 'ok' });
    expect(health.lambda).toEqual(health.http);

    const openapi = await both({ method: 'GET', path: '/v1/openapi.json' });
    expect(openapi.lambda.status).toBe(200);
    expect(openapi.lambda.contentType).toMatch(/^application\/json/);
    expect(json(openapi.lambda)).toEqual(OPENAPI_DOCUMENT);
    expect(openapi.lambda).toEqual(openapi.http);
  });

  it('lists branches and tables of the lake in DynamoDB and S3', async () => {
    const branches = await both({ method: 'GET', path: '/v1/branches' });
    expect(branches.lambda.status).toBe(200);
    expect(json(branches.lambda).map((b: { name: string }) => b.name)).toEqual(['dev', 'main']);
    expect(branches.lambda).toEqual(branches.http);

    const tables = await both({ method: 'GET', path: '/v1/tables', query: 'ref=dev' });
    expect(json(tables.lambda).map((t: { name: string }) => t.name)).toEqual(['raw.events']);
    expect(tables.lambda).toEqual(tables.http);
    const onMain = await both({ method: 'GET', path: '/v1/tables', query: 'ref=main' });
    expect(json(onMain.lambda)).toEqual([]);
  });

  it('runs a query (text or base64-encoded body) and gives the same JSON as over HTTP', async () => {
    const body = JSON.stringify({ sql: 'SELECT count(*) AS n, sum(amount) AS total FROM raw.events', ref: 'dev' });
    const plain = await both({ method: 'POST', path: '/v1/query', headers: QUERY, body });
    expect(plain.lambda.status).toBe(200);
    expect(json(plain.lambda)).toMatchObject({ rows: [{ n: 20, total: 220 }], stats: { rowsReturned: 1 } });
    expect(queryView(plain.lambda)).toEqual(queryView(plain.http));

    const encoded = fromLambda(
      await handler(urlEvent({ method: 'POST', path: '/v1/query', headers: QUERY, body, base64: true })),
    );
    expect(queryView(encoded)).toEqual(queryView(plain.lambda));
  });

  it('returns CSV as text and Arrow IPC base64-encoded', async () => {
    const sql = 'SELECT id FROM raw.events WHERE id <= 3 ORDER BY id';
    const csv = await both({
      method: 'POST',
      path: '/v1/query',
      headers: QUERY,
      body: JSON.stringify({ sql, ref: 'dev', format: 'csv' }),
    });
    expect(text(csv.lambda)).toBe('id\n1\n2\n3\n');
    expect(csv.lambda).toEqual(csv.http);

    const raw = await handler(
      urlEvent({
        method: 'POST',
        path: '/v1/query',
        headers: QUERY,
        body: JSON.stringify({ sql, ref: 'dev', format: 'arrow' }),
      }),
    );
    expect(raw.isBase64Encoded).toBe(true);
    const table = tableFromIPC(fromLambda(raw).body);
    expect(table.toArray().map((r) => Number(r.id))).toEqual([1, 2, 3]);
  });

  it('gives the same error bodies as HTTP for an unknown route, a bad body and an unknown table', async () => {
    const missing = await both({ method: 'GET', path: '/v1/nothing-here' });
    expect(missing.lambda.status).toBe(404);
    expect(json(missing.lambda)).toEqual({
      error: { code: 'NOT_FOUND', message: expect.stringContaining('/v1/nothing-here') },
    });
    expect(missing.lambda).toEqual(missing.http);

    const bad = await both({ method: 'POST', path: '/v1/query', headers: QUERY, body: '{"sql": ' });
    expect(bad.lambda.status).toBe(400);
    expect(json(bad.lambda).error.code).toBe('INVALID');
    expect(bad.lambda).toEqual(bad.http);

    const unknown = await both({ method: 'GET', path: '/v1/tables/raw.nope', query: 'ref=dev' });
    expect(unknown.lambda.status).toBe(404);
    expect(json(unknown.lambda).error.code).toBe('NOT_FOUND');
    expect(unknown.lambda).toEqual(unknown.http);
  });

  it('refuses an oversize body with 413 and the limit in the error body', async () => {
    const body = JSON.stringify({ sql: `SELECT 1 -- ${'x'.repeat(1024 * 1024)}` });
    const big = await both({ method: 'POST', path: '/v1/query', headers: QUERY, body });
    expect(big.lambda.status).toBe(413);
    expect(json(big.lambda).error.code).toBe('LIMIT_EXCEEDED');
    expect(big.lambda).toEqual(big.http);
  });

  it('the bundled code directory the stack deploys answers the same as the sources', async () => {
    const { dir } = buildLambdaAsset(DATA_PLANE_ASSET);
    const bundled = (await import(pathToFileURL(join(dir, 'api.mjs')).href)) as { handler: Handler };
    const sql = JSON.stringify({ sql: 'SELECT count(*) AS n FROM raw.events', ref: 'dev' });
    for (const call of [
      { method: 'GET', path: '/v1/branches' },
      { method: 'POST', path: '/v1/query', headers: QUERY, body: sql },
      { method: 'GET', path: '/v1/nothing-here' },
    ]) {
      const fromBundle = fromLambda(await bundled.handler(urlEvent(call)));
      const fromSource = fromLambda(await handler(urlEvent(call)));
      expect(queryView(fromBundle)).toEqual(queryView(fromSource));
    }
  }, 300_000);
});
