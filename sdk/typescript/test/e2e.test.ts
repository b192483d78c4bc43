/**
 * End to end against the real stack (`python -m segops.devserver`, i.e. `make dev`): the quickstart's
 * own TypeScript, then retries whose responses were lost, then the exactly-once check after the
 * stack has drained its bus, stopped and restarted.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import ts from 'typescript';

import { SegOpsClient, type SegOpsError } from '../src/index.js';
import { DevStack, PACKAGE_ROOT } from './support/dev-stack.js';
import { quickstartTypeScriptBlocks } from './support/quickstart.js';

const QUICKSTART_API_URL = "'https://api.segops.ai'";
const expected: Record<string, number> = {};
let stack: DevStack;
let apiKey: string;

before(async () => {
  stack = await DevStack.start();
  apiKey = (await stack.credentials()).api_key;
});

/** A crash after the clean stop is the embedded ClickHouse's teardown, not the SDK's: reported, not failed. */
function reportExit(status: string, diagnostic: (message: string) => void): void {
  if (status !== '0') diagnostic(`devserver ended with ${status} after its clean stop (chDB teardown at exit)`);
}

after(async () => {
  if (stack !== undefined) reportExit(await stack.destroy(), console.warn);
});

/** Writes the quickstart as a tiny project using this package, type-checks it strictly and emits JS. */
async function buildQuickstartProject(apiUrl: string): Promise<string> {
  const blocks = quickstartTypeScriptBlocks();
  assert.equal(blocks.length, 2, 'the quickstart has two TypeScript blocks (client setup, first events)');
  const [setup, firstEvents] = blocks as [string, string];
  assert.equal(setup.split(QUICKSTART_API_URL).length, 2, 'the setup block names the API URL once');
  const dir = await mkdtemp(join(tmpdir(), 'segops-quickstart-'));
  await mkdir(join(dir, 'lib'));
  await mkdir(join(dir, 'node_modules', '@segops'), { recursive: true });
  await symlink(PACKAGE_ROOT, join(dir, 'node_modules', '@segops', 'sdk'), 'dir');
  await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  // "pasted into a Node script with the dev stack's API key": only the URL changes.
  await writeFile(join(dir, 'lib', 'segops.ts'), setup.replace(QUICKSTART_API_URL, JSON.stringify(apiUrl)));
  await writeFile(
    join(dir, 'main.ts'),
    "import { segops } from './lib/segops.js';\n" +
      firstEvents +
      // Harness: stay up like a server would, until the test sends SIGTERM.
      "setInterval(() => undefined, 60_000);\nconsole.log('ready');\n",
  );
  const program = ts.createProgram([join(dir, 'main.ts')], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    types: ['node'],
    typeRoots: [join(PACKAGE_ROOT, 'node_modules', '@types')],
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const host: ts.FormatDiagnosticsHost = {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => dir,
    getNewLine: () => '\n',
  };
  assert.equal(diagnostics.length, 0, ts.formatDiagnostics(diagnostics, host));
  assert.equal(program.emit().emitSkipped, false);
  return dir;
}

test('the quickstart TypeScript, verbatim, delivers its events on SIGTERM', { timeout: 240_000 }, async () => {
  // GIVEN the quickstart's code, compiled against this package, pointed at the dev stack
  const dir = await buildQuickstartProject(stack.url);
  try {
    const child = spawn(process.execPath, ['main.js'], {
      cwd: dir,
      env: { ...process.env, SEGOPS_API_KEY: apiKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', () => output.includes('ready') && resolve());
      void exited.then(() => reject(new Error(`quickstart exited early:\n${output}`)));
    });
    // WHEN the process is told to stop, as on a server shutdown
    child.kill('SIGTERM');
    // THEN its SIGTERM handler flushed and exited 0
    assert.equal(await exited, 0, output);
    assert.equal(output.includes('[segops]'), false, output);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  // AND the page view and the identify reached the warehouse
  expected['page_viewed'] = 1;
  expected['context_identified'] = 1;
  const counts = await stack.waitForCounts(expected);
  assert.equal(counts['page_viewed'], 1);
  assert.equal(counts['context_identified'], 1);
});

test('retries after lost responses are counted once', { timeout: 240_000 }, async () => {
  // GIVEN a proxy in front of the stack that lets the first two requests through but loses their answers
  const upstreamStatuses: number[] = [];
  const proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const upstream = await fetch(`${stack.url}${req.url ?? '/'}`, {
          method: req.method ?? 'POST',
          headers: {
            Authorization: String(req.headers.authorization),
            'Content-Type': String(req.headers['content-type']),
          },
          body: Buffer.concat(chunks),
        });
        const text = await upstream.text();
        upstreamStatuses.push(upstream.status);
        if (upstreamStatuses.length <= 2) {
          res.writeHead(503, { 'Content-Type': 'application/json' });
          res.end('{"error":{"code":"unavailable","message":"lost answer","details":null}}');
          return;
        }
        res.writeHead(upstream.status, { 'Content-Type': 'application/json' });
        res.end(text);
      })();
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const errors: SegOpsError[] = [];
  const segops = new SegOpsClient({
    apiUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    apiKey,
    onError: (error) => errors.push(error),
  });
  try {
    // WHEN 45 events are tracked and flushed (batches of 20 and 25; the first is sent three times)
    for (let n = 0; n < 45; n += 1) {
      segops.track({ userId: `user-${n}`, eventType: 'e2e_retried', payload: { n } });
    }
    await segops.shutdown();
  } finally {
    proxy.closeAllConnections();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  }
  // THEN the stack accepted every attempt, and the SDK saw success in the end
  assert.deepEqual(errors, []);
  assert.ok(upstreamStatuses.length >= 4, `attempts: ${JSON.stringify(upstreamStatuses)}`);
  assert.ok(
    upstreamStatuses.every((status) => status === 202),
    JSON.stringify(upstreamStatuses),
  );
  // AND the stats count each event once
  expected['e2e_retried'] = 45;
  const counts = await stack.waitForCounts(expected);
  assert.equal(counts['e2e_retried'], 45);
});

test('events the API skips as invalid are reported, valid ones of the batch still arrive', { timeout: 240_000 }, async () => {
  const errors: SegOpsError[] = [];
  const segops = new SegOpsClient({ apiUrl: stack.url, apiKey, onError: (error) => errors.push(error) });
  segops.track({ userId: 'user-1', eventType: 'e2e_valid' });
  segops.track({ userId: 'user-1', eventType: 'Not-Snake-Case' });
  await segops.shutdown();
  assert.deepEqual(
    errors.map((e) => [e.kind, e.eventCount]),
    [['skipped', 1]],
  );
  expected['e2e_valid'] = 1;
  const counts = await stack.waitForCounts(expected);
  assert.equal(counts['e2e_valid'], 1);
});

test('after the stack drained its bus and restarted, every event is there exactly once', { timeout: 300_000 }, async (t) => {
  // WHEN the stack stops (delivering every pending bus message) and starts again on the same data
  reportExit(await stack.stop(), (message) => t.diagnostic(message));
  await stack.restart();
  // THEN the counts are exactly what was sent: no loss, no duplicate from any retry
  assert.deepEqual(await stack.eventTypeCounts(), expected);
});
