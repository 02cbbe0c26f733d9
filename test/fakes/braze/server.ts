import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonValue } from '#connectors/sdk/types';

/**
 * A fake Braze REST endpoint on 127.0.0.1 and a free port, written from Braze's documentation, not
 * from the connector:
 *
 * - `POST /users/track` (https://www.braze.com/docs/api/endpoints/user_data/post_user_track/):
 *   attributes objects identified by `external_id`, `braze_id`, `user_alias`, `email` or `phone`;
 *   `_update_existing_only`; a null removes an attribute; `inc`/`add`/`remove` operations; at most
 *   75 objects per request (400 `Max Input Length Exceeded`); an invalid object is a "minor error"
 *   `{type, input_array, index}` while the rest is processed, and a request with no valid object is
 *   a fatal 400 (https://www.braze.com/docs/api/errors/).
 * - `POST /users/delete` (https://www.braze.com/docs/api/endpoints/user_data/post_user_delete/):
 *   one kind of identifier per request, at most 50, `prioritization` for emails.
 * - `GET /custom_attributes`: 50 per page, sorted by name, `Link: <…>; rel="next"` pagination.
 * - Subscription groups: `POST /v2/subscription/status/set`
 *   (https://www.braze.com/docs/api/endpoints/subscription_groups/post_update_user_subscription_group_status_v2/):
 *   `subscription_groups[]` of `{ subscription_group_id, subscription_state: subscribed |
 *   unsubscribed, external_ids | emails | phones }`, never both `emails` and `phones`, up to 50 ids
 *   per array and "up to 50 users" per request; users sharing an email are all updated; 5,000
 *   requests a minute shared with `/subscription/status/set`; permission `subscription.status.set`.
 *   Answer 201 `{"message": "success"}` (the v1 page's example response). `GET
 *   /subscription/status/get` (https://www.braze.com/docs/api/endpoints/subscription_groups/get_list_user_subscription_group_status/):
 *   `subscription_group_id`, up to 50 `external_id` (or `email`) values, repeated as
 *   `external_id[]=…`; `{"status": {id: "Subscribed" | "Unsubscribed" | "Unknown"}, "message":
 *   "success"}`; the default limit (250,000 an hour); permission `subscription.status.get`.
 *   Inferred: identifiers no user has are ignored by the set (no user is created); an unknown
 *   group id is a 400 `{"message": "Invalid subscription_group_id"}`; more than 50 users a 400; an
 *   email answer is keyed by the email as sent.
 * - Braze's other documented 403, "Forbidden: Rate plan doesn't support or account is otherwise
 *   inactivated" (https://www.braze.com/docs/api/errors/#fatal-errors), is injected with
 *   `failNext(n, 403, { message: 'Forbidden' })`. Inferred: its body's `message` is "Forbidden".
 * - `Authorization: Bearer <key>` (401 otherwise), per-key permissions (403 `Access Denied`), rate
 *   limits per endpoint with the `X-RateLimit-Limit/Remaining/Reset` headers on every answer (reset
 *   in epoch seconds) and 429 over the limit (https://www.braze.com/docs/api/api_limits/).
 */

export type BrazePermission =
  | 'users.track'
  | 'users.delete'
  | 'custom_attributes.get'
  | 'subscription.status.set'
  | 'subscription.status.get';
type Endpoint = 'track' | 'delete' | 'customAttributes' | 'subscriptionSet' | 'subscriptionGet';

export interface RateLimit {
  readonly limit: number;
  readonly windowMs: number;
}

export interface FakeCustomAttribute {
  readonly name: string;
  readonly data_type: string;
  readonly status?: string;
  readonly description?: string | null;
}

export interface BrazeFakeOptions {
  /** The valid REST API key. */
  readonly apiKey: string;
  /** The key's permissions; default all three. */
  readonly permissions?: readonly BrazePermission[];
  /** Overrides of the documented rate limits, per endpoint. */
  readonly rateLimits?: Partial<Record<Endpoint, RateLimit>>;
  /** Objects per `/users/track` request; 75 by default (50 on the Monthly Active Users plans). */
  readonly maxTrackObjects?: number;
  /** Subscription group ids the workspace has (Audience > Subscriptions). */
  readonly subscriptionGroups?: readonly string[];
  /** Custom attributes the workspace already has (besides those `/users/track` creates). */
  readonly customAttributes?: readonly FakeCustomAttribute[];
}

