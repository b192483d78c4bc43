import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  backoffDelayMs,
  isRetryable,
  isRetryableStatus,
  parseRetryAfter,
  RETRY_AFTER_MAX_MS,
  RETRY_MAX_DELAY_MS,
  retryDelayMs,
} from '../src/retry.js';

test('only 408, 429 and 5xx are retryable', () => {
  assert.deepEqual(
    [400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504].filter(isRetryableStatus),
    [408, 429, 500, 502, 503, 504],
  );
});

test('backoff doubles per attempt, jitters within the upper half, and is capped', () => {
  assert.deepEqual(
    [0, 1, 2, 3].map((attempt) => backoffDelayMs(attempt, () => 0)),
    [250, 500, 1000, 2000],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((attempt) => backoffDelayMs(attempt, () => 1)),
    [500, 1000, 2000, 4000],
  );
  assert.equal(backoffDelayMs(20, () => 1), RETRY_MAX_DELAY_MS);
  assert.equal(backoffDelayMs(20, () => 0), RETRY_MAX_DELAY_MS / 2);
});

test('Retry-After accepts delay-seconds and HTTP-dates, capped, and ignores junk', () => {
  const now = Date.parse('2026-04-25T14:32:00Z');
  assert.equal(parseRetryAfter('7', now), 7000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Sat, 25 Apr 2026 14:32:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Sat, 25 Apr 2026 14:31:00 GMT', now), 0);
  assert.equal(parseRetryAfter('86400', now), 86_400_000); // not capped here: see retryDelayMs and isRetryable
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter('-5', now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

test("the server's Retry-After wins over the client's backoff, up to the cap", () => {
  assert.equal(retryDelayMs(3, 1000, () => 1), 1000);
  assert.equal(retryDelayMs(3, undefined, () => 1), 4000);
  assert.equal(retryDelayMs(0, 86_400_000, () => 1), RETRY_AFTER_MAX_MS);
});

test('a used-up quota and a 429 or 503 asking for more than the cap are not retried', () => {
  assert.equal(isRetryable(429, 'quota_exceeded', undefined), false);
  assert.equal(isRetryable(429, 'quota_exceeded', 1000), false);
  assert.equal(isRetryable(429, 'rate_limited', 1000), true);
  assert.equal(isRetryable(429, 'rate_limited', RETRY_AFTER_MAX_MS), true);
  assert.equal(isRetryable(429, 'rate_limited', RETRY_AFTER_MAX_MS + 1000), false);
  assert.equal(isRetryable(503, 'service_unavailable', 86_400_000), false);
  assert.equal(isRetryable(503, 'service_unavailable', undefined), true);
  // Retry-After is only meaningful on 429/503: elsewhere it is waited for, capped
  assert.equal(isRetryable(500, undefined, 86_400_000), true);
  assert.equal(isRetryable(400, 'quota_exceeded', undefined), false);
});
