import type { Actor } from '../catalog/index.js';
import { errorResponse, httpStatusOf } from './httpErrors.js';
import { type IdempotencyKeys, REPLAYED_HEADER } from './idempotency.js';

/** What {@link applyOnce} needs of a request. */
export interface OnceRequest {
  actor: Actor;
  method: string;
  url: string;
  /** The `Idempotency-Key` header, if the client sent one. */
  key: string | undefined;
  /** SHA-256 of the request body (a retry must send the same bytes). */
  bodyHash: string;
}

/**
 * Applies a mutation at most once per `Idempotency-Key` (the HTTP API's protocol): without
 * a key it simply applies; with one, the first request claims the key (bound to method,
 * path with query and body hash), its answer is stored, and a retry gets that answer back
 * byte for byte with `Idempotent-Replayed: true`. 4xx answers are kept like successes;
 * a 5xx (or a thrown server error) releases the key so the client may retry.
 */
export async function applyOnce(
  keys: IdempotencyKeys,
  request: OnceRequest,
  apply: () => Promise<Response>,
): Promise<Response> {
  if (request.key === undefined) return apply();
  const url = new URL(request.url);
  const claim = await keys.claim(request.actor, request.key, {
    method: request.method,
    target: `${url.pathname}${url.search}`,
    bodyHash: request.bodyHash,
  });
  if (claim.kind === 'replay') {
    const { status, contentType, body } = claim.response;
    return new Response(body, { status, headers: { 'content-type': contentType, [REPLAYED_HEADER]: 'true' } });
  }
  let response: Response;
  try {
    response = await apply();
  } catch (error) {
    if (httpStatusOf(error) >= 500) {
      await claim.release();
      throw error;
    }
    response = errorResponse(error);
  }
  if (response.status >= 500) {
    await claim.release();
    return response;
  }
  const body = await response.text();
  const contentType = response.headers.get('content-type') ?? 'application/json; charset=utf-8';
  await claim.complete({ status: response.status, contentType, body });
  return new Response(body, { status: response.status, headers: response.headers });
}
