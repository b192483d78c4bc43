/**
 * Why events were lost or not counted. Every loss is reported once through `onError`; nothing is
 * dropped silently.
 *
 * - `rejected`: the API refused the batch with a non-retryable status (400, 401, 403, 413, ...), a
 *   429 `quota_exceeded` (the monthly events are used up), or a 429/503 whose `Retry-After` is
 *   longer than the SDK ever waits (`RETRY_AFTER_MAX_MS`).
 * - `skipped`: the API accepted the batch but skipped `eventCount` invalid events.
 * - `retries_exhausted`: 429 / 5xx / network errors persisted through `maxRetries` retries.
 * - `queue_overflow`: the buffer hit `maxQueueSize` and the oldest events were dropped.
 */
export type SegOpsErrorKind = 'rejected' | 'skipped' | 'retries_exhausted' | 'queue_overflow';

export interface SegOpsErrorInit {
  eventCount: number;
  status?: number;
  code?: string;
  details?: unknown;
}

export class SegOpsError extends Error {
  override readonly name = 'SegOpsError';
  readonly kind: SegOpsErrorKind;
  /** How many events this error concerns (lost, skipped or dropped). */
  readonly eventCount: number;
  /** HTTP status of the last response, when there was one. */
  readonly status: number | undefined;
  /** `error.code` of the API's error body, when there was one. */
  readonly code: string | undefined;
  /** `error.details` of the API's error body, when there was one. */
  readonly details: unknown;

  constructor(kind: SegOpsErrorKind, message: string, init: SegOpsErrorInit) {
    super(message);
    this.kind = kind;
    this.eventCount = init.eventCount;
    this.status = init.status;
    this.code = init.code;
    this.details = init.details;
  }
}

/** Thrown by `track`/`identify` and returned as a rejection by `flush` after `shutdown()`. */
export class SegOpsClosedError extends Error {
  override readonly name = 'SegOpsClosedError';

  constructor(method: string) {
    super(`SegOpsClient.${method}() called after shutdown()`);
  }
}
