import type { Context, Hono } from 'hono';
import type { ApprovalFilter, Approvals, ApprovalStatus } from '../approvals/index.js';
import type { Actor } from '../catalog/index.js';
import { invalid, notFound } from '../errors/index.js';
import { applyOnce } from './applyOnce.js';
import { type IdempotencyKeys, sha256Hex } from './idempotency.js';
import { jsonResponse } from './jsonResponse.js';
import { parseJsonObject } from './mutationBodies.js';

type Env = { Variables: { actor: Actor } };
type Ctx = Context<Env>;

const STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'executed', 'rejected', 'void', 'failed'];

/** What {@link registerApprovalRoutes} needs. */
export interface ApprovalRouteOptions {
  /** The lake's approvals, wired as the interface wants them (who may approve, executors); absent: NOT_FOUND. */
  approvals: Approvals | undefined;
  keys: IdempotencyKeys;
}

/**
 * The approval routes, mirroring `airlock approvals` (the same JSON as `--json`):
 *
 * - `GET /v1/approvals?status=` — newest first;
 * - `GET /v1/approvals/:id`;
 * - `POST /v1/approvals/:id/approve` — executes exactly once (a replay answers the stored result);
 * - `POST /v1/approvals/:id/reject` `{reason}`.
 *
 * The approver is the request's actor (its bearer token): an agent token is refused (403),
 * as is the requester's own person. `Idempotency-Key` is honoured like on every mutation.
 */
export function registerApprovalRoutes(app: Hono<Env>, options: ApprovalRouteOptions): void {
  const { keys } = options;
  const service = (): Approvals => {
    if (!options.approvals) throw notFound('this server does not serve approvals; use `airlock approvals`');
    return options.approvals;
  };

  /** Applies once per `Idempotency-Key` (see {@link applyOnce}). */
  function once(c: Ctx, bodyHash: string, apply: () => Promise<Response>): Promise<Response> {
    const request = { actor: c.get('actor'), method: c.req.method, url: c.req.url, bodyHash };
    return applyOnce(keys, { ...request, key: c.req.header('idempotency-key') }, apply);
  }

  async function jsonBody(c: Ctx, fields: readonly string[], example: string) {
    const text = await c.req.text();
    if (text !== '' && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
      throw invalid(`${c.req.method} ${c.req.path} takes a JSON body: send 'Content-Type: application/json'`);
    }
    return { body: parseJsonObject(text, fields, example), hash: sha256Hex(text) };
  }

  app.get('/v1/approvals', async (c) => {
    const status = c.req.query('status');
    if (status !== undefined && !STATUSES.includes(status as ApprovalStatus)) {
      throw invalid(`unknown status '${status}' (one of ${STATUSES.join(', ')})`);
    }
    const filter: ApprovalFilter = status ? { status: status as ApprovalStatus } : {};
    return jsonResponse(await service().list(filter));
  });

  app.get('/v1/approvals/:id', async (c) => jsonResponse(await service().get(c.req.param('id'))));

  app.post('/v1/approvals/:id/approve', async (c) => {
    const { hash } = await jsonBody(c, [], '{}');
    return once(c, hash, async () => jsonResponse(await service().approve(c.get('actor'), c.req.param('id'))));
  });

  app.post('/v1/approvals/:id/reject', async (c) => {
    const { body, hash } = await jsonBody(c, ['reason'], '{"reason":"not before the review"}');
    const reason = body.reason;
    if (typeof reason !== 'string' || reason.trim() === '') throw invalid("'reason' is required: say why");
    return once(c, hash, async () => jsonResponse(await service().reject(c.get('actor'), c.req.param('id'), reason)));
  });
}