export interface FakeUser {
  readonly brazeId: string;
  /** Profile fields and custom attributes, identifiers (`external_id`, `email`, `phone`) included. */
  attributes: Record<string, JsonValue>;
  aliases: { alias_name: string; alias_label: string }[];
  /** Logical clock of the last update, for "most recently updated". */
  updatedAt: number;
}

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The parsed JSON body, or the raw text when it is not JSON. */
  readonly body: unknown;
  readonly at: number;
  status: number;
}

export interface BrazeFake {
  /** e.g. `http://127.0.0.1:41234`: the `base_url` to use. */
  readonly url: string;
  readonly requests: FakeRequest[];
  readonly users: FakeUser[];
  /** The attributes of the user with this identifier (the one `/users/track` would update). */
  user(identifier: 'external_id' | 'email', value: string): Record<string, JsonValue> | undefined;
  /** Users by `external_id` (the conformance suite's view); `users` is the only object. */
  stored(object: string): ReadonlyMap<string, Readonly<Record<string, JsonValue>>>;
  addUser(attributes: Record<string, JsonValue>): FakeUser;
  /** When each `/users/track` and `/users/delete` request arrived, 429s included. */
  writeTimes(): number[];
  /**
   * When each request of any kind arrived, 429s and refusals included: Braze counts every request
   * against its endpoint's limit (https://www.braze.com/docs/api/api_limits/).
   */
  requestTimes(): number[];
  /** Adds a subscription group to the workspace. */
  createSubscriptionGroup(id: string): void;
  /**
   * Who is subscribed to `subscription_group:<id>` now (or whose array custom attribute holds the
   * value, for `array:<attribute>:<value>`): each user's `external_id`, or its lower-cased email
   * for a user without one.
   */
  members(object: string): ReadonlySet<string>;
  /** Answers the next `n` write requests 429 with Braze's rate-limit headers. */
  throttleNext(n: number): void;
  /** Answers the next `n` requests with this status and body (5xx, say). */
  failNext(n: number, status: number, body?: unknown): void;
  revoke(): void;
  restore(): void;
  stop(): Promise<void>;
}

/** Fatal `message` of a `/users/track` request without one valid object. */
export const NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields.";
export const IDENTIFIER_REQUIRED = "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required";
export const INVALID_EMAIL = "The value provided for the 'email' field is not a valid email.";

const DEFAULT_LIMITS: Record<Endpoint, RateLimit> = {
  // 3,000 requests per three seconds.
  track: { limit: 3000, windowMs: 3000 },
  // 20,000 requests per minute, shared with /users/identify and /users/alias/*.
  delete: { limit: 20_000, windowMs: 60_000 },
  // 1,000 requests per hour, shared with /events, /events/list and /purchases/product_list
  // (https://www.braze.com/docs/api/endpoints/export/custom_attributes/get_custom_attributes/).
  customAttributes: { limit: 1000, windowMs: 3_600_000 },
  // 5,000 requests per minute, shared by /subscription/status/set and /v2/subscription/status/set.
  subscriptionSet: { limit: 5000, windowMs: 60_000 },
  // The default rate limit: 250,000 requests per hour.
  subscriptionGet: { limit: 250_000, windowMs: 3_600_000 },
};
const PERMISSION: Record<Endpoint, BrazePermission> = {
  track: 'users.track',
  delete: 'users.delete',
  customAttributes: 'custom_attributes.get',
  subscriptionSet: 'subscription.status.set',
  subscriptionGet: 'subscription.status.get',
};
const MAX_SUBSCRIPTION_USERS = 50;
const MAX_DELETE_IDS = 50;
const PAGE_SIZE = 50;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const DOB = /^\d{4}-\d{2}-\d{2}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;
const SUBSCRIBE = new Set(['opted_in', 'subscribed', 'unsubscribed']);
const GENDERS = new Set(['M', 'F', 'O', 'N', 'P']);
const PRIORITIES = new Set(['identified', 'unidentified', 'most_recently_updated']);
/** Keys of an attributes object that are not attributes. */
const CONTROL_KEYS = new Set(['_update_existing_only', 'push_token_import', 'braze_id', 'user_alias']);
/** User profile fields: everything else is a custom attribute. */
const PROFILE_FIELDS = new Set([
  'external_id',
  'email',
  'phone',
  'first_name',
  'last_name',
  'gender',
  'dob',
  'country',
  'home_city',
  'language',
  'time_zone',
  'email_subscribe',
  'push_subscribe',
  'email_open_tracking_disabled',
  'email_click_tracking_disabled',
  'date_of_first_session',
  'date_of_last_session',
  'marked_email_as_spam_at',
  'current_location',
  'subscription_groups',
  'push_tokens',
  'alias_name',
  'alias_label',
]);
const DELETE_KEYS = ['external_ids', 'user_aliases', 'braze_ids', 'email_addresses', 'phone_numbers'] as const;

