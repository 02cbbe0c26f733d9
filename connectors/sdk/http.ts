import { setTimeout as sleep } from 'node:timers/promises';
import { AuthError, RateLimitedError, TransientError } from './errors.ts';

/**
 * The HTTP client every SaaS connector uses: timeouts, retries of network errors and 5xx within
 * a small budget (a Lambda must not idle on a flapping API), `Retry-After` and the vendors'
 * rate-limit headers turned into RateLimitedError, 401/403 into AuthError, and every secret
 * redacted from every error message.
 */
export interface HttpClientOptions {
  /** Base URL; every connector takes an override (EU data centres, proxies, tests). */
  readonly baseUrl: string;
  /** Headers sent on every request (authorization, versions). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Values that must never appear in an error: tokens, keys, passwords. */
  readonly secrets?: readonly (string | undefined)[];
  readonly timeoutMs?: number;
  /** Attempts for network errors, 408 and 5xx (default 3). */
  readonly maxAttempts?: number;
  /** Total sleeping allowed between attempts of one call (default 2 s). */
  readonly maxSleepMs?: number;
  /** Name used in error messages, e.g. "HubSpot". */
  readonly vendor: string;
  /** Vendor-specific wait hint from a response's headers (ms), when `Retry-After` is absent. */
  readonly retryAfter?: (headers: Headers, now: number) => number | undefined;
  /** Injected for tests. */
  readonly fetch?: typeof fetch;
}

export interface HttpRequest {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly json?: unknown;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Statuses the caller handles itself (e.g. 400/404 answered per record, 207 multi-status). */
  readonly accept?: readonly number[];
}

export interface HttpResponse<T = unknown> {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON when the body is JSON, else the text (empty string for no body). */
  readonly body: T;
}

/** The vendor refused the request as a whole (4xx other than auth and rate limits). */
export class HttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function createHttpClient(options: HttpClientOptions) {
  const doFetch = options.fetch ?? fetch;
  const secrets = (options.secrets ?? []).filter((s): s is string => typeof s === 'string' && s.length >= 4);
  const redact = (text: string) => secrets.reduce((t, s) => t.split(s).join('[redacted]'), text);
  const where = (request: HttpRequest) => `${options.vendor} ${request.method ?? 'GET'} ${request.path}`;

  return {
    redact,
    async request<T = unknown>(request: HttpRequest): Promise<HttpResponse<T>> {
      const url = new URL(
        request.path.replace(/^\//, ''),
        options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`,
      );
      for (const [k, v] of Object.entries(request.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
      const body = request.json !== undefined ? JSON.stringify(request.json) : request.body;
      const headers: Record<string, string> = {
        'user-agent': 'backflow/0.1',
        accept: 'application/json',
        ...(request.json !== undefined ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
        ...request.headers,
      };
      const attempts = Math.max(1, options.maxAttempts ?? 3);
      let slept = 0;
      let lastProblem = '';
      for (let attempt = 1; attempt <= attempts; attempt++) {
        let response: Response;
        try {
          response = await doFetch(url, {
            method: request.method ?? 'GET',
            headers,
            body,
            redirect: 'manual',
            signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
          });
        } catch (error) {
          lastProblem =
            (error as Error).name === 'TimeoutError' ? 'timed out' : `network error: ${(error as Error).message}`;
          if (attempt < attempts && slept < (options.maxSleepMs ?? 2000)) {
            slept += await backoff(attempt);
            continue;
          }
          throw new TransientError(redact(`${where(request)} ${lastProblem} (after ${attempt} attempt(s))`));
        }
        const text = await response.text();
        const parsed = parseBody(text, response.headers.get('content-type'));
        const status = response.status;
        if (request.accept?.includes(status) || (status >= 200 && status < 300)) {
          return { status, headers: response.headers, body: parsed as T };
        }
        const snippet = redact(text.slice(0, 300));
        if (status === 429) {
          const wait = retryAfterMs(response.headers, Date.now()) ?? options.retryAfter?.(response.headers, Date.now());
          throw new RateLimitedError(
            `${where(request)} was rate limited (429)${wait ? `; retry after ${wait} ms` : ''}`,
            wait,
          );
        }
        if (status === 401 || status === 403) {
          throw new AuthError(
            `${where(request)} refused the credentials (${status}): ${snippet} — check the secret's token and its scopes`,
          );
        }
        if (status === 408 || status >= 500) {
          lastProblem = `answered ${status}: ${snippet}`;
          if (attempt < attempts && slept < (options.maxSleepMs ?? 2000)) {
            slept += await backoff(attempt);
            continue;
          }
          throw new TransientError(`${where(request)} ${lastProblem} (after ${attempt} attempt(s))`);
        }
        throw new HttpError(`${where(request)} refused the request (${status}): ${snippet}`, status, parsed);
      }
      throw new TransientError(redact(`${where(request)} ${lastProblem}`));
    },
  };
}

export type HttpClient = ReturnType<typeof createHttpClient>;

async function backoff(attempt: number): Promise<number> {
  const ms = Math.round(100 * 2 ** (attempt - 1) * (0.5 + Math.random()));
  await sleep(ms);
  return ms;
}

function parseBody(text: string, contentType: string | null): unknown {
  if (text === '') return '';
  if (contentType?.includes('json') || /^\s*[[{]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/**
 * Milliseconds to wait from `Retry-After` (seconds or an HTTP date), or from `X-RateLimit-Reset`
 * / `RateLimit-Reset` (epoch seconds when large, seconds from now otherwise).
 */
export function retryAfterMs(headers: Headers, now: number): number | undefined {
  const retryAfter = headers.get('retry-after');
  if (retryAfter) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds * 1000));
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  const reset = headers.get('x-ratelimit-reset') ?? headers.get('ratelimit-reset');
  if (reset && Number.isFinite(Number(reset))) {
    const value = Number(reset);
    return value > 1e9 ? Math.max(0, value * 1000 - now) : Math.round(value * 1000);
  }
  return undefined;
}
