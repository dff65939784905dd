/**
 * The MCP server, driven by the SDK's own client: over stdio (`airlock mcp`, the built
 * binary in a child process) and over streamable HTTP at `/mcp` of the HTTP app served by
 * `listen` (what `airlock serve` runs), both on a real SQLite lake. The Lambda function
 * URL path is in `mcp.lambda.test.ts`.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApprovals } from '../shared/approvals/index.js';
import { GuardedLake } from '../shared/auth/index.js';
import { bearerActor, guardedHttpLake, withRequestScope } from '../shared/auth/http.js';
import { type RunningServer, createHttpApp, listen } from '../shared/http/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { MAX_INLINE_IMPORT_BYTES } from '../shared/mcp/index.js';
import { airlock, lakeState, tempDir } from './support/cli.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'airlock.mjs');
const ML = join(import.meta.dirname, 'fixtures', 'pipelines', 'ml');

const TOOLS = [
  'create_branch',
  'describe_table',
  'diff',
  'import_table',
  'list_branches',
  'list_tables',
  'log',
  'propose_merge',
  'query',
  'run_pipeline',
  'run_status',
];

/** A lake at `dir` with raw.events (ids 1..20, amount id+0.5) on branch dev. */
async function lakeWithEvents(dir: string): Promise<Lake> {
  const { lake } = await Lake.init({ backend: 'local', dir });
  const owner = { person: lake.owner };
  await lake.catalog.createBranch('dev', 'main', owner);
  const csv = join(tempDir('airlock-mcp-data-'), 'events.csv');
  writeFileSync(csv, `id,amount\n${Array.from({ length: 20 }, (_, i) => `${i + 1},${i + 1}.5`).join('\n')}\n`);
  await lake.importTable(owner, { table: 'raw.events', file: csv, branch: 'dev' });
  return lake;
}

/** The lake's guard with approvals as its gate, as `airlock serve` and `airlock mcp` build it. */
function guardOf(lake: Lake): GuardedLake {
  const guard: GuardedLake = new GuardedLake(lake, {
    approvals: openApprovals(lake, {
      audit: false,
      mayApprove: (approver, approval) => guard.mayApprove(approver, approval.target, approval.action),
    }).approvals,
  });
  return guard;
}

/** Adds alice (approver: she may merge into main, her agent only by approval) and returns a token for her and one for her agent bot. */
async function aliceTokens(guard: GuardedLake): Promise<{ person: string; agent: string }> {
  await guard.addUser(guard.owner, { name: 'alice', role: 'approver' });
  const person = (await guard.createToken(guard.owner, { person: 'alice' })).token;
  const agent = (await guard.createToken(guard.owner, { person: 'alice', agent: 'bot' })).token;
  return { person, agent };
}

/** Calls a tool; returns the parsed JSON of its text content and whether it is an error. */
async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const first = result.content[0];
  if (first?.type !== 'text') throw new Error(`tool ${name} returned no text content`);
  return { isError: !!result.isError, value: JSON.parse(first.text), structured: result.structuredContent };
}

/** Calls a tool that must succeed; returns its JSON. */
async function ok(client: Client, name: string, args: Record<string, unknown> = {}) {
  const r = await call(client, name, args);
  if (r.isError) throw new Error(`tool ${name} failed: ${JSON.stringify(r.value)}`);
  return r.value;
}

/** Calls a tool that must fail; returns its `{code, message, details}`. */
async function fails(client: Client, name: string, args: Record<string, unknown> = {}) {
  const r = await call(client, name, args);
  expect(r.isError, `${name} should fail`).toBe(true);
  return r.value.error as { code: string; message: string; details?: Record<string, unknown> };
}

