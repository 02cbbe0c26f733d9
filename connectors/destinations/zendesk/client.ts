import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectorConfigError, RateLimitedError, TransientError } from '#connectors/sdk/errors';
import {
  createHttpClient,
  HttpError,
  type HttpRefusal,
  type HttpRequest,
  type HttpResponse,
} from '#connectors/sdk/http';
import type { JsonValue, RequestPace } from '#connectors/sdk/types';
import type { ZendeskConnection } from './options.ts';

/**
 * A job status (https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/):
 * bulk user endpoints answer one and work in the background; `results` is filled when it is done.
 * `status` is "queued", "working", "failed" or "completed" on that page; Zendesk's other job
 * statuses also end "killed" (the Apps API's job status: "One of "queued", "working", "failed",
 * "completed", "killed"", https://developer.zendesk.com/api-reference/ticketing/apps/apps/), and
 * earlier editions of the Job Statuses reference listed it for bulk jobs too. Inferred: a bulk
 * user job can end "killed", without results: its users are sent again, never polled forever.
 */
export interface JobStatus {
  readonly id: string;
  readonly status: string;
  readonly message?: string | null;
  readonly total?: number | null;
  readonly progress?: number | null;
  /** One entry per user (in request order), or `{ success: true }` for some bulk deletes. */
  readonly results?: unknown;
}

/**
 * One entry of a job's `results` (Job Statuses, "Results"): a bulk create gives `id` and `index`;
 * a bulk update `action`, `id`, `status` ("Updated") and `success`; a failure `error` and
 * `details` (the OpenAPI schema's CreateResourceResult | UpdateResourceResult | FailedResult).
 * `create_or_update_many` is observed to answer `{ id, status: "Created" | "Updated", email }` and
 * `{ id, error, details, status: "Failed" }` without `index`, in request order (confirmed by
 * Zendesk, https://support.zendesk.com/hc/en-us/community/posts/4408861015066).
 */
export interface JobResult {
  readonly index?: number;
  readonly id?: number | null;
  readonly action?: string;
  readonly status?: string;
  readonly success?: boolean;
  readonly error?: string;
  readonly details?: string;
  readonly email?: string | null;
  readonly external_id?: string | null;
}

export interface ZendeskUser {
  readonly id: number;
  readonly external_id?: string | null;
  readonly email?: string | null;
}

export interface ZendeskUserField {
  readonly key: string;
  readonly type: string;
  readonly title?: string;
  readonly active?: boolean;
  /** Lookup fields: `zen:user`, `zen:organization`, `zen:ticket` or `zen:custom_object:<key>`. */
  readonly relationship_target_type?: string | null;
}

/**
 * The end of waiting for a job: done (completed, failed or killed), or not known to be done when
 * time ran out or polling was refused — `throttled` when a rate limit (Zendesk's or the lane's) is
 * why, so the records go back without spending their retry budget.
 */
export type JobWait =
  | { readonly done: true; readonly job: JobStatus }
  | {
      readonly done: false;
      readonly reason: string;
      readonly afterMs: number;
      readonly throttled?: 'rate-limit' | 'pace';
    };

const FINISHED = new Set(['completed', 'failed', 'killed']);
/** First job-status poll, doubling up to the cap: most user jobs of 100 finish within a second or two. */
const FIRST_POLL_MS = 250;
const MAX_POLL_MS = 2_000;
/** Records of a job still running are retried this much later (its create_or_update is idempotent). */
const UNFINISHED_RETRY_MS = 60_000;

export interface ZendeskClientOptions {
  readonly timeoutMs: number;
  /** The lane's pace: every request (lookups, job polls, field discovery too) takes a slot. */
  readonly pace?: RequestPace;
  /** Injected for tests. */
  readonly fetch?: typeof fetch;
}

/** The bulk endpoints that need "bulk user imports" enabled on the account. */
const BULK_IMPORT = /\/users\/(create_many|create_or_update_many)\b/;

