import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../shared/catalog/index.js';
import { denied } from '../shared/errors/index.js';
import {
  createHttpApp,
  type HttpApp,
  httpStatusOf,
  jsonText,
  listen,
  OPENAPI_DOCUMENT,
  type RunningServer,
  streamedResponse,
} from '../shared/http/index.js';
import { GuardedLake } from '../shared/auth/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { airlock, tempDir } from './support/cli.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'airlock.mjs');
const dir = tempDir('airlock-http-');
const lakeDir = join(dir, 'lake');

let lake: Lake;
let owner: Actor;
let app: HttpApp;
let server: RunningServer;
/** The commit of the first import on dev (3 rows); dev's head has 5. */
let firstImport: string;

function csvFile(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

beforeAll(async () => {
  lake = (await Lake.init({ backend: 'local', dir: lakeDir })).lake;
  owner = { person: lake.owner };
  await lake.catalog.createBranch('dev', 'main', owner);
  const first = await lake.importTable(owner, {
    table: 'raw.events',
    file: csvFile('events.csv', 'id,email,amount\n1,a@x.com,1.5\n2,b@x.com,2.5\n3,"c, the third",3.5\n'),
    branch: 'dev',
    tags: { email: ['pii'] },
  });
  firstImport = first.commit;
  await lake.importTable(owner, {
    table: 'raw.events',
    file: csvFile('more.csv', 'id,email,amount\n4,d@x.com,4.5\n5,e@x.com,5.5\n'),
    branch: 'dev',
  });
  app = createHttpApp({ lake, actorFor: () => owner });
  server = await listen(app, { port: 0, host: '127.0.0.1' });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await lake?.close();
});

/** POST /v1/query in-process (no socket). */
function query(body: unknown, headers: Record<string, string> = {}) {
  return app.request('/v1/query', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** POST /v1/query over real loopback HTTP. */
function fetchQuery(body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${server.url}/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** A response body as JSON (untyped: the assertions check its shape). */
const json = (res: Response): Promise<any> => res.json();

const ORDERED = 'SELECT id, email, amount FROM raw.events ORDER BY id';

describe('POST /v1/query', () => {
  it('answers JSON exactly as `airlock query --json` prints it', async () => {
    const sql = 'SELECT id, amount FROM raw.events WHERE id >= $min ORDER BY id';

    const res = await fetchQuery({ sql, ref: 'dev', params: { min: '2' } });
    const cli = await airlock(['query', sql, '--param', 'min=2', '--ref', 'dev', '--json', '--lake', lakeDir]);

    expect(cli.code, cli.stderr).toBe(0);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = await json(res);
    expect(Object.keys(body)).toEqual(['columns', 'rows', 'stats']);
    expect(body.columns).toEqual(cli.json.columns);
    expect(body.rows).toEqual(cli.json.rows);
    expect(body.rows).toEqual([
      { id: 2, amount: 2.5 },
      { id: 3, amount: 3.5 },
      { id: 4, amount: 4.5 },
      { id: 5, amount: 5.5 },
    ]);
    expect(Object.keys(body.stats).sort()).toEqual(Object.keys(cli.json.stats).sort());
    const { elapsedMs: _a, ...stats } = body.stats;
    const { elapsedMs: _b, ...cliStats } = cli.json.stats;
    expect(stats).toEqual(cliStats);
    expect(stats.bytesScanned).toBeGreaterThan(0);
  });

  it('names the commit it read in an Airlock-Commit header', async () => {
    const res = await query({ sql: 'SELECT 1 AS one', ref: firstImport.slice(0, 12) });

    expect(res.status).toBe(200);
    expect(res.headers.get('airlock-commit')).toBe(firstImport);
  });

  it('streams CSV when Accept asks for text/csv', async () => {
    const res = await fetchQuery({ sql: ORDERED, ref: 'dev' }, { accept: 'text/csv' });

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(await res.text()).toBe(
      'id,email,amount\n1,a@x.com,1.5\n2,b@x.com,2.5\n3,"c, the third",3.5\n4,d@x.com,4.5\n5,e@x.com,5.5\n',
    );
  });

  it('lets the body format win over Accept', async () => {
    const res = await query({ sql: 'SELECT 42 AS answer', format: 'csv' }, { accept: 'application/json' });

    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(await res.text()).toBe('answer\n42\n');
  });

  it('answers an Arrow IPC stream that decodes to the same rows', async () => {
    const res = await fetchQuery({ sql: ORDERED, ref: 'dev', format: 'arrow' });

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.apache.arrow.stream');
    const table = tableFromIPC(new Uint8Array(await res.arrayBuffer()));
    expect(table.schema.fields.map((f) => f.name)).toEqual(['id', 'email', 'amount']);
    const rows = table.toArray().map((r) => ({ id: Number(r.id), email: r.email, amount: r.amount }));
    const asJson = await json(await query({ sql: ORDERED, ref: 'dev' }));
    expect(rows).toEqual(asJson.rows);
    expect(rows).toHaveLength(5);
  });

  it('keeps the schema of an empty result in Arrow', async () => {
    const res = await query(
      { sql: `${ORDERED.replace('ORDER', 'WHERE id > 99 ORDER')}`, ref: 'dev' },
      {
        accept: 'application/vnd.apache.arrow.stream',
      },
    );

    const table = tableFromIPC(new Uint8Array(await res.arrayBuffer()));
    expect(table.numRows).toBe(0);
    expect(table.schema.fields.map((f) => f.name)).toEqual(['id', 'email', 'amount']);
  });

  it('travels in time with ref~N and with a commit id', async () => {
    const count = async (ref: string) =>
      (await json(await query({ sql: 'SELECT count(*) AS n FROM raw.events', ref }))).rows[0].n;

    expect(await count('dev')).toBe(5);
    expect(await count('dev~1')).toBe(3);
    expect(await count(firstImport)).toBe(3);
  });

  it('refuses reading /etc/passwd with 400 and the engine’s reason', async () => {
    const res = await fetchQuery({ sql: "SELECT * FROM read_csv('/etc/passwd')", ref: 'dev' });

    expect(res.status).toBe(400);
    const body = await json(res);
    expect(body.error.code).toBe('INVALID');
    expect(body.error.message).toMatch(/read_csv\(\) is not allowed/);
  });

  it('answers a refused query with a JSON error even when CSV was asked for', async () => {
    const res = await query({ sql: 'SELECT 1; DROP TABLE raw.events', ref: 'dev', format: 'csv' });

    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect((await json(res)).error.message).toMatch(/exactly one statement/);
  });

  it('answers 404 for an unknown ref', async () => {
    const res = await query({ sql: 'SELECT 1 AS one', ref: 'no-such-branch' });

    expect(res.status).toBe(404);
    expect((await json(res)).error).toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringMatching(/no-such-branch/),
    });
  });

  it('answers 400 INVALID for a malformed JSON body', async () => {
    const res = await fetchQuery('{"sql": "SELECT 1",');

    expect(res.status).toBe(400);
    expect((await json(res)).error).toMatchObject({
      code: 'INVALID',
      message: expect.stringMatching(/not valid JSON/),
    });
  });

  it('answers 400 for a body that is not a query request', async () => {
    const missing = await query({ ref: 'dev' });
    const misspelt = await query({ sql: 'SELECT 1', maxRow: 5 });
    const badFormat = await query({ sql: 'SELECT 1', format: 'xml' });

    expect((await json(missing)).error.message).toMatch(/'sql' is required/);
    expect((await json(misspelt)).error.message).toMatch(/unknown field\(s\) 'maxRow'/);
    expect(badFormat.status).toBe(400);
  });

  it('refuses a body that is not declared as JSON', async () => {
    const res = await app.request('/v1/query', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ sql: 'SELECT 1' }),
    });

    expect(res.status).toBe(400);
    expect((await json(res)).error.message).toMatch(/Content-Type: application\/json/);
  });

  it('answers 413 LIMIT_EXCEEDED for a body over 1 MiB', async () => {
    const res = await fetchQuery({ sql: `SELECT 1 AS x -- ${'x'.repeat(1_100_000)}` });

    expect(res.status).toBe(413);
    expect((await json(res)).error).toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 1024 * 1024 } });
  });

  it('cuts the result at maxRows and says so', async () => {
    const res = await query({ sql: ORDERED, ref: 'dev', maxRows: 2 });

    const body = await json(res);
    expect(body.rows.map((r: { id: number }) => r.id)).toEqual([1, 2]);
    expect(body.stats).toMatchObject({ rowsReturned: 2, truncated: true });
  });

  it('sends 64-bit integers beyond 2^53 as strings', async () => {
    const res = await query({ sql: 'SELECT 9223372036854775807::BIGINT AS big, 7::BIGINT AS small' });

    expect((await json(res)).rows).toEqual([{ big: '9223372036854775807', small: 7 }]);
  });

  it("applies the caller's configured caps: 429 naming the cap, and maxRows never raises them", async () => {
    await lake.setQueryCaps(owner, { person: owner.person }, { maxBytesScanned: 10, maxRows: 1 });
    try {
      const refused = await query({ sql: 'SELECT count(*) AS n FROM raw.events', ref: 'dev' });
      const capped = await query({ sql: 'SELECT 1 AS x UNION ALL SELECT 2', maxRows: 100 });

      expect(refused.status).toBe(429);
      expect((await json(refused)).error).toMatchObject({
        code: 'LIMIT_EXCEEDED',
        message: expect.stringContaining('cap maxBytesScanned=10'),
        details: { cap: 'maxBytesScanned', limit: 10 },
      });
      expect((await json(capped)).stats).toMatchObject({ rowsReturned: 1, truncated: true });
    } finally {
      await lake.unsetQueryCaps(owner, { person: owner.person });
    }
  });
});

