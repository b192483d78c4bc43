/** One POST of a batch to the ingestion API, classified into what the client should do next. */
import { isRetryable, isRetryableStatus, parseRetryAfter, RETRY_AFTER_MAX_MS } from './retry.js';

export const BATCH_PATH = '/api/ingestion/track/batch/';

export type DeliveryOutcome =
  | { type: 'accepted'; queued: number; skipped: number }
  | { type: 'retry'; reason: string; status?: number; retryAfterMs?: number; code?: string; details?: unknown }
  | { type: 'too_large'; status: number; code?: string; message: string; details?: unknown }
  | { type: 'rejected'; status: number; code?: string; message: string; details?: unknown };

export interface PostOptions {
  url: string;
  apiKey: string;
  body: string;
  timeoutMs: number;
  keepalive: boolean;
}

interface ApiErrorBody {
  error?: { code?: unknown; message?: unknown; details?: unknown };
}

export async function postBatch(options: PostOptions): Promise<DeliveryOutcome> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs);
  try {
    const response = await fetch(options.url, {
      method: 'POST',
      headers: { Authorization: `ApiKey ${options.apiKey}`, 'Content-Type': 'application/json' },
      body: options.body,
      keepalive: options.keepalive,
      // The key is the credential: cookies never ride along, so a page on another origin needs no
      // credentialed CORS (the API never answers `Access-Control-Allow-Credentials`).
      credentials: 'omit',
      signal: abort.signal,
    });
    const text = await response.text();
    return classify(response.status, response.headers.get('Retry-After'), text);
  } catch (error) {
    const reason = abort.signal.aborted ? `no response within ${options.timeoutMs} ms` : describe(error);
    return { type: 'retry', reason };
  } finally {
    clearTimeout(timer);
  }
}

function classify(status: number, retryAfter: string | null, text: string): DeliveryOutcome {
  const json = parseJson(text);
  if (status >= 200 && status < 300) {
    const body = (json ?? {}) as { queued?: unknown; skipped?: unknown };
    return {
      type: 'accepted',
      queued: typeof body.queued === 'number' ? body.queued : 0,
      skipped: typeof body.skipped === 'number' ? body.skipped : 0,
    };
  }
  const error = (json as ApiErrorBody | undefined)?.error;
  const code = typeof error?.code === 'string' ? error.code : undefined;
  let message = typeof error?.message === 'string' ? error.message : `HTTP ${status}`;
  const retryAfterMs = isRetryableStatus(status) ? parseRetryAfter(retryAfter, Date.now()) : undefined;
  if (isRetryable(status, code, retryAfterMs)) {
    // A retried failure keeps the API's code too: when retries run out, `rate_limited` means slow down.
    return {
      type: 'retry',
      reason: message,
      status,
      details: error?.details,
      ...(code === undefined ? {} : { code }),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
  }
  // Also a 429 `quota_exceeded` (the month's events are used up) and a 429/503 asking to wait longer
  // than the SDK ever waits: rejected at once, with the API's code, and the batch dropped.
  if (retryAfterMs !== undefined && retryAfterMs > RETRY_AFTER_MAX_MS) {
    message += ` (Retry-After ${Math.round(retryAfterMs / 1000)} s is beyond the SDK's ${RETRY_AFTER_MAX_MS / 1000} s limit)`;
  }
  const detail = { status, message, details: error?.details, ...(code === undefined ? {} : { code }) };
  return status === 413 ? { type: 'too_large', ...detail } : { type: 'rejected', ...detail };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
  }
  return String(error);
}
