import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonValue } from '#connectors/sdk/types';

/**
 * A fake Klaviyo API on 127.0.0.1 and a free port, written from Klaviyo's documentation, not from
 * the connector:
 *
 * - Auth: `Authorization: Klaviyo-API-Key <private key>` (https://developers.klaviyo.com/en/docs/authenticate_);
 *   anything else is a 401. Every request needs the `revision` header ("required",
 *   https://developers.klaviyo.com/en/v2025-01-15/reference/bulk_import_profiles). Inferred: a
 *   missing revision is a 400 `invalid`; a body not sent as JSON:API (`application/vnd.api+json`,
 *   `application/json`) a 415.
 * - `POST /api/profile-bulk-import-jobs` (bulk_import_profiles): `data.type =
 *   profile-bulk-import-job`, `attributes.profiles.data[]` of `{type: profile, attributes}`;
 *   "Accepts up to 10,000 profiles per request. The maximum allowed payload size is 5MB." → 202
 *   with the job (`status: queued`). The job is an upsert by identifier
 *   (use_klaviyos_bulk_profile_import_api); a null does not clear a field ("does not support
 *   setting fields to null to clear them. Only fields explicitly provided with non-null values will
 *   be updated"). Inferred: more than 10,000 profiles or 5 MB is a 400 `invalid` / 413; a job is
 *   `queued`, then `processing`, then `complete` after `jobMs`; a profile is applied when its job
 *   completes.
 * - `GET /api/profile-bulk-import-jobs/{id}` (get_bulk_import_profiles_job): `status`,
 *   `total_count`, `completed_count`, `failed_count`.
 * - `GET /api/profile-bulk-import-jobs/{id}/import-errors` (get_errors_for_bulk_import_profiles_job):
 *   `import-error` resources with `code`, `title`, `detail`, `source.pointer`,
 *   `original_payload`; cursor pagination, default page size 20 (`links.next`). Inferred: page
 *   size at most 100; `original_payload` is the profile's attributes as sent; an invalid email is
 *   code `invalid`, detail "Invalid email address: <value>"; a profile without email,
 *   phone_number or external_id is refused the same way.
 * - `POST /api/profile-import` (create_or_update_profile): synchronous upsert by identifier; a null
 *   clears the attribute, `meta.patch_properties.unset` removes custom properties; 201 created,
 *   200 updated; an invalid email is a 400 with `errors[]`.
 * - `GET /api/lists`: the cheapest read (for `check`); `GET /api/lists/{id}` (get_list), 404 for
 *   an unknown list.
 * - `GET /api/profiles` (get_profiles, burst 75/s, steady 700/m): `filter=any(…)` or `equals(…)`
 *   on email, external_id or phone_number, `page[size]` up to 100 (default 20), `fields[profile]`.
 *   Inferred: `any` on these fields; emails compare lower-cased (stored lower-cased); the fake
 *   counts this endpoint at the stricter 10/s, 150/m.
 * - `POST` / `DELETE /api/lists/{id}/relationships/profiles` (add_profiles_to_list,
 *   remove_profiles_from_list): `data[]` of `{type: profile, id}`, "a maximum of 1000 profiles per
 *   call", 204; burst 10/s, steady 150/m. Inferred: an unknown profile id is a 400 `invalid`;
 *   adding a member again or removing a non-member changes nothing.
 * - Rate limits (https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling): per
 *   account, fixed windows, burst (1 s) and steady (1 min); the bulk import endpoints are
 *   10/s, 150/m, Create or Update Profile 75/s, 700/m, Get Lists 75/s, 700/m. Over either window a
 *   429 with `Retry-After` (seconds). Inferred: each endpoint counts its own windows; the 429 body
 *   is a JSON:API error with code `throttled`.
 */

