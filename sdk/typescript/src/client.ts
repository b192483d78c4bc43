import { SegOpsClosedError, SegOpsError } from './errors.js';
import { attachLifecycle } from './lifecycle.js';
import { newMessageId } from './message-id.js';
import { retryDelayMs } from './retry.js';
import { BATCH_PATH, postBatch } from './transport.js';

/** The API accepts at most this many events per batch request. */
export const MAX_BATCH_EVENTS = 500;
/**
 * Browsers cap the bodies of all in-flight `keepalive` requests at 64 KiB; batches sent while the
 * page is going away are cut to stay under it.
 */
export const KEEPALIVE_BODY_BUDGET_BYTES = 60_000;

export interface SegOpsClientOptions {
  /** Base URL of the SegOps API, e.g. `https://api.segops.ai`. */
  apiUrl: string;
  /**
   * An API key with the member role: a secret key (`sk_live_...`) on servers, a publishable key
   * (`pk_live_...`, ingestion only, from the origins it lists) in web pages.
   */
  apiKey: string;
  /** Longest time an event waits in the buffer before it is sent. Default 5000. */
  flushIntervalMs?: number;
  /** Buffered events that trigger an immediate send. Default 20. */
  flushAt?: number;
  /** Buffer bound; when full, the oldest events are dropped (and reported). Default 10000. */
  maxQueueSize?: number;
  /** Retries of a batch after 429/5xx/network errors before it is given up. Default 5. */
  maxRetries?: number;
  /** Per-request timeout. Default 10000. */
  timeoutMs?: number;
  /** Called for every loss (see `SegOpsError.kind`). Default: `console.warn`. */
  onError?: (error: SegOpsError) => void;
}

/**
 * JSON-serialisable properties. `any` rather than `unknown` values so that objects typed by an
 * `interface` (which has no implicit index signature) are accepted too.
 */
export type Properties = Record<string, any>;

export interface TrackParams {
  userId: string;
  /** Snake-case event name, e.g. `page_viewed`. */
  eventType: string;
  payload?: Properties;
  /** When it happened. Default: the time of the `track` call. */
  occurredAt?: Date | string;
  /** Idempotency key. Default: a random UUID generated at the time of the `track` call. */
  messageId?: string;
}

export interface IdentifyParams {
  userId: string;
  /** User properties, usable by `user_property` segment conditions. */
  traits: Properties;
  occurredAt?: Date | string;
  messageId?: string;
}

interface WireEvent {
  user_id: string;
  event_type: string;
  occurred_at: string;
  message_id: string;
  payload?: Properties;
}

/** An event serialised at call time: later mutation of the caller's payload changes nothing. */
interface QueuedEvent {
  seq: number;
  json: string;
  bytes: number;
}

interface FlushWaiter {
  /** Resolve once every event with `seq <= target` has been sent or given up. */
  target: number;
  resolve: () => void;
}

type ResolvedOptions = Required<Omit<SegOpsClientOptions, 'onError'>> & {
  onError: (error: SegOpsError) => void;
};

const utf8 = new TextEncoder();

export class SegOpsClient {
  readonly #options: ResolvedOptions;
  readonly #batchUrl: string;
  readonly #queue: QueuedEvent[] = [];
  #inFlight: QueuedEvent[] = [];
  #lastSeq = 0;
  #waiters: FlushWaiter[] = [];
  #sending = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #dropped = 0;
  #droppedSinceWarning = 0;
  #keepalive = false;
  #shutdown: Promise<void> | undefined;
  readonly #detachLifecycle: () => void;

  constructor(options: SegOpsClientOptions) {
    this.#options = resolveOptions(options);
    this.#batchUrl = this.#options.apiUrl.replace(/\/+$/, '') + BATCH_PATH;
    this.#detachLifecycle = attachLifecycle({
      onIdleExit: () => {
        if (this.#shutdown === undefined && this.#queue.length > 0) void this.#flushQueued();
      },
      onPageHidden: () => {
        if (this.#queue.length === 0) return;
        this.#keepalive = true;
        void this.#flushQueued();
      },
    });
  }

