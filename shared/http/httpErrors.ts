import { type ErrorCode, isAirlockError } from '../errors/index.js';
import { KEY_REUSED } from './idempotency.js';
import { jsonResponse } from './jsonResponse.js';

/** The error body of every failed request: `{"error":{"code","message","details"?}}` (as the CLI's `--json`). */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/** The body of an action that waits for a person's approval (HTTP 202), as the CLI prints it. */
export interface AwaitingApprovalBody {
  status: 'awaiting_approval';
  approvalId: string;
  message: string;
  [detail: string]: unknown;
}

const STATUS: Record<ErrorCode, number> = {
  INVALID: 400,
  USAGE: 400,
  DENIED: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  // Refined in httpStatusOf: 413 for a request body over the size limit.
  LIMIT_EXCEEDED: 429,
  // The action was accepted and waits for a person: not a failure of the request.
  APPROVAL_REQUIRED: 202,
  INTERNAL: 500,
};

/** The `details.cap` of the LIMIT_EXCEEDED error raised for an oversize request body. */
export const REQUEST_BYTES_CAP = 'maxRequestBytes';

/**
 * The one place mapping error codes to HTTP statuses (the CLI's counterpart is
 * `cli/exitCodes.ts`). `LIMIT_EXCEEDED` is 413 when the request body itself was too large
 * (`details.cap === 'maxRequestBytes'`) and 429 for every query cap (rows, bytes scanned,
 * time, concurrency, daily budget): the request was well-formed, a quota said no.
 * `INVALID` is 422 when an `Idempotency-Key` was reused for a different request.
 * Anything that is not an {@link AirlockError} is a 500.
 */
export function httpStatusOf(error: unknown): number {
  if (!isAirlockError(error)) return 500;
  // No or bad credentials (bearer token missing, malformed, unknown, expired, revoked).
  if (error.code === 'DENIED' && error.details.authentication === true) return 401;
  if (error.code === 'LIMIT_EXCEEDED' && error.details.cap === REQUEST_BYTES_CAP) return 413;
  if (error.code === 'INVALID' && error.details.reason === KEY_REUSED) return 422;
  return STATUS[error.code] ?? 500;
}

/**
 * The body of a failed request. Airlock errors keep their message and details (they are
 * written for users); any other error is reported as INTERNAL without its message, which
 * may hold paths or internals: the server logs it instead. APPROVAL_REQUIRED is not a
 * failure: its body is `{"status":"awaiting_approval","approvalId",…}`, as `airlock merge`
 * and `airlock run` print it (status 202).
 */
export function errorBodyOf(error: unknown): ErrorBody | AwaitingApprovalBody {
  if (isAirlockError(error) && error.code === 'APPROVAL_REQUIRED') {
    return {
      ...error.details,
      status: 'awaiting_approval',
      approvalId: String(error.details.approvalId ?? ''),
      message: error.message,
    };
  }
  if (isAirlockError(error)) return { error: error.toJSON() };
  return { error: { code: 'INTERNAL', message: 'internal error; the server log has the details' } };
}

/** The response for a failed request: {@link httpStatusOf} and {@link errorBodyOf} together. */
export function errorResponse(error: unknown): Response {
  return jsonResponse(errorBodyOf(error), httpStatusOf(error));
}
