/**
 * Segment's own Node.js client (`@segment/analytics-node`, unchanged) against the real stack's
 * Segment-compatible endpoints (`/v1/batch`), with the stack's API key as its write key: every call
 * lands as its native event, exactly once, including the client's retries of lost answers.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';

import { Analytics } from '@segment/analytics-node';

import { DevStack } from './support/dev-stack.js';

let stack: DevStack;
let writeKey: string;

before(async () => {
  stack = await DevStack.start();
  writeKey = (await stack.credentials()).api_key;
});

after(async () => {
  if (stack === undefined) return;
  const status = await stack.destroy();
  if (status !== '0') console.warn(`devserver ended with ${status} after its clean stop (chDB teardown at exit)`);
});

test('every call of analytics-node lands as its native event', { timeout: 120_000 }, async () => {
  const analytics = new Analytics({ writeKey, host: stack.url, flushAt: 3, flushInterval: 50, maxRetries: 3 });
  const errors: unknown[] = [];
  analytics.on('error', (error) => errors.push(error));
  analytics.identify({ userId: 'node-user', traits: { plan: 'pro' } });
  analytics.track({ userId: 'node-user', event: 'Node Order Completed', properties: { total: 10 } });
  analytics.page({ userId: 'node-user', name: 'Pricing', properties: { path: '/pricing', url: 'https://acme.test/pricing' } });
  analytics.screen({ anonymousId: 'node-anon', name: 'Home' });
  analytics.group({ userId: 'node-user', groupId: 'acme', traits: { seats: 3 } });
  analytics.alias({ userId: 'node-user', previousId: 'node-anon' });
  await analytics.closeAndFlush({ timeout: 30_000 });
  assert.deepEqual(errors, []);
  const counts = await stack.waitForCounts({ node_order_completed: 1, user_aliased: 1, group_identified: 1 });
  assert.equal(counts.node_order_completed, 1);
  assert.equal(counts.page_viewed, 1);
  assert.equal(counts.screen_viewed, 1);
  assert.equal(counts.group_identified, 1);
  assert.equal(counts.user_aliased, 1);
  assert.ok((counts.context_identified ?? 0) >= 1);
});

test('analytics-node retries of lost answers are stored once', { timeout: 120_000 }, async () => {
  // GIVEN a proxy that forwards to the stack but loses the stack's first two answers (503 instead)
  const upstreamStatuses: number[] = [];
  const proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const upstream = await fetch(`${stack.url}${req.url ?? '/'}`, {
          method: 'POST',
          headers: { Authorization: String(req.headers.authorization), 'Content-Type': 'application/json' },
          body: Buffer.concat(chunks),
        });
        const text = await upstream.text();
        upstreamStatuses.push(upstream.status);
        const lost = upstreamStatuses.length <= 2;
        res.writeHead(lost ? 503 : upstream.status, { 'Content-Type': 'application/json' });
        res.end(lost ? '{"error":{"code":"unavailable","message":"lost answer","details":null}}' : text);
      })();
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  try {
    // WHEN 20 events go through it
    const analytics = new Analytics({ writeKey, host: `http://127.0.0.1:${port}`, flushAt: 10, flushInterval: 50, maxRetries: 5 });
    const errors: unknown[] = [];
    analytics.on('error', (error) => errors.push(error));
    for (let n = 0; n < 20; n += 1) analytics.track({ userId: `retry-${n}`, event: 'Node Retried', properties: { n } });
    await analytics.closeAndFlush({ timeout: 60_000 });
    assert.deepEqual(errors, []);
  } finally {
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  }
  // THEN the stack took every attempt, and once delivered each event counts once
  assert.ok(upstreamStatuses.length >= 3, `upstream saw ${upstreamStatuses.length} requests`);
  assert.deepEqual([...new Set(upstreamStatuses)], [200]);
  const counts = await stack.waitForCounts({ node_retried: 20 });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal((await stack.eventTypeCounts()).node_retried ?? 0, 20, JSON.stringify(counts));
});
