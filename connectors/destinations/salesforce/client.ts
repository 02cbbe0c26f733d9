import { AuthError, ConnectorConfigError, RateLimitedError } from '#connectors/sdk/errors';
import {
  createHttpClient,
  type HttpClient,
  HttpError,
  type HttpRefusal,
  type HttpRequest,
  type HttpResponse,
} from '#connectors/sdk/http';
import type { JsonValue, RequestPace } from '#connectors/sdk/types';
import { type Credentials, requestSession, type Session } from './auth.ts';
import { type Describe, readDescribe } from './fields.ts';

/**
 * The REST calls of the Salesforce destination, on top of the shared HTTP client: a session from
 * the OAuth token endpoint (renewed once on `401 INVALID_SESSION_ID`), the 403s told apart
 * (`refusal`), the org's API usage read from every `Sforce-Limit-Info` header, and sObject
 * Collections, SOQL and describe. Every request — login, describe, query, job poll — takes a slot
 * of the lane's pace first.
 *
 * Which calls may be sent twice (`idempotent`, see connectors/sdk/http.ts):
 * - GET (describe, query, job info and results), the token POST: reads, or harmless twice;
 * - PATCH `composite/sobjects/{Object}/{ExternalIdField}` (upsert by external ID), PATCH
 *   `composite/sobjects` (update by Id), DELETE `composite/sobjects`: the same result twice;
 * - POST `composite/sobjects` (create) and POST `jobs/ingest` (a new Bulk API job) are NOT: a
 *   timeout, a dropped connection or a 5xx throws UnconfirmedWriteError, and write.ts / bulk.ts
 *   look the records (or the job) up before deciding; the CSV upload (PUT) is not resent either.
 */

export interface SalesforceClientOptions {
  readonly loginUrl: string;
  readonly credentials: Credentials;
  /** e.g. `62.0`. */
  readonly apiVersion: string;
  /** Replaces the token's `instance_url` (proxies, tests). */
  readonly baseUrl?: string | undefined;
  readonly timeoutMs?: number | undefined;
  /** Share of the org's daily allocation (0–1) past which writes stop and wait. */
  readonly maxApiUsage?: number | undefined;
  /** The lane's pace: every request takes a slot. */
  readonly pace?: RequestPace | undefined;
  readonly fetch?: typeof fetch;
}

/** The org's API requests used and allowed over the rolling 24 hours (`Sforce-Limit-Info`). */
export interface ApiUsage {
  readonly used: number;
  readonly limit: number;
}

/** One error of a record, as sObject Collections and the Bulk API report it. */
export interface RecordError {
  readonly statusCode: string;
  readonly message: string;
  readonly fields: readonly string[];
}

/** SaveResult / UpsertResult / DeleteResult: one per record, in the request's order. */
export interface RecordResult {
  readonly id: string | null;
  readonly success: boolean;
  readonly created?: boolean;
  readonly errors: readonly RecordError[];
}

/** A record of a collections request: `attributes.type` plus fields (and `id` for an update). */
export type CollectionRecord = Record<string, JsonValue>;

/**
 * Waits on `REQUEST_LIMIT_EXCEEDED`. Salesforce sends no `Retry-After`: concurrent long-running
 * requests clear within seconds; the daily allocation is a rolling 24-hour window that frees up as
 * old calls age out, so the lane looks again in a few minutes.
 */
export const CONCURRENT_LIMIT_WAIT_MS = 5_000;
export const DAILY_ALLOCATION_WAIT_MS = 5 * 60_000;

interface ActiveSession extends Session {
  readonly http: HttpClient;
}

interface ApiRequest extends HttpRequest {
  /** A data change: subject to `maxApiUsage`. */
  readonly write?: boolean;
}

export class SalesforceClient {
  private session: Promise<ActiveSession> | undefined;
  private readonly describes = new Map<string, Promise<Describe>>();
  /** The last `Sforce-Limit-Info: api-usage=N/M` seen. */
  usage: ApiUsage | undefined;

  constructor(private readonly options: SalesforceClientOptions) {}

  private get dataPath(): string {
    return `/services/data/v${this.options.apiVersion}`;
  }

  private open(): Promise<ActiveSession> {
    if (!this.session) {
      const opening = requestSession(this.options.loginUrl, this.options.credentials, {
        timeoutMs: this.options.timeoutMs,
        fetch: this.options.fetch,
        pace: this.options.pace,
      }).then((session) => ({
        ...session,
        http: createHttpClient({
          baseUrl: this.options.baseUrl ?? session.instanceUrl,
          vendor: 'Salesforce',
          headers: { authorization: `Bearer ${session.accessToken}` },
          secrets: [session.accessToken, secretOf(this.options.credentials)],
          timeoutMs: this.options.timeoutMs,
          fetch: this.options.fetch,
          pace: this.options.pace,
          refusal: (refusal) => (refusal.status === 403 ? this.forbidden(refusal) : undefined),
        }),
      }));
      this.session = opening;
      opening.catch(() => {
        if (this.session === opening) this.session = undefined;
      });
    }
    return this.session;
  }

