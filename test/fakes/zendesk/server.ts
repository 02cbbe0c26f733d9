import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonValue } from '#connectors/sdk/types';
import type { VendorFake } from '../../conformance/suite.ts';

/**
 * A fake Zendesk Support account on 127.0.0.1 and a free port, written from the API reference:
 *
 * - auth: `{email}/token:{api_token}` Basic auth or an OAuth bearer token; anything else, or a
 *   revoked token, is answered `401 {"error":"Couldn't authenticate you"}`
 *   (https://developer.zendesk.com/api-reference/introduction/security-and-auth/);
 * - the account rate limit per minute with `429`, `Retry-After` and `X-Rate-Limit` headers, and
 *   the job limit (30 jobs queued or running) (https://developer.zendesk.com/api-reference/introduction/rate-limits/);
 *   every request counts against the limit (lookups, job polls, field discovery), and
 *   `requestTimes()` lists them all, 429s included;
 * - bulk user imports off (`bulkImports: false`): `create_many` and `create_or_update_many` answer
 *   403 ("A 403 Forbidden error is returned if data imports are not enabled",
 *   https://developer.zendesk.com/api-reference/ticketing/users/users/#create-many-users). Inferred:
 *   the body, which Zendesk does not document, is its usual 403 body
 *   `{"error":"Forbidden","description":"You do not have access to this page…"}`;
 * - the bulk user endpoints (`create_or_update_many`, `create_many`, `update_many`,
 *   `destroy_many`, `show_many`; at most 100 users per request) that queue a background job, and
 *   `GET /api/v2/job_statuses/{id}` with per-user `results` in request order
 *   (https://developer.zendesk.com/api-reference/ticketing/users/users/,
 *   https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/). The
 *   results' shapes: bulk create `{ id, index }`, bulk update `{ id, action, status, success }`
 *   (Job Statuses, "Results"); `create_or_update_many` as observed and confirmed in request order
 *   by Zendesk (https://support.zendesk.com/hc/en-us/community/posts/4408861015066):
 *   `{ id, status: "Created" | "Updated", email }` and `{ id, error, details, status: "Failed" }`,
 *   without `index` (Inferred: the failure's `id` is the user's position, as in that example).
 *   A job may end `killed` (`killNextJob`; Inferred from Zendesk's job status lists, see
 *   connectors/destinations/zendesk/client.ts) with the results of the users it got through;
 * - user validation the way a job reports it: `{ "index", "error", "details": "Email: … is not
 *   properly formatted", "status": "Failed" }` (shape as reported in Zendesk's developer community:
 *   https://support.zendesk.com/hc/en-us/community/posts/4408861015066), a new user needs a name,
 *   emails and external ids are unique (external ids case-insensitively);
 * - user fields (`GET /api/v2/user_fields`, cursor and offset pagination) and their types; values
 *   of unknown user-field keys are ignored, as Zendesk does, and null clears a value;
 * - soft deletion: a deleted user leaves lookups and `stored()` but is kept in `deletedUsers()`.
 */

export interface FakeUserFieldDefinition {
  readonly key: string;
  /** text, textarea, regexp, dropdown, integer, decimal, checkbox, date, multiselect, lookup. */
  readonly type: string;
  readonly title?: string;
  readonly active?: boolean;
  readonly regexp_for_validation?: string;
  /**
   * Lookup fields: `zen:user`, `zen:organization`, `zen:ticket` or `zen:custom_object:<key>`
   * (https://developer.zendesk.com/api-reference/ticketing/users/user_fields/, `relationship_target_type`).
   */
  readonly relationship_target_type?: string;
}

export interface ZendeskFakeOptions {
  /** The agent the API token is used with. Default `admin@example.com`. */
  readonly agentEmail?: string;
  readonly apiToken?: string;
  readonly oauthToken?: string;
  /** Role of the authenticated agent (`/users/me`). Default `admin`. */
  readonly agentRole?: 'admin' | 'agent' | 'end-user';
  /** Default: `plan` (text) and `lifetime_value` (decimal). */
  readonly userFields?: readonly FakeUserFieldDefinition[];
  /** Account rate limit (requests per rolling minute). Default 700 (Enterprise). */
  readonly requestsPerMinute?: number;
  /** Jobs queued or running at once. Default 30. */
  readonly maxJobs?: number;
  /** Time a job takes once queued. Default 20 ms. */
  readonly jobDelayMs?: number;
  /** Largest page the fake serves (Zendesk: 100), lower to exercise pagination. */
  readonly maxPageSize?: number;
  /** Bulk user imports enabled on the account (Zendesk: off by default, on by request). Default true. */
  readonly bulkImports?: boolean;
}

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly at: number;
  /** Users in the body, or ids in the query, of a bulk request. */
  readonly users?: number;
  readonly body?: unknown;
  status: number;
}

