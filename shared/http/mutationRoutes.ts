import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context, Hono } from 'hono';
import type { Actor } from '../catalog/index.js';
import { invalid } from '../errors/index.js';
import type { Lake } from '../lake/Lake.js';
import type { CodeStepExecutor, RunSummary, StartRunOptions } from '../pipeline/run/index.js';
import type { CapName } from '../query/index.js';
import { applyOnce } from './applyOnce.js';
import { type IdempotencyKeys, sha256Hex } from './idempotency.js';
import { jsonResponse } from './jsonResponse.js';
import {
  type JsonObject,
  listParam,
  optionalBoolean,
  optionalObject,
  optionalString,
  optionalStringMap,
  optionalStrings,
  parseJsonObject,
  requiredString,
} from './mutationBodies.js';
import { stageUpload, uploadFormatOf } from './uploadBody.js';

/** What the write routes need of a lake. */
export type MutationLake = Pick<
  Lake,
  'catalog' | 'stores' | 'importTable' | 'dropTable' | 'addColumn' | 'setQueryCaps' | 'owner'
>;

/**
 * Pipeline runs as the routes call them (the shape of the auth guard's `runPipeline`,
 * `listRuns`, `showRun`, so an enforcement point can be passed as is). Default: a
 * `PipelineRunner` on the lake.
 */
export interface RunService {
  runPipeline(actor: Actor, options: StartRunOptions): Promise<RunSummary>;
  listRuns(actor: Actor, options: { limit?: number }): Promise<RunSummary[]>;
  showRun(actor: Actor, options: { runId: string }): Promise<RunSummary>;
}

/** How `POST /v1/runs` finds pipeline folders and executes code steps. */
export interface PipelineOptions {
  /** Who starts, lists and shows runs (default: a `PipelineRunner` on the lake with {@link executor}). */
  runs?: RunService;
  /**
   * Accept `{"pipeline":{"path":…}}`, a folder on the server's own disk. `airlock serve`
   * allows it (the server is the caller's machine); the Lambda does not (only folders
   * in the lake's object store, `{"pipeline":{"prefix":…}}`).
   */
  allowLocalPaths?: boolean;
  /** Where folders fetched from the object store are written (default: `<tmp>/airlock-pipelines`, as the runner Lambda). */
  fetchRoot?: string;
  /** The code-step executor (default: local sandboxed processes). */
  executor?: () => CodeStepExecutor;
}

/** What {@link registerMutationRoutes} needs. */
export interface MutationRouteOptions {
  lake: MutationLake;
  keys: IdempotencyKeys;
  maxUploadBytes: number;
  pipelines: PipelineOptions;
}

type Env = { Variables: { actor: Actor } };
type Ctx = Context<Env>;

/** The path of the import route; its body is a file, not JSON, and has its own size cap. */
export const IMPORT_ROUTE = '/v1/tables/:table/import';

/** True when a request path is an import (upload) rather than a JSON request. */
export const isUploadPath = (path: string) => /^\/v1\/tables\/[^/]+\/import$/.test(path);

const pipelines = () => import('../pipeline/run/index.js');
const queryEngine = () => import('../query/index.js');

/**
 * Registers the write routes: each mirrors one CLI mutation and answers with the JSON
 * that command prints under `--json`. Every one honours `Idempotency-Key` (see
 * {@link IdempotencyKeys}); without the header it simply applies.
 */
