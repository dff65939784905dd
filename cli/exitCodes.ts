import { type ErrorCode, isAirlockError } from '../shared/errors/index.js';

/** The CLI's exit codes (public contract). */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  conflict: 3,
  denied: 4,
  awaitingApproval: 5,
} as const;

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  USAGE: EXIT.usage,
  CONFLICT: EXIT.conflict,
  DENIED: EXIT.denied,
  APPROVAL_REQUIRED: EXIT.awaitingApproval,
};

/** The one place mapping error codes to exit codes. */
export function exitCodeOf(error: unknown): number {
  return isAirlockError(error) ? (BY_CODE[error.code] ?? EXIT.error) : EXIT.error;
}

/** The error body printed under `--json`: `{"error":{"code","message"}}`. */
export function errorBody(error: unknown): {
  error: { code: string; message: string; details?: Record<string, unknown> };
} {
  if (isAirlockError(error)) return { error: error.toJSON() };
  const message = error instanceof Error ? error.message : String(error);
  return { error: { code: 'INTERNAL', message } };
}