export interface FakeJob {
  readonly id: string;
  readonly jobType: string;
  status: 'queued' | 'working' | 'completed' | 'failed' | 'killed';
  readonly total: number;
  results: Record<string, JsonValue>[] | null;
  message: string | null;
  /** Runs the job's users in order; `limit` stops after that many (a killed job). */
  readonly run: (limit?: number) => Record<string, JsonValue>[];
  readonly killAfter?: number;
}

export type FakeUser = Record<string, JsonValue> & { id: number; active: boolean };

export interface ZendeskFake extends VendorFake {
  readonly url: string;
  readonly requests: FakeRequest[];
  readonly jobs: Map<string, FakeJob>;
  /** Active users. */
  users(): FakeUser[];
  /** Soft-deleted users. */
  deletedUsers(): FakeUser[];
  /** Adds a user as if created in Zendesk; returns its id. */
  seedUser(user: Record<string, JsonValue>): number;
  /**
   * Answers the next `n` write requests with 429 (`Retry-After: retryAfterSeconds`), after letting
   * `skip` writes through.
   */
  throttleNext(n: number, retryAfterSeconds?: number, skip?: number): void;
  /** Answers the next `n` job-status polls with 429 (`Retry-After: retryAfterSeconds`). */
  throttlePolls(n: number, retryAfterSeconds?: number): void;
  /** The next job is killed after processing `afterUsers` users (its results hold only those). */
  killNextJob(afterUsers: number): void;
  /**
   * The next request to `path` is carried out (its job queued) but answered 503: the client
   * cannot know whether it was applied.
   */
  failAfterApplying(path: string): void;
  /** Jobs stay queued until `releaseJobs()` (a busy account). */
  stallJobs(): void;
  releaseJobs(): void;
}

const DEFAULT_FIELDS: readonly FakeUserFieldDefinition[] = [
  { key: 'plan', type: 'text', title: 'Plan' },
  { key: 'lifetime_value', type: 'decimal', title: 'Lifetime value' },
];

/** Properties a user object may set; others are ignored like Zendesk does. */
const PROPERTIES = new Set([
  'alias',
  'custom_role_id',
  'default_group_id',
  'details',
  'email',
  'external_id',
  'locale',
  'locale_id',
  'moderator',
  'name',
  'notes',
  'only_private_comments',
  'organization_id',
  'phone',
  'remote_photo_url',
  'restricted_agent',
  'role',
  'shared_phone_number',
  'signature',
  'suspended',
  'tags',
  'ticket_restriction',
  'time_zone',
  'verified',
]);

const EMAIL = /^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/;
const MAX_BULK = 100;
const UNAUTHORIZED = { error: "Couldn't authenticate you" };
/** Inferred: Zendesk's usual 403 body; the bulk-imports 403 has no documented body. */
const FORBIDDEN = {
  error: 'Forbidden',
  description:
    'You do not have access to this page. Please contact the account owner of this help desk for further help.',
};
/** The job error code seen in a job result for a user Zendesk refused. */
const USER_ERROR = 'UserUpdateError';

type Json = Record<string, JsonValue>;

class BadRequest extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super('bad request');
  }
}

/** `400 {"error":{"title":"Invalid attribute","message":…}}`, the shape Zendesk uses for a malformed bulk body. */
const invalidAttribute = (attribute: string, why: string) =>
  new BadRequest(400, {
    error: {
      title: 'Invalid attribute',
      message: `You passed an invalid value for the ${attribute} attribute. ${why}`,
    },
  });

