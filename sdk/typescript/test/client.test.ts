import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';

import {
  SegOpsClient,
  SegOpsClosedError,
  type Properties,
  type SegOpsError,
  type SegOpsClientOptions,
} from '../src/index.js';
import { deferred, IngestionServer, ioTurns, waitFor } from './support/ingestion-server.js';

const API_KEY = 'sk_test_0123456789';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let server: IngestionServer;
let clients: SegOpsClient[];
let errors: SegOpsError[];

function client(options: Partial<SegOpsClientOptions> = {}): SegOpsClient {
  const created = new SegOpsClient({
    apiUrl: server.url,
    apiKey: API_KEY,
    onError: (error) => errors.push(error),
    ...options,
  });
  clients.push(created);
  return created;
}

function trackN(segops: SegOpsClient, count: number, from = 0): void {
  for (let n = from; n < from + count; n += 1) {
    segops.track({ userId: `user-${n}`, eventType: 'page_viewed', payload: { n } });
  }
}

/** The delays the code under test passed to (mocked) setTimeout, in call order. */
function recordTimerDelays(): number[] {
  const delays: number[] = [];
  const mocked = globalThis.setTimeout;
  mock.method(globalThis, 'setTimeout', (callback: () => void, ms: number) => {
    delays.push(ms);
    return mocked(callback, ms);
  });
  return delays;
}

beforeEach(async () => {
  server = await IngestionServer.start();
  clients = [];
  errors = [];
});

afterEach(async () => {
  // In this order: the setTimeout spy wraps the fake one, so it must go before the fake timers.
  // reset(), not restoreAll(): restoreAll keeps the spies registered and would re-apply them next time.
  mock.reset();
  mock.timers.reset();
  await Promise.all(clients.map((c) => c.shutdown()));
  await server.close();
});

