// The one way the console talks to the API: same-origin `fetch`, JSON in and out, the API's error
// shape turned into `ApiError`, the access JWT kept in memory and refreshed silently before it expires.
import type { components } from './schema';

export type Schemas = components['schemas'];

export interface FieldError {
  pointer: string;
  message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  /** The response body as sent (health answers 503 with its own shape, naming the failing part). */
  readonly body: unknown;

  constructor(status: number, code: string, message: string, details: Record<string, unknown>, body: unknown = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.body = body;
  }

  /** The per-field problems of a 400, keyed by JSON pointer (`/definition/conditions/0/value`). */
  get fieldErrors(): Record<string, string> {
    const errors = (this.details.errors ?? []) as FieldError[];
    return Object.fromEntries(errors.map((e) => [e.pointer, e.message]));
  }
}

export interface Tokens {
  access: string;
  refresh: string;
  expires_in: number;
}

type Listener = () => void;

// The refresh token survives a reload of this tab (sessionStorage is per tab and gone when it closes);
// the access token lives only in memory.
const REFRESH_KEY = 'segops.refresh';
const TENANT_KEY = 'segops.tenant';
// Refresh this long before the access token expires, so no request ever carries an expired one.
const REFRESH_MARGIN_SECONDS = 60;

class Session {
  private access: string | null = null;
  private refreshTimer: number | undefined;
  private refreshing: Promise<boolean> | null = null;
  private listeners = new Set<Listener>();
  tenantId: number | null = Number(sessionStorage.getItem(TENANT_KEY)) || null;

  get signedIn(): boolean {
    return this.access !== null;
  }

  get accessToken(): string | null {
    return this.access;
  }

  get hasRefreshToken(): boolean {
    return sessionStorage.getItem(REFRESH_KEY) !== null;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    this.listeners.forEach((l) => l());
  }

  setTokens(tokens: { access: string; refresh?: string | null; expires_in: number }): void {
    this.access = tokens.access;
    if (tokens.refresh) sessionStorage.setItem(REFRESH_KEY, tokens.refresh);
    window.clearTimeout(this.refreshTimer);
    const delay = Math.max(tokens.expires_in - REFRESH_MARGIN_SECONDS, 5) * 1000;
    this.refreshTimer = window.setTimeout(() => void this.refresh(), delay);
    this.emit();
  }

  setTenant(id: number | null): void {
    this.tenantId = id;
    if (id === null) sessionStorage.removeItem(TENANT_KEY);
    else sessionStorage.setItem(TENANT_KEY, String(id));
    this.emit();
  }

  clear(): void {
    this.access = null;
    window.clearTimeout(this.refreshTimer);
    sessionStorage.removeItem(REFRESH_KEY);
    this.setTenant(null);
    onSessionEnd();
  }

  /** Trade the refresh token for a new access token; false (and signed out) when it is refused. */
  refresh(): Promise<boolean> {
    const refresh = sessionStorage.getItem(REFRESH_KEY);
    if (refresh === null) return Promise.resolve(false);
    this.refreshing ??= (async () => {
      try {
        const tokens = await request<{ access: string; refresh?: string; expires_in: number }>(
          'POST',
          '/api/auth/token/refresh/',
          { body: { refresh }, anonymous: true },
        );
        this.setTokens(tokens);
        return true;
      } catch {
        this.clear();
        return false;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }
}

export const session = new Session();

/** Called whenever a session ends (log out, refused, refresh refused): nothing cached for it may outlive it. */
let onSessionEnd: () => void = () => undefined;
export function handleSessionEnd(handler: () => void): void {
  onSessionEnd = handler;
}

/** Called when the API refuses the session: the app sends the person to log in, then back. */
let onUnauthorized: () => void = () => undefined;
export function handleUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | null | undefined>;
  /** Send no credentials and do not treat a 401 as an expired session (login, signup, invitations). */
  anonymous?: boolean;
  signal?: AbortSignal;
  /** `If-Match`: write only if the resource still has this `ETag` (else 412 `precondition_failed`). */
  ifMatch?: string;
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const sentWith = session.accessToken;
  const response = await send(method, path, options);
  if (response.status !== 401 || options.anonymous) return parse<T>(response);
  // A refusal of a token the session has since replaced (a login or refresh meanwhile) says nothing
  // about the current session: send again with the current token.
  if ((session.signedIn && session.accessToken !== sentWith) || (await session.refresh())) {
    return parse<T>(await send(method, path, options));
  }
  session.clear();
  onUnauthorized();
  return parse<T>(response);
}

function send(method: string, path: string, options: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  if (options.ifMatch !== undefined) headers['If-Match'] = options.ifMatch;
  if (!options.anonymous) {
    if (session.accessToken) headers.Authorization = `Bearer ${session.accessToken}`;
    if (session.tenantId !== null) headers['X-SegOps-Tenant'] = String(session.tenantId);
  }
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(options.query ?? {})) {
    if (value !== null && value !== undefined && value !== '') query.set(key, String(value));
  }
  const url = query.size ? `${path}?${query}` : path;
  return fetch(url, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
  });
}

async function parse<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  const data: unknown = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = (data as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null)
      ?.error;
    throw new ApiError(
      response.status,
      error?.code ?? 'http_error',
      error?.message ?? `${response.status} ${response.statusText}`,
      error?.details ?? {},
      data,
    );
  }
  return data as T;
}

/** Download a file the API streams (exports): fetched with the JWT, saved through a blob link. */
export async function download(path: string, filename: string): Promise<void> {
  let response = await send('GET', path, {});
  if (response.status === 401 && (await session.refresh())) response = await send('GET', path, {});
  if (!response.ok) await parse(response);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const api = {
  get: <T>(path: string, query?: RequestOptions['query']) => request<T>('GET', path, { query }),
  post: <T>(path: string, body?: unknown) => request<T>('POST', path, { body }),
  patch: <T>(path: string, body: unknown, options: Pick<RequestOptions, 'ifMatch'> = {}) =>
    request<T>('PATCH', path, { body, ...options }),
  put: <T>(path: string, body: unknown) => request<T>('PUT', path, { body }),
  delete: (path: string, options: Pick<RequestOptions, 'ifMatch'> = {}) => request<void>('DELETE', path, options),
};
