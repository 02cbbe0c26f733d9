import { setTimeout as sleep } from 'node:timers/promises';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#connectors/sdk/errors';
import { createHttpClient, type HttpRefusal } from '#connectors/sdk/http';
import type { RequestPace } from '#connectors/sdk/types';

/** One GoogleAdsError of a GoogleAdsFailure (REST JSON). */
export interface GoogleAdsError {
  readonly errorCode?: Record<string, string>;
  readonly message?: string;
  readonly location?: { readonly fieldPathElements?: readonly { fieldName?: string; index?: number }[] };
  readonly details?: { readonly quotaErrorDetails?: { readonly retryDelay?: string } };
}

interface GoogleRpcError {
  readonly code?: number;
  readonly message?: string;
  readonly status?: string;
  readonly details?: readonly {
    readonly '@type'?: string;
    readonly errors?: readonly GoogleAdsError[];
    readonly requestId?: string;
  }[];
}

export const adsErrors = (status: GoogleRpcError | undefined): GoogleAdsError[] =>
  (status?.details ?? []).flatMap((d) => d.errors ?? []);

const errorCodeText = (error: GoogleAdsError) =>
  Object.entries(error.errorCode ?? {})
    .map(([k, v]) => `${k}.${v}`)
    .join(',');

/** "30s" or "1.5s" → ms. */
function durationMs(text: string | undefined): number | undefined {
  const match = /^(\d+(?:\.\d+)?)s$/.exec(text ?? '');
  return match ? Math.round(Number(match[1]) * 1000) : undefined;
}

/** Errors that are a configuration mistake: the list or the account cannot take this upload. */
const CONFIG_ERRORS = new Set([
  'INVALID_USER_LIST_ID',
  'INVALID_USER_LIST_TYPE',
  'NOT_ON_ALLOWLIST_FOR_USER_DATA',
  'CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS',
  'USER_LIST_NOT_APPLICABLE',
  'OPERATIONS_FOR_CUSTOMER_MATCH_NOT_ALLOWED',
  'RESOURCE_NOT_FOUND',
]);

/**
 * 401 UNAUTHENTICATED: the access token (or the developer token) was refused, and nothing was done.
 * An AuthError to the engine; to the client, the sign to drop a kept access token and get a new one.
 */
class UnauthenticatedError extends AuthError {}

/**
 * Google Ads API errors (https://developers.google.com/google-ads/api/docs/best-practices/error-types
 * and https://developers.google.com/google-ads/api/rest/common/error): `{"error": {code, message,
 * status, details: [GoogleAdsFailure {errors: [{errorCode, message, details}]}]}}`.
 * RESOURCE_EXHAUSTED (429) carries `quotaErrorDetails.retryDelay`.
 */
export function googleRefusal(refusal: HttpRefusal): Error | undefined {
  const error = (refusal.body as { error?: GoogleRpcError } | undefined)?.error;
  if (!error || typeof error !== 'object') return undefined;
  const errors = adsErrors(error);
  const codes = errors.map(errorCodeText).filter(Boolean).join('; ');
  const what = `${refusal.where} answered ${refusal.status} ${error.status ?? ''}${codes ? ` (${codes})` : ''}: ${error.message ?? ''}`;
  if (error.status === 'RESOURCE_EXHAUSTED' || refusal.status === 429) {
    const delays = errors
      .map((e) => durationMs(e.details?.quotaErrorDetails?.retryDelay))
      .filter((d) => d !== undefined);
    return new RateLimitedError(what, delays.length ? Math.max(...delays) : undefined);
  }
  if (error.status === 'UNAUTHENTICATED') {
    return new UnauthenticatedError(`${what} — check the refresh token, the developer token and login_customer_id`);
  }
  if (error.status === 'PERMISSION_DENIED') {
    return new AuthError(`${what} — check the refresh token, the developer token and login_customer_id`);
  }
  if (errors.some((e) => Object.values(e.errorCode ?? {}).some((v) => CONFIG_ERRORS.has(v)))) {
    return new ConnectorConfigError(what);
  }
  return undefined;
}

/** The OAuth token endpoint's refusals: invalid_grant (revoked or expired refresh token), invalid_client. */
function tokenRefusal(refusal: HttpRefusal): Error | undefined {
  const body = refusal.body as { error?: unknown; error_description?: string } | undefined;
  if (typeof body?.error === 'string') {
    return new AuthError(
      `${refusal.where} refused the refresh token (${refusal.status} ${body.error}${body.error_description ? `: ${body.error_description}` : ''}) — issue a new refresh token for the client`,
    );
  }
  return undefined;
}

export interface GoogleClientOptions {
  readonly baseUrl: string;
  readonly apiVersion: string;
  readonly tokenUrl: string;
  readonly customerId: string;
  readonly loginCustomerId?: string;
  readonly developerToken: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly refreshToken: string;
  readonly timeoutMs?: number;
  readonly pace?: RequestPace;
}

export type JobStatus = 'PENDING' | 'RUNNING' | 'SUCCESS' | 'FAILED' | 'UNKNOWN' | 'UNSPECIFIED';

export interface AddOperationsResponse {
  readonly partialFailureError?: GoogleRpcError;
}

