/**
 * MCP at `/mcp` through the `api` Lambda handler (functions/api.ts) with function-URL
 * events (payload format 2.0), on a lake in DynamoDB Local + s3rver. The SDK's own client
 * talks to it: its fetch is replaced by one that turns each request into a function-URL
 * event, invokes the handler, and turns the result back into a Response — so every
 * message goes exactly the way Lambda would carry it.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { handler as ApiHandler } from '../functions/api.js';
import { GuardedLake } from '../shared/auth/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { lakeLocation } from '../shared/lake/openLake.js';
import { tempDir } from './support/cli.js';
import { awsBackendEnv } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

type Handler = typeof ApiHandler;

const HOST = 'abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws';

/** A function-URL event (payload 2.0) for a request, shaped as Lambda delivers it. */
function urlEvent(method: string, url: URL, headers: Record<string, string>, body: string | undefined) {
  const now = new Date();
  const apiId = HOST.split('.')[0] as string;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers: { host: HOST, 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7', ...headers },
    requestContext: {
      accountId: 'anonymous',
      apiId,
      domainName: HOST,
      domainPrefix: apiId,
      http: { method, path: url.pathname, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'vitest' },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body !== undefined ? { body, isBase64Encoded: false } : { isBase64Encoded: false }),
  } as unknown as Parameters<Handler>[0];
}

/** What the handler was asked and answered, for assertions on the wire format. */
const exchanges: { method: string; status: number; contentType: string | undefined }[] = [];

/** A fetch that sends each request through the Lambda handler instead of the network. */
function lambdaFetch(handler: Handler) {
  return async (input: string | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(String(input));
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const method = init.method ?? 'GET';
    const body = typeof init.body === 'string' ? init.body : undefined;
    const result = await handler(urlEvent(method, url, headers, body));
    const out = (result as { headers?: Record<string, string> }).headers ?? {};
    exchanges.push({ method, status: result.statusCode, contentType: out['content-type'] });
    const payload = result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
    const nullBody = result.statusCode === 202 || result.statusCode === 204;
    return new Response(nullBody ? null : payload, { status: result.statusCode, headers: out });
  };
}

async function ok(client: Client, name: string, args: Record<string, unknown> = {}) {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const first = result.content[0];
  if (first?.type !== 'text') throw new Error(`${name}: no text content`);
  const value = JSON.parse(first.text);
  if (result.isError) throw new Error(`${name} failed: ${first.text}`);
  return value;
}

describe('MCP through the api Lambda (function-URL events, DynamoDB Local + s3rver)', { timeout: 240_000 }, () => {
  let lake: Lake;
  let handler: Handler;
  let client: Client;

  beforeAll(async () => {
    const emulators = await useEmulators();
    Object.assign(process.env, awsBackendEnv(emulators, 'airlock-mcp'));
    lake = (await Lake.init(lakeLocation({}))).lake;
    const owner = { person: lake.owner };
    await lake.catalog.createBranch('dev', 'main', owner);
    const csv = join(tempDir('airlock-mcp-lambda-'), 'events.csv');
    writeFileSync(csv, `id,amount\n${Array.from({ length: 20 }, (_, i) => `${i + 1},${i + 1}.5`).join('\n')}\n`);
    await lake.importTable(owner, { table: 'raw.events', file: csv, branch: 'dev' });
    const token = (await new GuardedLake(lake).createToken(owner, {})).token;
    ({ handler } = await import('../functions/api.js'));
    client = new Client({ name: 'airlock-test', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`https://${HOST}/mcp`), {
        fetch: lambdaFetch(handler),
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
  }, 300_000);

  afterAll(async () => {
    await client?.close();
    await lake?.close();
  });

  it('initializes statelessly over plain JSON responses', () => {
    expect(client.getServerVersion()?.name).toBe('airlock');
    const init = exchanges[0];
    expect(init).toEqual({ method: 'POST', status: 200, contentType: 'application/json' });
    // The client's `initialized` notification is accepted with 202 and no body.
    expect(exchanges[1]).toMatchObject({ method: 'POST', status: 202 });
  });

  it('lists the tools and queries the lake in DynamoDB and S3', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('propose_merge');
    const r = await ok(client, 'query', {
      sql: 'SELECT count(*) AS n, sum(amount) AS total FROM raw.events',
      ref: 'dev',
    });
    expect(r.rows).toEqual([{ n: 20, total: 220 }]);
    expect(r.stats.rowsReturned).toBe(1);
  });

  it('creates a branch, imports inline rows, previews and performs a merge', async () => {
    await ok(client, 'create_branch', { name: 'agent/bot/lambda', from: 'dev' });
    const imported = await ok(client, 'import_table', {
      table: 'ref.codes',
      branch: 'agent/bot/lambda',
      content: '{"code":"a"}\n{"code":"b"}\n',
      format: 'jsonl',
    });
    expect(imported).toMatchObject({ rows: 2, created: true });
    const preview = await ok(client, 'propose_merge', { source: 'agent/bot/lambda', into: 'dev', dryRun: true });
    expect(preview.dryRun).toBe(true);
    expect(await lake.catalog.listTables('dev')).toHaveLength(1);
    const merged = await ok(client, 'propose_merge', { source: 'agent/bot/lambda', into: 'dev' });
    expect(merged.status).toBe('fast-forward');
    expect((await lake.catalog.listTables('dev')).map((t) => t.name)).toEqual(['raw.events', 'ref.codes']);
  });

  it('answers a tool error with the Airlock code through Lambda', async () => {
    const result = (await client.callTool({
      name: 'describe_table',
      arguments: { table: 'raw.missing', ref: 'dev' },
    })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(result.structuredContent).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('refuses a request without a bearer token with 401 through Lambda', async () => {
    const res = await lambdaFetch(handler)(`https://${HOST}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(res.status).toBe(401);
  });

  it('answers GET with 405 through Lambda', async () => {
    const res = await lambdaFetch(handler)(`https://${HOST}/mcp`, { method: 'GET' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });
});