/** The behaviour every transport must show, on a lake with raw.events on dev. */
function sharedBehaviour(client: () => Client, lakeDir: () => string) {
  it('lists every tool with a description and an object input schema', async () => {
    const { tools } = await client().listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOLS);
    for (const tool of tools) {
      expect(tool.description?.length, tool.name).toBeGreaterThan(100);
      expect(tool.inputSchema.type, tool.name).toBe('object');
      expect(tool.annotations?.readOnlyHint, tool.name).toBeTypeOf('boolean');
    }
    const query = tools.find((t) => t.name === 'query');
    expect(query?.inputSchema.required).toEqual(['sql']);
    expect(Object.keys(query?.inputSchema.properties ?? {}).sort()).toEqual(['maxRows', 'params', 'ref', 'sql']);
  });

  it('lists and describes tables at a ref', async () => {
    const listed = await ok(client(), 'list_tables', { ref: 'dev' });
    expect(listed.tables.map((t: { name: string }) => t.name)).toEqual(['raw.events']);
    expect((await ok(client(), 'list_tables')).tables).toEqual([]);
    const shown = await ok(client(), 'describe_table', { table: 'raw.events', ref: 'dev' });
    expect(shown).toMatchObject({ name: 'raw.events', rowCount: 20, ref: 'dev' });
    expect(shown.schema.fields.map((f: { name: string }) => f.name)).toEqual(['id', 'amount']);
    const missing = await fails(client(), 'describe_table', { table: 'raw.nope', ref: 'dev' });
    expect(missing.code).toBe('NOT_FOUND');
  });

  it('queries a ref with bound parameters, the stats and structuredContent of query --json', async () => {
    const r = await call(client(), 'query', {
      sql: 'SELECT count(*) AS n, sum(amount) AS total FROM raw.events WHERE id > $min',
      ref: 'dev',
      params: { min: 10 },
    });
    expect(r.isError).toBe(false);
    expect(r.value.rows).toEqual([{ n: 10, total: 160 }]);
    expect(r.value.columns.map((c: { name: string }) => c.name)).toEqual(['n', 'total']);
    expect(r.value.stats).toMatchObject({ rowsReturned: 1, truncated: false });
    expect(r.value.stats.bytesScanned).toBeGreaterThan(0);
    expect(r.structured).toEqual(r.value);
  });

  it('says when a query result was truncated to maxRows', async () => {
    const r = await ok(client(), 'query', { sql: 'SELECT id FROM raw.events ORDER BY id', ref: 'dev', maxRows: 5 });
    expect(r.rows).toEqual([1, 2, 3, 4, 5].map((id) => ({ id })));
    expect(r.stats).toMatchObject({ rowsReturned: 5, truncated: true });
  });

  it('refuses a query that reads a server file as a tool error carrying the code', async () => {
    const error = await fails(client(), 'query', { sql: "SELECT * FROM read_csv('/etc/passwd')", ref: 'dev' });
    expect(error.code).toBe('INVALID');
    expect(error.message).toMatch(/read_csv\(\) is not allowed/);
    const two = await fails(client(), 'query', { sql: 'SELECT 1; SELECT 2' });
    expect(two.code).toBe('INVALID');
  });

  it('rejects arguments that break the input schema, naming the argument', async () => {
    const r = (await client().callTool({
      name: 'query',
      arguments: { sql: 'SELECT 1', maxRows: 0 },
    })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(JSON.stringify(r.content)).toMatch(/maxRows/);
  });

  it('creates a branch, imports inline CSV on it, diffs it and merges it with a dry-run preview first', async () => {
    const created = await ok(client(), 'create_branch', { name: 'agent/bot/prices', from: 'dev' });
    expect(created).toMatchObject({ name: 'agent/bot/prices', from: 'dev' });
    expect(created.head).toMatch(/^[0-9a-f]{64}$/);
    const taken = await fails(client(), 'create_branch', { name: 'agent/bot/prices' });
    expect(taken.code).toBe('CONFLICT');

    const imported = await ok(client(), 'import_table', {
      table: 'ref.prices',
      branch: 'agent/bot/prices',
      content: 'sku,price\na,1.5\nb,2.25\n',
      format: 'csv',
      unique: ['sku'],
    });
    expect(imported).toMatchObject({ table: 'ref.prices', rows: 2, created: true, mode: 'append' });
    const appended = await ok(client(), 'import_table', {
      table: 'ref.prices',
      branch: 'agent/bot/prices',
      content: '[{"sku":"c","price":3.5}]',
      format: 'json',
    });
    expect(appended).toMatchObject({ rows: 1, created: false });

    const diff = await ok(client(), 'diff', { from: 'dev', to: 'agent/bot/prices' });
    expect(JSON.stringify(diff.changes)).toContain('ref.prices');

    const before = await lakeState(lakeDir());
    const preview = await ok(client(), 'propose_merge', { source: 'agent/bot/prices', into: 'dev', dryRun: true });
    expect(preview).toMatchObject({ dryRun: true, status: 'fast-forward', conflicts: [] });
    expect(await lakeState(lakeDir())).toEqual(before);

    const merged = await ok(client(), 'propose_merge', { source: 'agent/bot/prices', into: 'dev' });
    expect(merged.status).toBe('fast-forward');
    const q = await ok(client(), 'query', { sql: 'SELECT sum(price) AS total FROM ref.prices', ref: 'dev' });
    expect(q.rows).toEqual([{ total: 7.25 }]);
    const log = await ok(client(), 'log', { ref: 'dev', limit: 2 });
    expect(log.commits[0].message).toContain('ref.prices');
  });

  it('refuses imports onto a protected branch, oversized content and bad data, changing nothing', async () => {
    const before = await lakeState(lakeDir());
    const onMain = await fails(client(), 'import_table', {
      table: 'ref.x',
      branch: 'main',
      content: 'a\n1\n',
      format: 'csv',
    });
    expect(onMain.code).toBe('DENIED');
    expect(onMain.message).toMatch(/protected/);
    const big = await fails(client(), 'import_table', {
      table: 'ref.x',
      branch: 'dev',
      content: `a\n${'1\n'.repeat(MAX_INLINE_IMPORT_BYTES / 2 + 1)}`,
      format: 'csv',
    });
    expect(big.code).toBe('LIMIT_EXCEEDED');
    const unformatted = await fails(client(), 'import_table', { table: 'ref.x', branch: 'dev', content: 'a\n1\n' });
    expect(unformatted.code).toBe('INVALID');
    const badRows = await fails(client(), 'import_table', {
      table: 'raw.events',
      branch: 'dev',
      content: 'id,amount\nnot-a-number,1\n',
      format: 'csv',
    });
    expect(badRows.code).toBe('INVALID');
    expect(await lakeState(lakeDir())).toEqual(before);
  });

  it('lists branches with their protection', async () => {
    const { branches } = await ok(client(), 'list_branches');
    const main = branches.find((b: { name: string }) => b.name === 'main');
    expect(main).toMatchObject({ protected: true });
    expect(branches.map((b: { name: string }) => b.name)).toContain('agent/bot/prices');
  });

  it('reports an unknown run as NOT_FOUND', async () => {
    expect((await fails(client(), 'run_status', { runId: '20260101-000000-abcdef' })).code).toBe('NOT_FOUND');
  });
}

