/**
 * Browser lifecycle, exercised in Node by installing the two globals the SDK looks for
 * (`document` and `window` as EventTargets) and recording the RequestInit given to fetch.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';

import { SegOpsClient } from '../src/index.js';
import { IngestionServer, waitFor } from './support/ingestion-server.js';

class FakeDocument extends EventTarget {
  visibilityState: 'visible' | 'hidden' = 'visible';
}

const host = globalThis as unknown as { document?: FakeDocument; window?: EventTarget };
let server: IngestionServer;
let keepaliveFlags: Array<boolean | undefined>;
let segops: SegOpsClient;

beforeEach(async () => {
  server = await IngestionServer.start();
  host.document = new FakeDocument();
  host.window = new EventTarget();
  keepaliveFlags = [];
  const realFetch = globalThis.fetch;
  mock.method(globalThis, 'fetch', (input: string, init: RequestInit) => {
    keepaliveFlags.push(init.keepalive);
    return realFetch(input, init);
  });
  segops = new SegOpsClient({ apiUrl: server.url, apiKey: 'sk_test', flushIntervalMs: 3_600_000 });
});

afterEach(async () => {
  await segops.shutdown();
  mock.reset();
  delete host.document;
  delete host.window;
  await server.close();
});

test('hiding the page flushes with keepalive', async () => {
  segops.track({ userId: 'u', eventType: 'page_viewed' });
  host.document!.visibilityState = 'hidden';
  host.document!.dispatchEvent(new Event('visibilitychange'));
  await waitFor(() => server.requests.length === 1, 'the keepalive flush');
  assert.deepEqual(keepaliveFlags, [true]);
});

test('becoming visible again does not flush', async () => {
  segops.track({ userId: 'u', eventType: 'page_viewed' });
  host.document!.dispatchEvent(new Event('visibilitychange'));
  assert.equal(segops.queued, 1);
});

test('pagehide flushes with keepalive, in bodies under the 64 KiB keepalive limit', async () => {
  // GIVEN three ~25 KB events: all of them together would exceed the browser's keepalive budget
  const big = 'x'.repeat(25_000);
  for (let n = 0; n < 3; n += 1) segops.track({ userId: 'u', eventType: 'page_viewed', payload: { n, big } });
  // WHEN the page is hidden for good
  host.window!.dispatchEvent(new Event('pagehide'));
  // THEN they leave in keepalive requests that each fit the budget
  await waitFor(() => server.events.length === 3, 'all events');
  assert.deepEqual(
    server.requests.map((r) => r.events.length),
    [2, 1],
  );
  assert.ok(server.requests.every((r) => Buffer.byteLength(r.rawBody) < 64 * 1024));
  assert.deepEqual(keepaliveFlags, [true, true]);
});

test('ordinary flushes do not use keepalive', async () => {
  segops.track({ userId: 'u', eventType: 'page_viewed' });
  await segops.flush();
  assert.deepEqual(keepaliveFlags, [false]);
});

test('shutdown detaches the page listeners', async () => {
  await segops.shutdown();
  host.window!.dispatchEvent(new Event('pagehide'));
  assert.equal(server.requests.length, 0);
});