describe('GET /v1/caps', () => {
  it("gives the caller's caps and where each comes from, as `airlock caps show --json`", async () => {
    await lake.setQueryCaps(owner, { person: owner.person }, { timeoutMs: 5000 });
    try {
      const res = await getCaps();
      const cli = await airlock(['caps', 'show', '--person', owner.person, '--json', '--lake', lakeDir]);

      expect(res.status).toBe(200);
      const body = await json(res);
      expect(body).toEqual(cli.json);
      expect(body).toMatchObject({ person: owner.person, caps: { timeoutMs: 5000 }, sources: { timeoutMs: 'person' } });
    } finally {
      await lake.unsetQueryCaps(owner, { person: owner.person });
    }
  });
});

const getCaps = () => app.request('/v1/caps');

describe('catalog routes', () => {
  it('lists branches with their heads', async () => {
    const res = await fetch(`${server.url}/v1/branches`);

    const branches = await json(res);
    expect(branches.map((b: { name: string }) => b.name).sort()).toEqual(['dev', 'main']);
    expect(branches.find((b: { name: string }) => b.name === 'main')).toMatchObject({ protected: true });
  });

  it('lists the tables of a ref', async () => {
    const atDev = await json(await app.request('/v1/tables?ref=dev'));
    const atMain = await json(await app.request('/v1/tables'));

    expect(atDev).toEqual([expect.objectContaining({ name: 'raw.events', rowCount: 5, files: 2 })]);
    expect(atMain).toEqual([]);
  });

  it('shows a table as `airlock table show --json` does', async () => {
    const res = await fetch(`${server.url}/v1/tables/raw.events?ref=dev~1`);
    const cli = await airlock(['table', 'show', 'raw.events', '--ref', 'dev~1', '--json', '--lake', lakeDir]);

    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toEqual(cli.json);
    expect(body).toMatchObject({
      name: 'raw.events',
      rowCount: 3,
      schema: { fields: [{ name: 'id', type: 'Int64' }, { name: 'email', tags: ['pii'] }, { name: 'amount' }] },
    });
  });

  it('answers 404 for a table missing at the ref', async () => {
    const res = await app.request('/v1/tables/raw.nothing?ref=dev');

    expect(res.status).toBe(404);
    expect((await json(res)).error.code).toBe('NOT_FOUND');
  });

  it('gives the log newest first, with a limit', async () => {
    const all = await json(await app.request('/v1/log?ref=dev'));
    const one = await json(await app.request('/v1/log?ref=dev&limit=1'));
    const bad = await app.request('/v1/log?limit=zero');

    expect(all).toHaveLength(3); // init, then two imports
    expect(all[1].id).toBe(firstImport);
    expect(Object.keys(all[0])).toEqual(
      expect.arrayContaining(['id', 'parents', 'author', 'agent', 'message', 'time']),
    );
    expect(one.map((c: { id: string }) => c.id)).toEqual([all[0].id]);
    expect(bad.status).toBe(400);
  });

  it('diffs two refs', async () => {
    const res = await app.request('/v1/diff?from=dev~1&to=dev');
    const missing = await app.request('/v1/diff?from=dev');

    expect(await json(res)).toEqual([
      expect.objectContaining({ table: 'raw.events', status: 'changed', rowsAdded: 2 }),
    ]);
    expect(missing.status).toBe(400);
  });
});