  /** Events buffered and not yet handed to a request. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Events dropped so far because the buffer was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Buffers one event; `occurredAt` and the `message_id` are fixed now, so retries never double-count. */
  track(params: TrackParams): void {
    this.#assertOpen('track');
    const payload = params.payload === undefined ? undefined : requireJsonObject(params.payload, 'payload');
    this.#enqueue(serialiseEvent(params.userId, params.eventType, params, payload));
  }

  /** Sets user traits: a `context_identified` event whose payload is the traits. */
  identify(params: IdentifyParams): void {
    this.#assertOpen('identify');
    const traits = requireJsonObject(params.traits, 'traits');
    this.#enqueue(serialiseEvent(params.userId, 'context_identified', params, traits));
  }

  /**
   * Sends everything buffered so far. Settles once each of those events has been accepted by the
   * API or given up (and reported through `onError`); never rejects because of delivery failures.
   */
  flush(): Promise<void> {
    if (this.#shutdown !== undefined) return Promise.reject(new SegOpsClosedError('flush'));
    return this.#flushQueued();
  }

  /**
   * Stops the timer, detaches lifecycle hooks and flushes. Afterwards `track`/`identify` throw and
   * `flush` rejects; calling `shutdown` again returns the same promise.
   */
  shutdown(): Promise<void> {
    if (this.#shutdown === undefined) {
      this.#clearTimer();
      this.#detachLifecycle();
      this.#shutdown = this.#flushQueued();
    }
    return this.#shutdown;
  }

  #assertOpen(method: string): void {
    if (this.#shutdown !== undefined) throw new SegOpsClosedError(method);
  }

  #enqueue(json: string): void {
    if (this.#queue.length >= this.#options.maxQueueSize) this.#dropOldest();
    this.#lastSeq += 1;
    this.#queue.push({ seq: this.#lastSeq, json, bytes: utf8.encode(json).length });
    if (this.#queue.length >= this.#options.flushAt) void this.#pump();
    else this.#armTimer();
  }

  #dropOldest(): void {
    this.#queue.shift();
    this.#dropped += 1;
    this.#droppedSinceWarning += 1;
    // One warning per synchronous burst of drops, carrying its count, instead of one per event.
    if (this.#droppedSinceWarning === 1) queueMicrotask(() => this.#warnDropped());
  }

  #warnDropped(): void {
    const count = this.#droppedSinceWarning;
    this.#droppedSinceWarning = 0;
    const message =
      `SegOps buffer full (maxQueueSize ${this.#options.maxQueueSize}): dropped the ${count} oldest ` +
      `event(s), ${this.#dropped} in total`;
    this.#report(new SegOpsError('queue_overflow', message, { eventCount: count }));
  }

  #armTimer(): void {
    if (this.#timer !== undefined || this.#shutdown !== undefined || this.#queue.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#flushQueued();
    }, this.#options.flushIntervalMs);
    // Node: a pending flush must not keep the process alive; `beforeExit` flushes instead.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #flushQueued(): Promise<void> {
    const target = this.#lastSeq;
    if (target < this.#firstUnsettledSeq()) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.push({ target, resolve });
      void this.#pump();
    });
  }

  #firstUnsettledSeq(): number {
    return this.#inFlight[0]?.seq ?? this.#queue[0]?.seq ?? Number.POSITIVE_INFINITY;
  }

  #resolveSettledWaiters(): void {
    const firstUnsettled = this.#firstUnsettledSeq();
    const settled = this.#waiters.filter((w) => w.target < firstUnsettled);
    this.#waiters = this.#waiters.filter((w) => w.target >= firstUnsettled);
    for (const waiter of settled) waiter.resolve();
  }

  /** The single sender: one batch in flight at a time, in buffer order. */
  async #pump(): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    try {
      while (this.#shouldSend()) {
        this.#inFlight = this.#takeBatch();
        if (this.#queue.length === 0) this.#clearTimer();
        await this.#deliver(this.#inFlight, this.#keepalive);
        this.#inFlight = [];
        this.#resolveSettledWaiters();
      }
    } finally {
      this.#sending = false;
      this.#inFlight = [];
      this.#keepalive = false;
      this.#resolveSettledWaiters();
      this.#armTimer();
    }
  }

  #shouldSend(): boolean {
    const head = this.#queue[0];
    if (head === undefined) return false;
    return (
      this.#queue.length >= this.#options.flushAt ||
      this.#shutdown !== undefined ||
      this.#keepalive ||
      this.#waiters.some((w) => w.target >= head.seq)
    );
  }

  #takeBatch(): QueuedEvent[] {
    const budget = this.#keepalive ? KEEPALIVE_BODY_BUDGET_BYTES : Number.POSITIVE_INFINITY;
    let count = 0;
    let bytes = 0;
    for (const event of this.#queue) {
      if (count === MAX_BATCH_EVENTS || (count > 0 && bytes + event.bytes + 1 > budget)) break;
      bytes += event.bytes + 1;
      count += 1;
    }
    return this.#queue.splice(0, count);
  }

  async #deliver(batch: QueuedEvent[], keepalive: boolean): Promise<void> {
    const body = `{"events":[${batch.map((e) => e.json).join(',')}]}`;
    for (let attempt = 0; ; attempt += 1) {
      const outcome = await postBatch({
        url: this.#batchUrl,
        apiKey: this.#options.apiKey,
        body,
        timeoutMs: this.#options.timeoutMs,
        keepalive: keepalive && utf8.encode(body).length <= KEEPALIVE_BODY_BUDGET_BYTES,
      });
      switch (outcome.type) {
        case 'accepted':
          if (outcome.skipped > 0) {
            const message = `SegOps API skipped ${outcome.skipped} invalid event(s) of a batch of ${batch.length}`;
            this.#report(new SegOpsError('skipped', message, { eventCount: outcome.skipped, status: 202 }));
          }
          return;
        case 'too_large':
          if (batch.length > 1) {
            // The body exceeded the server's limit: halve it until each part fits.
            const half = Math.ceil(batch.length / 2);
            await this.#deliver(batch.slice(0, half), keepalive);
            await this.#deliver(batch.slice(half), keepalive);
            return;
          }
          this.#reportRejected(outcome, batch.length);
          return;
        case 'rejected':
          this.#reportRejected(outcome, batch.length);
          return;
        case 'retry':
          if (attempt >= this.#options.maxRetries) {
            const message =
              `SegOps gave up on ${batch.length} event(s) after ${attempt + 1} attempt(s): ` + outcome.reason;
            this.#report(
              new SegOpsError('retries_exhausted', message, {
                eventCount: batch.length,
                details: outcome.details,
                ...(outcome.status === undefined ? {} : { status: outcome.status }),
                ...(outcome.code === undefined ? {} : { code: outcome.code }),
              }),
            );
            return;
          }
          await sleep(retryDelayMs(attempt, outcome.retryAfterMs));
      }
    }
  }

  #reportRejected(
    outcome: { status: number; code?: string; message: string; details?: unknown },
    eventCount: number,
  ): void {
    const message = `SegOps API rejected ${eventCount} event(s) with HTTP ${outcome.status}: ${outcome.message}`;
    this.#report(
      new SegOpsError('rejected', message, {
        eventCount,
        status: outcome.status,
        details: outcome.details,
        ...(outcome.code === undefined ? {} : { code: outcome.code }),
      }),
    );
  }

  #report(error: SegOpsError): void {
    try {
      this.#options.onError(error);
    } catch {
      // A throwing callback must not stop delivery of the remaining events.
    }
  }
}

