/** Node host behaviour, in child processes so that the test runner's own handles do not interfere. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { IngestionServer } from './support/ingestion-server.js';

const SDK_ENTRY = pathToFileURL(fileURLToPath(new URL('../src/index.js', import.meta.url))).href;

let server: IngestionServer;

beforeEach(async () => {
  server = await IngestionServer.start();
});

afterEach(async () => {
  await server.close();
});

function runNode(script: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

test(
  'the flush timer does not keep the process alive, and buffered events are sent before it exits',
  { timeout: 30_000 },
  async () => {
    // GIVEN a script that tracks two events with an hour-long flush interval and then simply ends
    const script = `
      import { SegOpsClient } from ${JSON.stringify(SDK_ENTRY)};
      const segops = new SegOpsClient({ apiUrl: ${JSON.stringify(server.url)}, apiKey: 'sk_test', flushIntervalMs: 3_600_000 });
      segops.track({ userId: 'user-1', eventType: 'script_ran' });
      segops.identify({ userId: 'user-1', traits: { plan: 'starter' } });
    `;
    // WHEN it runs (a ref'd timer would hold it for an hour and time this test out)
    const { code, stderr } = await runNode(script);
    // THEN it exits cleanly, having delivered both events on the way out
    assert.equal(code, 0, stderr);
    assert.deepEqual(
      server.events.map((e) => e.event_type),
      ['script_ran', 'context_identified'],
    );
  },
);
