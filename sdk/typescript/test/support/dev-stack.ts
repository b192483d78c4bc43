/**
 * The real SegOps stack for end-to-end tests: `python -m segops.devserver` (what `make dev` runs)
 * from the repository's `.venv`, on a free port with its own temporary data directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** sdk/typescript (this file is compiled to sdk/typescript/build/test/support/). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const REPO_ROOT = join(PACKAGE_ROOT, '..', '..');
const PYTHON = join(REPO_ROOT, '.venv', 'bin', 'python');

export interface DevCredentials {
  tenant_id: number;
  tenant_slug: string;
  email: string;
  password: string;
  api_key: string;
}

export interface EventTypeCount {
  event_type: string;
  count: number;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/** What the dev server prints once its HTTP server stopped and its bus delivered every pending message. */
export const CLEAN_STOP_LINE = 'SegOps dev stack stopped; pending bus messages were delivered.';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class DevStack {
  readonly dataDir: string;
  readonly port: number;
  #child: ChildProcess | undefined;
  /** Everything the current server process printed. */
  #output = '';

  private constructor(dataDir: string, port: number) {
    this.dataDir = dataDir;
    this.port = port;
  }

  /** Starts a stack in a fresh data directory. */
  static async start(): Promise<DevStack> {
    if (!existsSync(PYTHON)) {
      throw new Error(`${PYTHON} is missing: run \`make install\` in ${REPO_ROOT} before the SDK end-to-end tests`);
    }
    const stack = new DevStack(await mkdtemp(join(tmpdir(), 'segops-sdk-e2e-')), await freePort());
    await stack.restart();
    return stack;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server process on the same data directory and port; resolves once it is healthy. */
  async restart(): Promise<void> {
    const child = spawn(PYTHON, ['-m', 'segops.devserver'], {
      cwd: REPO_ROOT,
      env: { ...process.env, PYTHONFAULTHANDLER: '1', SEGOPS_DATA_DIR: this.dataDir, SEGOPS_PORT: String(this.port), SEGOPS_HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#output = '';
    const keep = (chunk: Buffer): void => {
      this.#output += chunk.toString();
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.#child = child;
    const deadline = Date.now() + 180_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`devserver exited with ${child.exitCode}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`devserver not healthy after 180 s:\n${this.output}`);
      if (await this.#healthy()) return;
      await sleep(250);
    }
  }

  async #healthy(): Promise<boolean> {
    try {
      const response = await fetch(`${this.url}/api/ingestion/health/`);
      await response.text();
      return response.ok && existsSync(join(this.dataDir, 'dev-credentials.json'));
    } catch {
      return false;
    }
  }

  async credentials(): Promise<DevCredentials> {
    return JSON.parse(await readFile(join(this.dataDir, 'dev-credentials.json'), 'utf8')) as DevCredentials;
  }

  /** Event counts by type from `GET /api/ingestion/stats/?window=24h`, with the dev API key. */
  async eventTypeCounts(): Promise<Record<string, number>> {
    const { api_key } = await this.credentials();
    const response = await fetch(`${this.url}/api/ingestion/stats/?window=24h`, {
      headers: { Authorization: `ApiKey ${api_key}` },
    });
    const body = (await response.json()) as { event_types?: EventTypeCount[] };
    if (!response.ok) throw new Error(`stats answered ${response.status}: ${JSON.stringify(body)}`);
    return Object.fromEntries((body.event_types ?? []).map((e) => [e.event_type, e.count]));
  }

  /** Polls the stats until `expected` (a subset of event types) is reached; returns the last counts. */
  async waitForCounts(expected: Record<string, number>, limitMs = 60_000): Promise<Record<string, number>> {
    const deadline = Date.now() + limitMs;
    for (;;) {
      const counts = await this.eventTypeCounts();
      const reached = Object.entries(expected).every(([type, count]) => (counts[type] ?? 0) >= count);
      if (reached || Date.now() > deadline) return counts;
      await sleep(250);
    }
  }

  /**
   * SIGTERM: the dev server stops serving, delivers every pending bus message and says so; fails
   * unless it said so. Returns how the process ended ('0', another code, or a signal name): the
   * embedded ClickHouse (chDB) occasionally crashes in its own teardown at interpreter exit, after
   * the clean stop, which callers report as a diagnostic rather than as an SDK failure.
   */
  async stop(): Promise<string> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return 'not running';
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code, signal) => resolve(signal ?? String(code))),
    );
    child.kill('SIGTERM');
    const status = await exited;
    if (!this.#output.includes(CLEAN_STOP_LINE)) {
      throw new Error(`devserver ended (${status}) without a clean stop:\n${this.output}`);
    }
    return status;
  }

  async destroy(): Promise<string> {
    try {
      return await this.stop();
    } finally {
      await rm(this.dataDir, { recursive: true, force: true });
    }
  }

  /** The tail of what the current server process printed, for failure messages. */
  get output(): string {
    return this.#output.slice(-20_000);
  }
}
