/**
 * The HTTP write routes over real loopback HTTP on an embedded (SQLite) lake, and through
 * the api Lambda handler with function-URL events on DynamoDB Local + s3rver: each mirrors
 * a CLI mutation and answers with its `--json` value; refusals get the statuses of the
 * one mapping in `shared/http/httpErrors.ts` and change nothing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../shared/catalog/index.js';
import { AirlockError } from '../shared/errors/index.js';
import {
  type HttpApp,
  OPENAPI_DOCUMENT,
  type RunningServer,
  createHttpApp,
  errorResponse,
  listen,
} from '../shared/http/index.js';
import type { handler as ApiHandler } from '../functions/api.js';
import { GuardedLake } from '../shared/auth/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { lakeLocation } from '../shared/lake/openLake.js';
import { tempDir } from './support/cli.js';
import { awsBackendEnv } from './support/emulators.js';
import { type UrlCall, functionUrlEvent } from './support/functionUrlEvents.js';
import { useEmulators } from './support/useEmulators.js';

const dir = tempDir('airlock-http-write-');
let lake: Lake;
let owner: Actor;
let app: HttpApp;
let server: RunningServer;

beforeAll(async () => {
  lake = (await Lake.init({ backend: 'local', dir: join(dir, 'lake') })).lake;
  owner = { person: lake.owner };
  app = createHttpApp({ lake, actorFor: () => owner, pipelines: { allowLocalPaths: true } });
  server = await listen(app, { port: 0, host: '127.0.0.1' });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await lake?.close();
});

/** A request over loopback; a JSON `body` is sent as application/json. */
async function call(
  method: string,
  path: string,
  options: { json?: unknown; body?: string | Uint8Array; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  let body: string | Uint8Array | undefined = options.body;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  const res = await fetch(`${server.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const csv = (rows: Array<[number, number]>) => `id,amount\n${rows.map(([id, a]) => `${id},${a}`).join('\n')}\n`;
const importCsv = (table: string, branch: string, content: string, query = '') =>
  call('POST', `/v1/tables/${table}/import?branch=${encodeURIComponent(branch)}${query}`, {
    body: content,
    headers: { 'content-type': 'text/csv' },
  });
const headOf = async (branch: string) => (await lake.catalog.head(branch)).commit;

describe('branches and tags', () => {
  it('creates a branch and answers as airlock branch create --json', async () => {
    const main = await headOf('main');

    const res = await call('POST', '/v1/branches', { json: { name: 'feature/a' } });

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ name: 'feature/a', head: main, from: 'main' });
    expect(await headOf('feature/a')).toBe(main);
  });

  it('deletes a branch whose name has slashes, sent percent-encoded', async () => {
    await call('POST', '/v1/branches', { json: { name: 'agent/bob/tmp' } });

    const res = await call('DELETE', `/v1/branches/${encodeURIComponent('agent/bob/tmp')}`);

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ name: 'agent/bob/tmp', deleted: true, lastHead: await headOf('main') });
    expect((await lake.catalog.listBranches()).map((b) => b.name)).not.toContain('agent/bob/tmp');
  });

  it('refuses to delete the protected main branch with 403', async () => {
    const res = await call('DELETE', '/v1/branches/main');

    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('DENIED');
  });

  it('answers 409 for a branch that exists and 404 for an unknown source', async () => {
    const exists = await call('POST', '/v1/branches', { json: { name: 'feature/a' } });
    const unknown = await call('POST', '/v1/branches', { json: { name: 'x', from: 'no-such-ref' } });

    expect(exists.status).toBe(409);
    expect(exists.body.error.code).toBe('CONFLICT');
    expect(unknown.status).toBe(404);
  });

  it('tags a ref', async () => {
    const res = await call('POST', '/v1/tags', { json: { name: 'v1', ref: 'main' } });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'v1', commit: await headOf('main') });
    expect((await lake.catalog.listTags()).map((t) => t.name)).toContain('v1');
  });

  it('refuses unknown fields, a missing field and a non-JSON content type with 400', async () => {
    const misspelt = await call('POST', '/v1/branches', { json: { name: 'y', form: 'main' } });
    const missing = await call('POST', '/v1/tags', { json: { name: 'v2' } });
    const plain = await call('POST', '/v1/branches', {
      body: '{"name":"z"}',
      headers: { 'content-type': 'text/plain' },
    });

    expect([misspelt.status, missing.status, plain.status]).toEqual([400, 400, 400]);
    expect(misspelt.body.error.message).toContain("'form'");
    expect(missing.body.error.message).toContain("'ref'");
    expect((await lake.catalog.listBranches()).map((b) => b.name)).not.toContain('y');
  });
});

describe('imports', () => {
  beforeAll(async () => {
    await call('POST', '/v1/branches', { json: { name: 'dev' } });
  });

  it('imports a CSV body as one commit and answers as airlock table import --json', async () => {
    const res = await importCsv(
      'raw.events',
      'dev',
      csv([
        [1, 10],
        [2, 20],
        [3, 30],
      ]),
      '&unique=id&notNull=id',
    );

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ table: 'raw.events', branch: 'dev', mode: 'append', rows: 3, created: true });
    expect(res.body.commit).toBe(await headOf('dev'));
    const { version } = await lake.catalog.getTable('dev', 'raw.events');
    expect(version.rowCount).toBe(3);
    expect(version.constraints.unique).toEqual(['id']);
    const [latest] = await lake.catalog.history('dev', 1);
    expect(latest?.message).toBe('Append raw.events from an HTTP upload (csv, 25 bytes) (3 rows)');
  });

  it('appends JSON lines chosen by ?format= and overwrites with mode=overwrite', async () => {
    const jsonl = `${JSON.stringify({ id: 4, amount: 40 })}\n${JSON.stringify({ id: 5, amount: 50 })}\n`;
    const appended = await call('POST', '/v1/tables/raw.events/import?branch=dev&format=jsonl', { body: jsonl });
    expect(appended.status).toBe(200);
    expect(appended.body).toMatchObject({ rows: 2, created: false, mode: 'append' });
    expect((await lake.catalog.getTable('dev', 'raw.events')).version.rowCount).toBe(5);

    await call('POST', '/v1/branches', { json: { name: 'scratch', from: 'dev' } });
    const overwritten = await importCsv('raw.events', 'scratch', csv([[9, 90]]), '&mode=overwrite');
    expect(overwritten.body).toMatchObject({ rows: 1, mode: 'overwrite' });
    expect((await lake.catalog.getTable('scratch', 'raw.events')).version.rowCount).toBe(1);
  });

  it('imports a bad file with 400 and changes nothing', async () => {
    const before = await headOf('dev');

    const duplicate = await importCsv('raw.events', 'dev', csv([[1, 11]]));
    const wrongColumns = await importCsv('raw.events', 'dev', 'name,colour\nx,red\n');
    const garbage = await call('POST', '/v1/tables/raw.events/import?branch=dev&format=parquet', {
      body: 'not a parquet file',
    });

    expect([duplicate.status, wrongColumns.status, garbage.status]).toEqual([400, 400, 400]);
    expect(duplicate.body.error.code).toBe('INVALID');
    expect(await headOf('dev')).toBe(before);
    expect((await lake.catalog.getTable('dev', 'raw.events')).version.rowCount).toBe(5);
  });

  it('refuses an import into protected main with 403, and one without a format with 400', async () => {
    const before = await headOf('main');

    const protectedMain = await importCsv('raw.events', 'main', csv([[7, 70]]));
    const noFormat = await call('POST', '/v1/tables/raw.events/import?branch=dev', { body: csv([[7, 70]]) });

    expect(protectedMain.status).toBe(403);
    expect(noFormat.status).toBe(400);
    expect(noFormat.body.error.message).toContain('?format=');
    expect(await headOf('main')).toBe(before);
  });

  it('accepts uploads larger than the JSON cap up to their own cap, and refuses larger ones with 413', async () => {
    const small = createHttpApp({ lake, actorFor: () => owner, maxBodyBytes: 1024, maxUploadBytes: 64 * 1024 });
    const limited = await listen(small, { port: 0, host: '127.0.0.1' });
    try {
      await call('POST', '/v1/branches', { json: { name: 'uploads' } });
      const rows = Array.from({ length: 400 }, (_, i): [number, number] => [i + 100, i]);
      const fits = csv(rows); // ~4 kB: over the JSON cap, under the upload cap
      const tooBig = `id,amount\n${'1,1\n'.repeat(20_000)}`; // ~80 kB
      const post = (body: string) =>
        fetch(`${limited.url}/v1/tables/raw.big/import?branch=uploads`, {
          method: 'POST',
          headers: { 'content-type': 'text/csv' },
          body,
        });
      const before = await headOf('uploads');

      const refused = await post(tooBig);
      const refusedBody = (await refused.json()) as { error: unknown };
      const accepted = await post(fits);

      expect(refused.status).toBe(413);
      expect(refusedBody.error).toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 64 * 1024 } });
      expect(accepted.status).toBe(200);
      expect(((await accepted.json()) as { rows: number }).rows).toBe(400);
      expect((await lake.catalog.history('uploads', 5)).map((c) => c.parents[0])).toContain(before);
    } finally {
      await limited.close();
    }
  });

  it('still refuses JSON bodies over the JSON cap with 413', async () => {
    const res = await call('POST', '/v1/branches', { json: { name: 'x'.repeat(1024 * 1024 + 10) } });

    expect(res.status).toBe(413);
  });
});

describe('tables, merges and reverts', () => {
  it('adds a column and drops a table, each as one commit', async () => {
    await call('POST', '/v1/branches', { json: { name: 'evolve', from: 'dev' } });

    const added = await call('POST', '/v1/tables/raw.events/columns', {
      json: { column: 'email', type: 'Utf8', branch: 'evolve', tags: ['pii'] },
    });
    expect(added.status).toBe(200);
    expect(added.body).toEqual({ table: 'raw.events', column: 'email', type: 'Utf8', commit: await headOf('evolve') });
    const field = (await lake.catalog.getTable('evolve', 'raw.events')).version.schema.fields.find(
      (f) => f.name === 'email',
    );
    expect(field?.tags).toEqual(['pii']);

    const dropped = await call('DELETE', '/v1/tables/raw.events?branch=evolve');
    expect(dropped.status).toBe(200);
    expect(dropped.body).toEqual({ table: 'raw.events', branch: 'evolve', commit: await headOf('evolve') });
    expect(await lake.catalog.listTables('evolve')).toEqual([]);
  });

  it('refuses a bad column type with 400 and an unknown table with 404', async () => {
    const badType = await call('POST', '/v1/tables/raw.events/columns', {
      json: { column: 'c', type: 'Varchar', branch: 'dev' },
    });
    const unknown = await call('DELETE', '/v1/tables/raw.nothing?branch=dev');

    expect(badType.status).toBe(400);
    expect(unknown.status).toBe(404);
  });

  it('merges with a dry run first (nothing changes), then for real', async () => {
    const main = await headOf('main');

    const dry = await call('POST', '/v1/merge', { json: { source: 'dev', into: 'main', dryRun: true } });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ source: 'dev', target: 'main', targetHead: main });
    expect(await headOf('main')).toBe(main);

    const merged = await call('POST', '/v1/merge', { json: { source: 'dev', into: 'main' } });
    expect(merged.status).toBe(200);
    expect(['merged', 'fast-forward']).toContain(merged.body.status);
    expect((await lake.catalog.getTable('main', 'raw.events')).version.rowCount).toBe(5);
  });

  it('answers a conflicting merge with 409 naming the table, and changes nothing', async () => {
    await call('POST', '/v1/branches', { json: { name: 'left', from: 'main' } });
    await call('POST', '/v1/branches', { json: { name: 'right', from: 'main' } });
    await importCsv('raw.events', 'left', csv([[1, 1]]), '&mode=overwrite');
    await importCsv('raw.events', 'right', csv([[2, 2]]), '&mode=overwrite');
    await call('POST', '/v1/merge', { json: { source: 'left', into: 'main' } });
    const main = await headOf('main');

    const res = await call('POST', '/v1/merge', { json: { source: 'right', into: 'main' } });

    // The catalog refuses it as a CONFLICT error (as `airlock merge` exits 3 with the error body).
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('CONFLICT');
    expect(JSON.stringify(res.body)).toContain('raw.events');
    expect(await headOf('main')).toBe(main);
  });

  it('reverts a commit', async () => {
    await call('POST', '/v1/branches', { json: { name: 'undo', from: 'dev' } });
    const imported = await importCsv('raw.events', 'undo', csv([[60, 6]]));

    const res = await call('POST', '/v1/revert', { json: { commit: imported.body.commit, branch: 'undo' } });

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ commit: await headOf('undo'), branch: 'undo', reverted: imported.body.commit });
    expect((await lake.catalog.getTable('undo', 'raw.events')).version.rowCount).toBe(5);
  });
});

describe('caps', () => {
  it('sets caps for a person from numbers and unit strings, as airlock caps set --json', async () => {
    const res = await call('PATCH', '/v1/caps', { json: { person: 'ann', caps: { maxRows: 500, timeoutMs: '30s' } } });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      person: 'ann',
      caps: { maxRows: 500, timeoutMs: 30_000 },
      sources: { maxRows: 'person', timeoutMs: 'person' },
    });
    expect((await lake.queryCaps(owner, { person: 'ann' })).caps.maxRows).toBe(500);
  });

  it('refuses an unknown cap and an empty change with 400', async () => {
    const unknown = await call('PATCH', '/v1/caps', { json: { caps: { maxRow: 5 } } });
    const empty = await call('PATCH', '/v1/caps', { json: { caps: {} } });

    expect([unknown.status, empty.status]).toEqual([400, 400]);
    expect(unknown.body.error.message).toContain("'maxRow'");
  });
});

describe('pipeline runs', () => {
  const pipeline = join(dir, 'pipeline');

  beforeAll(() => {
    mkdirSync(pipeline, { recursive: true });
    writeFileSync(
      join(pipeline, 'big.sql'),
      '-- output: ml.big\n-- expect: not_null(id)\nSELECT id, amount FROM raw.events WHERE amount >= $min\n',
    );
  });

  it('runs a folder on the server and publishes, then lists and shows the run', async () => {
    await call('POST', '/v1/branches', { json: { name: 'pipes', from: 'dev' } });

    const res = await call('POST', '/v1/runs', {
      json: { pipeline: { path: pipeline }, branch: 'pipes', params: { min: '30' } },
    });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'succeeded', branch: 'pipes', published: true });
    expect((await lake.catalog.getTable('pipes', 'ml.big')).version.rowCount).toBe(3);
    const list = await call('GET', '/v1/runs');
    expect(list.body.map((r: { runId: string }) => r.runId)).toContain(res.body.runId);
    const shown = await call('GET', `/v1/runs/${res.body.runId}`);
    expect(shown.body).toEqual(res.body);
  });

  it("runs a folder from the lake's object store by prefix", async () => {
    await lake.stores.objects.put(
      'pipelines/small/small.sql',
      new TextEncoder().encode('-- output: ml.small\nSELECT id FROM raw.events WHERE amount < 30\n'),
    );
    await call('POST', '/v1/branches', { json: { name: 'pipes2', from: 'dev' } });

    const res = await call('POST', '/v1/runs', {
      json: { pipeline: { prefix: 'pipelines/small/' }, branch: 'pipes2' },
    });

    expect(res.status).toBe(200);
    expect(res.body.status).toBe('succeeded');
    expect((await lake.catalog.getTable('pipes2', 'ml.small')).version.rowCount).toBe(2);
  });

  it('refuses server paths where the server does not allow them, and an unknown run with 404', async () => {
    const lambdaLike = createHttpApp({ lake, actorFor: () => owner });

    const res = await lambdaLike.request('/v1/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pipeline: { path: pipeline }, branch: 'pipes' }),
    });
    const unknown = await call('GET', '/v1/runs/no-such-run');

    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('prefix');
    expect(unknown.status).toBe(404);
  });
});

describe('the contract', () => {
  it('answers an action awaiting approval with 202 and {status, approvalId}', async () => {
    const res = errorResponse(
      new AirlockError('APPROVAL_REQUIRED', 'main is protected: a person must approve', {
        details: { approvalId: 'ap_123', target: 'main' },
      }),
    );

    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({
      status: 'awaiting_approval',
      approvalId: 'ap_123',
      target: 'main',
      message: 'main is protected: a person must approve',
    });
  });

  it('documents every route it serves, with an Idempotency-Key on every mutation', async () => {
    const doc = (await call('GET', '/v1/openapi.json')).body;
    const documented = Object.entries(doc.paths as Record<string, object>)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    const served = [
      ...new Set(
        app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
      ),
    ].sort();

    expect(documented).toEqual(served);
    const mutations = Object.entries(OPENAPI_DOCUMENT.paths).flatMap(([path, ops]) =>
      Object.entries(ops as Record<string, { parameters?: Array<{ name: string }> }>)
        .filter(([method]) => method !== 'get' && path !== '/v1/query')
        .map(([method, op]) => ({
          route: `${method} ${path}`,
          keyed: !!op.parameters?.some((p) => p.name === 'Idempotency-Key'),
        })),
    );
    expect(mutations.map((m) => m.route)).toEqual(
      expect.arrayContaining([
        'post /v1/branches',
        'delete /v1/branches/{name}',
        'post /v1/tags',
        'post /v1/tables/{table}/import',
        'delete /v1/tables/{table}',
        'post /v1/tables/{table}/columns',
        'post /v1/merge',
        'post /v1/revert',
        'patch /v1/caps',
        'post /v1/runs',
      ]),
    );
    expect(mutations.filter((m) => !m.keyed)).toEqual([]);
  });
});

describe('every write route through the api Lambda (function-URL events, DynamoDB Local + s3rver)', () => {
  type Handler = typeof ApiHandler;
  let aws: Lake;
  let handler: Handler;
  let auth: Record<string, string>;

  beforeAll(async () => {
    const emulators = await useEmulators();
    Object.assign(process.env, awsBackendEnv(emulators, 'airlock-write'));
    aws = (await Lake.init(lakeLocation({}))).lake;
    const me = { person: aws.owner };
    auth = { authorization: `Bearer ${(await new GuardedLake(aws).createToken(me, {})).token}` };
    await aws.stores.objects.put(
      'pipelines/nightly/top.sql',
      new TextEncoder().encode('-- output: ml.top\nSELECT id FROM raw.events WHERE amount >= 20\n'),
    );
    ({ handler } = await import('../functions/api.js'));
  }, 300_000);

  afterAll(() => aws?.close());

  async function invoke(call: UrlCall & { json?: unknown }) {
    const { json, ...rest } = call;
    const event =
      json === undefined
        ? rest
        : {
            ...rest,
            body: JSON.stringify(json),
            headers: { 'content-type': 'application/json', ...(rest.headers ?? {}) },
          };
    const res = await handler(
      functionUrlEvent<Parameters<Handler>[0]>({ ...event, headers: { ...auth, ...(event.headers ?? {}) } }),
    );
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
  }
  const awsHead = async (branch: string) => (await aws.catalog.head(branch)).commit;
  const upload = (branch: string, content: string, extra = '') =>
    invoke({
      method: 'POST',
      path: '/v1/tables/raw.events/import',
      query: `branch=${branch}&format=csv${extra}`,
      headers: { 'content-type': 'application/octet-stream' },
      body: content,
      base64: true,
    });

  it('creates, tags, imports (base64 body), evolves, merges, reverts, drops and deletes', async () => {
    const created = await invoke({ method: 'POST', path: '/v1/branches', json: { name: 'dev' } });
    expect(created).toEqual({ status: 200, body: { name: 'dev', head: await awsHead('main'), from: 'main' } });

    const imported = await upload(
      'dev',
      csv([
        [1, 10],
        [2, 20],
        [3, 30],
      ]),
      '&unique=id',
    );
    expect(imported.status).toBe(200);
    expect(imported.body).toMatchObject({ table: 'raw.events', rows: 3, created: true, commit: await awsHead('dev') });

    const tag = await invoke({ method: 'POST', path: '/v1/tags', json: { name: 'first', ref: 'dev' } });
    expect(tag.body).toMatchObject({ name: 'first', commit: imported.body.commit });

    const column = await invoke({
      method: 'POST',
      path: '/v1/tables/raw.events/columns',
      json: { column: 'note', type: 'Utf8', branch: 'dev' },
    });
    expect(column.body).toEqual({ table: 'raw.events', column: 'note', type: 'Utf8', commit: await awsHead('dev') });

    const dry = await invoke({
      method: 'POST',
      path: '/v1/merge',
      json: { source: 'dev', into: 'main', dryRun: true },
    });
    expect(dry.status).toBe(200);
    expect(await aws.catalog.listTables('main')).toEqual([]);
    const merged = await invoke({ method: 'POST', path: '/v1/merge', json: { source: 'dev', into: 'main' } });
    expect(merged.status).toBe(200);
    expect((await aws.catalog.getTable('main', 'raw.events')).version.rowCount).toBe(3);

    const reverted = await invoke({
      method: 'POST',
      path: '/v1/revert',
      json: { commit: column.body.commit, branch: 'dev' },
    });
    expect(reverted.body).toEqual({ commit: await awsHead('dev'), branch: 'dev', reverted: column.body.commit });

    const dropped = await invoke({ method: 'DELETE', path: '/v1/tables/raw.events', query: 'branch=dev' });
    expect(dropped.body).toEqual({ table: 'raw.events', branch: 'dev', commit: await awsHead('dev') });
    expect(await aws.catalog.listTables('dev')).toEqual([]);

    const deleted = await invoke({ method: 'DELETE', path: '/v1/branches/dev' });
    expect(deleted.body).toMatchObject({ name: 'dev', deleted: true });
  });

  it('sets caps and runs a pipeline folder from the lake bucket, then lists and shows the run', async () => {
    const caps = await invoke({ method: 'PATCH', path: '/v1/caps', json: { caps: { maxRows: 1234 } } });
    expect(caps.status).toBe(200);
    expect(caps.body).toMatchObject({ caps: { maxRows: 1234 } });

    await invoke({ method: 'POST', path: '/v1/branches', json: { name: 'nightly', from: 'main' } });
    const run = await invoke({
      method: 'POST',
      path: '/v1/runs',
      json: { pipeline: { prefix: 'pipelines/nightly/' }, branch: 'nightly' },
    });
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({ status: 'succeeded', branch: 'nightly', published: true });
    expect((await aws.catalog.getTable('nightly', 'ml.top')).version.rowCount).toBe(2);

    const shown = await invoke({ method: 'GET', path: `/v1/runs/${run.body.runId}` });
    expect(shown.body).toEqual(run.body);
    const listed = await invoke({ method: 'GET', path: '/v1/runs' });
    expect(listed.body.map((r: { runId: string }) => r.runId)).toContain(run.body.runId);
  });

  it('refuses a bad file (400), protected main (403) and a server path (400), changing nothing', async () => {
    await invoke({ method: 'POST', path: '/v1/branches', json: { name: 'bad', from: 'main' } });
    const before = await awsHead('bad');
    const main = await awsHead('main');

    const badFile = await upload('bad', 'id,amount\n1,not-a-number\n');
    const duplicate = await upload('bad', csv([[1, 99]]));
    const onMain = await upload('main', csv([[9, 90]]));
    const serverPath = await invoke({
      method: 'POST',
      path: '/v1/runs',
      json: { pipeline: { path: '/etc' }, branch: 'bad' },
    });

    expect([badFile.status, duplicate.status, onMain.status, serverPath.status]).toEqual([400, 400, 403, 400]);
    expect(await awsHead('bad')).toBe(before);
    expect(await awsHead('main')).toBe(main);
    const dataFiles: string[] = [];
    for await (const o of aws.stores.objects.list('data/raw/events/')) dataFiles.push(o.key);
    expect(dataFiles).toEqual(
      (await aws.catalog.getTable('main', 'raw.events')).version.files.map((f) => f.key).sort(),
    );
  });
});
