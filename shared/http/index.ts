/**
 * The HTTP API: one Hono app over a lake (`createHttpApp`), served on Node by `listen`
 * (`airlock serve`). Errors map to statuses in one place (`httpStatusOf`).
 */
export { createHttpApp, DEFAULT_MAX_BODY_BYTES } from './createHttpApp.js';
export { errorBodyOf, errorResponse, httpStatusOf, REQUEST_BYTES_CAP } from './httpErrors.js';
export {
  DEFAULT_CLAIM_LEASE_MS,
  DEFAULT_KEY_TTL_MS,
  IdempotencyKeys,
  KEY_REUSED,
  REPLAYED_HEADER,
  requestHash,
} from './idempotency.js';
export { jsonResponse, jsonText } from './jsonResponse.js';
export { listen } from './listen.js';
export { OPENAPI_DOCUMENT } from './openApiDocument.js';
export { MEDIA_TYPES, negotiateFormat, parseQueryBody } from './queryBody.js';
export { streamedResponse } from './streamedResponse.js';
export { DEFAULT_MAX_UPLOAD_BYTES } from './uploadBody.js';
export type { HttpApp, HttpAppOptions, HttpLake } from './createHttpApp.js';
export type { AwaitingApprovalBody, ErrorBody } from './httpErrors.js';
export type { Claim, RequestFingerprint, StoredResponse } from './idempotency.js';
export type { MutationLake, PipelineOptions, RunService } from './mutationRoutes.js';
export type { ListenOptions, RunningServer } from './listen.js';
export type { QueryBody, QueryFormat } from './queryBody.js';
export type { WriteChunk } from './streamedResponse.js';