type Answer = { status: number; body: unknown; headers?: Record<string, string> };
type ObjectError = { type: string; input_array: string; index: number };

export async function startBrazeFake(options: BrazeFakeOptions): Promise<BrazeFake> {
  const permissions = new Set<BrazePermission>(
    options.permissions ?? [
      'users.track',
      'users.delete',
      'custom_attributes.get',
      'subscription.status.set',
      'subscription.status.get',
    ],
  );
  const limits = { ...DEFAULT_LIMITS, ...options.rateLimits };
  const maxTrackObjects = options.maxTrackObjects ?? 75;
  const requests: FakeRequest[] = [];
  const users: FakeUser[] = [];
  const attributes = new Map<string, FakeCustomAttribute>(
    (options.customAttributes ?? []).map((a) => [a.name, { status: 'Active', ...a }]),
  );
  const windows = new Map<Endpoint, { start: number; count: number }>();
  /** Subscription group id → Braze user id → state. */
  const groups = new Map<string, Map<string, 'subscribed' | 'unsubscribed'>>(
    (options.subscriptionGroups ?? []).map((id) => [id, new Map()]),
  );
  const failures: Answer[] = [];
  let throttles = 0;
  let revoked = false;
  let clock = 0;
  let url = '';

  const rateHeaders = (endpoint: Endpoint, now: number, remaining?: number): Record<string, string> => {
    const { limit, windowMs } = limits[endpoint];
    const start = Math.floor(now / windowMs) * windowMs;
    const used = windows.get(endpoint)?.start === start ? windows.get(endpoint)!.count : 0;
    return {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(remaining ?? Math.max(0, limit - used)),
      'x-ratelimit-reset': String(Math.ceil((start + windowMs) / 1000)),
    };
  };
  /** Counts a request in its endpoint's window; false when the window is spent. */
  const take = (endpoint: Endpoint, now: number): boolean => {
    const { limit, windowMs } = limits[endpoint];
    const start = Math.floor(now / windowMs) * windowMs;
    const window = windows.get(endpoint);
    if (!window || window.start !== start) windows.set(endpoint, { start, count: 1 });
    else window.count++;
    return windows.get(endpoint)!.count <= limit;
  };

  const find = (identifier: Identifier): FakeUser | undefined => {
    switch (identifier.kind) {
      case 'external_id':
        return users.find((u) => u.attributes.external_id === identifier.value);
      case 'braze_id':
        return users.find((u) => u.brazeId === identifier.value);
      case 'user_alias':
        return users.find((u) =>
          u.aliases.some((a) => a.alias_name === identifier.name && a.alias_label === identifier.label),
        );
      case 'email':
      case 'phone': {
        // "the most recently updated profile with an external ID will be prioritized", else the most recent.
        const same = users.filter((u) => sameText(u.attributes[identifier.kind], identifier.value));
        const identified = same.filter((u) => typeof u.attributes.external_id === 'string');
        return (identified.length > 0 ? identified : same).sort((a, b) => b.updatedAt - a.updatedAt)[0];
      }
    }
  };

  const register = (name: string, value: JsonValue) => {
    if (PROFILE_FIELDS.has(name) || attributes.has(name) || value === null) return;
    attributes.set(name, { name, data_type: dataTypeOf(value), status: 'Active', description: null });
  };

  const track = (body: Record<string, unknown>): Answer => {
    for (const key of ['attributes', 'events', 'purchases']) {
      if (key in body && !Array.isArray(body[key]))
        return { status: 400, body: { message: `'${key}' must be an array` } };
    }
    const list = (key: string) => (Array.isArray(body[key]) ? (body[key] as unknown[]) : []);
    const objects = list('attributes');
    const total = objects.length + list('events').length + list('purchases').length;
    if (total > maxTrackObjects) return { status: 400, body: { message: 'Max Input Length Exceeded' } };
    if (total === 0) return { status: 400, body: { message: NO_VALID_DATA } };

    const errors: ObjectError[] = [];
    let processed = 0;
    for (const [index, object] of objects.entries()) {
      const problem = checkAttributes(object);
      if (typeof problem === 'string') {
        errors.push({ type: problem, input_array: 'attributes', index });
        continue;
      }
      processed++;
      const { identifier, updateOnly, fields } = problem;
      let user = find(identifier);
      if (!user) {
        if (updateOnly) continue;
        user = { brazeId: randomUUID().replace(/-/g, '').slice(0, 24), attributes: {}, aliases: [], updatedAt: 0 };
        if (identifier.kind === 'user_alias')
          user.aliases.push({ alias_name: identifier.name, alias_label: identifier.label });
        else if (identifier.kind !== 'braze_id') user.attributes[identifier.kind] = identifier.value;
        users.push(user);
      }
      for (const [name, value] of Object.entries(fields)) {
        apply(user.attributes, name, value);
        register(name, user.attributes[name] ?? null);
      }
      user.updatedAt = ++clock;
    }
    // Events and purchases are counted, not stored: Backflow never sends them.
    processed += list('events').length + list('purchases').length;
    if (processed === 0) return { status: 400, body: { message: NO_VALID_DATA, errors } };
    return {
      status: 201,
      body: {
        message: 'success',
        ...('attributes' in body && { attributes_processed: processed }),
        ...(errors.length > 0 && { errors }),
      },
    };
  };

  const remove = (body: Record<string, unknown>): Answer => {
    const present = DELETE_KEYS.filter((k) => body[k] !== undefined);
    if (present.length !== 1) {
      return {
        status: 400,
        body: {
          message: `Exactly one of ${DELETE_KEYS.join(', ')} must be included in a single request`,
        },
      };
    }
    const key = present[0]!;
    const ids = body[key];
    if (!Array.isArray(ids) || ids.length === 0)
      return { status: 400, body: { message: `'${key}' must be a non-empty array` } };
    if (ids.length > MAX_DELETE_IDS) {
      return { status: 400, body: { message: 'The max number of ids per request was exceeded' } };
    }
    const doomed = new Set<FakeUser>();
    for (const id of ids) {
      if (key === 'email_addresses' || key === 'phone_numbers') {
        const field = key === 'email_addresses' ? 'email' : 'phone';
        const entry = isObject(id) ? id : {};
        const value = entry[field];
        const prioritization = entry.prioritization;
        if (typeof value !== 'string' || (field === 'email' && !EMAIL.test(value))) {
          return { status: 400, body: { message: `Each entry of '${key}' needs a valid '${field}'` } };
        }
        if (
          !Array.isArray(prioritization) ||
          prioritization.length === 0 ||
          !prioritization.every((p) => typeof p === 'string' && PRIORITIES.has(p)) ||
          (prioritization.includes('identified') && prioritization.includes('unidentified'))
        ) {
          return {
            status: 400,
            body: {
              message:
                "'prioritization' must be an ordered array of 'identified' or 'unidentified', and 'most_recently_updated'",
            },
          };
        }
        const chosen = prioritize(
          users.filter((u) => sameText(u.attributes[field], value)),
          prioritization as string[],
        );
        if (chosen) doomed.add(chosen);
      } else if (key === 'user_aliases') {
        if (!isObject(id) || typeof id.alias_name !== 'string' || typeof id.alias_label !== 'string') {
          return { status: 400, body: { message: "Each user alias needs 'alias_name' and 'alias_label'" } };
        }
        const user = find({ kind: 'user_alias', name: id.alias_name, label: id.alias_label });
        if (user) doomed.add(user);
      } else {
        if (typeof id !== 'string') return { status: 400, body: { message: `'${key}' must be an array of strings` } };
        const user = find({ kind: key === 'external_ids' ? 'external_id' : 'braze_id', value: id });
        if (user) doomed.add(user);
      }
    }
    for (const user of doomed) users.splice(users.indexOf(user), 1);
    return { status: 201, body: { deleted: doomed.size, message: 'success' } };
  };

  const setSubscriptions = (body: Record<string, unknown>): Answer => {
    const entries = body.subscription_groups;
    if (!Array.isArray(entries) || entries.length === 0) {
      return { status: 400, body: { message: "'subscription_groups' must be a non-empty array" } };
    }
    let total = 0;
    const planned: {
      group: Map<string, 'subscribed' | 'unsubscribed'>;
      state: 'subscribed' | 'unsubscribed';
      targets: FakeUser[];
    }[] = [];
    for (const entry of entries) {
      if (!isObject(entry)) return { status: 400, body: { message: 'Each subscription group must be an object' } };
      const id = entry.subscription_group_id;
      const state = entry.subscription_state;
      if (typeof id !== 'string') return { status: 400, body: { message: "'subscription_group_id' is required" } };
      if (state !== 'subscribed' && state !== 'unsubscribed') {
        return { status: 400, body: { message: "'subscription_state' must be 'subscribed' or 'unsubscribed'" } };
      }
      const group = groups.get(id);
      if (!group) return { status: 400, body: { message: 'Invalid subscription_group_id' } };
      if (entry.emails !== undefined && entry.phones !== undefined) {
        return {
          status: 400,
          body: { message: 'Either an email address or a phone number should be provided, but not both.' },
        };
      }
      const targets: FakeUser[] = [];
      let given = false;
      for (const [key, field] of [
        ['external_ids', 'external_id'],
        ['emails', 'email'],
        ['phones', 'phone'],
      ] as const) {
        const raw = entry[key];
        if (raw === undefined) continue;
        given = true;
        const ids = typeof raw === 'string' ? [raw] : raw;
        if (!Array.isArray(ids) || ids.length === 0 || !ids.every((v) => typeof v === 'string')) {
          return { status: 400, body: { message: `'${key}' must be an array of strings` } };
        }
        if (ids.length > MAX_SUBSCRIPTION_USERS) {
          return { status: 400, body: { message: `'${key}' may include up to ${MAX_SUBSCRIPTION_USERS} ids` } };
        }
        total += ids.length;
        for (const value of ids as string[]) {
          // "all users that share the email address are updated"; unknown identifiers are ignored.
          if (field === 'external_id') {
            const user = users.find((u) => u.attributes.external_id === value);
            if (user) targets.push(user);
          } else targets.push(...users.filter((u) => sameText(u.attributes[field], value)));
        }
      }
      if (!given) return { status: 400, body: { message: "One of 'external_ids', 'emails' or 'phones' is required" } };
      planned.push({ group, state, targets });
    }
    if (total > MAX_SUBSCRIPTION_USERS) {
      return { status: 400, body: { message: `Up to ${MAX_SUBSCRIPTION_USERS} users can be updated per request` } };
    }
    for (const { group, state, targets } of planned) for (const user of targets) group.set(user.brazeId, state);
    return { status: 201, body: { message: 'success' } };
  };

  const subscriptionStates = (query: URLSearchParams): Answer => {
    const id = query.get('subscription_group_id');
    const group = id === null ? undefined : groups.get(id);
    if (!group) return { status: 400, body: { message: 'Invalid subscription_group_id' } };
    const externalIds = [...query.getAll('external_id'), ...query.getAll('external_id[]')];
    const emails = [...query.getAll('email'), ...query.getAll('email[]')];
    const ids = externalIds.length > 0 ? externalIds : emails;
    if (ids.length === 0)
      return { status: 400, body: { message: "One of 'external_id', 'email' or 'phone' is required" } };
    if (ids.length > MAX_SUBSCRIPTION_USERS) {
      return { status: 400, body: { message: `Up to ${MAX_SUBSCRIPTION_USERS} users can be queried per request` } };
    }
    const status: Record<string, string> = {};
    for (const value of ids) {
      const matched =
        externalIds.length > 0
          ? users.filter((u) => u.attributes.external_id === value)
          : users.filter((u) => sameText(u.attributes.email, value));
      const states = matched.map((u) => group.get(u.brazeId));
      status[value] = states.includes('subscribed')
        ? 'Subscribed'
        : states.includes('unsubscribed')
          ? 'Unsubscribed'
          : 'Unknown';
    }
    return { status: 200, body: { status, message: 'success' } };
  };

  const listAttributes = (query: URLSearchParams): Answer => {
    const cursor = query.get('cursor');
    let skip = 0;
    if (cursor !== null) {
      const decoded = /^skip:(\d+)$/.exec(Buffer.from(cursor, 'base64').toString('utf8'));
      if (!decoded) return { status: 400, body: { message: 'Invalid cursor' } };
      skip = Number(decoded[1]);
    }
    const all = [...attributes.values()].sort((a, b) => a.name.localeCompare(b.name));
    const page = all.slice(skip, skip + PAGE_SIZE).map((a) => ({
      array_length: a.data_type === 'Array' ? 25 : null,
      data_type: a.data_type,
      description: a.description ?? null,
      name: a.name,
      status: a.status ?? 'Active',
      tag_names: [],
    }));
    const link = (at: number, rel: string) =>
      `<${url}/custom_attributes?cursor=${Buffer.from(`skip:${at}`).toString('base64')}>; rel="${rel}"`;
    const links = [
      ...(skip > 0 ? [link(Math.max(0, skip - PAGE_SIZE), 'prev')] : []),
      ...(skip + PAGE_SIZE < all.length ? [link(skip + PAGE_SIZE, 'next')] : []),
    ];
    return {
      status: 200,
      body: { message: 'success', attributes: page },
      ...(links.length > 0 && { headers: { link: links.join(', ') } }),
    };
  };

  const answer = (
    method: string,
    path: string,
    query: URLSearchParams,
    headers: IncomingHttpHeaders,
    raw: string,
    now: number,
  ): Answer => {
    const failure = failures.shift();
    if (failure) return failure;
    const endpoint: Endpoint | undefined =
      method === 'POST' && path === '/users/track'
        ? 'track'
        : method === 'POST' && path === '/users/delete'
          ? 'delete'
          : method === 'GET' && path === '/custom_attributes'
            ? 'customAttributes'
            : method === 'POST' && path === '/v2/subscription/status/set'
              ? 'subscriptionSet'
              : method === 'GET' && path === '/subscription/status/get'
                ? 'subscriptionGet'
                : undefined;
    if (!endpoint) return { status: 404, body: { message: 'Not Found' } };
    const given = /^Bearer (.*)$/.exec(headers.authorization ?? '')?.[1] ?? '';
    if (revoked || given !== options.apiKey) return { status: 401, body: { message: `Invalid API key: ${given}` } };
    if (!permissions.has(PERMISSION[endpoint])) return { status: 403, body: { message: 'Access Denied' } };
    if (endpoint !== 'customAttributes' && endpoint !== 'subscriptionGet' && throttles > 0) {
      throttles--;
      return {
        status: 429,
        body: { message: 'Rate Limited' },
        headers: {
          ...rateHeaders(endpoint, now, 0),
          'x-ratelimit-reset': String(Math.ceil((now + 1000) / 1000)),
        },
      };
    }
    if (!take(endpoint, now))
      return { status: 429, body: { message: 'Rate Limited' }, headers: rateHeaders(endpoint, now, 0) };
    const withHeaders = (a: Answer): Answer => ({ ...a, headers: { ...rateHeaders(endpoint, now), ...a.headers } });
    if (endpoint === 'customAttributes') {
      return withHeaders(listAttributes(query));
    }
    if (endpoint === 'subscriptionGet') return withHeaders(subscriptionStates(query));
    if (!(headers['content-type'] ?? '').startsWith('application/json')) {
      return withHeaders({ status: 400, body: { message: 'Content-Type must be application/json' } });
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return withHeaders({ status: 400, body: { message: 'Bad Request: the body is not valid JSON' } });
    }
    if (!isObject(body))
      return withHeaders({ status: 400, body: { message: 'Bad Request: the body must be a JSON object' } });
    return withHeaders(
      endpoint === 'track' ? track(body) : endpoint === 'delete' ? remove(body) : setSubscriptions(body),
    );
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const target = new URL(req.url ?? '/', 'http://fake.invalid');
      const now = Date.now();
      const request: FakeRequest = {
        method: req.method ?? '',
        path: target.pathname,
        headers: req.headers,
        body: parseJson(raw),
        at: now,
        status: 0,
      };
      requests.push(request);
      const result = answer(request.method, request.path, target.searchParams, req.headers, raw, now);
      request.status = result.status;
      send(res, result);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    users,
    user(identifier, value) {
      const found = find({ kind: identifier, value });
      return found && { ...found.attributes };
    },
    stored(object) {
      if (object !== 'users') return new Map();
      const byId = new Map<string, Record<string, JsonValue>>();
      for (const user of users) {
        const id = user.attributes.external_id;
        if (typeof id === 'string') byId.set(id, { ...user.attributes });
      }
      return byId;
    },
    addUser(attributes) {
      const user: FakeUser = {
        brazeId: randomUUID().replace(/-/g, '').slice(0, 24),
        attributes: { ...attributes },
        aliases: [],
        updatedAt: ++clock,
      };
      users.push(user);
      return user;
    },
    writeTimes: () =>
      requests
        .filter(
          (r) => r.path === '/users/track' || r.path === '/users/delete' || r.path === '/v2/subscription/status/set',
        )
        .map((r) => r.at),
    createSubscriptionGroup(id) {
      if (!groups.has(id)) groups.set(id, new Map());
    },
    members(object) {
      const out = new Set<string>();
      const array = /^array:([^:]+):(.+)$/.exec(object);
      if (array) {
        // Users whose array custom attribute holds the value (keyed as subscription groups are).
        for (const user of users) {
          const values = user.attributes[array[1]!];
          if (!Array.isArray(values) || !values.includes(array[2]!)) continue;
          const id = user.attributes.external_id;
          const email = user.attributes.email;
          if (typeof id === 'string') out.add(id);
          else if (typeof email === 'string') out.add(email.toLowerCase());
        }
        return out;
      }
      const group = object.startsWith('subscription_group:')
        ? groups.get(object.slice('subscription_group:'.length))
        : undefined;
      if (!group) return out;
      for (const user of users) {
        if (group.get(user.brazeId) !== 'subscribed') continue;
        const id = user.attributes.external_id;
        const email = user.attributes.email;
        if (typeof id === 'string') out.add(id);
        else if (typeof email === 'string') out.add(email.toLowerCase());
      }
      return out;
    },
    requestTimes: () => requests.map((r) => r.at),
    throttleNext(n) {
      throttles += n;
    },
    failNext(n, status, body = { message: 'Internal Server Error' }) {
      for (let i = 0; i < n; i++) failures.push({ status, body });
    },
    revoke() {
      revoked = true;
    },
    restore() {
      revoked = false;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Identifier =
  | { kind: 'external_id' | 'braze_id' | 'email' | 'phone'; value: string }
  | { kind: 'user_alias'; name: string; label: string };

/** The identifier, mode and attributes of one attributes object, or the minor error Braze reports. */
function checkAttributes(
  object: unknown,
): string | { identifier: Identifier; updateOnly: boolean; fields: Record<string, JsonValue> } {
  if (!isObject(object)) return 'Attributes object must be a JSON object';
  const o = object as Record<string, JsonValue>;
  if ('email' in o && o.email !== null && (typeof o.email !== 'string' || !EMAIL.test(o.email))) return INVALID_EMAIL;
  let identifier: Identifier;
  if (o.external_id !== undefined && o.external_id !== null) {
    if (typeof o.external_id !== 'string' || o.external_id === '') return "'external_id' must be a non-empty string";
    identifier = { kind: 'external_id', value: o.external_id };
  } else if (typeof o.braze_id === 'string') identifier = { kind: 'braze_id', value: o.braze_id };
  else if (isObject(o.user_alias)) {
    const { alias_name, alias_label } = o.user_alias;
    if (typeof alias_name !== 'string' || typeof alias_label !== 'string') {
      return "'user_alias' needs 'alias_name' and 'alias_label'";
    }
    identifier = { kind: 'user_alias', name: alias_name, label: alias_label };
  } else if (typeof o.email === 'string') identifier = { kind: 'email', value: o.email };
  else if (typeof o.phone === 'string' && o.phone !== '') identifier = { kind: 'phone', value: o.phone };
  else return IDENTIFIER_REQUIRED;
  const flag = o._update_existing_only;
  if (flag !== undefined && typeof flag !== 'boolean') return "'_update_existing_only' must be a boolean";
  // "When using a user_alias, Update Only defaults to true."
  const updateOnly = flag ?? identifier.kind === 'user_alias';

  const fields: Record<string, JsonValue> = {};
  for (const [name, value] of Object.entries(o)) {
    if (CONTROL_KEYS.has(name)) continue;
    const problem = checkValue(name, value);
    if (problem) return problem;
    fields[name] = value;
  }
  return { identifier, updateOnly, fields };
}

function checkValue(name: string, value: JsonValue): string | undefined {
  if (value === null) return undefined;
  if (name === 'email_subscribe' || name === 'push_subscribe') {
    return typeof value === 'string' && SUBSCRIBE.has(value)
      ? undefined
      : `'${name}' must be one of 'opted_in', 'subscribed' or 'unsubscribed'`;
  }
  if (name === 'gender') {
    return typeof value === 'string' && GENDERS.has(value.toUpperCase())
      ? undefined
      : "'gender' must be one of 'M', 'F', 'O', 'N', 'P' or null";
  }
  if (name === 'dob') {
    return typeof value === 'string' && DOB.test(value) ? undefined : "'dob' must be a date in the format YYYY-MM-DD";
  }
  if (Array.isArray(value)) {
    return value.some((v) => Array.isArray(v))
      ? `'${name}' is a multi-dimensional array, which custom attributes do not support`
      : undefined;
  }
  if (isObject(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === 'inc' && typeof value.inc !== 'number')
      return `'${name}' 'inc' must be a number`;
    if (keys.every((k) => k === 'add' || k === 'remove') && keys.length > 0) {
      return keys.every((k) => Array.isArray(value[k])) ? undefined : `'${name}' 'add' and 'remove' take arrays`;
    }
  }
  return undefined;
}

/** Sets one attribute: null removes it, `inc`/`add`/`remove` change it, anything else replaces it. */
function apply(target: Record<string, JsonValue>, name: string, value: JsonValue): void {
  if (value === null) {
    delete target[name];
    return;
  }
  if (isObject(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === 'inc') {
      const current = target[name];
      target[name] = (typeof current === 'number' ? current : 0) + (value.inc as number);
      return;
    }
    if (keys.length > 0 && keys.every((k) => k === 'add' || k === 'remove')) {
      const current = Array.isArray(target[name]) ? [...(target[name] as JsonValue[])] : [];
      const add = (value.add as JsonValue[] | undefined) ?? [];
      const drop = new Set(((value.remove as JsonValue[] | undefined) ?? []).map((v) => JSON.stringify(v)));
      target[name] = unique([...current, ...add]).filter((v) => !drop.has(JSON.stringify(v)));
      return;
    }
  }
  target[name] = Array.isArray(value) ? unique(value) : value;
}

/**
 * Arrays hold unique values: a repeated value moves to the end ("['hotdog','hotdog','hotdog','pizza']
 * … shows … as ['hotdog', 'pizza']").
 */
function unique(values: readonly JsonValue[]): JsonValue[] {
  const out: JsonValue[] = [];
  for (const value of values) {
    const at = out.findIndex((v) => JSON.stringify(v) === JSON.stringify(value));
    if (at >= 0) out.splice(at, 1);
    out.push(value);
  }
  return out;
}

/** The user `/users/delete` removes for an email or phone: none when the prioritization leaves several. */
function prioritize(candidates: FakeUser[], prioritization: readonly string[]): FakeUser | undefined {
  let left = candidates;
  for (const rule of prioritization) {
    if (left.length <= 1) break;
    if (rule === 'identified' || rule === 'unidentified') {
      const wanted = left.filter((u) => (typeof u.attributes.external_id === 'string') === (rule === 'identified'));
      if (wanted.length > 0) left = wanted;
    } else if (rule === 'most_recently_updated') {
      left = [left.reduce((a, b) => (b.updatedAt > a.updatedAt ? b : a))];
    }
  }
  return left.length === 1 ? left[0] : undefined;
}

function dataTypeOf(value: JsonValue): string {
  if (typeof value === 'number') return 'Number';
  if (typeof value === 'boolean') return 'Boolean';
  if (typeof value === 'string') return ISO_TIME.test(value) ? 'Time' : 'String';
  if (Array.isArray(value)) return value.length > 0 && value.every(isObject) ? 'Object Array' : 'Array';
  return 'Object';
}

function sameText(a: JsonValue | undefined, b: string): boolean {
  return typeof a === 'string' && a.toLowerCase() === b.toLowerCase();
}

function isObject(value: unknown): value is Record<string, JsonValue> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parseJson(raw: string): unknown {
  try {
    return raw === '' ? '' : JSON.parse(raw);
  } catch {
    return raw;
  }
}

function send(res: ServerResponse, { status, body, headers }: Answer): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