describe('batching', () => {
  test('sends one batch of 20 as soon as the 20th event is tracked', async () => {
    // GIVEN a client with the default flushAt (20) and the timer far away
    const segops = client({ flushIntervalMs: 3_600_000 });
    // WHEN 19 events are tracked
    trackN(segops, 19);
    await ioTurns();
    // THEN nothing is sent yet
    assert.equal(server.requests.length, 0);
    assert.equal(segops.queued, 19);
    // WHEN the 20th is tracked
    trackN(segops, 1, 19);
    // THEN exactly one request carries all 20, in order, in the documented shape
    assert.equal(segops.queued, 0);
    await waitFor(() => server.requests.length === 1, 'the batch');
    const [request] = server.requests;
    assert.equal(request!.method, 'POST');
    assert.equal(request!.path, '/api/ingestion/track/batch/');
    assert.equal(request!.headers.authorization, `ApiKey ${API_KEY}`);
    assert.equal(request!.headers['content-type'], 'application/json');
    assert.deepEqual(
      request!.events.map((e) => e.payload),
      Array.from({ length: 20 }, (_, n) => ({ n })),
    );
    for (const event of request!.events) {
      assert.deepEqual(Object.keys(event).sort(), ['event_type', 'message_id', 'occurred_at', 'payload', 'user_id']);
      assert.match(event.message_id, UUID);
    }
    assert.equal(new Set(request!.events.map((e) => e.message_id)).size, 20);
    assert.deepEqual(errors, []);
  });

  test('never sends more than 500 events per request', async () => {
    // GIVEN 1200 buffered events
    const segops = client({ flushAt: 10_000, flushIntervalMs: 3_600_000 });
    trackN(segops, 1200);
    // WHEN flushed
    await segops.flush();
    // THEN they went out as 500 + 500 + 200, in order
    assert.deepEqual(
      server.requests.map((r) => r.events.length),
      [500, 500, 200],
    );
    assert.deepEqual(
      server.events.map((e) => e.payload!['n']),
      Array.from({ length: 1200 }, (_, n) => n),
    );
  });

  test('flushes a partial buffer 5 s after its first event (fake timers)', async () => {
    // GIVEN fake timers and a client with the default flushIntervalMs (5000)
    mock.timers.enable({ apis: ['setTimeout'] });
    const segops = client();
    // WHEN 3 events are tracked and 4999 ms pass
    trackN(segops, 3);
    mock.timers.tick(4999);
    await ioTurns();
    // THEN nothing is sent
    assert.equal(server.requests.length, 0);
    assert.equal(segops.queued, 3);
    // WHEN the 5000th ms passes
    mock.timers.tick(1);
    // THEN the 3 events are sent in one request
    await waitFor(() => server.requests.length === 1, 'the timed flush');
    assert.equal(server.requests[0]!.events.length, 3);
  });

  test('stamps occurred_at and message_id at call time and snapshots the payload', async () => {
    // GIVEN a fake clock at a known instant
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse('2026-04-25T14:32:00.000Z') });
    const segops = client();
    const payload = { path: '/pricing' };
    segops.track({ userId: 'user-123', eventType: 'page_viewed', payload });
    // WHEN the caller mutates its payload and time moves on before the send
    payload.path = '/mutated';
    mock.timers.tick(5000);
    await waitFor(() => server.requests.length === 1, 'the timed flush');
    // THEN the event carries the call-time timestamp and payload
    const [event] = server.events;
    assert.equal(event!.occurred_at, '2026-04-25T14:32:00.000Z');
    assert.deepEqual(event!.payload, { path: '/pricing' });
  });

  test('passes explicit occurredAt and messageId through unchanged', async () => {
    const segops = client();
    segops.track({ userId: 'u', eventType: 'order_placed', occurredAt: new Date(0), messageId: 'order-456' });
    segops.track({ userId: 'u', eventType: 'order_paid', occurredAt: '2026-04-25T14:32:00Z' });
    await segops.flush();
    assert.equal(server.events[0]!.occurred_at, '1970-01-01T00:00:00.000Z');
    assert.equal(server.events[0]!.message_id, 'order-456');
    assert.equal(server.events[1]!.occurred_at, '2026-04-25T14:32:00Z');
    assert.equal('payload' in server.events[1]!, false);
  });

  test('accepts payloads and traits typed by an interface', async () => {
    interface PageView {
      path: string;
    }
    const view: PageView = { path: '/pricing' };
    const segops = client();
    segops.track({ userId: 'u', eventType: 'page_viewed', payload: view });
    segops.identify({ userId: 'u', traits: view });
    await segops.flush();
    assert.deepEqual(
      server.events.map((e) => e.payload),
      [view, view],
    );
  });

  test('identify sends context_identified with the traits as payload', async () => {
    const segops = client();
    segops.identify({ userId: 'user-123', traits: { email: 'jane@example.com', plan: 'starter' } });
    await segops.flush();
    assert.equal(server.events.length, 1);
    assert.equal(server.events[0]!.event_type, 'context_identified');
    assert.deepEqual(server.events[0]!.payload, { email: 'jane@example.com', plan: 'starter' });
  });

  test('rejects malformed calls synchronously', () => {
    const segops = client();
    const untyped = segops as unknown as { track(p: unknown): void; identify(p: unknown): void };
    assert.throws(() => untyped.track({ userId: '', eventType: 'x' }), TypeError);
    assert.throws(() => untyped.track({ userId: 'u', eventType: 7 }), TypeError);
    assert.throws(() => untyped.track({ userId: 'u', eventType: 'x', payload: [1] }), TypeError);
    assert.throws(() => untyped.identify({ userId: 'u', traits: null }), TypeError);
    assert.throws(() => new SegOpsClient({ apiUrl: 'ftp://x', apiKey: API_KEY }), TypeError);
    assert.throws(() => new SegOpsClient({ apiUrl: server.url, apiKey: API_KEY, flushAt: 0 }), RangeError);
    assert.equal(segops.queued, 0);
  });

  test('refuses payloads and traits that JSON would silently change, naming the value', () => {
    const segops = client();
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    class Point {
      x = 1;
    }
    const refused: [unknown, RegExp][] = [
      [new Date(0), /payload must be a plain object, got a Date/],
      [new Map([['a', 1]]), /payload must be a plain object, got a Map/],
      [new Point(), /payload must be a plain object, got a Point/],
      [{ d: Number.NaN }, /payload\.d is NaN/],
      [{ d: Number.POSITIVE_INFINITY }, /payload\.d is Infinity/],
      [{ a: [1, Number.NEGATIVE_INFINITY] }, /payload\.a\[1\] is -Infinity/],
      [{ d: new Date(0) }, /payload\.d is a Date, not a plain object or array: pass date\.toISOString\(\)/],
      [{ m: new Map() }, /payload\.m is a Map/],
      [{ s: new Set([1]) }, /payload\.s is a Set/],
      [{ p: new Point() }, /payload\.p is a Point/],
      [{ b: new Uint8Array(2) }, /payload\.b is a Uint8Array/],
      [{ n: new Number(1) }, /payload\.n is a Number/],
      [{ f: () => 1 }, /payload\.f is a function/],
      [{ toJSON: () => 'str' }, /payload\.toJSON is a function/],
      [{ s: Symbol('x') }, /payload\.s is a symbol/],
      [{ b: 10n }, /payload\.b is a bigint/],
      [{ a: [undefined] }, /payload\.a\[0\] is undefined/],
      [{ 'a key': { deep: [{ x: Number.NaN }] } }, /payload\["a key"\]\.deep\[0\]\.x is NaN/],
      [{ [Symbol('k')]: 1 }, /payload has symbol keys/],
      [circular, /payload\.self contains itself/],
    ];
    for (const [payload, message] of refused) {
      assert.throws(() => segops.track({ userId: 'u', eventType: 'x', payload: payload as Properties }), {
        name: 'TypeError',
        message,
      });
    }
    assert.throws(() => segops.identify({ userId: 'u', traits: { plan: Number.NaN } }), {
      name: 'TypeError',
      message: /traits\.plan is NaN/,
    });
    assert.equal(segops.queued, 0);
  });

  test('sends plain JSON values as they are, and leaves out properties set to undefined', async () => {
    const segops = client();
    const shared = { k: 'v' };
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { x: 1 });
    const payload = {
      s: 'text',
      n: -1.5,
      big: Number.MAX_SAFE_INTEGER,
      t: true,
      z: null,
      list: [1, 'two', null, { three: [3] }],
      nested: { a: shared, b: shared },
      bare,
      unset: undefined,
    };
    segops.track({ userId: 'u', eventType: 'page_viewed', payload });
    await segops.flush();
    const { unset: _unset, ...sent } = payload;
    assert.deepEqual(server.events[0]!.payload, { ...sent, bare: { x: 1 } });
  });
});

