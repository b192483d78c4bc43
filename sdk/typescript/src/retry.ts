/** Retry policy: which failures are transient and how long to wait before the next attempt. */

export const RETRY_BASE_DELAY_MS = 500;
export const RETRY_MAX_DELAY_MS = 30_000;
/** Longest `Retry-After` we wait for, so that `shutdown()` cannot hang for hours on one header. */
export const RETRY_AFTER_MAX_MS = 60_000;

/** 408, 429 and 5xx are transient; every other 4xx means the request itself is wrong. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** `Retry-After` as delay-seconds or an HTTP-date, in milliseconds from `nowMs`; undefined if absent/invalid. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, RETRY_AFTER_MAX_MS);
  // Every HTTP-date form starts with a day name; anything else is not a Retry-After value.
  const at = /^[A-Za-z]/.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(at - nowMs, 0), RETRY_AFTER_MAX_MS);
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

/** The server's `Retry-After` wins over our own backoff when it sent one. */
export function retryDelayMs(attempt: number, retryAfterMs: number | undefined, random?: () => number): number {
  return retryAfterMs ?? backoffDelayMs(attempt, random);
}