  /**
   * One REST call under `/services/data/vXX.X` (or an absolute `/services/...` path, as in
   * `nextRecordsUrl`). Statuses in `accept` come back to the caller; 401 renews the session once.
   */
  async api<T = unknown>(request: ApiRequest): Promise<HttpResponse<T>> {
    if (request.write) this.checkUsage();
    const path = request.path.startsWith('/services/') ? request.path : `${this.dataPath}/${request.path}`;
    for (let renewed = false; ; renewed = true) {
      const session = await this.open();
      let response: HttpResponse<T>;
      try {
        response = await session.http.request<T>({ ...request, path, accept: [...(request.accept ?? []), 401] });
      } catch (error) {
        if (error instanceof HttpError) throw refused(request.method, path, error.status, error.body, session.http);
        throw error;
      }
      this.track(response.headers);
      if (response.status === 401) {
        if (!renewed) {
          // The session expired or was revoked: one new token, then the same call again.
          if (this.session && (await this.session.catch(() => undefined)) === session) this.session = undefined;
          continue;
        }
        const { code, message } = vendorError(response.body, session.http);
        throw new AuthError(
          `Salesforce refused the session on ${request.method ?? 'GET'} ${path} even after a new token (401 ${code}: ${message}): check the app's OAuth scopes (api) and the integration user's access`,
        );
      }
      return response;
    }
  }

  /** The user the session runs as (the `createdById` of its Bulk API jobs), when the token said. */
  async userId(): Promise<string | undefined> {
    return (await this.open()).userId;
  }

  /**
   * A 403, told apart by its `errorCode` (REST API status codes: "403 — The request has been
   * refused. Verify that the logged-in user has appropriate permissions. If the error code is
   * REQUEST_LIMIT_EXCEEDED, you've exceeded API request limits in your org",
   * https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm):
   * - `REQUEST_LIMIT_EXCEEDED`: rate limiting, not credentials — the concurrent long-running
   *   request limit (seconds) or the rolling 24-hour allocation (minutes), per
   *   https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm;
   *   the HTTP client slows the lane down (`pace.throttled()`);
   * - `API_DISABLED_FOR_ORG`: the org's edition has no API access, or the user lacks the
   *   `API Enabled` permission — a setting, not a secret (ConnectorConfigError);
   * - anything else (`INSUFFICIENT_ACCESS…`): the integration user's permissions (AuthError).
   */
  private forbidden(refusal: HttpRefusal): Error {
    const { code, message } = vendorError(refusal.body);
    if (code === 'REQUEST_LIMIT_EXCEEDED') {
      const concurrent = /concurrent/i.test(message);
      const wait = concurrent ? CONCURRENT_LIMIT_WAIT_MS : DAILY_ALLOCATION_WAIT_MS;
      return new RateLimitedError(
        `${refusal.where} was refused: ${code} (${message})${this.usageText()}; retry after ${wait} ms`,
        wait,
      );
    }
    if (code === 'API_DISABLED_FOR_ORG') {
      return new ConnectorConfigError(
        `${refusal.where} was refused (403 ${code}: ${message}): the org's edition has no API access, or the integration user lacks the "API Enabled" permission — grant API Enabled in the user's profile or a permission set (Setup → Permission Sets → System Permissions)`,
      );
    }
    return new AuthError(
      `${refusal.where} was refused (403 ${code}: ${message}): the integration user lacks a permission (object or field access, View All Data for non-unique External ID fields)`,
    );
  }

  private track(headers: Headers): void {
    const match = /api-usage=(\d+)\/(\d+)/.exec(headers.get('sforce-limit-info') ?? '');
    if (match) this.usage = { used: Number(match[1]), limit: Number(match[2]) };
  }

  private usageText(): string {
    return this.usage ? ` (org API usage ${this.usage.used}/${this.usage.limit} over 24 h)` : '';
  }

  private checkUsage(): void {
    const ceiling = this.options.maxApiUsage;
    if (ceiling === undefined || !this.usage || this.usage.limit <= 0) return;
    if (this.usage.used >= ceiling * this.usage.limit) {
      throw new RateLimitedError(
        `Salesforce: the org has used ${this.usage.used} of its ${this.usage.limit} daily API requests, past max_api_usage ${ceiling}; writes wait so other integrations keep their share`,
        DAILY_ALLOCATION_WAIT_MS,
      );
    }
  }

  /** Checks the credentials and the API version with the lightest call there is. */
  async check(): Promise<void> {
    const response = await this.api({ path: '', accept: [404] });
    if (response.status === 404) {
      throw new ConnectorConfigError(
        `Salesforce: this org does not serve REST API version ${this.options.apiVersion}: set api_version to one it supports (e.g. 62.0)`,
      );
    }
  }

  /** Describe of an object, once per connection. */
  describe(object: string): Promise<Describe> {
    let described = this.describes.get(object);
    if (!described) {
      described = this.fetchDescribe(object);
      this.describes.set(object, described);
      described.catch(() => this.describes.delete(object));
    }
    return described;
  }

