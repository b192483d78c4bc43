/** Retry policy: which failures are transient and how long to wait before the next attempt. */

export const RETRY_BASE_DELAY_MS = 500;
export const RETRY_MAX_DELAY_MS = 30_000;
/**
 * Longest `Retry-After` we wait for, so that `shutdown()` cannot hang for hours on one header. A 429
 * or 503 asking for longer is not retried at all (see `isRetryable`).
 */
export const RETRY_AFTER_MAX_MS = 60_000;

/** 408, 429 and 5xx are transient; every other 4xx means the request itself is wrong. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * `isRetryableStatus`, except where no retry within the SDK's bounds can succeed: a 429
 * `quota_exceeded` (the tenant's monthly events are used up until the month ends), or a 429/503
 * whose `Retry-After` is longer than `RETRY_AFTER_MAX_MS`. Those are reported at once instead of
 * holding `flush()`/`shutdown()` (and the process's exit) through every retry.
 */
export function isRetryable(status: number, code: string | undefined, retryAfterMs: number | undefined): boolean {
  if (!isRetryableStatus(status)) return false;
  if (status === 429 && code === 'quota_exceeded') return false;
  return !((status === 429 || status === 503) && retryAfterMs !== undefined && retryAfterMs > RETRY_AFTER_MAX_MS);
}

/**
 * `Retry-After` as delay-seconds or an HTTP-date, in milliseconds from `nowMs`; undefined if
 * absent/invalid. Not capped: `retryDelayMs` caps the wait at `RETRY_AFTER_MAX_MS`.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Every HTTP-date form starts with a day name; anything else is not a Retry-After value.
  const at = /^[A-Za-z]/.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  if (Number.isNaN(at)) return undefined;
  return Math.max(at - nowMs, 0);
}

/**
 * Exponential backoff with "equal jitter": attempt n waits between half and all of
 * min(cap, base * 2^n), so clients that failed together do not retry together, yet each still
 * backs off by at least half the exponential step.
 */
export function backoffDelayMs(attempt: number, random: () => number = Math.random): number {
  const step = Math.min(RETRY_MAX_DELAY_MS, RETRY_BASE_DELAY_MS * 2 ** attempt);
  return step / 2 + random() * (step / 2);
}

/** The server's `Retry-After` (at most `RETRY_AFTER_MAX_MS`) wins over our own backoff when it sent one. */
export function retryDelayMs(attempt: number, retryAfterMs: number | undefined, random?: () => number): number {
  return retryAfterMs === undefined ? backoffDelayMs(attempt, random) : Math.min(retryAfterMs, RETRY_AFTER_MAX_MS);
}