/**
 * Zendesk's documented refusals that are not about credentials. The Users API: "To protect the
 * data in your Zendesk account, bulk user imports are not enabled by default in Zendesk accounts.
 * The account owner must contact Zendesk Customer Support to enable the imports. A 403 Forbidden
 * error is returned if data imports are not enabled"
 * (https://developer.zendesk.com/api-reference/ticketing/users/users/#create-many-users and
 * #create-or-update-many-users). The body of that 403 is not documented, so any 403 of those two
 * endpoints is taken for it (the credentials were good enough for the lookups and for check());
 * other 403s stay authentication errors. Zendesk documents no 403 for throttling: rate limits and
 * the job limit are 429s (https://developer.zendesk.com/api-reference/introduction/rate-limits/).
 */
export function zendeskRefusal(response: HttpRefusal): Error | undefined {
  if (response.status === 403 && BULK_IMPORT.test(response.where)) {
    return new ConnectorConfigError(
      `${response.where} was refused (403): bulk user imports are not enabled on this Zendesk account — the account owner must ask Zendesk Customer Support to enable them (https://developer.zendesk.com/api-reference/ticketing/users/users/#create-or-update-many-users); if they are enabled, the agent may lack permission to manage users. Zendesk said: ${response.snippet}`,
    );
  }
  return undefined;
}

/** The Zendesk calls Backflow makes, on the shared HTTP client (retries, 429, 401/403, redaction). */
export function createZendeskClient(connection: ZendeskConnection, options: ZendeskClientOptions) {
  const http = createHttpClient({
    vendor: 'Zendesk',
    baseUrl: connection.baseUrl,
    headers: { authorization: connection.authorization },
    secrets: connection.secrets,
    timeoutMs: options.timeoutMs,
    refusal: zendeskRefusal,
    ...(options.pace && { pace: options.pace }),
    ...(options.fetch && { fetch: options.fetch }),
  });

  /** A request whose refusals (other than auth and rate limits) are whole-batch configuration errors. */
  const call = async <T>(request: HttpRequest): Promise<T> => {
    try {
      return (await http.request<T>(request)).body;
    } catch (error) {
      throw translate(error, http.redact);
    }
  };

  return {
    redact: http.redact,

    /** The authenticated user: who the token acts as. */
    async me(): Promise<{ id: number | null; role?: string; email?: string | null }> {
      const body = await call<{ user?: { id: number | null; role?: string; email?: string | null } }>({
        path: 'api/v2/users/me',
      });
      return body.user ?? { id: null };
    },

    /** Every user field, following cursor pagination (at most 100 per page). */
    async userFields(): Promise<ZendeskUserField[]> {
      const fields: ZendeskUserField[] = [];
      let after: string | undefined;
      for (let page = 0; page < 1000; page++) {
        const body = await call<{
          user_fields?: ZendeskUserField[];
          meta?: { has_more?: boolean; after_cursor?: string | null };
        }>({ path: 'api/v2/user_fields', query: { 'page[size]': 100, 'page[after]': after } });
        fields.push(...(body.user_fields ?? []));
        if (!body.meta?.has_more || !body.meta.after_cursor) return fields;
        after = body.meta.after_cursor;
      }
      throw new TransientError('Zendesk GET api/v2/user_fields: more than 1000 pages, giving up');
    },

    /** Users by external id (at most 100; matching is case-insensitive on Zendesk's side). A read: retried like any GET. */
    async usersByExternalId(externalIds: readonly string[]): Promise<ZendeskUser[]> {
      const body = await call<{ users?: ZendeskUser[] }>({
        path: 'api/v2/users/show_many',
        query: { external_ids: externalIds.join(',') },
      });
      return body.users ?? [];
    },

    /**
     * Queues a bulk job and returns its status. `create_many` is a POST that creates: after a
     * timeout or a 5xx it is not sent again (UnconfirmedWriteError), for the caller to look up.
     */
    async queueJob(request: HttpRequest): Promise<JobStatus> {
      const body = await call<{ job_status?: JobStatus }>(request);
      if (!body.job_status?.id) {
        throw new TransientError(
          `Zendesk ${request.method ?? 'GET'} ${request.path} answered without a job_status: ${http.redact(JSON.stringify(body)).slice(0, 200)}`,
        );
      }
      return body.job_status;
    },

    /**
     * Polls a job with a short backoff until it is done or `timeoutMs` is spent: a Lambda must not
     * idle for minutes on a busy account. Each poll is a paced request (a 429 slows the lane); a
     * rate limit while polling waits its Retry-After when that fits, else the records go back
     * throttled. The job was queued, so a failure while polling never throws: its records are
     * handed back for a later, idempotent retry.
     */
    async waitForJob(job: JobStatus, timeoutMs: number): Promise<JobWait> {
      const deadline = Date.now() + timeoutMs;
      let current = job;
      let delay = FIRST_POLL_MS;
      while (!FINISHED.has(current.status)) {
        const remaining = deadline - Date.now();
        const pending = `Zendesk job ${current.id} still ${current.status} after ${timeoutMs} ms (job_timeout_ms)`;
        if (remaining <= 0) return { done: false, reason: pending, afterMs: UNFINISHED_RETRY_MS };
        await sleep(Math.min(delay, remaining));
        delay = Math.min(delay * 2, MAX_POLL_MS);
        let response: HttpResponse<{ job_status?: JobStatus }>;
        try {
          response = await http.request({ path: `api/v2/job_statuses/${current.id}`, accept: [404] });
        } catch (error) {
          if (!(error instanceof RateLimitedError)) {
            const said = translate(error, http.redact);
            return {
              done: false,
              reason: `polling Zendesk job ${current.id} failed: ${said instanceof Error ? said.message : String(said)}`,
              afterMs: UNFINISHED_RETRY_MS,
            };
          }
          const wait = error.retryAfterMs ?? 1000;
          if (Date.now() + wait >= deadline) {
            return {
              done: false,
              reason: `polling Zendesk job ${current.id} was rate limited: ${error.message}`,
              afterMs: Math.max(wait, 1000),
              throttled: error.paced ? 'pace' : 'rate-limit',
            };
          }
          await sleep(wait);
          continue;
        }
        if (response.status === 404) {
          // Job statuses are kept for a limited time: the records are sent again (idempotent upserts).
          return { done: false, reason: `Zendesk no longer knows job ${current.id} (404)`, afterMs: 1000 };
        }
        if (response.body.job_status) current = response.body.job_status;
      }
      return { done: true, job: current };
    },
  };
}