  private async fetchDescribe(object: string): Promise<Describe> {
    const response = await this.api({ path: `sobjects/${encodeURIComponent(object)}/describe`, accept: [404] });
    if (response.status === 404) {
      throw new ConnectorConfigError(
        `Salesforce has no object ${object} the integration user can see: use the API name (Contact, Lead, Account, My_Object__c) and check the user's object permissions`,
      );
    }
    const describe = readDescribe(response.body);
    if (!describe) throw new ConnectorConfigError(`Salesforce answered an unreadable describe for ${object}`);
    return describe;
  }

  /**
   * Upserts up to 200 records by an external ID field, each on its own (`allOrNone: false`)
   * (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm).
   */
  async upsert(object: string, externalIdField: string, records: CollectionRecord[]): Promise<RecordResult[]> {
    return this.collection(
      'upsert',
      records.length,
      {
        method: 'PATCH',
        path: `composite/sobjects/${encodeURIComponent(object)}/${encodeURIComponent(externalIdField)}`,
        json: { allOrNone: false, records },
      },
      object,
    );
  }

  /** Updates up to 200 records by Id (resources_composite_sobjects_collections_update.htm). */
  async update(object: string, records: CollectionRecord[]): Promise<RecordResult[]> {
    return this.collection(
      'update',
      records.length,
      { method: 'PATCH', path: 'composite/sobjects', json: { allOrNone: false, records } },
      object,
    );
  }

  /** Creates up to 200 records (resources_composite_sobjects_collections_create.htm). */
  async create(object: string, records: CollectionRecord[]): Promise<RecordResult[]> {
    return this.collection(
      'create',
      records.length,
      { method: 'POST', path: 'composite/sobjects', json: { allOrNone: false, records } },
      object,
    );
  }

  /** Deletes up to 200 records by Id (resources_composite_sobjects_collections_delete.htm). */
  async delete(object: string, ids: readonly string[]): Promise<RecordResult[]> {
    return this.collection(
      'delete',
      ids.length,
      { method: 'DELETE', path: 'composite/sobjects', query: { ids: ids.join(','), allOrNone: false } },
      object,
    );
  }

  private async collection(what: string, count: number, request: ApiRequest, object: string): Promise<RecordResult[]> {
    const response = await this.api({ ...request, write: true });
    const results = readResults(response.body);
    if (!results || results.length !== count) {
      throw new ConnectorConfigError(
        `Salesforce answered the ${what} of ${count} ${object} record(s) with ${results ? `${results.length} result(s)` : 'no result list'}`,
      );
    }
    return results;
  }

  /** Runs a SOQL query and follows `nextRecordsUrl` to the last page. */
  async query(soql: string): Promise<Record<string, JsonValue>[]> {
    const records: Record<string, JsonValue>[] = [];
    let response = await this.api<QueryPage>({ path: 'query', query: { q: soql } });
    for (;;) {
      const page = response.body;
      if (!page || !Array.isArray(page.records))
        throw new ConnectorConfigError('Salesforce answered a query with no records list');
      records.push(...page.records);
      if (page.done !== false || typeof page.nextRecordsUrl !== 'string') return records;
      response = await this.api<QueryPage>({ path: page.nextRecordsUrl });
    }
  }
}

interface QueryPage {
  readonly done?: boolean;
  readonly nextRecordsUrl?: string;
  readonly records?: Record<string, JsonValue>[];
}

function secretOf(credentials: Credentials): string | undefined {
  return credentials.flow === 'client_credentials' ? credentials.clientSecret : undefined;
}

/** `[{ "message": "...", "errorCode": "..." }]`, the REST API's error body. */
export function vendorError(body: unknown, http?: HttpClient): { code: string; message: string } {
  const first = Array.isArray(body) ? body[0] : body;
  const entry = typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : {};
  const code = typeof entry.errorCode === 'string' ? entry.errorCode : 'UNKNOWN';
  const raw = typeof entry.message === 'string' ? entry.message : typeof body === 'string' ? body : '';
  const message = (http ? http.redact(raw) : raw).slice(0, 300);
  return { code, message };
}

/** A whole request refused (400, 404, 405…): the sync's object, fields or the options are wrong. */
function refused(
  method: string | undefined,
  path: string,
  status: number,
  body: unknown,
  http: HttpClient,
): ConnectorConfigError {
  const { code, message } = vendorError(body, http);
  return new ConnectorConfigError(`Salesforce refused ${method ?? 'GET'} ${path} (${status} ${code}): ${message}`);
}

function readResults(body: unknown): RecordResult[] | undefined {
  if (!Array.isArray(body)) return undefined;
  return body.map((entry: Record<string, unknown>) => ({
    id: typeof entry?.id === 'string' ? entry.id : null,
    success: entry?.success === true,
    ...(typeof entry?.created === 'boolean' ? { created: entry.created } : {}),
    errors: Array.isArray(entry?.errors)
      ? (entry.errors as Record<string, unknown>[]).map((e) => ({
          statusCode: typeof e?.statusCode === 'string' ? e.statusCode : 'UNKNOWN',
          message: typeof e?.message === 'string' ? e.message : '',
          fields: Array.isArray(e?.fields) ? e.fields.filter((f): f is string => typeof f === 'string') : [],
        }))
      : [],
  }));
}