export async function startZendeskFake(options: ZendeskFakeOptions = {}): Promise<ZendeskFake> {
  const agentEmail = options.agentEmail ?? 'admin@example.com';
  const apiToken = options.apiToken;
  const oauthToken = options.oauthToken;
  const fieldDefs = (options.userFields ?? DEFAULT_FIELDS).map((f, i) => ({ id: 360_000 + i, ...f }));
  const perMinute = options.requestsPerMinute ?? 700;
  const maxJobs = options.maxJobs ?? 30;
  const jobDelayMs = options.jobDelayMs ?? 20;
  const maxPageSize = Math.min(options.maxPageSize ?? 100, 100);

  const store = new Map<number, FakeUser>();
  const jobs = new Map<string, FakeJob>();
  const requests: FakeRequest[] = [];
  const writes: number[] = [];
  const window: number[] = [];
  let nextId = 1000;
  let revoked = false;
  let stalled = false;
  let throttle = { left: 0, retryAfter: 1, skip: 0 };
  let pollThrottle = { left: 0, retryAfter: 1 };
  let killAfter: number | undefined;
  const failAfter = new Set<string>();
  const bulkImports = options.bulkImports ?? true;
  let base = '';

  const active = () => [...store.values()].filter((u) => u.active);
  const lower = (v: JsonValue | undefined) => (typeof v === 'string' ? v.toLowerCase() : undefined);
  const byExternalId = (v: string) => active().find((u) => lower(u.external_id) === v.toLowerCase());
  const byEmail = (v: string) => active().find((u) => lower(u.email) === v.toLowerCase());

  const authorized = (header: string | undefined): boolean => {
    if (revoked || !header) return false;
    const [scheme, value = ''] = header.split(' ');
    if (scheme?.toLowerCase() === 'bearer') return oauthToken !== undefined && value === oauthToken;
    if (scheme?.toLowerCase() === 'basic' && apiToken !== undefined) {
      return Buffer.from(value, 'base64').toString() === `${agentEmail}/token:${apiToken}`;
    }
    return false;
  };

  /** Validates one user object and applies it to `target` (or a new user); no change on failure. */
  const apply = (
    target: FakeUser | undefined,
    input: Json,
  ): { user: FakeUser; created: boolean } | { error: string; details: string } => {
    const next: FakeUser = target
      ? { ...target, user_fields: { ...(target.user_fields as Json) } }
      : {
          id: 0,
          active: true,
          name: null,
          email: null,
          external_id: null,
          role: 'end-user',
          tags: [],
          user_fields: {},
        };
    const fail = (details: string) => ({ error: USER_ERROR, details });
    for (const [name, value] of Object.entries(input)) {
      if (name === 'user_fields' || name === 'id' || !PROPERTIES.has(name)) continue;
      next[name] = value;
    }
    if ('email' in input && input.email !== null) {
      if (typeof input.email !== 'string' || !EMAIL.test(input.email)) {
        return fail(`Email: ${String(input.email)} is not properly formatted`);
      }
      const other = byEmail(input.email);
      if (other && other.id !== target?.id) return fail(`Email: ${input.email} is already being used by another user`);
    }
    if (typeof input.external_id === 'string') {
      const other = byExternalId(input.external_id);
      if (other && other.id !== target?.id) return fail(`External ID: ${input.external_id} has already been taken`);
    }
    if (typeof next.name !== 'string' || next.name.trim() === '') {
      return fail('Name: is too short (minimum is 1 character)');
    }
    if ('role' in input && !['end-user', 'agent', 'admin'].includes(String(input.role))) {
      return fail(`Role: ${String(input.role)} is not a valid role`);
    }
    const custom = next.user_fields as Json;
    for (const [key, value] of Object.entries((input.user_fields as Json | undefined) ?? {})) {
      const def = fieldDefs.find((f) => f.key === key && f.active !== false);
      if (!def) continue;
      if (value === null) {
        delete custom[key];
        continue;
      }
      const coerced = coerceField(def, value);
      if (coerced === undefined) return fail(`${def.title ?? def.key}: ${JSON.stringify(value)} is invalid`);
      custom[key] = coerced;
    }
    const now = new Date().toISOString();
    next.updated_at = now;
    if (!target) {
      next.id = nextId++;
      next.created_at = now;
    }
    return { user: next, created: !target };
  };

  const commit = (user: FakeUser) => store.set(user.id, user);
  const failed = (index: number, error: string, details: string, id: JsonValue = null): Json => ({
    index,
    id,
    error,
    details,
    status: 'Failed',
    success: false,
  });
  /** Bulk create: `{ id, index }`; bulk update and delete: `{ id, action, status, success }` (Job Statuses, "Results"). */
  const succeeded = (index: number, id: number, action: 'create' | 'update' | 'delete'): Json =>
    action === 'create'
      ? { id, index }
      : { id, action, status: action === 'update' ? 'Updated' : 'Deleted', success: true };
  /** create_or_update_many, as observed (community post 4408861015066): no index, the user's email. */
  const upserted = (user: FakeUser, created: boolean): Json => ({
    id: user.id,
    status: created ? 'Created' : 'Updated',
    email: user.email ?? null,
  });
  const upsertFailed = (index: number, error: string, details: string): Json => ({
    id: index,
    error,
    details,
    status: 'Failed',
  });

  const finish = (job: FakeJob) => {
    if (job.status === 'completed' || job.status === 'failed' || job.status === 'killed') return;
    if (job.killAfter !== undefined) {
      job.results = job.run(job.killAfter);
      job.status = 'killed';
      job.message = 'Job was killed';
      return;
    }
    job.results = job.run();
    job.status = 'completed';
    job.message = `Completed at ${new Date().toISOString()}`;
  };

  const queueJob = (jobType: string, total: number, run: (limit?: number) => Json[]): Json => {
    const running = [...jobs.values()].filter((j) => j.status === 'queued' || j.status === 'working').length;
    if (running >= maxJobs) {
      throw new BadRequest(429, {
        error: 'TooManyJobs',
        description: `Number of allowed concurrent jobs (${maxJobs}) exceeded`,
      });
    }
    const job: FakeJob = {
      id: randomBytes(16).toString('hex'),
      jobType,
      status: 'queued',
      total,
      results: null,
      message: null,
      run,
      killAfter,
    };
    killAfter = undefined;
    jobs.set(job.id, job);
    if (!stalled) setTimeout(() => finish(job), jobDelayMs).unref();
    return jobJson(job);
  };

  const jobJson = (job: FakeJob): Json => ({
    job_status: {
      id: job.id,
      job_type: job.jobType,
      url: `${base}/api/v2/job_statuses/${job.id}.json`,
      total: job.total,
      progress: job.status === 'completed' ? job.total : null,
      status: job.status,
      message: job.message,
      results: job.results,
    },
  });

  /** The `users` array of a bulk body: 1 to 100 user objects with well-typed identifiers. */
  const usersOf = (body: unknown): Json[] => {
    const users = isObject(body) ? body.users : undefined;
    if (!Array.isArray(users)) throw invalidAttribute('users', 'users must be an array of user objects');
    if (users.length === 0) throw invalidAttribute('users', 'users must not be empty');
    if (users.length > MAX_BULK) throw invalidAttribute('users', `users must contain at most ${MAX_BULK} items`);
    for (const [i, u] of users.entries()) checkUserShape(u, `users.${i}`);
    return users as Json[];
  };

  const idList = (query: URLSearchParams): { ids?: number[]; externalIds?: string[] } => {
    const ids = query.get('ids');
    const externalIds = query.get('external_ids');
    if ((ids === null) === (externalIds === null) || (ids ?? externalIds) === '') {
      throw new BadRequest(400, { error: 'InvalidValue', description: 'Provide either ids or external_ids' });
    }
    const list = (ids ?? externalIds)!.split(',');
    if (list.length > MAX_BULK) throw invalidAttribute('ids', `at most ${MAX_BULK} ids are accepted`);
    if (ids !== null) {
      if (!list.every((v) => /^\d+$/.test(v))) throw invalidAttribute('ids', 'ids must be integers');
      return { ids: list.map(Number) };
    }
    return { externalIds: list };
  };

  const routes = (method: string, path: string, query: URLSearchParams, body: unknown): [number, unknown] => {
    if (method === 'GET' && path === '/api/v2/users/me') {
      return [200, { user: { id: 1, name: 'Backflow Admin', email: agentEmail, role: options.agentRole ?? 'admin' } }];
    }
    if (method === 'GET' && path === '/api/v2/user_fields') return [200, userFieldsPage(query)];
    if (method === 'GET' && path === '/api/v2/users/show_many') {
      const { ids, externalIds } = idList(query);
      const found = ids
        ? ids.map((id) => store.get(id)).filter((u): u is FakeUser => u?.active === true)
        : externalIds!.map((x) => byExternalId(x)).filter((u): u is FakeUser => u !== undefined);
      return [200, { users: found.map(publicUser), count: found.length }];
    }
    if (method === 'GET' && path.startsWith('/api/v2/job_statuses/')) {
      const job = jobs.get(path.slice('/api/v2/job_statuses/'.length));
      if (!job) return [404, { error: 'RecordNotFound', description: 'Not found' }];
      if (job.status === 'queued' && !stalled) job.status = 'working';
      return [200, jobJson(job)];
    }
    if (
      method === 'POST' &&
      (path === '/api/v2/users/create_or_update_many' || path === '/api/v2/users/create_many') &&
      !bulkImports
    ) {
      return [403, FORBIDDEN];
    }
    if (method === 'POST' && path === '/api/v2/users/create_or_update_many') {
      const users = usersOf(body);
      return [
        200,
        queueJob('bulk_create_or_update_users', users.length, (limit) =>
          users.slice(0, limit).map((input, index) => {
            const existing =
              (typeof input.external_id === 'string' ? byExternalId(input.external_id) : undefined) ??
              (typeof input.email === 'string' ? byEmail(input.email) : undefined);
            const result = apply(existing, input);
            if ('error' in result) return upsertFailed(index, result.error, result.details);
            commit(result.user);
            return upserted(result.user, result.created);
          }),
        ),
      ];
    }
    if (method === 'POST' && path === '/api/v2/users/create_many') {
      const users = usersOf(body);
      return [
        200,
        queueJob('bulk_create_users', users.length, (limit) =>
          users.slice(0, limit).map((input, index) => {
            const result = apply(undefined, input);
            if ('error' in result) return failed(index, result.error, result.details);
            commit(result.user);
            return succeeded(index, result.user.id, 'create');
          }),
        ),
      ];
    }
    if (method === 'PUT' && path === '/api/v2/users/update_many') {
      let targets: { find: () => FakeUser | undefined; input: Json }[];
      if (query.has('ids') || query.has('external_ids')) {
        const { ids, externalIds } = idList(query);
        const user = isObject(body) ? body.user : undefined;
        if (!isObject(user)) throw invalidAttribute('user', 'user must be an object');
        checkUserShape(user, 'user');
        targets = ids
          ? ids.map((id) => ({ find: () => activeById(id), input: user }))
          : externalIds!.map((x) => ({ find: () => byExternalId(x), input: user }));
      } else {
        targets = usersOf(body).map((input, i) => {
          if (typeof input.id === 'number') return { find: () => activeById(input.id as number), input };
          if (typeof input.external_id === 'string')
            return { find: () => byExternalId(input.external_id as string), input };
          throw invalidAttribute(`users.${i}`, 'each user needs an id or an external_id');
        });
      }
      return [
        200,
        queueJob('bulk_update_users', targets.length, (limit) =>
          targets.slice(0, limit).map(({ find, input }, index) => {
            const existing = find();
            if (!existing) return failed(index, 'RecordNotFound', 'Not found', (input.id as JsonValue) ?? null);
            const result = apply(existing, input);
            if ('error' in result) return failed(index, result.error, result.details, existing.id);
            commit(result.user);
            return succeeded(index, existing.id, 'update');
          }),
        ),
      ];
    }
    if (method === 'DELETE' && path === '/api/v2/users/destroy_many') {
      const { ids, externalIds } = idList(query);
      const finders = ids ? ids.map((id) => () => activeById(id)) : externalIds!.map((x) => () => byExternalId(x));
      return [
        200,
        queueJob('bulk_delete_users', finders.length, (limit) =>
          finders.slice(0, limit).map((find, index) => {
            const user = find();
            if (!user) return failed(index, 'RecordNotFound', 'Not found', ids?.[index] ?? null);
            commit({ ...user, active: false, deleted_at: new Date().toISOString() });
            return succeeded(index, user.id, 'delete');
          }),
        ),
      ];
    }
    return [404, { error: 'InvalidEndpoint', description: 'Not found' }];
  };

  const activeById = (id: number) => {
    const user = store.get(id);
    return user?.active ? user : undefined;
  };

  const userFieldsPage = (query: URLSearchParams): Json => {
    const all = fieldDefs.map(
      (f, position): Json => ({
        id: f.id,
        url: `${base}/api/v2/user_fields/${f.id}.json`,
        key: f.key,
        type: f.type,
        title: f.title ?? f.key,
        raw_title: f.title ?? f.key,
        active: f.active ?? true,
        position,
        system: false,
        regexp_for_validation: f.regexp_for_validation ?? null,
        ...(f.type === 'lookup' && { relationship_target_type: f.relationship_target_type ?? null }),
      }),
    );
    if (query.has('page[size]') || query.has('page[after]')) {
      const size = Math.max(1, Math.min(Number(query.get('page[size]') ?? 100) || 100, maxPageSize));
      const after = query.get('page[after]');
      const start = after ? Number(Buffer.from(after, 'base64url').toString()) : 0;
      if (!Number.isInteger(start) || start < 0) {
        throw new BadRequest(400, { error: 'InvalidPaginationParameter', description: 'page[after] is invalid' });
      }
      const page = all.slice(start, start + size);
      const hasMore = start + size < all.length;
      const cursor = hasMore ? Buffer.from(String(start + size)).toString('base64url') : null;
      return {
        user_fields: page,
        meta: { has_more: hasMore, after_cursor: cursor, before_cursor: null },
        links: {
          next: cursor ? `${base}/api/v2/user_fields.json?page%5Bafter%5D=${cursor}&page%5Bsize%5D=${size}` : null,
          prev: null,
        },
      };
    }
    const perPage = Math.min(Number(query.get('per_page') ?? 100) || 100, maxPageSize);
    const page = Math.max(1, Number(query.get('page') ?? 1) || 1);
    const slice = all.slice((page - 1) * perPage, page * perPage);
    return {
      user_fields: slice,
      next_page: page * perPage < all.length ? `${base}/api/v2/user_fields.json?page=${page + 1}` : null,
      previous_page: page > 1 ? `${base}/api/v2/user_fields.json?page=${page - 1}` : null,
      count: all.length,
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', base);
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/\.json$/, '');
    const raw = await readBody(req);
    const at = Date.now();
    const isWrite =
      (method === 'POST' && (path === '/api/v2/users/create_or_update_many' || path === '/api/v2/users/create_many')) ||
      (method === 'PUT' && path === '/api/v2/users/update_many') ||
      (method === 'DELETE' && path === '/api/v2/users/destroy_many');
    let body: unknown;
    const entry: FakeRequest = { method, path, query: url.search, at, status: 0 };
    requests.push(entry);
    const reply = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      entry.status = status;
      const remaining = Math.max(0, perMinute - window.length);
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'x-rate-limit': String(perMinute),
        'x-rate-limit-remaining': String(remaining),
        ...headers,
      });
      res.end(JSON.stringify(payload));
    };

    if (isWrite) writes.push(at);
    const throttleThis = isWrite && throttle.left > 0 && throttle.skip-- <= 0;
    const isPoll = method === 'GET' && path.startsWith('/api/v2/job_statuses/');
    if (throttleThis || (isPoll && pollThrottle.left > 0)) {
      if (throttleThis) throttle.left--;
      else pollThrottle.left--;
      reply(
        429,
        { error: 'APIRateLimitExceeded', description: 'Number of allowed API requests per minute exceeded' },
        { 'retry-after': String(throttleThis ? throttle.retryAfter : pollThrottle.retryAfter) },
      );
      return;
    }
    if (!authorized(req.headers.authorization)) {
      reply(401, UNAUTHORIZED, { 'www-authenticate': 'Basic realm="Web Password"' });
      return;
    }
    while (window.length > 0 && window[0]! <= at - 60_000) window.shift();
    if (window.length >= perMinute) {
      const wait = Math.max(1, Math.ceil((window[0]! + 60_000 - at) / 1000));
      reply(
        429,
        { error: 'APIRateLimitExceeded', description: 'Number of allowed API requests per minute exceeded' },
        { 'retry-after': String(wait) },
      );
      return;
    }
    window.push(at);

    try {
      if (method === 'POST' || method === 'PUT') {
        if (!/application\/json/i.test(req.headers['content-type'] ?? '')) {
          throw new BadRequest(415, {
            error: 'UnsupportedMediaType',
            description: 'Send JSON with Content-Type: application/json',
          });
        }
        try {
          body = JSON.parse(raw);
        } catch {
          throw new BadRequest(400, { error: 'InvalidJSON', description: 'The request body is not valid JSON' });
        }
        Object.assign(entry, {
          body,
          users: Array.isArray((body as Json)?.users) ? ((body as Json).users as []).length : undefined,
        });
      } else if (method === 'DELETE') {
        Object.assign(entry, {
          users: (url.searchParams.get('ids') ?? url.searchParams.get('external_ids') ?? '').split(',').length,
        });
      }
      const [status, payload] = routes(method, path, url.searchParams, body);
      if (failAfter.delete(path)) {
        reply(503, { error: 'ServiceUnavailable', description: 'Inferred: a 5xx after the work was done' });
        return;
      }
      reply(status, payload);
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      reply(error.status, error.body, error.status === 429 ? { 'retry-after': '10' } : {});
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'InternalError', description: String(error) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    requests,
    jobs,
    users: active,
    deletedUsers: () => [...store.values()].filter((u) => !u.active),
    seedUser(user) {
      const result = apply(undefined, user);
      if ('error' in result) throw new Error(result.details);
      commit(result.user);
      return result.user.id;
    },
    stored(object) {
      const view = new Map<string, Record<string, JsonValue>>();
      if (object !== 'users') return view;
      for (const user of active()) {
        const { user_fields: custom, ...rest } = user;
        const flat: Record<string, JsonValue> = { ...rest };
        for (const [k, v] of Object.entries((custom as Json) ?? {})) flat[`user_fields.${k}`] = v;
        view.set(String(user.external_id ?? user.email ?? user.id), flat);
      }
      return view;
    },
    writeTimes: () => [...writes],
    requestTimes: () => requests.map((r) => r.at),
    throttleNext(n, retryAfterSeconds = 1, skip = 0) {
      throttle = { left: n, retryAfter: retryAfterSeconds, skip };
    },
    throttlePolls(n, retryAfterSeconds = 1) {
      pollThrottle = { left: n, retryAfter: retryAfterSeconds };
    },
    killNextJob(afterUsers) {
      killAfter = afterUsers;
    },
    failAfterApplying(path) {
      failAfter.add(path);
    },
    revoke() {
      revoked = true;
    },
    restore() {
      revoked = false;
    },
    stallJobs() {
      stalled = true;
    },
    releaseJobs() {
      stalled = false;
      for (const job of jobs.values()) finish(job);
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Identifiers must have Zendesk's types: a number where a string belongs is a 400 for the whole request. */
function checkUserShape(user: unknown, at: string): void {
  if (!isObject(user)) throw invalidAttribute(at, `Invalid parameter: ${at} must be an object`);
  const stringOrNull = ['external_id', 'email', 'name', 'phone', 'notes', 'details', 'alias', 'role'];
  for (const key of stringOrNull) {
    if (key in user && user[key] !== null && typeof user[key] !== 'string') {
      throw invalidAttribute(`${at}.${key}`, `Invalid parameter: ${at}.${key} must be a string`);
    }
  }
  if ('id' in user && !Number.isInteger(user.id)) {
    throw invalidAttribute(`${at}.id`, `Invalid parameter: ${at}.id must be an integer`);
  }
  if ('tags' in user && !(Array.isArray(user.tags) && user.tags.every((t) => typeof t === 'string'))) {
    throw invalidAttribute(`${at}.tags`, `Invalid parameter: ${at}.tags must be an array of strings`);
  }
  if ('user_fields' in user && !isObject(user.user_fields)) {
    throw invalidAttribute(`${at}.user_fields`, `Invalid parameter: ${at}.user_fields must be an object`);
  }
}

/** A user field value as Zendesk stores it, or undefined when its type refuses it. */
function coerceField(def: FakeUserFieldDefinition, value: JsonValue): JsonValue | undefined {
  switch (def.type) {
    case 'decimal': {
      const n =
        typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      return Number.isFinite(n) ? n : undefined;
    }
    case 'integer': {
      const n =
        typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : NaN;
      return Number.isInteger(n) ? n : undefined;
    }
    case 'checkbox':
      return typeof value === 'boolean' ? value : undefined;
    case 'date':
      // Inferred strictness: a date field takes YYYY-MM-DD (User Fields, "date"); a timestamp is refused.
      return typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00+00:00` : undefined;
    case 'multiselect':
      return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : undefined;
    case 'lookup':
      // Inferred: the related record's id — an integer for users, organizations and tickets,
      // text for custom object records.
      if (def.relationship_target_type?.startsWith('zen:custom_object'))
        return typeof value === 'string' ? value : undefined;
      return Number.isInteger(value) ? value : undefined;
    case 'regexp':
      return typeof value === 'string' && new RegExp(def.regexp_for_validation ?? '.*').test(value) ? value : undefined;
    default:
      return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
  }
}

/** A user as the API shows it. */
function publicUser(user: FakeUser): Json {
  return { ...user };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}