export interface KlaviyoFakeOptions {
  readonly apiKey: string;
  /** How long a job takes from creation to `complete` (ms). */
  readonly jobMs?: number;
  /** What `stored()` keys profiles by. */
  readonly keyBy?: 'email' | 'external_id' | 'phone_number';
  /** Overrides of the documented rate limits, per endpoint family. */
  readonly rateLimits?: Partial<Record<Family, { burst: number; steady: number }>>;
}

type Family = 'bulk' | 'profileImport' | 'lists' | 'profiles' | 'listMembers';

/** Documented limits: bulk import endpoints (M), profile-import and lists (L). */
const LIMITS: Record<Family, { burst: number; steady: number }> = {
  bulk: { burst: 10, steady: 150 },
  profileImport: { burst: 75, steady: 700 },
  lists: { burst: 75, steady: 700 },
  // Inferred: enforced at the stricter M tier.
  profiles: { burst: 10, steady: 150 },
  listMembers: { burst: 10, steady: 150 },
};

export const MAX_PROFILES = 10_000;
export const MAX_BYTES = 5 * 1024 * 1024;

interface FakeProfile {
  readonly id: string;
  /** Flattened: `email`, `first_name`, `location.city`, `properties.plan`. */
  fields: Record<string, JsonValue>;
}

interface Job {
  readonly id: string;
  readonly createdAt: number;
  readonly profiles: Record<string, unknown>[];
  status: 'queued' | 'processing' | 'complete';
  completed: number;
  errors: Record<string, unknown>[];
}

