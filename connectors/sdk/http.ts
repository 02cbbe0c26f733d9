import { setTimeout as sleep } from 'node:timers/promises';
import { AuthError, RateLimitedError, TransientError, UnconfirmedWriteError } from './errors.ts';
import type { RequestPace } from './types.ts';

/**
 * The HTTP client every SaaS connector uses: every request takes its slot from the lane's pace
 * first; timeouts; retries of network errors and 5xx within a small budget (a Lambda must not idle
 * on a flapping API) — for idempotent calls only: a create that may have reached the vendor is
 * never sent twice blindly (UnconfirmedWriteError); `Retry-After` and the vendors' rate-limit
 * headers turned into RateLimitedError; the vendor's own refusals classified (`refusal`), else
 * 401/403 into AuthError; every secret redacted from every error message.
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
  /**
   * The vendor's documented meaning of a refusal, before the defaults (401/403 → AuthError, 429 →
   * RateLimitedError, other 4xx → HttpError): e.g. a 403 whose body says the account is throttled,
   * or that a setting is off. Returns the error to throw, or undefined for the default.
   */
  readonly refusal?: (response: HttpRefusal) => Error | undefined;
  /** The lane's pace: each attempt of each request takes a slot first. */
  readonly pace?: RequestPace;
  /** Injected for tests. */
  readonly fetch?: typeof fetch;
}

/** A non-2xx answer the caller did not accept, for `refusal`. */
export interface HttpRefusal {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
  /** "HubSpot POST /crm/v3/…", for messages. */
  readonly where: string;
  /** The first 300 characters of the body, secrets redacted. */
  readonly snippet: string;
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
  /**
   * Whether sending the request twice does no harm. Default: every method but POST. A POST that
   * reads (a search) or upserts by a key says `true`; a create leaves it false, and is not retried
   * after a timeout, a dropped connection or a 5xx: UnconfirmedWriteError, for the connector to
   * reconcile.
   */
  readonly idempotent?: boolean;
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
      const idempotent = request.idempotent ?? (request.method ?? 'GET') !== 'POST';
      const unconfirmed = (problem: string, attempt: number) =>
        new UnconfirmedWriteError(
          redact(
            `${where(request)} ${problem} (after ${attempt} attempt(s)); it may have been applied, so it was not sent again`,
          ),
        );
      let slept = 0;
      let lastProblem = '';
      for (let attempt = 1; attempt <= attempts; attempt++) {
        let response: Response;
        await options.pace?.take();
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
          // A refused connection never reached the vendor: safe to send again, whatever the call.
          if (!idempotent && !neverSent(error)) throw unconfirmed(lastProblem, attempt);
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
        const vendorError = options.refusal?.({
          status,
          headers: response.headers,
          body: parsed,
          where: where(request),
          snippet,
        });
        if (vendorError) {
          if (vendorError instanceof RateLimitedError && vendorError.slowsLane) await options.pace?.throttled();
          throw vendorError;
        }
        if (status === 429) {
          await options.pace?.throttled();
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
          // 408: the vendor gave up waiting for the request, so it did nothing; a 5xx may have.
          if (!idempotent && status !== 408) throw unconfirmed(lastProblem, attempt);
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

/** A connection the peer refused (or a name that did not resolve): the request never left. */
function neverSent(error: unknown): boolean {
  const code = ((error as { cause?: { code?: string } }).cause?.code ?? '') as string;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
}

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
