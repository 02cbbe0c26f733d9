import { AuthError, ConnectorConfigError, RateLimitedError } from '#connectors/sdk/errors';
import { createHttpClient, HttpError, type HttpRequest, type HttpResponse, retryAfterMs } from '#connectors/sdk/http';
import type { JsonValue, RequestPace } from '#connectors/sdk/types';
import { MAX_DELETE_IDS, MAX_SUBSCRIPTION_USERS, MAX_TRACK_OBJECTS } from './limits.ts';

/**
 * The Braze REST calls Backflow makes, on the shared HTTP client: every request takes its slot from
 * the lane's pace, `Authorization: Bearer <key>`, retries of 5xx, 429 turned into RateLimitedError
 * from `X-RateLimit-Reset` (epoch seconds, per
 * https://www.braze.com/docs/api/api_limits/#monitoring-your-rate-limits). Braze answers errors as
 * `{"message": …, "errors": [ … ]}` (https://www.braze.com/docs/api/errors/); 401, 403 and 404
 * are read here so the message can say which permission or which URL is wrong.
 *
 * Both writes are idempotent, so a timeout or a 5xx is retried: `/users/track` with attributes
 * objects only sets each attribute to a value on the profile its identifier names (sending it twice
 * leaves the same profile; events and purchases, which would be recorded twice, are never sent),
 * and `/users/delete` of a user already deleted deletes nothing more.
 * https://www.braze.com/docs/api/endpoints/user_data/post_user_track/
 */

/** The permissions (REST API key scopes) each call needs. */
export const PERMISSIONS = {
  track: 'users.track',
  delete: 'users.delete',
  customAttributes: 'custom_attributes.get',
  subscriptionSet: 'subscription.status.set',
  subscriptionGet: 'subscription.status.get',
} as const;

/** One entry of `/v2/subscription/status/set`'s `subscription_groups`: users by one kind of identifier. */
export interface SubscriptionChange {
  readonly subscription_group_id: string;
  readonly subscription_state: 'subscribed' | 'unsubscribed';
  readonly external_ids?: readonly string[];
  readonly emails?: readonly string[];
}

/** One entry of `errors`: a "minor" error names the object it refused by array and index. */
export interface BrazeObjectError {
  readonly type: string;
  readonly input_array?: string;
  readonly index?: number;
}

/** What `/users/track` answered: 2xx (all or some objects processed) or 400 with per-object errors. */
export interface TrackAnswer {
  readonly status: number;
  readonly message: string;
  readonly errors: readonly BrazeObjectError[];
}

/** A user attributes object: one identifier, `_update_existing_only`, and attributes. */
export type AttributesObject = Record<string, JsonValue>;

/** `/users/delete` with exactly one kind of identifier, as Braze requires. */
export type DeleteRequest =
  | { readonly external_ids: readonly string[] }
  | {
      readonly email_addresses: readonly { readonly email: string; readonly prioritization: readonly string[] }[];
    };

/** An entry of `GET /custom_attributes`. */
export interface CustomAttribute {
  readonly name: string;
  readonly data_type: string;
  readonly status?: string;
  readonly description?: string | null;
  readonly array_length?: number | null;
}

export interface BrazeClientOptions {
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly timeoutMs: number;
  /** The lane's pace: every request, field discovery included, takes a slot. */
  readonly pace?: RequestPace;
}

/**
 * A 403 `Access Denied` for a permission the REST API key lacks; `permission` names it, so field
 * discovery on a lane can do without `custom_attributes.get`.
 */