export interface KlaviyoFake {
  readonly url: string;
  stored(object: string): ReadonlyMap<string, Readonly<Record<string, JsonValue>>>;
  writeTimes(): number[];
  requestTimes(): number[];
  /** Request log: method, path, when. */
  requests(): readonly { method: string; path: string; at: number; status: number }[];
  jobs(): readonly { id: string; profiles: number }[];
  throttleNext(n: number): void;
  /** Creates a list; returns its id. */
  createList(name: string): string;
  /** Seeds a profile (flattened fields, like `stored`). */
  seed(fields: Record<string, JsonValue>): string;
  /** Members of `list:<id>`, keyed by email lower-cased. */
  members(object: string): ReadonlySet<string>;
  revoke(): void;
  restore(): void;
  stop(): Promise<void>;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const E164 = /^\+[1-9]\d{1,14}$/;
const IDENTIFIERS = ['email', 'phone_number', 'external_id'] as const;
const STANDARD = new Set([...IDENTIFIERS, 'first_name', 'last_name', 'organization', 'title', 'image', 'locale']);

const apiError = (status: number, code: string, title: string, detail: string, pointer?: string) => ({
  errors: [{ id: randomUUID(), status, code, title, detail, ...(pointer ? { source: { pointer } } : {}) }],
});

export async function startKlaviyoFake(options: KlaviyoFakeOptions): Promise<KlaviyoFake> {
  const jobMs = options.jobMs ?? 300;
  const limits = { ...LIMITS, ...options.rateLimits };
  const profiles: FakeProfile[] = [];
  const lists = new Map<string, { name: string; members: Set<string> }>();
  const jobs = new Map<string, Job>();
  const log: { method: string; path: string; at: number; status: number }[] = [];
  const windows = new Map<string, { start: number; count: number }>();
  let throttle = 0;
  let revoked = false;

  const find = (attributes: Record<string, unknown>): FakeProfile | undefined => {
    for (const id of IDENTIFIERS) {
      const value = attributes[id];
      if (typeof value !== 'string' || value === '') continue;
      const wanted = id === 'email' ? value.toLowerCase() : value;
      const found = profiles.find((p) => p.fields[id] === wanted);
      if (found) return found;
    }
    return undefined;
  };

  /** Validates a profile's attributes; the JSON:API error (code, detail, pointer) when refused. */
  const invalid = (attributes: Record<string, unknown>): { detail: string; pointer: string } | undefined => {
    if (!IDENTIFIERS.some((id) => typeof attributes[id] === 'string' && attributes[id] !== '')) {
      return {
        detail: 'One of email, phone_number or external_id is required',
        pointer: '/data/attributes',
      };
    }
    const email = attributes.email;
    if (email !== undefined && email !== null && (typeof email !== 'string' || !EMAIL.test(email))) {
      return { detail: `Invalid email address: ${String(email)}`, pointer: '/data/attributes/email' };
    }
    const phone = attributes.phone_number;
    if (phone !== undefined && phone !== null && (typeof phone !== 'string' || !E164.test(phone))) {
      return { detail: `Invalid phone number: ${String(phone)}`, pointer: '/data/attributes/phone_number' };
    }
    for (const key of Object.keys(attributes)) {
      if (!STANDARD.has(key) && key !== 'location' && key !== 'properties') {
        return {
          detail: `'${key}' is not a valid field for the resource 'profile'.`,
          pointer: `/data/attributes/${key}`,
        };
      }
    }
    return undefined;
  };

  /** Applies attributes; `clearNulls` for profile-import (a null clears), not for bulk import. */
  const apply = (attributes: Record<string, unknown>, clearNulls: boolean, unset: readonly string[] = []) => {
    let profile = find(attributes);
    const created = !profile;
    if (!profile) {
      profile = { id: `01${randomUUID().replaceAll('-', '').slice(0, 24).toUpperCase()}`, fields: {} };
      profiles.push(profile);
    }
    const set = (name: string, value: unknown) => {
      if (value === null || value === undefined) {
        if (clearNulls && value === null) delete profile!.fields[name];
        return;
      }
      profile!.fields[name] = (
        name === 'email' && typeof value === 'string' ? value.toLowerCase() : value
      ) as JsonValue;
    };
    for (const [key, value] of Object.entries(attributes)) {
      if ((key === 'location' || key === 'properties') && value && typeof value === 'object') {
        for (const [inner, v] of Object.entries(value)) set(`${key}.${inner}`, v);
      } else if (key === 'location' || key === 'properties') {
        if (clearNulls && value === null && key === 'location') {
          for (const name of Object.keys(profile.fields)) if (name.startsWith('location.')) delete profile.fields[name];
        }
      } else set(key, value);
    }
    for (const name of unset) delete profile.fields[`properties.${name}`];
    return { profile, created };
  };

  /** Moves jobs along by their age; a completing job applies its profiles. */
  const settle = () => {
    const now = Date.now();
    for (const job of jobs.values()) {
      if (job.status === 'complete') continue;
      const age = now - job.createdAt;
      if (age < jobMs / 2) continue;
      if (age < jobMs) {
        job.status = 'processing';
        continue;
      }
      for (const attributes of job.profiles) {
        const problem = invalid(attributes);
        if (problem) {
          job.errors.push({
            type: 'import-error',
            id: randomUUID(),
            attributes: {
              code: 'invalid',
              title: 'Invalid input.',
              detail: problem.detail,
              source: { pointer: problem.pointer },
              original_payload: attributes,
            },
          });
        } else {
          apply(attributes, false);
          job.completed++;
        }
      }
      job.status = 'complete';
    }
  };

  const jobResource = (job: Job) => ({
    type: 'profile-bulk-import-job',
    id: job.id,
    attributes: {
      status: job.status,
      created_at: new Date(job.createdAt).toISOString(),
      total_count: job.profiles.length,
      completed_count: job.completed,
      failed_count: job.errors.length,
      completed_at: job.status === 'complete' ? new Date().toISOString() : null,
      expires_at: null,
      started_at: job.status === 'queued' ? null : new Date(job.createdAt).toISOString(),
    },
    links: { self: `/api/profile-bulk-import-jobs/${job.id}` },
  });

  /** Fixed windows per endpoint family: the burst second and the steady minute. */
  const overLimit = (family: Family, now: number): number | undefined => {
    for (const [name, size, max] of [
      ['burst', 1_000, limits[family].burst],
      ['steady', 60_000, limits[family].steady],
    ] as const) {
      const key = `${family}:${name}`;
      const start = Math.floor(now / size) * size;
      const window = windows.get(key);
      if (!window || window.start !== start) windows.set(key, { start, count: 1 });
      else if (window.count >= max) return Math.max(1, Math.ceil((start + size - now) / 1000));
      else window.count++;
    }
    return undefined;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, text: string) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      log.push({ method, path: url.pathname, at: Date.now(), status });
      res.writeHead(status, { 'content-type': 'application/vnd.api+json', ...headers });
      res.end(body === undefined ? '' : JSON.stringify(body));
    };
    settle();
    const auth = req.headers.authorization ?? '';
    if (revoked || auth !== `Klaviyo-API-Key ${options.apiKey}`) {
      return send(
        401,
        apiError(
          401,
          'not_authenticated',
          'Authentication credentials were not provided.',
          'Missing or invalid private key.',
        ),
      );
    }
    if (!req.headers.revision) {
      return send(400, apiError(400, 'invalid', 'Invalid input.', 'The revision header is required.'));
    }
    const family: Family | undefined = url.pathname.startsWith('/api/profile-bulk-import-jobs')
      ? 'bulk'
      : url.pathname === '/api/profile-import'
        ? 'profileImport'
        : /^\/api\/lists\/[^/]+\/relationships\/profiles\/?$/.test(url.pathname)
          ? 'listMembers'
          : /^\/api\/lists(\/[^/]+)?\/?$/.test(url.pathname)
            ? 'lists'
            : url.pathname === '/api/profiles'
              ? 'profiles'
              : undefined;
    if (!family) return send(404, apiError(404, 'not_found', 'Not found.', `No route ${method} ${url.pathname}`));
    const now = Date.now();
    if ((method === 'POST' || method === 'DELETE') && throttle > 0) {
      throttle--;
      return send(
        429,
        apiError(429, 'throttled', 'Request was throttled.', 'Request was throttled. Expected available in 1 second.'),
        { 'retry-after': '1' },
      );
    }
    const wait = overLimit(family, now);
    if (wait !== undefined) {
      return send(
        429,
        apiError(
          429,
          'throttled',
          'Request was throttled.',
          `Request was throttled. Expected available in ${wait} second${wait === 1 ? '' : 's'}.`,
        ),
        { 'retry-after': String(wait) },
      );
    }
    let body: Record<string, unknown> = {};
    if (method === 'POST' || method === 'DELETE') {
      const type = req.headers['content-type'] ?? '';
      if (!/application\/(vnd\.api\+)?json/.test(type)) {
        return send(415, apiError(415, 'unsupported_media_type', 'Unsupported media type.', type));
      }
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return send(400, apiError(400, 'parse_error', 'Malformed request.', 'JSON parse error'));
      }
    }
    const data = body.data as Record<string, unknown> | undefined;

    if (method === 'GET' && url.pathname === '/api/lists') {
      const data = [...lists].map(([id, l]) => ({ type: 'list', id, attributes: { name: l.name } }));
      return send(200, {
        data: data.slice(0, Number(url.searchParams.get('page[size]') ?? 10)),
        links: { next: null },
      });
    }
    const listPath = /^\/api\/lists\/([^/]+)(\/relationships\/profiles)?\/?$/.exec(url.pathname);
    if (listPath) {
      const list = lists.get(listPath[1]!);
      if (!list)
        return send(404, apiError(404, 'not_found', 'Not found.', `A list with id ${listPath[1]} does not exist.`));
      if (!listPath[2] && method === 'GET') {
        return send(200, { data: { type: 'list', id: listPath[1], attributes: { name: list.name } } });
      }
      if (listPath[2] && (method === 'POST' || method === 'DELETE')) {
        const items = (body as { data?: unknown }).data;
        if (!Array.isArray(items) || items.length === 0) {
          return send(400, apiError(400, 'invalid', 'Invalid input.', 'data must be a list of profiles', '/data'));
        }
        if (items.length > 1000) {
          return send(400, apiError(400, 'invalid', 'Invalid input.', 'A maximum of 1000 profiles per call.', '/data'));
        }
        for (const item of items as { type?: unknown; id?: unknown }[]) {
          if (item?.type !== 'profile' || typeof item.id !== 'string' || !profiles.some((p) => p.id === item.id)) {
            return send(
              400,
              apiError(400, 'invalid', 'Invalid input.', `Invalid profile id ${String(item?.id)}`, '/data'),
            );
          }
        }
        for (const item of items as { id: string }[]) {
          if (method === 'POST') list.members.add(item.id);
          else list.members.delete(item.id);
        }
        res.statusCode = 204;
        log.push({ method, path: url.pathname, at: Date.now(), status: 204 });
        res.end();
        return;
      }
      return send(405, apiError(405, 'method_not_allowed', 'Method not allowed.', `${method} ${url.pathname}`));
    }
    if (method === 'GET' && url.pathname === '/api/profiles') {
      const size = Number(url.searchParams.get('page[size]') ?? 20);
      if (!Number.isInteger(size) || size < 1 || size > 100) {
        return send(400, apiError(400, 'invalid', 'Invalid input.', 'page[size] must be between 1 and 100'));
      }
      const filter = /^(any|equals)\((email|external_id|phone_number),(.*)\)$/s.exec(
        url.searchParams.get('filter') ?? '',
      );
      if (!filter) return send(400, apiError(400, 'invalid', 'Invalid input.', 'Unsupported filter', undefined));
      let wanted: string[];
      try {
        const parsed = JSON.parse(filter[3]!) as unknown;
        wanted = (Array.isArray(parsed) ? parsed : [parsed]).map(String);
      } catch {
        return send(400, apiError(400, 'invalid', 'Invalid input.', 'Invalid filter value'));
      }
      if (filter[1] === 'any' && wanted.length > 100) {
        return send(400, apiError(400, 'invalid', 'Invalid input.', 'Too many values in any()'));
      }
      const field = filter[2]!;
      const set = new Set(field === 'email' ? wanted.map((w) => w.toLowerCase()) : wanted);
      const found = profiles.filter((p) => typeof p.fields[field] === 'string' && set.has(p.fields[field] as string));
      return send(200, {
        data: found
          .slice(0, size)
          .map((p) => ({ type: 'profile', id: p.id, attributes: { [field]: p.fields[field] } })),
        links: { next: null },
      });
    }

    if (method === 'POST' && url.pathname === '/api/profile-bulk-import-jobs') {
      if (Buffer.byteLength(text) > MAX_BYTES) {
        return send(
          413,
          apiError(413, 'payload_too_large', 'Payload too large.', 'The maximum allowed payload size is 5MB.'),
        );
      }
      const list = (
        (data?.attributes as Record<string, unknown> | undefined)?.profiles as Record<string, unknown> | undefined
      )?.data;
      if (data?.type !== 'profile-bulk-import-job' || !Array.isArray(list) || list.length === 0) {
        return send(
          400,
          apiError(400, 'invalid', 'Invalid input.', 'Expected profiles.data', '/data/attributes/profiles'),
        );
      }
      if (list.length > MAX_PROFILES) {
        return send(
          400,
          apiError(
            400,
            'invalid',
            'Invalid input.',
            `Accepts up to ${MAX_PROFILES} profiles per request.`,
            '/data/attributes/profiles/data',
          ),
        );
      }
      for (const item of list as Record<string, unknown>[]) {
        if (item?.type !== 'profile' || typeof item.attributes !== 'object' || item.attributes === null) {
          return send(
            400,
            apiError(400, 'invalid', 'Invalid input.', 'Each profile needs type "profile" and attributes'),
          );
        }
      }
      const job: Job = {
        id: randomUUID().replaceAll('-', ''),
        createdAt: now,
        profiles: (list as { attributes: Record<string, unknown> }[]).map((p) => p.attributes),
        status: 'queued',
        completed: 0,
        errors: [],
      };
      jobs.set(job.id, job);
      return send(202, { data: jobResource(job) });
    }

    const jobPath = /^\/api\/profile-bulk-import-jobs\/([^/]+)(\/import-errors)?\/?$/.exec(url.pathname);
    if (method === 'GET' && jobPath) {
      const job = jobs.get(jobPath[1]!);
      if (!job) return send(404, apiError(404, 'not_found', 'Not found.', `No job ${jobPath[1]}`));
      if (!jobPath[2]) return send(200, { data: jobResource(job) });
      const size = Number(url.searchParams.get('page[size]') ?? 20);
      if (!Number.isInteger(size) || size < 1 || size > 100) {
        return send(400, apiError(400, 'invalid', 'Invalid input.', 'page[size] must be between 1 and 100'));
      }
      const from = Number(url.searchParams.get('page[cursor]') ?? 0);
      const page = job.errors.slice(from, from + size);
      const next =
        from + size < job.errors.length
          ? `${url.origin}${url.pathname}?page[size]=${size}&page[cursor]=${from + size}`
          : null;
      return send(200, { data: page, links: { self: url.toString(), next } });
    }

    if (method === 'POST' && url.pathname === '/api/profile-import') {
      const attributes = data?.attributes as Record<string, unknown> | undefined;
      if (data?.type !== 'profile' || !attributes) {
        return send(400, apiError(400, 'invalid', 'Invalid input.', 'Expected a profile', '/data'));
      }
      const problem = invalid(attributes);
      if (problem) return send(400, apiError(400, 'invalid', 'Invalid input.', problem.detail, problem.pointer));
      const meta = data.meta as { patch_properties?: { unset?: unknown } } | undefined;
      const unset = meta?.patch_properties?.unset;
      const names = unset === undefined ? [] : Array.isArray(unset) ? unset.map(String) : [String(unset)];
      const { profile, created } = apply(attributes, true, names);
      return send(created ? 201 : 200, { data: { type: 'profile', id: profile.id, attributes: profile.fields } });
    }
    return send(405, apiError(405, 'method_not_allowed', 'Method not allowed.', `${method} ${url.pathname}`));
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((error) => {
        res.writeHead(500);
        res.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    stored() {
      settle();
      const key = options.keyBy ?? 'email';
      const out = new Map<string, Record<string, JsonValue>>();
      for (const p of profiles) if (typeof p.fields[key] === 'string') out.set(p.fields[key] as string, p.fields);
      return out;
    },
    writeTimes: () => log.filter((r) => r.method === 'POST').map((r) => r.at),
    requestTimes: () => log.map((r) => r.at),
    requests: () => log,
    jobs: () => [...jobs.values()].map((j) => ({ id: j.id, profiles: j.profiles.length })),
    throttleNext(n) {
      throttle += n;
    },
    createList(name) {
      const id = randomUUID().replaceAll('-', '').slice(0, 6);
      lists.set(id, { name, members: new Set() });
      return id;
    },
    seed(fields) {
      const profile = { id: `01${randomUUID().replaceAll('-', '').slice(0, 24).toUpperCase()}`, fields: { ...fields } };
      if (typeof profile.fields.email === 'string') profile.fields.email = profile.fields.email.toLowerCase();
      profiles.push(profile);
      return profile.id;
    },
    members(object) {
      const list = lists.get(object.replace(/^list:/, ''));
      const out = new Set<string>();
      for (const id of list?.members ?? []) {
        const email = profiles.find((p) => p.id === id)?.fields.email;
        if (typeof email === 'string') out.add(email.toLowerCase());
      }
      return out;
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
