import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Approvals } from '../approvals/index.js';
import type { Actor } from '../catalog/index.js';
import { AirlockError, invalid, notFound } from '../errors/index.js';
import type { Lake, QueryOptions } from '../lake/Lake.js';
import { registerApprovalRoutes } from './approvalRoutes.js';
import { logEntryView, tableView } from '../lake/views.js';
import { REQUEST_BYTES_CAP, errorResponse, httpStatusOf } from './httpErrors.js';
import { IdempotencyKeys } from './idempotency.js';
import { jsonResponse } from './jsonResponse.js';
import { type MutationLake, type PipelineOptions, isUploadPath, registerMutationRoutes } from './mutationRoutes.js';
import { OPENAPI_DOCUMENT } from './openApiDocument.js';
import { MEDIA_TYPES, negotiateFormat, parseQueryBody } from './queryBody.js';
import { type WriteChunk, streamedResponse } from './streamedResponse.js';
import { DEFAULT_MAX_UPLOAD_BYTES, drain } from './uploadBody.js';

/** The output side of the query engine, loaded on first query (it brings DuckDB and Arrow). */
const queryOutput = () => import('../query/index.js');

/** What the HTTP API needs of a lake. */
export type HttpLake = Pick<Lake, 'catalog' | 'query' | 'streamQuery' | 'queryCaps'> & MutationLake;

/** Options of {@link createHttpApp}. */
export interface HttpAppOptions {
  /** The lake every request reads. The app does not own it: whoever opened it closes it. */
  lake: HttpLake;
  /**
   * Who is acting, from the request. Called once per request to every route except
   * `GET /v1/health` and `GET /v1/openapi.json`, before the route runs; a thrown
   * `AirlockError` (e.g. DENIED) becomes the response. This is the authentication seam:
   * until bearer tokens exist (issue 6) `airlock serve` passes a function returning the
   * lake's owner, exactly as the embedded CLI acts as the owner without a token. Token
   * checking belongs in the function given here, not in the routes.
   */
  actorFor(request: Request): Actor | Promise<Actor>;
  /** Largest JSON request body accepted, in bytes (default 1 MiB); larger bodies get 413. */
  maxBodyBytes?: number;
  /**
   * Largest file accepted by `POST /v1/tables/{table}/import`, in bytes (default 256 MiB);
   * it is streamed to a staging file, never held in memory. Larger uploads get 413.
   */
  maxUploadBytes?: number;
  /** How `POST /v1/runs` finds pipeline folders and runs code steps (default: object-store folders only, local sandboxes). */
  pipelines?: PipelineOptions;
  /** The lake's approvals, served under `/v1/approvals` (absent: those routes answer NOT_FOUND saying so). */
  approvals?: Approvals;
  /** How long a mutation's result answers a retry with the same `Idempotency-Key` (default 24 h). */
  idempotencyTtlMs?: number;
  /**
   * Where unexpected failures are reported: INTERNAL errors (whose message the client
   * never sees) and failures after a streamed body has started. Default: stderr.
   */
  log?: (message: string, error: unknown) => void;
}

/** Default largest request body: 1 MiB (the engine accepts at most 100 kB of SQL anyway). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** Routes anyone may call: they touch no data and need no actor. */
const PUBLIC_PATHS = new Set(['/v1/health', '/v1/openapi.json']);