describe('airlock mcp over stdio (built binary, SQLite lake)', { timeout: 240_000 }, () => {
  let dir: string;
  let client: Client;
  let transport: StdioClientTransport;
  const transportErrors: Error[] = [];
  let stderr = '';
  let tokens: { person: string; agent: string };

  beforeAll(async () => {
    dir = join(tempDir('airlock-mcp-stdio-'), 'lake');
    const lake = await lakeWithEvents(dir);
    tokens = await aliceTokens(guardOf(lake));
    await lake.close();
    transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'mcp', '--lake', dir],
      env: { ...(process.env as Record<string, string>), AIRLOCK_TOKEN: '' },
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (d) => (stderr += d));
    client = new Client({ name: 'airlock-test', version: '1.0.0' });
    client.onerror = (e) => transportErrors.push(e);
    await client.connect(transport);
  }, 120_000);

  afterAll(async () => {
    await client?.close();
  });

  it('identifies itself as airlock with instructions for the model', () => {
    expect(client.getServerVersion()?.name).toBe('airlock');
    expect(client.getInstructions()).toMatch(/APPROVAL_REQUIRED/);
  });

  sharedBehaviour(
    () => client,
    () => dir,
  );

  it('imports a file by its path on this machine', async () => {
    const csv = join(tempDir('airlock-mcp-path-'), 'tiny.csv');
    writeFileSync(csv, 'k\n1\n2\n3\n');
    const r = await ok(client, 'import_table', { table: 'ref.tiny', branch: 'dev', path: csv });
    expect(r).toMatchObject({ rows: 3, created: true });
  });

  it('runs a pipeline folder on a branch and reads its status', async () => {
    const run = await ok(client, 'run_pipeline', { folder: ML, branch: 'dev', params: { tag: 'mcp' } });
    expect(run).toMatchObject({ status: 'succeeded', branch: 'dev', published: true });
    expect(run.runBranch).toBe(`run/${run.runId}`);
    const status = await ok(client, 'run_status', { runId: run.runId });
    expect(status.status).toBe('succeeded');
    expect(status.steps.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual(
      expect.arrayContaining([
        ['validate.sql', 'succeeded'],
        ['train.mjs', 'succeeded'],
      ]),
    );
    const recent = await ok(client, 'run_status', {});
    expect(recent.runs[0].runId).toBe(run.runId);
    const q = await ok(client, 'query', {
      sql: "SELECT count(*) AS n FROM ml.train WHERE run_tag = 'mcp'",
      ref: 'dev',
    });
    expect(q.rows).toEqual([{ n: 16 }]);
  });

  it('a failing pipeline reports status failed and leaves the branch untouched', async () => {
    const headOf = async () =>
      (await ok(client, 'list_branches')).branches.find((b: { name: string }) => b.name === 'dev').head;
    const before = await headOf();
    const run = await ok(client, 'run_pipeline', { folder: ML, branch: 'dev', params: { tag: 'x', fail: 'true' } });
    expect(run.status).toBe('failed');
    expect(await headOf()).toBe(before);
  });

  it('wrote nothing but protocol on stdout', () => {
    expect(transportErrors).toEqual([]);
    expect(stderr).toMatch(/^airlock mcp: serving over stdio as \S+\n/);
  });

  it('acts for the agent of AIRLOCK_TOKEN: its merge into main becomes an approval request', async () => {
    const agent = new Client({ name: 'airlock-test-agent', version: '1.0.0' });
    await agent.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [BIN, 'mcp', '--lake', dir],
        env: { ...(process.env as Record<string, string>), AIRLOCK_TOKEN: tokens.agent },
        stderr: 'ignore',
      }),
    );
    try {
      await ok(agent, 'create_branch', { name: 'agent/bot/fix', from: 'main' });
      expect((await fails(agent, 'create_branch', { name: 'team/fix' })).code).toBe('DENIED');
      await ok(agent, 'import_table', { table: 'ref.fix', branch: 'agent/bot/fix', content: 'a\n1\n', format: 'csv' });
      const { commits } = await ok(agent, 'log', { ref: 'agent/bot/fix', limit: 1 });
      expect(commits[0]).toMatchObject({ author: 'alice', agent: 'bot' });
      const preview = await ok(agent, 'propose_merge', { source: 'agent/bot/fix', into: 'main', dryRun: true });
      expect(preview).toMatchObject({ dryRun: true, status: 'fast-forward' });
      const mainBefore = (await lakeState(dir)) as { heads: string[][] };
      const pending = await fails(agent, 'propose_merge', { source: 'agent/bot/fix', into: 'main' });
      expect(pending.code).toBe('APPROVAL_REQUIRED');
      expect(pending.details?.approvalId).toEqual(expect.any(String));
      expect(pending.message).toContain(pending.details?.approvalId as string);
      expect(((await lakeState(dir)) as { heads: string[][] }).heads.find((h) => h[0] === 'main')).toEqual(
        mainBefore.heads.find((h) => h[0] === 'main'),
      );
    } finally {
      await agent.close();
    }
  });

  it('refuses to start with a bad token (exit 4, message on stderr, nothing on stdout)', async () => {
    const r = await airlock(['mcp', '--lake', dir], { env: { AIRLOCK_TOKEN: 'secret' } });
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: .*token/m);
  });

  it('exits 1 with a message on stderr when the lake does not exist', async () => {
    const r = await airlock(['mcp', '--lake', join(tempDir(), 'none')], { env: { AIRLOCK_TOKEN: '' } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/no lake at .*airlock init/);
  });
});