describe('flush', () => {
  test('settles only when the API has answered, and only for events queued before it', async () => {
    // GIVEN a server that holds its answer
    const release = deferred();
    server.responder = async (request) => {
      await release.promise;
      return { status: 202, body: { queued: request.events.length, skipped: 0 } };
    };
    const segops = client();
    trackN(segops, 2);
    let settled = false;
    const flushed = segops.flush().then(() => {
      settled = true;
    });
    await waitFor(() => server.requests.length === 1, 'the request');
    // WHEN another event is tracked while the request is in flight
    trackN(segops, 1, 2);
    await ioTurns();
    // THEN flush has not settled before the answer
    assert.equal(settled, false);
    release.resolve();
    await flushed;
    // AND it did not wait for (or send) the later event
    assert.equal(server.requests.length, 1);
    assert.equal(segops.queued, 1);
  });

  test('resolves at once when nothing is buffered', async () => {
    await client().flush();
    assert.equal(server.requests.length, 0);
  });
});

describe('retries', () => {
  test('retries 503 with exponential backoff and jitter, keeping message_ids', async () => {
    // GIVEN fake timers, a fixed jitter draw and a server failing twice
    mock.method(Math, 'random', () => 0.5);
    mock.timers.enable({ apis: ['setTimeout'] });
    const delays = recordTimerDelays();
    server.responder = (request, index) =>
      index < 2 ? { status: 503, body: { error: { code: 'unavailable' } } } : { status: 202, body: { queued: request.events.length, skipped: 0 } };
    const segops = client({ flushAt: 2, timeoutMs: 10_000 });
    // WHEN a batch is sent
    trackN(segops, 2);
    await waitFor(() => server.requests.length === 1, 'attempt 1');
    // THEN the first retry waits 250 ms + 0.5 * 250 ms of jitter
    await waitFor(() => delays.includes(375), 'the first backoff');
    mock.timers.tick(374);
    await ioTurns();
    assert.equal(server.requests.length, 1);
    mock.timers.tick(1);
    await waitFor(() => server.requests.length === 2, 'attempt 2');
    // AND the second waits twice as long
    await waitFor(() => delays.includes(750), 'the second backoff');
    mock.timers.tick(749);
    await ioTurns();
    assert.equal(server.requests.length, 2);
    mock.timers.tick(1);
    await waitFor(() => server.requests.length === 3, 'attempt 3');
    // AND every attempt carried byte-identical events, so the API can deduplicate them
    assert.equal(server.requests[1]!.rawBody, server.requests[0]!.rawBody);
    assert.equal(server.requests[2]!.rawBody, server.requests[0]!.rawBody);
    await segops.flush();
    assert.deepEqual(errors, []);
  });

  test('honours Retry-After on 429', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const delays = recordTimerDelays();
    server.responder = (request, index) =>
      index === 0
        ? { status: 429, headers: { 'Retry-After': '7' }, body: { error: { code: 'rate_limited' } } }
        : { status: 202, body: { queued: request.events.length, skipped: 0 } };
    const segops = client({ flushAt: 1 });
    trackN(segops, 1);
    await waitFor(() => delays.includes(7000), 'the Retry-After wait');
    mock.timers.tick(6999);
    await ioTurns();
    assert.equal(server.requests.length, 1);
    mock.timers.tick(1);
    await waitFor(() => server.requests.length === 2, 'the retry');
    assert.equal(server.requests[1]!.events[0]!.message_id, server.requests[0]!.events[0]!.message_id);
  });

  test('retries a dropped connection', async () => {
    server.responder = (request, index) =>
      index === 0 ? { status: 0, dropConnection: true } : { status: 202, body: { queued: request.events.length, skipped: 0 } };
    mock.method(Math, 'random', () => 0);
    const segops = client();
    trackN(segops, 1);
    await segops.flush();
    assert.equal(server.requests.length, 2);
    assert.deepEqual(errors, []);
  });

  test('never retries a 400 and reports it through onError', async () => {
    server.responder = () => ({
      status: 400,
      body: { error: { code: 'validation_failed', message: 'events: invalid', details: [{ pointer: '/events' }] } },
    });
    const segops = client();
    trackN(segops, 3);
    await segops.flush();
    assert.equal(server.requests.length, 1);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.kind, 'rejected');
    assert.equal(errors[0]!.status, 400);
    assert.equal(errors[0]!.code, 'validation_failed');
    assert.deepEqual(errors[0]!.details, [{ pointer: '/events' }]);
    assert.equal(errors[0]!.eventCount, 3);
  });

  test('never retries a 401', async () => {
    server.responder = () => ({ status: 401, body: { error: { code: 'unauthorized', message: 'bad key' } } });
    const segops = client();
    trackN(segops, 1);
    await segops.flush();
    assert.equal(server.requests.length, 1);
    assert.equal(errors[0]!.status, 401);
  });

  test('splits a batch the API finds too large (413) until the parts fit', async () => {
    server.responder = (request) =>
      request.events.length > 3
        ? { status: 413, body: { error: { code: 'payload_too_large', message: 'too large' } } }
        : { status: 202, body: { queued: request.events.length, skipped: 0 } };
    const segops = client({ flushAt: 100 });
    trackN(segops, 10);
    await segops.flush();
    const accepted = server.requests.filter((r) => r.events.length <= 3).flatMap((r) => r.events);
    assert.deepEqual(
      accepted.map((e) => e.payload!['n']),
      Array.from({ length: 10 }, (_, n) => n),
    );
    assert.deepEqual(errors, []);
  });

  test('gives up after maxRetries and reports retries_exhausted', async () => {
    server.responder = () => ({ status: 500, headers: { 'Retry-After': '0' } });
    const segops = client({ maxRetries: 2 });
    trackN(segops, 4);
    await segops.flush();
    assert.equal(server.requests.length, 3);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.kind, 'retries_exhausted');
    assert.equal(errors[0]!.eventCount, 4);
    assert.equal(errors[0]!.status, 500);
  });

  test('honours Retry-After on 503 and reports the last answer\'s code when retries run out', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const delays = recordTimerDelays();
    const limited = { code: 'rate_limited', message: 'too many requests', details: { limit: 5 } };
    server.responder = (_request, index) =>
      index === 0
        ? { status: 503, headers: { 'Retry-After': '2' }, body: { error: { code: 'service_unavailable' } } }
        : { status: 429, headers: { 'Retry-After': '0' }, body: { error: limited } };
    const segops = client({ flushAt: 1, maxRetries: 1 });
    trackN(segops, 1);
    await waitFor(() => delays.includes(2000), 'the Retry-After wait of the 503');
    mock.timers.tick(1999);
    await ioTurns();
    assert.equal(server.requests.length, 1);
    mock.timers.tick(1);
    await waitFor(() => errors.length === 1, 'the loss report');
    assert.equal(server.requests.length, 2);
    assert.equal(errors[0]!.kind, 'retries_exhausted');
    assert.equal(errors[0]!.status, 429);
    assert.equal(errors[0]!.code, 'rate_limited');
    assert.deepEqual(errors[0]!.details, { limit: 5 });
  });

  test('reports a used-up quota (429 quota_exceeded) at once and drops the batch', async () => {
    // GIVEN an API whose answer is 429 quota_exceeded until the month ends (Retry-After: 4 weeks)
    const quota = {
      code: 'quota_exceeded',
      message: 'the monthly quota of 5 events is used up; it renews on 2026-07-01 (UTC)',
      details: { limit: 5, used: 5, requested: 2, retry_after: 2423110 },
    };
    server.responder = () => ({ status: 429, headers: { 'Retry-After': '2423110' }, body: { error: quota } });
    const segops = client({ maxRetries: 5 });
    trackN(segops, 2);
    // WHEN flushed (real timers: a retry would wait 60 s)
    const started = performance.now();
    await segops.flush();
    // THEN flush settled promptly after one request, and the loss was reported once, with the code
    assert.ok(performance.now() - started < 5000);
    assert.equal(server.requests.length, 1);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.kind, 'rejected');
    assert.equal(errors[0]!.status, 429);
    assert.equal(errors[0]!.code, 'quota_exceeded');
    assert.equal(errors[0]!.eventCount, 2);
    assert.deepEqual(errors[0]!.details, quota.details);
    // AND the batch was dropped: later events go out alone
    trackN(segops, 1, 2);
    await segops.flush();
    assert.deepEqual(
      server.requests.map((r) => r.events.length),
      [2, 1],
    );
  });

  test('rejects at once a 429 or 503 asking to wait longer than the 60 s cap', async () => {
    const answers = [
      { status: 429, headers: { 'Retry-After': '61' }, body: { error: { code: 'rate_limited' } } },
      { status: 503, headers: { 'Retry-After': '86400' }, body: { error: { code: 'service_unavailable' } } },
      { status: 503, headers: { 'Retry-After': 'Fri, 01 Jan 2100 00:00:00 GMT' } },
    ];
    server.responder = (_request, index) => answers[index]!;
    const segops = client({ flushAt: 100 });
    for (let n = 0; n < answers.length; n += 1) {
      trackN(segops, 1, n);
      await segops.flush();
    }
    assert.equal(server.requests.length, 3);
    assert.deepEqual(
      errors.map((e) => [e.kind, e.status, e.code]),
      [
        ['rejected', 429, 'rate_limited'],
        ['rejected', 503, 'service_unavailable'],
        ['rejected', 503, undefined],
      ],
    );
    for (const error of errors) assert.match(error.message, /beyond the SDK's 60 s limit/);
  });

  test('still retries a 429 rate_limited with a short Retry-After', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const delays = recordTimerDelays();
    server.responder = (request, index) =>
      index === 0
        ? { status: 429, headers: { 'Retry-After': '1' }, body: { error: { code: 'rate_limited' } } }
        : { status: 202, body: { queued: request.events.length, skipped: 0 } };
    const segops = client({ flushAt: 1 });
    trackN(segops, 1);
    await waitFor(() => delays.includes(1000), 'the Retry-After wait of the 429');
    mock.timers.tick(999);
    await ioTurns();
    assert.equal(server.requests.length, 1);
    mock.timers.tick(1);
    await waitFor(() => server.requests.length === 2, 'the retry');
    await segops.flush();
    assert.equal(server.requests[1]!.rawBody, server.requests[0]!.rawBody);
    assert.deepEqual(errors, []);
  });

  test('reports events the API skipped as invalid', async () => {
    server.responder = (request) => ({ status: 202, body: { queued: request.events.length - 1, skipped: 1 } });
    const segops = client();
    trackN(segops, 2);
    await segops.flush();
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.kind, 'skipped');
    assert.equal(errors[0]!.eventCount, 1);
  });

  test('a throwing onError does not stop delivery', async () => {
    server.responder = (request, index) =>
      index === 0 ? { status: 400, body: {} } : { status: 202, body: { queued: request.events.length, skipped: 0 } };
    const segops = client({
      flushAt: 1,
      onError: () => {
        throw new Error('callback bug');
      },
    });
    trackN(segops, 1);
    await segops.flush();
    trackN(segops, 1, 1);
    await segops.flush();
    assert.equal(server.requests.length, 2);
  });
});