export function createGoogleClient(options: GoogleClientOptions) {
  const secrets = [options.developerToken, options.clientId, options.clientSecret, options.refreshToken];
  const tokenUrl = new URL(options.tokenUrl);
  const tokenHttp = createHttpClient({
    vendor: 'Google OAuth',
    baseUrl: `${tokenUrl.origin}${tokenUrl.pathname.replace(/[^/]*$/, '')}`,
    secrets,
    timeoutMs: options.timeoutMs,
    pace: options.pace,
    refusal: tokenRefusal,
  });
  let token: { value: string; until: number } | undefined;

  /** An access token from the refresh token, kept until a minute before it expires. */
  async function accessToken(): Promise<string> {
    if (token && Date.now() < token.until) return token.value;
    const response = await tokenHttp.request<{ access_token?: string; expires_in?: number }>({
      method: 'POST',
      path: tokenUrl.pathname.split('/').pop() ?? '',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        client_id: options.clientId,
        client_secret: options.clientSecret,
        refresh_token: options.refreshToken,
      }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      // Asking for an access token twice does no harm.
      idempotent: true,
    });
    const value = response.body.access_token;
    if (!value) throw new AuthError('Google OAuth answered without an access_token');
    token = { value, until: Date.now() + Math.max(0, (response.body.expires_in ?? 3600) - 60) * 1000 };
    return value;
  }

  const http = createHttpClient({
    vendor: 'Google Ads',
    baseUrl: `${options.baseUrl.replace(/\/$/, '')}/${options.apiVersion}`,
    secrets,
    timeoutMs: options.timeoutMs,
    pace: options.pace,
    refusal: googleRefusal,
  });

  /**
   * One API call. A kept access token can stop working before its `expires_in` (the grant revoked,
   * https://developers.google.com/identity/protocols/oauth2 "Refresh token expiration"); Google's
   * client libraries refresh tokens for their callers
   * (https://developers.google.com/google-ads/api/docs/oauth/internals). So a 401 UNAUTHENTICATED on
   * a kept token drops it and the call is sent once more with a fresh one, as the Salesforce client
   * renews its session once on 401. Inferred: a 401 did nothing, so even a create may be resent.
   * Without this, a token kept from before a revocation failed every write for up to an hour after
   * the access was restored (the membership conformance suite's redrive).
   */
  async function call<T>(path: string, json: unknown, idempotent: boolean): Promise<T> {
    const kept = token !== undefined && Date.now() < token.until;
    try {
      return await send<T>(path, json, idempotent);
    } catch (error) {
      if (!kept || !(error instanceof UnauthenticatedError)) throw error;
      token = undefined;
      return await send<T>(path, json, idempotent);
    }
  }

  async function send<T>(path: string, json: unknown, idempotent: boolean): Promise<T> {
    const access = await accessToken();
    const headers: Record<string, string> = {
      authorization: `Bearer ${access}`,
      'developer-token': options.developerToken,
      ...(options.loginCustomerId ? { 'login-customer-id': options.loginCustomerId } : {}),
    };
    return (await http.request<T>({ method: 'POST', path, json, headers, idempotent })).body;
  }

  const customer = `customers/${options.customerId}`;
  return {
    userListResource: (id: string) => `${customer}/userLists/${id}`,
    /** A token check: one search that reads the customer. */
    async check(): Promise<void> {
      await accessToken();
      await call(`${customer}/googleAds:search`, { query: 'SELECT customer.id FROM customer LIMIT 1' }, true);
    },
    /**
     * OfflineUserDataJobService.CreateOfflineUserDataJob. Not idempotent: a create that may have
     * landed is not sent again (UnconfirmedWriteError); the empty job it may have made is
     * abandoned — nothing was added to it and it is never run.
     */
    async createJob(userList: string, consent?: { adUserData?: string; adPersonalization?: string }): Promise<string> {
      const job = {
        type: 'CUSTOMER_MATCH_USER_LIST',
        customerMatchUserListMetadata: { userList, ...(consent && Object.keys(consent).length ? { consent } : {}) },
      };
      const body = await call<{ resourceName?: string }>(`${customer}/offlineUserDataJobs:create`, { job }, false);
      if (!body.resourceName) throw new Error('Google Ads created a job without a resourceName');
      return body.resourceName;
    },
    /**
     * AddOfflineUserDataJobOperations with partial failure. Inferred: adding the same people to
     * a job twice changes no membership (a list is a set), so it is retried like a read.
     */
    async addOperations(job: string, operations: readonly unknown[]): Promise<AddOperationsResponse> {
      return call<AddOperationsResponse>(`${job}:addOperations`, { enablePartialFailure: true, operations }, true);
    },
    /** RunOfflineUserDataJob: a job runs once; a second run is refused, so a run is not resent blindly. */
    async run(job: string): Promise<void> {
      await call(`${job}:run`, {}, false);
    },
    /** The job's status by GAQL (the Customer Match guide's check_job_status). */
    async jobStatus(job: string): Promise<{ status: JobStatus; failureReason?: string }> {
      const query = `SELECT offline_user_data_job.resource_name, offline_user_data_job.status, offline_user_data_job.failure_reason FROM offline_user_data_job WHERE offline_user_data_job.resource_name = '${job}' LIMIT 1`;
      const body = await call<{ results?: { offlineUserDataJob?: { status?: JobStatus; failureReason?: string } }[] }>(
        `${customer}/googleAds:search`,
        { query },
        true,
      );
      const found = body.results?.[0]?.offlineUserDataJob;
      return { status: found?.status ?? 'UNKNOWN', failureReason: found?.failureReason };
    },
    sleep: (ms: number) => sleep(ms),
  };
}

export type GoogleClient = ReturnType<typeof createGoogleClient>;