export type ZendeskClient = ReturnType<typeof createZendeskClient>;

/** Zendesk error bodies: `{ error, description }` or `{ error: { title, message } }`. */
function describeError(body: unknown): string {
  if (body === null || typeof body !== 'object') return typeof body === 'string' ? body.slice(0, 300) : '';
  const b = body as Record<string, JsonValue>;
  const error = b.error;
  if (error && typeof error === 'object' && !Array.isArray(error)) {
    return [error.title, error.message].filter((s) => typeof s === 'string').join(': ');
  }
  return [error, b.description, b.message, b.details ? JSON.stringify(b.details) : undefined]
    .filter((s) => typeof s === 'string' && s !== '')
    .join(': ');
}

/** 4xx answers other than auth and rate limits: what the user must fix, in Zendesk's words. */
function translate(error: unknown, redact: (s: string) => string): unknown {
  if (!(error instanceof HttpError)) return error;
  const said = redact(describeError(error.body) || error.message).slice(0, 400);
  if (error.status === 404) {
    return new ConnectorConfigError(
      `${error.message.split(' refused')[0]} was not found (404): ${said} — check subdomain / base_url`,
    );
  }
  if (error.status === 409) return new TransientError(`${error.message}: ${said}`);
  if (error.status === 413) {
    return new ConnectorConfigError(`${error.message}: ${said} — lower the lane's batch_size`);
  }
  return new ConnectorConfigError(`${error.message.split(':')[0]}: ${said}`);
}