const defaultLog = (message: string, error: unknown) => {
  process.stderr.write(`${message}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
};

/**
 * Builds the HTTP API of a lake: a Hono app on web-standard `Request`/`Response`, so the
 * same app serves `airlock serve` (Node, see {@link listen}) and, later, a Lambda function
 * URL. Routes mirror the CLI and answer with the JSON the CLI prints under `--json`:
 *
 * - `GET /v1/health`, `GET /v1/openapi.json` (OpenAPI 3.1)
 * - `POST /v1/query` `{sql, ref?, params?, maxRows?, format?}`: JSON (`{columns,rows,stats}`),
 *   CSV or Arrow IPC stream, by `format` or `Accept`; the caller's person's caps apply
 *   (person override ▸ lake setting ▸ default, resolved by the lake on every query)
 * - `GET /v1/caps`: those caps and where each comes from
 * - `GET /v1/branches`, `GET /v1/tables?ref=`, `GET /v1/tables/:table?ref=`,
 *   `GET /v1/log?ref=&limit=`, `GET /v1/diff?from=&to=`
 *
 * Every failure is `{"error":{"code","message"}}` with the status of `httpStatusOf`.
 *
 * @example
 * const lake = await Lake.open(lakeLocation({}));
 * const app = createHttpApp({ lake, actorFor: () => ({ person: lake.owner }) });
 * const res = await app.request('/v1/query', {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json' },
 *   body: JSON.stringify({ sql: 'SELECT count(*) AS n FROM raw.events', ref: 'main~1' }),
 * });
 */
export function createHttpApp(options: HttpAppOptions) {
  const { lake } = options;
  const log = options.log ?? defaultLog;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const app = new Hono<{ Variables: { actor: Actor } }>();

  app.onError((error) => {
    if (httpStatusOf(error) === 500) log('airlock http: unexpected error', error);
    return errorResponse(error);
  });
  app.notFound((c) =>
    errorResponse(notFound(`no route ${c.req.method} ${c.req.path}; the routes are listed at /v1/openapi.json`)),
  );

  // Checked before any route reads the body; a Content-Length over the limit is refused unread.
  const jsonBodyLimit = bodyLimit({
    maxSize: maxBodyBytes,
    onError: async (c) => {
      await discardBody(c.req.raw);
      return errorResponse(
        new AirlockError('LIMIT_EXCEEDED', `the request body is larger than ${maxBodyBytes} bytes`, {
          details: { cap: REQUEST_BYTES_CAP, limit: maxBodyBytes },
        }),
      );
    },
  });
  // Uploads are streamed to a staging file under their own cap (see stageUpload).
  app.use('*', (c, next) => (isUploadPath(c.req.path) ? next() : jsonBodyLimit(c, next)));
  app.use('/v1/*', async (c, next) => {
    if (!PUBLIC_PATHS.has(c.req.path)) c.set('actor', await options.actorFor(c.req.raw));
    await next();
  });

  app.get('/v1/health', () => jsonResponse({ status: 'ok' }));
  app.get('/v1/openapi.json', () => jsonResponse(OPENAPI_DOCUMENT));
  app.all('/mcp', async (c) =>
    (await import('../mcp/index.js')).handleMcpRequest(c.req.raw, { lake, actorFor: options.actorFor, log }),
  );

  app.post('/v1/query', async (c) => {
    // Requiring a JSON content type also makes browsers preflight cross-origin requests,
    // so a web page cannot make a local server run queries with a plain form post.
    if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
      throw invalid("POST /v1/query takes a JSON body: send 'Content-Type: application/json'");
    }
    const body = parseQueryBody(await c.req.text());
    const format = negotiateFormat(body.format, c.req.header('accept'));
    const actor = c.get('actor');
    const query: QueryOptions = {
      sql: body.sql,
      ...(body.ref ? { ref: body.ref } : {}),
      ...(body.params ? { params: body.params } : {}),
      ...(body.maxRows ? { caps: { maxRows: body.maxRows } } : {}),
    };
    if (format === 'json') {
      const result = await lake.query(actor, query);
      return jsonResponse({ columns: result.columns, rows: result.rows, stats: result.stats }, 200, {
        'airlock-commit': result.commit,
      });
    }
    const produce =
      format === 'csv'
        ? async (write: WriteChunk) => {
            const { csvSink } = await queryOutput();
            await lake.streamQuery(actor, query, csvSink(write));
          }
        : async (write: WriteChunk) => {
            const { arrowIpcSink } = await queryOutput();
            const ipc = arrowIpcSink();
            let failure: { error: unknown } | undefined;
            const run = lake.streamQuery(actor, query, ipc.sink).then(
              () => ipc.finish(),
              (error: unknown) => {
                failure = { error };
                try {
                  ipc.finish(); // ends the output iteration below; its bytes are dropped
                } catch {}
              },
            );
            for await (const bytes of ipc.output) {
              if (failure) break;
              await write(bytes);
            }
            await run;
            if (failure) throw failure.error;
          };
    const contentType = format === 'csv' ? `${MEDIA_TYPES.csv}; charset=utf-8` : MEDIA_TYPES.arrow;
    return streamedResponse(produce, { headers: { 'content-type': contentType } }, (error) =>
      log('airlock http: query failed after its result started streaming', error),
    );
  });

  app.get('/v1/caps', async (c) => {
    const actor = c.get('actor');
    return jsonResponse(await lake.queryCaps(actor, { person: actor.person }));
  });

  app.get('/v1/branches', async () => jsonResponse(await lake.catalog.listBranches()));

  app.get('/v1/tables', async (c) => jsonResponse(await lake.catalog.listTables(refOf(c.req.query('ref')))));

  app.get('/v1/tables/:table', async (c) => {
    const name = c.req.param('table');
    const ref = refOf(c.req.query('ref'));
    const { id, version } = await lake.catalog.getTable(ref, name);
    return jsonResponse(tableView(name, ref, id, version));
  });

  app.get('/v1/log', async (c) => {
    const commits = await lake.catalog.history(refOf(c.req.query('ref')), limitOf(c.req.query('limit')));
    return jsonResponse(commits.map(logEntryView));
  });

  app.get('/v1/diff', async (c) => {
    const from = c.req.query('from');
    const to = c.req.query('to');
    if (!from || !to) throw invalid('GET /v1/diff needs both ?from=<ref>&to=<ref>');
    return jsonResponse(await lake.catalog.diff(from, to));
  });

  const keys = new IdempotencyKeys(lake.stores.store, lake.stores.objects, {
    ...(options.idempotencyTtlMs ? { ttlMs: options.idempotencyTtlMs } : {}),
  });
  registerMutationRoutes(app, {
    lake,
    keys,
    maxUploadBytes: options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES,
    pipelines: options.pipelines ?? {},
  });
  registerApprovalRoutes(app, { approvals: options.approvals, keys });

  return app;
}

/** The Hono app built by {@link createHttpApp}. */
export type HttpApp = ReturnType<typeof createHttpApp>;

/** Reads and drops the rest of a refused request body (bounded), so its sender sees the 413: see {@link drain}. */
async function discardBody(request: Request): Promise<void> {
  const body = request.body;
  if (body && !body.locked) await drain(body.getReader());
}

/** `?ref=` with the CLI's default. */
function refOf(ref: string | undefined): string {
  return ref === undefined ? 'main' : ref;
}

const MAX_LOG_LIMIT = 1000;

/** `?limit=` of the log: 1…1000, default 20 as `airlock log`. */
function limitOf(text: string | undefined): number {
  if (text === undefined) return 20;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_LOG_LIMIT) {
    throw invalid(`'limit' must be a whole number from 1 to ${MAX_LOG_LIMIT}, got '${text}'`);
  }
  return n;
}
