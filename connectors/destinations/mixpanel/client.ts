import { AuthError, ConnectorConfigError } from '#connectors/sdk/errors';
import { createHttpClient, HttpError, type HttpRequest } from '#connectors/sdk/http';
import type { JsonValue, RequestPace } from '#connectors/sdk/types';
import { MAX_REQUEST_BYTES, MAX_UPDATES } from './limits.ts';

/**
 * The Mixpanel `/engage` call Backflow makes, on the shared HTTP client: every request takes its
 * slot from the lane's pace; the project token travels in each update object (`$token`), and a
 * service account, when configured, as HTTP Basic auth with `project_id`.
 *
 * `strict=1`: "Mixpanel will validate the provided records and return a JSON object with
 * per-record error messages for records that fail validation"; without it `/engage` answers `1`
 * whenever any object is valid, "even if there are data validation issues"
 * (https://docs.mixpanel.com/reference/profile-set). `ip=0`: "We recommend setting the ip to "0"
 * when making requests from the server-side", so profiles do not get the server's geolocation.
 *
 * The request is idempotent, so a timeout or a 5xx is retried: `$set` "sets the properties to
 * these values, overwriting existing values", `$unset` "permanently removes the properties", and
 * `$delete` of a deleted profile deletes nothing more (https://docs.mixpanel.com/reference/profile-set,
 * /reference/profile-delete-property, /reference/profile-delete). Backflow never sends `$add`,
 * `$append` or `$union`, which would apply twice.
 *
 * 429: Mixpanel documents no `Retry-After` and says "Start with a 2-second backoff"
 * (https://docs.mixpanel.com/troubleshooting/errors/429-rate-limit-exceeded): the RateLimitedError
 * carries 2 s when the answer has no header.
 */

/** One update object: `$token`, `$distinct_id` and one operation. */
export type UpdateObject = Record<string, JsonValue>;

/** One entry of `failed_records` (strict mode): the update's index in the request, and why. */
export interface FailedRecord {
  readonly index: number;
  readonly field?: string;
  readonly message: string;
}

/** What `/engage?strict=1` answered: 200 (all applied) or 400 with the updates it refused. */
export interface EngageAnswer {
  readonly status: number;
  readonly imported?: number;
  readonly failed: readonly FailedRecord[];
}

export interface MixpanelClientOptions {
  readonly baseUrl: string;
  readonly token: string;
  readonly serviceAccount?: { readonly username: string; readonly secret: string; readonly projectId: string };
  readonly timeoutMs: number;
  readonly pace?: RequestPace;
}

/** The documented first backoff after a 429 (no Retry-After header is documented). */
export const DEFAULT_BACKOFF_MS = 2000;

export function createMixpanelClient(options: MixpanelClientOptions) {
  const account = options.serviceAccount;
  const basic = account && Buffer.from(`${account.username}:${account.secret}`).toString('base64');
  const http = createHttpClient({
    baseUrl: options.baseUrl,
    vendor: 'Mixpanel',
    headers: basic ? { authorization: `Basic ${basic}` } : {},
    secrets: [options.token, account?.secret, basic],
    timeoutMs: options.timeoutMs,
    pace: options.pace,
    retryAfter: () => DEFAULT_BACKOFF_MS,
  });
  const query = { strict: 1, ip: 0, ...(account && { project_id: account.projectId }) };
  const quote = (body: unknown): string =>
    http
      .redact(typeof body === 'string' ? body : (errorOf(body) ?? JSON.stringify(body)))
      .replace(/\s+/g, ' ')
      .trim()
      .slice(0, 300);

  return {
    redact: http.redact,
    token: options.token,

    /**
     * `POST /engage?strict=1&ip=0` with up to 2,000 update objects. A 400 that lists
     * `failed_records` is returned: the updates it does not list were applied.
     */
    async engage(updates: readonly UpdateObject[]): Promise<EngageAnswer> {
      if (updates.length > MAX_UPDATES) throw new RangeError(`at most ${MAX_UPDATES} updates per /engage request`);
      const body = JSON.stringify(updates);
      if (Buffer.byteLength(body) > MAX_REQUEST_BYTES) {
        throw new RangeError(`an /engage request holds at most ${MAX_REQUEST_BYTES} bytes`);
      }
      const request: HttpRequest = {
        method: 'POST',
        path: '/engage',
        query,
        body,
        headers: { 'content-type': 'application/json' },
        idempotent: true,
        accept: [400, 401, 403, 404, 413],
      };
      let response: Awaited<ReturnType<typeof http.request>>;
      try {
        response = await http.request<unknown>(request);
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        throw new ConnectorConfigError(
          `${error.message}: base_url (${options.baseUrl}) must be Mixpanel's Ingestion API host`,
        );
      }
      const { status } = response;
      const failed = failedOf(response.body);
      const imported = importedOf(response.body);
      if (status >= 200 && status < 300) return { status, imported, failed };
      if (status === 400 && failed.length > 0) return { status, imported, failed };
      if (status === 401 || status === 403) {
        throw new AuthError(
          `Mixpanel POST /engage refused the credentials (${status}: ${quote(response.body)}): check project_token${account ? ', service_account_username, service_account_secret and project_id' : ''} in the destination's secret, and that region (or base_url, ${options.baseUrl}) is the project's data residency`,
        );
      }
      if (status === 404) {
        throw new ConnectorConfigError(
          `Mixpanel POST /engage answered 404 (${quote(response.body)}): base_url (${options.baseUrl}) must be Mixpanel's Ingestion API host, e.g. https://api.mixpanel.com`,
        );
      }
      throw new ConnectorConfigError(`Mixpanel POST /engage refused the request (${status}: ${quote(response.body)})`);
    },

    /**
     * Checks the token (and the service account) without changing a profile: an empty `$set` of a
     * probe profile would create it, so the probe `$unset`s a property no profile has on a
     * `$distinct_id` reserved for the check. Inferred: `$unset` on an absent profile creates none.
     */
    async probe(): Promise<void> {
      await this.engage([{ $token: options.token, $distinct_id: PROBE_ID, $unset: ['backflow_check'] }]);
    },
  };
}

export type MixpanelClient = ReturnType<typeof createMixpanelClient>;

/** The `$distinct_id` the connection check writes to (nothing is stored for it). */
export const PROBE_ID = 'backflow-connection-check';

function errorOf(body: unknown): string | undefined {
  if (body && typeof body === 'object' && 'error' in body && typeof body.error === 'string') return body.error;
  return undefined;
}

function importedOf(body: unknown): number | undefined {
  if (body && typeof body === 'object' && 'num_records_imported' in body) {
    const n = body.num_records_imported;
    return typeof n === 'number' ? n : undefined;
  }
  return undefined;
}

function failedOf(body: unknown): FailedRecord[] {
  if (!body || typeof body !== 'object' || !('failed_records' in body) || !Array.isArray(body.failed_records))
    return [];
  const out: FailedRecord[] = [];
  for (const entry of body.failed_records as unknown[]) {
    if (!entry || typeof entry !== 'object') continue;
    const e = entry as Record<string, unknown>;
    if (typeof e.index !== 'number') continue;
    out.push({
      index: e.index,
      message: typeof e.message === 'string' ? e.message : 'refused by Mixpanel',
      ...(typeof e.field === 'string' && { field: e.field }),
    });
  }
  return out;
}