describe('MCP over streamable HTTP at /mcp (the serve app, SQLite lake)', { timeout: 240_000 }, () => {
  let dir: string;
  let lake: Lake;
  let server: RunningServer;
  let client: Client;
  let tokens: { person: string; agent: string };
  let guard: GuardedLake;

  /** An SDK client on /mcp with a bearer token. */
  async function connect(token: string): Promise<Client> {
    const c = new Client({ name: 'airlock-test', version: '1.0.0' });
    await c.connect(
      new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    return c;
  }

  beforeAll(async () => {
    dir = join(tempDir('airlock-mcp-http-'), 'lake');
    lake = await lakeWithEvents(dir);
    // The pipeline folder in the lake's object store, where HTTP clients name it by prefix.
    for (const file of readdirSync(ML)) {
      await lake.stores.objects.put(`pipelines/ml/${file}`, new Uint8Array(readFileSync(join(ML, file))));
    }
    guard = guardOf(lake);
    tokens = await aliceTokens(guard);
    // As `airlock serve` builds it: bearer tokens, every operation through the guard.
    const app = createHttpApp({ lake: guardedHttpLake(guard), actorFor: bearerActor(guard) });
    server = await listen(withRequestScope(app), { port: 0, host: '127.0.0.1' });
    client = await connect(tokens.person);
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    await server?.close();
    await lake?.close();
  });

  sharedBehaviour(
    () => client,
    () => dir,
  );

  it("acts as the token's agent: commits carry its person and agent, its merge into main waits for approval", async () => {
    const agent = await connect(tokens.agent);
    try {
      await ok(agent, 'create_branch', { name: 'agent/bot/who', from: 'main' });
      await ok(agent, 'import_table', { table: 'ref.who', branch: 'agent/bot/who', content: 'a\n1\n', format: 'csv' });
      const { commits } = await ok(agent, 'log', { ref: 'agent/bot/who', limit: 1 });
      expect(commits[0]).toMatchObject({ author: 'alice', agent: 'bot' });
      expect(
        (await fails(agent, 'import_table', { table: 'ref.who', branch: 'dev', content: 'a\n2\n', format: 'csv' }))
          .code,
      ).toBe('DENIED');
      const pending = await fails(agent, 'propose_merge', { source: 'agent/bot/who', into: 'main' });
      expect(pending.code).toBe('APPROVAL_REQUIRED');
      expect(pending.details?.approvalId).toEqual(expect.any(String));
      expect(await lake.catalog.listTables('main')).toEqual([]);
      // Audited by the guard like any HTTP request: the import, the refusal and the approval request.
      const entries = (await guard.audit.log({})).filter((e) => e.agent === 'bot');
      expect(entries.map((e) => [e.action, e.outcome])).toEqual(
        expect.arrayContaining([
          ['table.import', 'ok'],
          ['table.import', 'denied'],
          ['merge', 'approval_required'],
        ]),
      );
      expect(entries.every((e) => e.person === 'alice')).toBe(true);
    } finally {
      await agent.close();
    }
  });

  it('refuses paths on the server disk over HTTP, changing nothing', async () => {
    const before = await lakeState(dir);
    const file = await fails(client, 'import_table', { table: 'ref.pw', branch: 'dev', path: '/etc/passwd' });
    expect(file.code).toBe('DENIED');
    const folder = await fails(client, 'run_pipeline', { folder: ML, branch: 'dev' });
    expect(folder.code).toBe('DENIED');
    expect(await lakeState(dir)).toEqual(before);
  });

  it('runs a pipeline folder from the lake object store and reads its status', async () => {
    const run = await ok(client, 'run_pipeline', { prefix: 'pipelines/ml/', branch: 'dev', params: { tag: 'http' } });
    expect(run).toMatchObject({ status: 'succeeded', branch: 'dev' });
    expect((await ok(client, 'run_status', { runId: run.runId })).status).toBe('succeeded');
    const dry = await ok(client, 'run_pipeline', {
      prefix: 'pipelines/ml/',
      branch: 'dev',
      params: { tag: 'dry' },
      dryRun: true,
    });
    expect(dry).toMatchObject({ status: 'succeeded', published: false });
    const q = await ok(client, 'query', {
      sql: 'SELECT run_tag, count(*) AS n FROM ml.train GROUP BY run_tag',
      ref: 'dev',
    });
    expect(q.rows).toEqual([{ run_tag: 'http', n: 16 }]);
  });

  it('answers GET and DELETE with 405 (stateless: no stream, no session)', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(`${server.url}/mcp`, { method, headers: { accept: 'text/event-stream' } });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/stateless/);
    }
  });

  it('refuses a request without a valid bearer token with 401 and the HTTP error body', async () => {
    for (const authorization of [undefined, 'Bearer wrong']) {
      const res = await fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: {
          ...(authorization ? { authorization } : {}),
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(res.status, String(authorization)).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('DENIED');
    }
  });
});
