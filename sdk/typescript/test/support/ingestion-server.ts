/**
 * An HTTP server on 127.0.0.1 that plays the ingestion API's batch endpoint for unit tests:
 * records every request and answers with whatever the test's responder says (202 by default).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WireEvent {
  user_id: string;
  event_type: string;
  occurred_at: string;
  message_id: string;
  payload?: Record<string, unknown>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
  events: WireEvent[];
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Close the connection without any response (a network error for the client). */
  dropConnection?: boolean;
}

export type Responder = (request: RecordedRequest, index: number) => Reply | Promise<Reply>;

export const accept: Responder = (request) => ({ status: 202, body: { queued: request.events.length, skipped: 0 } });

export class IngestionServer {
  readonly requests: RecordedRequest[] = [];
  responder: Responder;
  readonly #server: Server;

  private constructor(server: Server, responder: Responder) {
    this.#server = server;
    this.responder = responder;
  }

  static async start(responder: Responder = accept): Promise<IngestionServer> {
    let instance: IngestionServer | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const rawBody = Buffer.concat(chunks).toString('utf8');
        const parsed = rawBody.length > 0 ? (JSON.parse(rawBody) as { events?: WireEvent[] }) : {};
        const request: RecordedRequest = {
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          rawBody,
          events: parsed.events ?? [],
        };
        const server = instance!;
        const index = server.requests.push(request) - 1;
        void Promise.resolve(server.responder(request, index)).then((reply) => {
          if (reply.dropConnection === true) {
            req.socket.destroy();
            return;
          }
          res.writeHead(reply.status, { 'Content-Type': 'application/json', ...reply.headers });
          res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    instance = new IngestionServer(server, responder);
    return instance;
  }

  get url(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  get events(): WireEvent[] {
    return this.requests.flatMap((r) => r.events);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Event-loop turns that do not depend on (possibly mocked) timers. */
export async function ioTurns(count = 20): Promise<void> {
  for (let i = 0; i < count; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Waits, without timers, until `predicate` holds; fails after 10 s of real time. */
export async function waitFor(predicate: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** A promise with its resolve function, to hold a response until the test releases it. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
