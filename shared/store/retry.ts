/**
 * The one retry layer of the AWS adapters: full-jitter exponential backoff with a bound.
 *
 * The SDK clients the adapters build are configured with `maxAttempts: 1`, so every retry
 * is decided here, where the adapter knows whether a request is safe to send again
 * (an idempotent `TransactWriteItems` with the same `ClientRequestToken`, a read, or a
 * conditional put whose outcome was first re-checked by reading the item back).
 */

/** How often and how patiently to retry. */
export interface RetryPolicy {
  /** Total attempts including the first (≥ 1). */
  maxAttempts: number;
  /** Base of the exponential backoff, in milliseconds. */
  baseDelayMs: number;
  /** Upper bound of one backoff delay, in milliseconds. */
  maxDelayMs: number;
}

/**
 * The default policy: 8 attempts, 25 ms base, 2 s cap. The expected total wait before
 * giving up is about 3 s, enough to ride out a throttling burst or a partition move.
 */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 8,
  baseDelayMs: 25,
  maxDelayMs: 2_000,
});

/** Waits `ms` milliseconds. Injected in tests to observe delays without waiting. */
export type Sleep = (ms: number) => Promise<void>;

/** The real clock. */
export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The delay before retry number `attempt` (1 = the first retry): "full jitter", a uniform
 * draw in `[0, min(maxDelayMs, baseDelayMs · 2^(attempt-1)))`. Full jitter spreads
 * competing clients apart, which is what resolves contention on a hot key (AWS
 * Architecture Blog, "Exponential Backoff And Jitter").
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/** Options of {@link withRetry}. */
export interface RetryOptions {
  policy?: RetryPolicy;
  /** Whether error `error` of attempt `attempt` (1-based) may be retried. */
  retryable: (error: unknown, attempt: number) => boolean;
  sleep?: Sleep;
  random?: () => number;
}

/** Thrown-through marker: the last error after the bound was reached, with the attempt count. */
export interface RetryExhausted {
  attempts: number;
  error: unknown;
}

/**
 * Runs `fn` until it succeeds, a non-retryable error occurs, or `policy.maxAttempts`
 * attempts failed; then rethrows the last error via `onGiveUp` (which may translate it).
 * `fn` receives the 1-based attempt number.
 *
 * @example
 * await withRetry((attempt) => client.send(cmd), { retryable: isThrottle });
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions,
  onGiveUp: (exhausted: RetryExhausted) => never = ({ error }) => {
    throw error;
  },
): Promise<T> {
  const policy = options.policy ?? DEFAULT_RETRY_POLICY;
  const sleep = options.sleep ?? realSleep;
  const maxAttempts = Math.max(1, Math.floor(policy.maxAttempts));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!options.retryable(error, attempt)) throw error;
      if (attempt >= maxAttempts) onGiveUp({ attempts: attempt, error });
      await sleep(backoffDelay(attempt, policy, options.random));
    }
  }
}

/**
 * How a failed AWS request may be handled.
 * - `throttled`: the service refused the request before doing anything; retry later.
 * - `conflict`: a concurrent transaction touched the same item; nothing was applied; retry.
 * - `ambiguous`: the request may or may not have been applied (timeout, 5xx, connection
 *   reset after sending). Only retry in a way that cannot apply it twice.
 * - `fatal`: anything else (validation, condition failure, missing table…).
 */
export type AwsFailureKind = 'throttled' | 'conflict' | 'ambiguous' | 'fatal';

const THROTTLE_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'Throttling',
  'RequestLimitExceeded',
  'SlowDown',
  'TooManyRequestsException',
]);

const CONFLICT_NAMES = new Set(['TransactionConflictException', 'TransactionInProgressException']);

const AMBIGUOUS_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalServerError',
  'InternalError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
]);

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

interface AwsLikeError {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** Classifies an error thrown by an AWS SDK v3 client (or by the network under it). */
export function classifyAwsError(error: unknown): AwsFailureKind {
  if (typeof error !== 'object' || error === null) return 'fatal';
  const e = error as AwsLikeError;
  const name = typeof e.name === 'string' ? e.name : '';
  if (THROTTLE_NAMES.has(name)) return 'throttled';
  if (CONFLICT_NAMES.has(name)) return 'conflict';
  if (AMBIGUOUS_NAMES.has(name)) return 'ambiguous';
  const status = e.$metadata?.httpStatusCode;
  if (status === 429) return 'throttled';
  if (typeof status === 'number' && status >= 500) return 'ambiguous';
  for (let cur: unknown = error, depth = 0; cur && depth < 4; depth++) {
    const code = (cur as AwsLikeError).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return 'ambiguous';
    const message = (cur as AwsLikeError).message;
    if (typeof message === 'string' && /socket hang up|ECONNRESET|EPIPE/i.test(message)) return 'ambiguous';
    cur = (cur as AwsLikeError).cause;
  }
  return 'fatal';
}
