/**
 * Stable error codes. Interfaces map them in one place each: the CLI to exit codes
 * (`cli/exitCodes.ts`), HTTP to statuses. Recognise errors by `code`, never by
 * `instanceof`, so errors crossing package or process boundaries still classify.
 */
export type ErrorCode =
  | 'CONFLICT'
  | 'DENIED'
  | 'APPROVAL_REQUIRED'
  | 'NOT_FOUND'
  | 'INVALID'
  | 'LIMIT_EXCEEDED'
  | 'USAGE'
  | 'INTERNAL';

/** Options accepted by every {@link AirlockError}: the ES2022 `cause` plus structured details. */
export interface AirlockErrorOptions extends ErrorOptions {
  /** Machine-readable facts about the failure (branch, expected vs actual head, tables…). */
  details?: Record<string, unknown>;
}

/**
 * The one base error of Airlock. Every failure a user can cause carries a stable `code`
 * and a message that says what was wrong and, where possible, how to fix it.
 *
 * @example
 * throw new AirlockError('NOT_FOUND', `unknown ref 'feature/x'`);
 */
export class AirlockError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: AirlockErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AirlockError';
    this.code = code;
    this.details = options.details ?? {};
  }

  /** The JSON error body used by the CLI (`--json`) and HTTP. */
  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return Object.keys(this.details).length > 0
      ? { code: this.code, message: this.message, details: this.details }
      : { code: this.code, message: this.message };
  }
}

/** True when `e` is an Airlock error (by shape, so it survives serialisation). */
export function isAirlockError(e: unknown): e is AirlockError {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as { code?: unknown }).code === 'string' &&
    (e as { name?: unknown }).name === 'AirlockError'
  );
}

function hasCode(code: ErrorCode) {
  return (e: unknown): e is AirlockError => isAirlockError(e) && e.code === code;
}

/** A concurrent change won, or a merge found overlapping changes. Retry or resolve. */
export const isConflict = hasCode('CONFLICT');
/** The actor may not do this. */
export const isDenied = hasCode('DENIED');
/** The action waits for a person's approval. */
export const isApprovalRequired = hasCode('APPROVAL_REQUIRED');
/** The named thing (ref, table, run, file…) does not exist. */
export const isNotFound = hasCode('NOT_FOUND');
/** The input is malformed or breaks a constraint. */
export const isInvalid = hasCode('INVALID');
/** A cap (rows, bytes, time, concurrency, budget) was hit. */
export const isLimitExceeded = hasCode('LIMIT_EXCEEDED');

/** Shorthand constructors, so call sites read as sentences. */
export const conflict = (message: string, details?: Record<string, unknown>, cause?: unknown) =>
  new AirlockError('CONFLICT', message, { details, cause });
export const denied = (message: string, details?: Record<string, unknown>) =>
  new AirlockError('DENIED', message, { details });
export const notFound = (message: string, details?: Record<string, unknown>) =>
  new AirlockError('NOT_FOUND', message, { details });
export const invalid = (message: string, details?: Record<string, unknown>, cause?: unknown) =>
  new AirlockError('INVALID', message, { details, cause });
export const limitExceeded = (message: string, details?: Record<string, unknown>) =>
  new AirlockError('LIMIT_EXCEEDED', message, { details });