export class MissingPermissionError extends AuthError {
  constructor(
    message: string,
    readonly permission: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

/** The fatal `message` of a `/users/track` request in which no object was valid. */
export const NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields.";

/** Refusals read here rather than by the shared client, so their errors can say what to fix. */
const REFUSALS = [400, 401, 403, 404, 413, 422];

/** Custom attribute pages followed at most: 50 per page, so 50,000 attributes. */
const MAX_ATTRIBUTE_PAGES = 1000;

export function createBrazeClient(options: BrazeClientOptions) {
  const http = createHttpClient({
    baseUrl: options.baseUrl,
    vendor: 'Braze',
    headers: { authorization: `Bearer ${options.apiKey}` },
    secrets: [options.apiKey],
    timeoutMs: options.timeoutMs,
    pace: options.pace,
  });
  const where = (request: HttpRequest) => `Braze ${request.method ?? 'GET'} ${request.path}`;
  const quote = (body: unknown): string => {
    const message = messageOf(body) ?? (typeof body === 'string' ? body : JSON.stringify(body));
    return http.redact(String(message)).replace(/\s+/g, ' ').trim().slice(0, 300);
  };

  /** The shared client's request; an unexpected status (a redirect, say) is a configuration problem. */
  const send = async <T>(request: HttpRequest): Promise<HttpResponse<T>> => {
    try {
      return await http.request<T>(request);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      throw new ConnectorConfigError(
        `${error.message}: base_url (${options.baseUrl}) must be the REST endpoint of your Braze instance`,
      );
    }
  };

  /** Throws the error that says what to fix for a refused response: 401, 403, 404 or another 4xx. */
  const refuse = (request: HttpRequest, permission: string, { status, body }: HttpResponse): never => {
    if (status === 401) {
      throw new AuthError(
        `${where(request)} refused the REST API key (401: ${quote(body)}): check api_key in the destination's secret, and that base_url (${options.baseUrl}) is the REST endpoint of the instance the key belongs to`,
      );
    }
    if (status === 403) {
      // Braze documents two 403s, neither a rate limit: a key without the endpoint's permission
      // ("Access Denied"), and "Forbidden": "Rate plan doesn't support or account is otherwise
      // inactivated" (https://www.braze.com/docs/api/errors/#fatal-errors). Neither passes by waiting.
      const message = messageOf(body) ?? '';
      if (/access denied/i.test(message) || message === '') {
        throw new MissingPermissionError(
          `${where(request)} was denied (403: ${quote(body)}): the REST API key needs the "${permission}" permission (Braze: Settings > APIs and Identifiers), and, if it is restricted to allowlisted IP addresses, the address Backflow runs from; a key's permissions cannot be edited, so create a key that has it`,
          permission,
        );
      }
      throw new AuthError(
        `${where(request)} was refused (403: ${quote(body)}): Braze answers 403 when the workspace's plan does not include this endpoint or the account is inactive; ask your Braze admin or customer success manager`,
      );
    }
    if (status === 404) {
      throw new ConnectorConfigError(
        `${where(request)} answered 404 (${quote(body)}): base_url (${options.baseUrl}) must be the REST endpoint of your Braze instance, e.g. https://rest.iad-01.braze.com`,
      );
    }
    throw new ConnectorConfigError(`${where(request)} refused the request (${status}: ${quote(body)})${hintFor(body)}`);
  };

  /** Sends one request; a non-2xx answer not in `handled` is refused with `refuse`. */
  const call = async <T>(
    request: HttpRequest,
    permission: string,
    handled: readonly number[] = [],
  ): Promise<HttpResponse<T>> => {
    const response = await send<T>({ ...request, accept: [...handled, ...REFUSALS] });
    if ((response.status >= 200 && response.status < 300) || handled.includes(response.status)) return response;
    return refuse(request, permission, response);
  };

  return {
    redact: http.redact,

    /**
     * `POST /users/track` with attributes objects only (at most 75). A 400 that names the objects
     * it refused is returned, not thrown: Braze answers 400 when no object of the request was valid.
     * https://www.braze.com/docs/api/endpoints/user_data/post_user_track/#responses
     */
    async track(attributes: readonly AttributesObject[]): Promise<TrackAnswer> {
      if (attributes.length > MAX_TRACK_OBJECTS) {
        throw new RangeError(`at most ${MAX_TRACK_OBJECTS} attributes objects per /users/track request`);
      }
      const request: HttpRequest = { method: 'POST', path: '/users/track', json: { attributes }, idempotent: true };
      const response = await send<unknown>({ ...request, accept: REFUSALS });
      const errors = errorsOf(response.body);
      const ok = response.status >= 200 && response.status < 300;
      if (!ok && !(response.status === 400 && errors.some((e) => e.index !== undefined))) {
        return refuse(request, PERMISSIONS.track, response);
      }
      return { status: response.status, message: messageOf(response.body) ?? (ok ? 'success' : NO_VALID_DATA), errors };
    },

    /**
     * `POST /users/delete` (at most 50 identifiers): deletion is queued, the answer only counts.
     * https://www.braze.com/docs/api/endpoints/user_data/post_user_delete/
     */
    async deleteUsers(body: DeleteRequest): Promise<number> {
      const count = 'external_ids' in body ? body.external_ids.length : body.email_addresses.length;
      if (count > MAX_DELETE_IDS) throw new RangeError(`at most ${MAX_DELETE_IDS} users per /users/delete request`);
      const response = await call<{ deleted?: unknown }>(
        { method: 'POST', path: '/users/delete', json: body, idempotent: true },
        PERMISSIONS.delete,
      );
      return typeof response.body?.deleted === 'number' ? response.body.deleted : count;
    },

    /**
     * `POST /v2/subscription/status/set`: sets the subscription state of up to 50 users, in one or
     * more subscription groups. It sets a state (sending it twice leaves the same state), so the
     * client may retry it. Braze answers `{"message": "success"}` without saying which users it
     * found. A 400 (an unknown group, say) is a configuration error.
     * https://www.braze.com/docs/api/endpoints/subscription_groups/post_update_user_subscription_group_status_v2/
     */
    async setSubscriptions(changes: readonly SubscriptionChange[]): Promise<void> {
      const users = changes.reduce((n, c) => n + (c.external_ids?.length ?? 0) + (c.emails?.length ?? 0), 0);
      if (users > MAX_SUBSCRIPTION_USERS) {
        throw new RangeError(`at most ${MAX_SUBSCRIPTION_USERS} users per /v2/subscription/status/set request`);
      }
      await call(
        {
          method: 'POST',
          path: '/v2/subscription/status/set',
          json: { subscription_groups: changes },
          idempotent: true,
        },
        PERMISSIONS.subscriptionSet,
      );
    },

    /**
     * `GET /subscription/status/get`: the state of up to 50 users (by `external_id`, else `email`)
     * in one subscription group: `Subscribed`, `Unsubscribed` or `Unknown`, keyed by identifier.
     * Repeated `external_id[]` / `email[]` parameters, as the documented example sends them.
     * https://www.braze.com/docs/api/endpoints/subscription_groups/get_list_user_subscription_group_status/
     */
    async subscriptionStates(
      groupId: string,
      key: 'external_id' | 'email',
      ids: readonly string[],
    ): Promise<Map<string, string>> {
      if (ids.length > MAX_SUBSCRIPTION_USERS) {
        throw new RangeError(`at most ${MAX_SUBSCRIPTION_USERS} users per /subscription/status/get request`);
      }
      const query = new URLSearchParams({ subscription_group_id: groupId });
      for (const id of ids) query.append(`${key}[]`, id);
      const response = await call<{ status?: Record<string, unknown> }>(
        { method: 'GET', path: `/subscription/status/get?${query}` },
        PERMISSIONS.subscriptionGet,
      );
      const states = new Map<string, string>();
      for (const [id, state] of Object.entries(response.body?.status ?? {})) {
        states.set(key === 'email' ? id.toLowerCase() : id, String(state));
      }
      return states;
    },

    /**
     * Every custom attribute of the workspace, 50 per page, following the `Link: <…>; rel="next"`
     * header's cursor. https://www.braze.com/docs/api/endpoints/export/custom_attributes/get_custom_attributes/
     */
    async customAttributes(): Promise<CustomAttribute[]> {
      const found: CustomAttribute[] = [];
      const seen = new Set<string>();
      let cursor: string | undefined;
      for (let page = 0; page < MAX_ATTRIBUTE_PAGES; page++) {
        const request: HttpRequest = { method: 'GET', path: '/custom_attributes', query: { cursor } };
        // Its own bucket: "1,000 requests per hour … shared with /events, /events/list and
        // /purchases/product_list" (https://www.braze.com/docs/api/endpoints/export/custom_attributes/get_custom_attributes/).
        // A 429 there says nothing about /users/track, so it must not slow the lane: read here.
        const response = await call<{ attributes?: unknown }>(request, PERMISSIONS.customAttributes, [429]);
        if (response.status === 429) {
          const wait = retryAfterMs(response.headers, Date.now());
          throw new RateLimitedError(
            `${where(request)} was rate limited (429: 1,000 requests per hour, shared with /events/list and /purchases/product_list)${wait ? `; retry after ${wait} ms` : ''}`,
            wait,
          );
        }
        const attributes = response.body?.attributes;
        if (Array.isArray(attributes)) found.push(...attributes.filter(isCustomAttribute));
        cursor = nextCursor(response.headers.get('link'));
        if (cursor === undefined || seen.has(cursor)) return found;
        seen.add(cursor);
      }
      return found;
    },

    /**
     * Checks the key and the endpoint without writing: an empty `/users/track` is authenticated and
     * authorized (401/403 otherwise), then refused for carrying no data.
     */
    async probe(): Promise<void> {
      await call(
        { method: 'POST', path: '/users/track', json: { attributes: [] }, idempotent: true },
        PERMISSIONS.track,
        [400],
      );
    },
  };
}

export type BrazeClient = ReturnType<typeof createBrazeClient>;

function messageOf(body: unknown): string | undefined {
  if (body !== null && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') {
    return (body as { message: string }).message;
  }
  return undefined;
}

/** The `errors` entries of a Braze answer that have a readable `type`. */
export function errorsOf(body: unknown): BrazeObjectError[] {
  if (body === null || typeof body !== 'object') return [];
  const errors = (body as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return [];
  return errors.flatMap((e): BrazeObjectError[] => {
    if (typeof e === 'string') return [{ type: e }];
    if (e === null || typeof e !== 'object') return [];
    const { type, input_array, index } = e as Record<string, unknown>;
    return [
      {
        type: typeof type === 'string' ? type : JSON.stringify(e),
        ...(typeof input_array === 'string' && { input_array }),
        ...(typeof index === 'number' && Number.isInteger(index) && index >= 0 && { index }),
      },
    ];
  });
}

/** What to do about a refusal Braze documents (https://www.braze.com/docs/api/errors/#fatal-errors). */
function hintFor(body: unknown): string {
  const message = messageOf(body) ?? '';
  if (/max input length|max number of/i.test(message)) {
    return ': the workspace takes fewer objects per request (50 on the Monthly Active Users plans): lower the lane batch_size';
  }
  return '';
}

/** The `cursor` of a `Link` header's `rel="next"` URL (RFC 8288), if any. */
export function nextCursor(link: string | null): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const match = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (!match || !/\brel\s*=\s*"?next"?/i.test(match[2]!)) continue;
    try {
      return new URL(match[1]!, 'http://link.invalid').searchParams.get('cursor') ?? undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function isCustomAttribute(value: unknown): value is CustomAttribute {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { name?: unknown }).name === 'string' &&
    typeof (value as { data_type?: unknown }).data_type === 'string'
  );
}