export function registerMutationRoutes(app: Hono<Env>, options: MutationRouteOptions): void {
  const { lake, keys } = options;

  /**
   * Runs a mutation once per `Idempotency-Key`: the first request claims the key, applies,
   * and stores its answer (also a 4xx); a retry gets those bytes back; 5xx releases the key.
   */
  /** Applies once per `Idempotency-Key` (see {@link applyOnce}). */
  function once(c: Ctx, bodyHash: string, apply: () => Promise<Response>): Promise<Response> {
    const request = { actor: c.get('actor'), method: c.req.method, url: c.req.url, bodyHash };
    return applyOnce(keys, { ...request, key: c.req.header('idempotency-key') }, apply);
  }

  /** A JSON mutation: checks the content type, parses the body, applies once per key. */
  function jsonMutation(
    fields: readonly string[],
    example: string,
    apply: (c: Ctx, body: JsonObject, actor: Actor) => Promise<Response>,
  ) {
    return async (c: Ctx) => {
      const text = await c.req.text();
      if (text !== '' && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
        throw invalid(`${c.req.method} ${c.req.path} takes a JSON body: send 'Content-Type: application/json'`);
      }
      const body = parseJsonObject(text, fields, example);
      return once(c, sha256Hex(text), () => apply(c, body, c.get('actor')));
    };
  }

  // ------------------------------------------------------------ branches and tags
  app.post(
    '/v1/branches',
    jsonMutation(['name', 'from'], '{"name":"dev","from":"main"}', async (_c, body, actor) => {
      const name = requiredString(body, 'name');
      const from = optionalString(body, 'from') ?? 'main';
      const event = await lake.catalog.createBranch(name, from, actor);
      return jsonResponse({ name, head: event.commit, from });
    }),
  );

  app.delete(
    '/v1/branches/:name',
    jsonMutation([], '{}', async (c, _body, actor) => {
      const name = pathParam(c, 'name');
      const event = await lake.catalog.deleteBranch(name, actor);
      return jsonResponse({ name, deleted: true, lastHead: event.info?.previousHead });
    }),
  );

  app.post(
    '/v1/tags',
    jsonMutation(['name', 'ref'], '{"name":"v1","ref":"main"}', async (_c, body, actor) => {
      const tag = await lake.catalog.createTag(requiredString(body, 'name'), requiredString(body, 'ref'), actor);
      return jsonResponse(tag);
    }),
  );

  // ------------------------------------------------------------ tables
  app.post(IMPORT_ROUTE, async (c) => {
    const table = pathParam(c, 'table');
    const branch = c.req.query('branch');
    if (!branch) throw invalid('an import needs ?branch=<branch> (protected branches change only by merge)');
    const mode = c.req.query('mode') ?? 'append';
    if (mode !== 'append' && mode !== 'overwrite') throw invalid(`'mode' must be append or overwrite, got '${mode}'`);
    const format = uploadFormatOf(c.req.query('format'), c.req.header('content-type'));
    const tags: Record<string, string[]> = {};
    for (const t of listParam(c.req.queries('tag'))) {
      const [column, tag, extra] = t.split('=');
      if (!column || !tag || extra !== undefined) throw invalid(`'tag' expects column=tag, got '${t}'`);
      (tags[column] ??= []).push(tag);
    }
    const message = c.req.query('message');
    const upload = await stageUpload(c.req.raw, {
      stagingDir: lake.stores.stagingDir,
      format,
      maxBytes: options.maxUploadBytes,
    });
    try {
      return await once(c, upload.sha256, async () =>
        jsonResponse(
          await lake.importTable(c.get('actor'), {
            table,
            file: upload.path,
            source: `an HTTP upload (${format}, ${upload.bytes} bytes)`,
            branch,
            mode,
            notNull: listParam(c.req.queries('notNull')),
            unique: listParam(c.req.queries('unique')),
            tags,
            ...(message ? { message } : {}),
          }),
        ),
      );
    } finally {
      await upload.dispose();
    }
  });

  app.delete(
    '/v1/tables/:table',
    jsonMutation([], '{}', async (c, _body, actor) => {
      const table = pathParam(c, 'table');
      const branch = c.req.query('branch');
      if (!branch) throw invalid('dropping a table needs ?branch=<branch>');
      const r = await lake.dropTable(actor, { table, branch });
      return jsonResponse({ table, branch, commit: r.commit.id });
    }),
  );

  app.post(
    '/v1/tables/:table/columns',
    jsonMutation(
      ['column', 'type', 'branch', 'tags'],
      '{"column":"note","type":"Utf8","branch":"dev"}',
      async (c, body, actor) => {
        const table = pathParam(c, 'table');
        const column = requiredString(body, 'column');
        const type = requiredString(body, 'type');
        const r = await lake.addColumn(actor, {
          table,
          column,
          type,
          branch: requiredString(body, 'branch'),
          tags: optionalStrings(body, 'tags') ?? [],
        });
        return jsonResponse({ table, column, type, commit: r.commit.id });
      },
    ),
  );

  // ------------------------------------------------------------ history
  app.post(
    '/v1/merge',
    jsonMutation(
      ['source', 'into', 'dryRun', 'message'],
      '{"source":"dev","into":"main","dryRun":true}',
      async (_c, body, actor) => {
        const source = requiredString(body, 'source');
        const into = requiredString(body, 'into');
        const result = await lake.catalog.merge(source, into, {
          actor,
          message: optionalString(body, 'message') ?? `Merge ${source} into ${into}`,
          dryRun: optionalBoolean(body, 'dryRun') ?? false,
        });
        // As `airlock merge`, whose exit code is 3 for a conflict: the result body names the tables.
        return jsonResponse(result, result.status === 'conflict' ? 409 : 200);
      },
    ),
  );

  app.post(
    '/v1/revert',
    jsonMutation(['commit', 'branch', 'message'], '{"commit":"3f2a…","branch":"dev"}', async (_c, body, actor) => {
      const commit = requiredString(body, 'commit');
      const branch = requiredString(body, 'branch');
      const message = optionalString(body, 'message');
      const r = await lake.catalog.revert(commit, branch, { actor, ...(message ? { message } : {}) });
      return jsonResponse({ commit: r.commit.id, branch, reverted: commit });
    }),
  );

  // ------------------------------------------------------------ caps
  app.patch(
    '/v1/caps',
    jsonMutation(
      ['person', 'caps'],
      '{"person":"ann","caps":{"maxRows":500,"timeoutMs":"30s"}}',
      async (_c, body, actor) => {
        const { CAP_NAMES, parseCapValue } = await queryEngine();
        const given = optionalObject(body, 'caps') ?? {};
        const changes: Partial<Record<CapName, number>> = {};
        for (const [name, value] of Object.entries(given)) {
          if (!(CAP_NAMES as readonly string[]).includes(name)) {
            throw invalid(`unknown cap '${name}'; caps are ${CAP_NAMES.join(', ')}`);
          }
          if (typeof value !== 'number' && typeof value !== 'string') {
            throw invalid(`cap '${name}' must be a number or a string such as "50GiB" or "30s"`);
          }
          changes[name as CapName] = parseCapValue(name as CapName, String(value));
        }
        if (Object.keys(changes).length === 0) {
          throw invalid(`give at least one cap to set in 'caps': ${CAP_NAMES.join(', ')}`);
        }
        const person = optionalString(body, 'person');
        return jsonResponse(await lake.setQueryCaps(actor, person ? { person } : {}, changes));
      },
    ),
  );

  // ------------------------------------------------------------ pipeline runs
  async function runner() {
    const { PipelineRunner } = await pipelines();
    const { stores } = lake;
    return new PipelineRunner(
      { catalog: lake.catalog, store: stores.store, objects: stores.objects, stagingDir: stores.stagingDir },
      options.pipelines.executor?.(),
    );
  }
  const runs: RunService = options.pipelines.runs ?? {
    runPipeline: async (actor, start) => (await runner()).start(actor, start),
    listRuns: async (_actor, { limit }) => (await runner()).list(limit),
    showRun: async (_actor, { runId }) => (await runner()).show(runId),
  };

  app.post(
    '/v1/runs',
    jsonMutation(
      ['pipeline', 'branch', 'params', 'dryRun', 'isolation'],
      '{"pipeline":{"prefix":"pipelines/daily/"},"branch":"dev"}',
      async (_c, body, actor) => {
        const branch = requiredString(body, 'branch');
        const pipeline = optionalObject(body, 'pipeline');
        const path = pipeline ? optionalString(pipeline, 'path') : undefined;
        const prefix = pipeline ? optionalString(pipeline, 'prefix') : undefined;
        if (!pipeline || (path === undefined) === (prefix === undefined) || Object.keys(pipeline).length !== 1) {
          throw invalid(
            '\'pipeline\' must be {"prefix":"pipelines/daily/"} (a folder in the lake\'s object store) or {"path":…} (a folder on the server)',
          );
        }
        if (path !== undefined && !options.pipelines.allowLocalPaths) {
          throw invalid(
            'this server runs pipelines only from the lake\'s object store: send {"pipeline":{"prefix":…}}',
          );
        }
        const isolation = optionalString(body, 'isolation');
        if (isolation !== undefined && isolation !== 'snapshot' && isolation !== 'serializable') {
          throw invalid(`'isolation' must be snapshot or serializable, got '${isolation}'`);
        }
        const { fetchPipelineFolder } = await pipelines();
        const pipelineDir =
          path ??
          (await fetchPipelineFolder(
            lake.stores.objects,
            prefix as string,
            options.pipelines.fetchRoot ?? join(tmpdir(), 'airlock-pipelines'),
          ));
        const run = await runs.runPipeline(actor, {
          pipelineDir,
          branch,
          params: optionalStringMap(body, 'params') ?? {},
          dryRun: optionalBoolean(body, 'dryRun') ?? false,
          ...(isolation ? { isolation } : {}),
        });
        return jsonResponse(run, runStatusCode(run));
      },
    ),
  );

  app.get('/v1/runs', async (c) => {
    const text = c.req.query('limit');
    const limit = text === undefined ? 20 : Number(text);
    if (text !== undefined && (!/^\d+$/.test(text) || limit < 1 || limit > 1000)) {
      throw invalid(`'limit' must be a whole number from 1 to 1000, got '${text}'`);
    }
    return jsonResponse(await runs.listRuns(c.get('actor'), { limit }));
  });

  app.get('/v1/runs/:id', async (c) => jsonResponse(await runs.showRun(c.get('actor'), { runId: pathParam(c, 'id') })));
}

/**
 * A finished run's status code: 409 for a conflict (as `airlock run` exits 3), 202 while
 * publishing waits for approval (exit 5), else 200 (the body says failed).
 */
function runStatusCode(run: RunSummary): number {
  return run.status === 'conflict' ? 409 : run.status === 'awaiting_approval' ? 202 : 200;
}

/** A path parameter of the route (always present once the route matched). */
function pathParam(c: Ctx, name: string): string {
  const value = c.req.param(name);
  if (value === undefined || value === '') throw invalid(`the path needs a ${name}`);
  return value;
}