function resolveOptions(options: SegOpsClientOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('SegOpsClient options are required');
  const apiUrl = requireString(options.apiUrl, 'apiUrl');
  if (!isHttpUrl(apiUrl)) throw new TypeError(`apiUrl must be an http(s) URL, got ${JSON.stringify(apiUrl)}`);
  return {
    apiUrl,
    apiKey: requireString(options.apiKey, 'apiKey'),
    flushIntervalMs: positive(options.flushIntervalMs, 'flushIntervalMs', 5000),
    flushAt: positiveInteger(options.flushAt, 'flushAt', 20),
    maxQueueSize: positiveInteger(options.maxQueueSize, 'maxQueueSize', 10_000),
    maxRetries: nonNegativeInteger(options.maxRetries, 'maxRetries', 5),
    timeoutMs: positive(options.timeoutMs, 'timeoutMs', 10_000),
    onError: options.onError ?? ((error) => console.warn(`[segops] ${error.message}`)),
  };
}

function isHttpUrl(value: string): boolean {
  try {
    const protocol = new URL(value).protocol;
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

function requireString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${name} must be a non-empty string`);
  return value;
}

function serialiseEvent(
  userId: string,
  eventType: string,
  params: { occurredAt?: Date | string; messageId?: string },
  payload: Properties | undefined,
): string {
  const event: WireEvent = {
    user_id: requireString(userId, 'userId'),
    event_type: requireString(eventType, 'eventType'),
    occurred_at: timestamp(params.occurredAt),
    message_id: params.messageId === undefined ? newMessageId() : requireString(params.messageId, 'messageId'),
  };
  if (payload !== undefined) event.payload = payload;
  return JSON.stringify(event);
}

/**
 * A payload (or traits) that `JSON.stringify` carries as it is, else a `TypeError`: a plain object
 * whose values are strings, finite numbers, booleans, `null`, and plain arrays and plain objects of
 * these. Everything JSON would silently change is refused, as the Python SDK refuses what `json.dumps`
 * cannot encode: NaN and ±Infinity (null), Date and other class instances (a string or `{}`: Map,
 * Set, RegExp, typed arrays, boxed primitives), functions, symbols, `undefined` in arrays (null),
 * bigint, symbol keys and cycles. A property whose value is `undefined` is left out, as by
 * `JSON.stringify` (an optional property that is not set).
 */
function requireJsonObject(value: unknown, name: string): Properties {
  if (!isPlainObject(value)) throw new TypeError(`${name} must be a plain object, got ${describeValue(value)}`);
  checkJsonValue(value, name, new Set());
  return value;
}

function checkJsonValue(value: unknown, path: string, ancestors: Set<object>): void {
  if (typeof value === 'string' || typeof value === 'boolean' || value === null) return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${path} is ${value}, which JSON cannot represent`);
    return;
  }
  if (typeof value !== 'object') {
    throw new TypeError(`${path} is ${describeValue(value)}, which JSON cannot represent`);
  }
  if (ancestors.has(value)) throw new TypeError(`${path} contains itself (a cycle), which JSON cannot represent`);
  ancestors.add(value);
  if (Array.isArray(value) && Object.getPrototypeOf(value) === Array.prototype) {
    for (let index = 0; index < value.length; index += 1) checkJsonValue(value[index], `${path}[${index}]`, ancestors);
  } else if (isPlainObject(value)) {
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new TypeError(`${path} has symbol keys, which JSON cannot represent`);
    }
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue; // left out, as by JSON.stringify
      const itemPath = /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
      checkJsonValue(item, itemPath, ancestors);
    }
  } else {
    const hint = value instanceof Date ? ': pass date.toISOString()' : '';
    throw new TypeError(`${path} is ${describeValue(value)}, not a plain object or array${hint}`);
  }
  ancestors.delete(value);
}

/** Only `{...}` literals, `JSON.parse` results and `Object.create(null)`: no class instance. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value !== 'object') return `a ${typeof value}`;
  const prototype = Object.getPrototypeOf(value) as { constructor?: unknown } | null;
  if (prototype === Array.prototype) return 'an array';
  const name = typeof prototype?.constructor === 'function' ? prototype.constructor.name : '';
  if (name === '') return 'an object';
  return `${/^[AEIO]/.test(name) ? 'an' : 'a'} ${name}`; // a Uint8Array, an Error
}

function timestamp(value: Date | string | undefined): string {
  if (value === undefined) return new Date().toISOString();
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new TypeError('occurredAt is an invalid Date');
    return value.toISOString();
  }
  return requireString(value, 'occurredAt');
}

function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number`);
  }
  return value;
}

function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  const resolved = positive(value, name, fallback);
  if (!Number.isInteger(resolved)) throw new RangeError(`${name} must be a positive integer`);
  return resolved;
}

function nonNegativeInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer`);
  return value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
