import { AuthError, ConnectorConfigError, RateLimitedError } from '#connectors/sdk/errors';
import { createHttpClient, type HttpRefusal } from '#connectors/sdk/http';
import type { RequestPace } from '#connectors/sdk/types';

/** A Graph API error body: `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`. */
interface GraphError {
  readonly message?: string;
  readonly type?: string;
  readonly code?: number;
  readonly error_subcode?: number;
  readonly error_user_msg?: string;
  readonly fbtrace_id?: string;
}

/**
 * Throttling codes of the Marketing API (https://developers.facebook.com/docs/marketing-api/overview/rate-limiting
 * and https://developers.facebook.com/docs/graph-api/overview/rate-limiting): 4 (app), 17 (user,
 * "User request limit reached"), 32 (page), 613 (ad account, "too many calls from this
 * ad-account"), 80000–80014 (Business Use Case limits; 80003 is custom_audience).
 */
const THROTTLE_CODES = new Set([4, 17, 32, 613]);
const isThrottle = (code: number | undefined) =>
  code !== undefined && (THROTTLE_CODES.has(code) || (code >= 80000 && code <= 80014));

/** Access token problems: 190 (invalid or expired token), 102 (session), 10 and 200–299 (permissions). */
const isAuth = (error: GraphError) =>
  error.code === 190 ||
  error.code === 102 ||
  error.code === 10 ||
  (error.code !== undefined && error.code >= 200 && error.code <= 299);

/**
 * Milliseconds until access comes back, from `X-Business-Use-Case-Usage` (JSON: per business id,
 * a list of `{type, call_count, total_cputime, total_time, estimated_time_to_regain_access}`, the
 * last in minutes) or `X-Ad-Account-Usage` (`reset_time_duration`, seconds).
 */
export function regainAccessMs(headers: Headers): number | undefined {
  let minutes: number | undefined;
  const buc = headers.get('x-business-use-case-usage');
  if (buc) {
    try {
      const usage = JSON.parse(buc) as Record<string, { estimated_time_to_regain_access?: number }[]>;
      for (const entries of Object.values(usage)) {
        for (const entry of entries ?? []) {
          const m = Number(entry.estimated_time_to_regain_access);
          if (Number.isFinite(m) && m > 0) minutes = Math.max(minutes ?? 0, m);
        }
      }
    } catch {
      // Not JSON: no hint.
    }
  }
  if (minutes !== undefined) return minutes * 60_000;
  const account = headers.get('x-ad-account-usage');
  if (account) {
    try {
      const seconds = Number((JSON.parse(account) as { reset_time_duration?: number }).reset_time_duration);
      if (Number.isFinite(seconds) && seconds > 0) return seconds * 1000;
    } catch {
      // Not JSON: no hint.
    }
  }
  return undefined;
}

/** What a Graph error means, by Meta's documented codes; undefined leaves it to the defaults. */
export function metaRefusal(refusal: HttpRefusal): Error | undefined {
  const error = (refusal.body as { error?: GraphError } | undefined)?.error;
  if (!error || typeof error !== 'object') return undefined;
  const what = `${refusal.where} answered ${refusal.status} (code ${error.code}${error.error_subcode ? `, subcode ${error.error_subcode}` : ''}): ${error.message ?? ''}`;
  if (isThrottle(error.code)) return new RateLimitedError(`${what}`, regainAccessMs(refusal.headers));
  if (isAuth(error)) {
    return new AuthError(
      `${what} — check the access token and that its system user has ads_management on the audience's ad account`,
    );
  }
  // 100/33: "Object with ID … does not exist, cannot be loaded due to missing permissions, or does
  // not support this operation"; 100/1713230: the audience is flagged (operation_status 471) and
  // must be fixed in Audience Manager before memberships change.
  if (error.code === 100 && (error.error_subcode === 33 || error.error_subcode === 1713230)) {
    return new ConnectorConfigError(`${what}${error.error_user_msg ? ` ${error.error_user_msg}` : ''}`);
  }
  return undefined;
}

export interface MetaClientOptions {
  readonly baseUrl: string;
  readonly apiVersion: string;
  readonly accessToken: string;
  readonly timeoutMs?: number;
  readonly pace?: RequestPace;
}

/** The `/users` edge's answer. */
export interface UsersResponse {
  readonly audience_id?: string;
  readonly session_id?: string;
  readonly num_received?: number;
  readonly num_invalid_entries?: number;
  readonly invalid_entry_samples?: Record<string, unknown>;
}

export interface UsersPayload {
  readonly schema: readonly string[];
  readonly data: readonly (readonly string[])[];
}

export function createMetaClient(options: MetaClientOptions) {
  const http = createHttpClient({
    vendor: 'Meta',
    baseUrl: `${options.baseUrl.replace(/\/$/, '')}/${options.apiVersion}`,
    secrets: [options.accessToken],
    timeoutMs: options.timeoutMs,
    pace: options.pace,
    refusal: metaRefusal,
  });
  // The token goes as the documented `access_token` parameter of every Graph API call.
  const auth = { access_token: options.accessToken };
  return {
    /** Who the token is: a cheap call that proves the token (GET /me). */
    async me(): Promise<{ id?: string }> {
      return (await http.request<{ id?: string }>({ path: 'me', query: { ...auth, fields: 'id' } })).body;
    },
    /**
     * Adds (POST) or removes (DELETE) people. Adding a person already in the audience changes
     * nothing (Inferred: an audience is a set of matched people; Meta matches each row's hashes
     * against its own), so a POST sent twice does no harm and is retried like a DELETE.
     */
    async users(method: 'POST' | 'DELETE', audienceId: string, payload: UsersPayload): Promise<UsersResponse> {
      const response = await http.request<UsersResponse>({
        method,
        path: `${audienceId}/users`,
        query: auth,
        json: { payload },
        idempotent: true,
      });
      return response.body;
    },
  };
}

export type MetaClient = ReturnType<typeof createMetaClient>;