describe('the service around the routes', () => {
  it('answers health without asking who is calling', async () => {
    const closed = createHttpApp({
      lake,
      actorFor: () => {
        throw denied('no token');
      },
    });

    const health = await closed.request('/v1/health');
    const branches = await closed.request('/v1/branches');

    expect(await json(health)).toEqual({ status: 'ok' });
    expect(branches.status).toBe(403);
    expect(await json(branches)).toEqual({ error: { code: 'DENIED', message: 'no token' } });
  });

  it('answers an unknown route with a JSON 404', async () => {
    const res = await fetch(`${server.url}/v1/nope`);

    expect(res.status).toBe(404);
    expect((await json(res)).error.code).toBe('NOT_FOUND');
  });

  it('serves an OpenAPI 3.1 document listing exactly the routes it serves', async () => {
    const doc = await json(await fetch(`${server.url}/v1/openapi.json`));

    expect(doc.openapi).toBe('3.1.0');
    const documented = Object.entries(doc.paths as Record<string, object>)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    const served = [
      ...new Set(
        app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
      ),
    ].sort();
    expect(documented).toEqual(served);
    expect(doc).toEqual(JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)));
  });

  it('maps each error code to one status', () => {
    const statusOf = (code: string, details = {}) => httpStatusOf({ name: 'AirlockError', code, message: '', details });

    expect(
      ['INVALID', 'USAGE', 'DENIED', 'NOT_FOUND', 'CONFLICT', 'LIMIT_EXCEEDED', 'APPROVAL_REQUIRED', 'INTERNAL'].map(
        (c) => statusOf(c),
      ),
    ).toEqual([400, 400, 403, 404, 409, 429, 202, 500]);
    expect(statusOf('LIMIT_EXCEEDED', { cap: 'maxRequestBytes' })).toBe(413);
    expect(httpStatusOf(new Error('boom'))).toBe(500);
  });

  it('writes bigints as numbers when safe and strings otherwise', () => {
    expect(jsonText({ a: 1n, b: 2n ** 63n, c: -(2n ** 60n) })).toBe(
      '{"a":1,"b":"9223372036854775808","c":"-1152921504606846976"}',
    );
  });

  it('fails a stream before its first byte as a rejected response, after it as a broken body', async () => {
    const early = streamedResponse(
      async () => {
        throw denied('refused early');
      },
      { headers: {} },
    );
    const lateErrors: unknown[] = [];
    const late = await streamedResponse(
      async (write) => {
        await write('partial');
        throw new Error('refused late');
      },
      { headers: {} },
      (e) => lateErrors.push(e),
    );

    await expect(early).rejects.toMatchObject({ code: 'DENIED' });
    expect(late.status).toBe(200);
    await expect(late.text()).rejects.toThrow(/refused late/);
    expect(lateErrors).toHaveLength(1);
  });
});

describe('airlock serve', () => {
  it('serves the lake until SIGTERM, then exits cleanly', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--json', '--lake', lakeDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
        if (m?.[1]) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`serve exited early (${code}): ${stderr}`)));
    });

    // `airlock serve` needs a bearer token (issue 6): none is 401, the owner's token reads.
    const anonymous = await fetch(`${url}/v1/tables?ref=dev`);
    expect(anonymous.status).toBe(401);
    const token = (await new GuardedLake(lake).createToken(owner, {})).token;
    const tables = await json(
      await fetch(`${url}/v1/tables?ref=dev`, { headers: { authorization: `Bearer ${token}` } }),
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');

    expect(tables).toEqual([expect.objectContaining({ name: 'raw.events', rowCount: 5 })]);
    expect(await exited).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ url, stopped: 'SIGTERM' });
  });
});