describe('shutdown', () => {
  test('flushes, waits for retries, then refuses further calls', async () => {
    // GIVEN buffered events and a server that fails once
    server.responder = (request, index) =>
      index === 0
        ? { status: 503, headers: { 'Retry-After': '0' } }
        : { status: 202, body: { queued: request.events.length, skipped: 0 } };
    const segops = client();
    trackN(segops, 3);
    // WHEN shut down (twice)
    const first = segops.shutdown();
    const second = segops.shutdown();
    assert.equal(first, second);
    await first;
    // THEN the events were delivered before shutdown settled
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[1]!.events.length, 3);
    // AND later calls are rejected
    assert.throws(() => trackN(segops, 1), SegOpsClosedError);
    assert.throws(() => segops.identify({ userId: 'u', traits: {} }), SegOpsClosedError);
    await assert.rejects(segops.flush(), SegOpsClosedError);
    assert.equal(segops.queued, 0);
  });

  test('stops the flush timer', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const segops = client();
    await segops.shutdown();
    mock.timers.tick(60_000);
    await ioTurns();
    assert.equal(server.requests.length, 0);
  });
});

describe('bounded queue', () => {
  test('drops the oldest events with one counted warning per burst', async () => {
    // GIVEN a buffer of 5
    const segops = client({ maxQueueSize: 5, flushAt: 100, flushIntervalMs: 3_600_000 });
    // WHEN 8 events are tracked in one burst
    trackN(segops, 8);
    // THEN the 3 oldest were dropped and reported once, with their count
    assert.equal(segops.queued, 5);
    assert.equal(segops.dropped, 3);
    await ioTurns(1);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.kind, 'queue_overflow');
    assert.equal(errors[0]!.eventCount, 3);
    assert.match(errors[0]!.message, /dropped the 3 oldest event\(s\), 3 in total/);
    // AND the newest 5 are what gets sent
    await segops.flush();
    assert.deepEqual(
      server.events.map((e) => e.payload!['n']),
      [3, 4, 5, 6, 7],
    );
    // WHEN another burst overflows
    trackN(segops, 7, 8);
    await ioTurns(1);
    // THEN a second warning counts it, and the running total grows
    assert.equal(errors.length, 2);
    assert.equal(errors[1]!.eventCount, 2);
    assert.equal(segops.dropped, 5);
  });
});
