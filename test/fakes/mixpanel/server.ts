import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonValue } from '#connectors/sdk/types';

/**
 * A fake Mixpanel Ingestion API host on 127.0.0.1 and a free port, written from Mixpanel's
 * documentation, not from the connector:
 *
 * - `POST /engage` with a JSON array of update objects, each with `$token`, `$distinct_id` and one
 *   operation: `$set` (an object: "If the profile does not exist, it creates it with these
 *   properties. If it does exist, it sets the properties to these values, overwriting existing
 *   values"), `$unset` (a non-empty list of property names: "permanently removes the properties"),
 *   `$delete` ("Permanently delete the profile … The $delete object value is ignored"); the other
 *   operations (`$set_once`, `$add`, `$union`, `$append`, `$remove`) are applied too.
 *   https://docs.mixpanel.com/reference/profile-set, /reference/profile-delete-property,
 *   /reference/profile-delete, /reference/profile-batch-update
 * - "limits on the total number profile updates that can be sent per request to 2000 as well as
 *   limit each individual update in the request to a maximum of 1 MB"
 *   (https://docs.mixpanel.com/reference/user-profile-limits).
 * - `strict=1`: "validate the provided records and return a JSON object with per-record error
 *   messages"; the shapes of the OpenAPI spec (github.com/mixpanel/docs openapi/ingestion.openapi.yaml):
 *   200 `{code, num_records_imported, status: "OK"}`, 400 `{code, error, status: "Bad Request",
 *   num_records_imported, failed_records: [{index, field, message}]}`, 401 `{code: 401, error:
 *   "Invalid credentials", status: "Unauthorized"}`, 413 `{code: 413, error: "request exceeds max
 *   limit of 2097152 bytes", status: "Request Entity Too Large"}`. Without `strict`, the answer is
 *   `1` ("One or more objects provided are valid") or `0`.
 * - Partial success: "Mixpanel still ingests the events that passed, so a 400 is a partial success
 *   rather than a total rejection" (https://docs.mixpanel.com/troubleshooting/errors/400-bad-request).
 *   Inferred: the same for `/engage` updates.
 * - Rate limit per project: "2GB of uncompressed JSON/minute or ~30k events per second, measured
 *   on a rolling 1 minute basis" (https://docs.mixpanel.com/reference/rate-limits), 429 with
 *   `{"code": 429, "error": "Project exceeded rate limits. Please retry the request with
 *   exponential backoff.", "status": "Too Many Requests"}` and no `Retry-After`
 *   (https://docs.mixpanel.com/troubleshooting/errors/429-rate-limit-exceeded). Inferred: profile
 *   updates count as events.
 * - Authentication: `/engage` "only require[s] a Project Token" (in each update); a service account
 *   is HTTP Basic with `project_id` (https://docs.mixpanel.com/reference/ingestion-api-authentication).
 *   Inferred: with `strict=1` an unknown token, or Basic credentials that are wrong, is the 401
 *   above; Basic credentials are optional on `/engage`.
 * - "String properties have a limit of 255 bytes"
 *   (https://docs.mixpanel.com/docs/data-structure/property-reference/data-type#string). Inferred:
 *   with `strict=1` a longer string value of `$set` is refused per record (`failed_records`, field
 *   `$set.<name>`), not stored cut.
 * - Inferred: a `$distinct_id` that is not a non-empty string, or is one of the placeholder values
 *   `/import` refuses (https://docs.mixpanel.com/reference/import-events#propertiesdistinct_id), is refused.
 */

export interface MixpanelFakeOptions {
  readonly token: string;
  /** A service account of the project, accepted as HTTP Basic with `project_id`. */
  readonly serviceAccount?: { readonly username: string; readonly secret: string; readonly projectId: string };
  /** Overrides of the documented per-minute limits (updates and bytes, rolling minute). */
  readonly updatesPerMinute?: number;
  readonly bytesPerMinute?: number;
}

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
  readonly bytes: number;
  readonly at: number;
  status: number;
}

export interface MixpanelFake {
  readonly url: string;
  readonly requests: FakeRequest[];
  /** Profiles by `$distinct_id`. */
  readonly profiles: Map<string, Record<string, JsonValue>>;
  stored(object: string): ReadonlyMap<string, Readonly<Record<string, JsonValue>>>;
  writeTimes(): number[];
  requestTimes(): number[];
  /** Answers the next `n` `/engage` requests with Mixpanel's 429. */
  throttleNext(n: number): void;
  /** Answers the next `n` requests with this status and body (5xx, say). */
  failNext(n: number, status: number, body?: unknown): void;
  revoke(): void;
  restore(): void;
  stop(): Promise<void>;
}

export const MAX_UPDATES = 2000;
export const MAX_UPDATE_BYTES = 1_048_576;
export const MAX_REQUEST_BYTES = 2_097_152;
export const RATE_LIMITED = 'Project exceeded rate limits. Please retry the request with exponential backoff.';
export const UPDATE_TOO_LARGE = 'profile update exceeds the maximum size of 1 MB';
/** Inferred: the message of a string value over 255 bytes. */
export const STRING_TOO_LONG = 'String properties have a limit of 255 bytes';
export const MAX_STRING_BYTES = 255;
/** Inferred: the message of a placeholder or missing `$distinct_id`. */
export const INVALID_DISTINCT_ID = "'$distinct_id' is invalid";

const OPERATIONS = ['$set', '$set_once', '$add', '$union', '$append', '$remove', '$unset', '$delete'] as const;
const PLACEHOLDERS = new Set([
  'anon',
  'anonymous',
  'nil',
  'none',
  'null',
  'n/a',
  'na',
  'undefined',
  'unknown',
  '<nil>',
  '0',
  '-1',
  'true',
  'false',
  '[]',
  '{}',
  '00000000-0000-0000-0000-000000000000',
]);
/** Documented: 2 GB of uncompressed JSON a minute, ~30,000 events a second (rolling minute). */
const BYTES_PER_MINUTE = 2 * 1024 ** 3;
const UPDATES_PER_MINUTE = 30_000 * 60;

type Answer = { status: number; body: unknown };
type Failed = { index: number; $distinct_id?: JsonValue; field: string; message: string };

export async function startMixpanelFake(options: MixpanelFakeOptions): Promise<MixpanelFake> {
  const requests: FakeRequest[] = [];
  const profiles = new Map<string, Record<string, JsonValue>>();
  const failures: Answer[] = [];
  /** Accepted requests of the rolling minute: when, updates, bytes. */
  const recent: { at: number; updates: number; bytes: number }[] = [];
  const updatesPerMinute = options.updatesPerMinute ?? UPDATES_PER_MINUTE;
  const bytesPerMinute = options.bytesPerMinute ?? BYTES_PER_MINUTE;
  let throttles = 0;
  let revoked = false;

  const strictAnswer = (strict: boolean, status: number, body: Record<string, unknown>, valid: boolean): Answer =>
    strict ? { status, body } : { status: 200, body: valid ? 1 : 0 };

  const unauthorized: Answer = {
    status: 401,
    body: { code: 401, error: 'Invalid credentials', status: 'Unauthorized' },
  };

  const apply = (update: Record<string, JsonValue>, id: string): void => {
    const op = OPERATIONS.find((o) => o in update)!;
    const value = update[op]!;
    if (op === '$delete') {
      profiles.delete(id);
      return;
    }
    const existing = profiles.get(id);
    if (op === '$unset' || op === '$remove') {
      // Inferred: removing from a profile that does not exist creates none.
      if (!existing) return;
      if (op === '$unset') for (const name of value as string[]) delete existing[name];
      else
        for (const [name, v] of Object.entries(value as Record<string, JsonValue>)) {
          const list = existing[name];
          if (Array.isArray(list)) existing[name] = list.filter((x) => JSON.stringify(x) !== JSON.stringify(v));
        }
      return;
    }
    const profile = existing ?? {};
    profiles.set(id, profile);
    for (const [name, v] of Object.entries(value as Record<string, JsonValue>)) {
      if (op === '$set') profile[name] = v;
      else if (op === '$set_once') profile[name] ??= v;
      else if (op === '$add')
        profile[name] = (typeof profile[name] === 'number' ? (profile[name] as number) : 0) + (v as number);
      else {
        const list = Array.isArray(profile[name]) ? [...(profile[name] as JsonValue[])] : [];
        const items = op === '$union' ? (v as JsonValue[]) : [v];
        for (const item of items) {
          if (op === '$append' || !list.some((x) => JSON.stringify(x) === JSON.stringify(item))) list.push(item);
        }
        profile[name] = list;
      }
    }
  };

  /** Why Mixpanel refuses one update object, or undefined. */
  const check = (update: unknown): Omit<Failed, 'index'> | undefined => {
    if (update === null || typeof update !== 'object' || Array.isArray(update)) {
      return { field: '', message: 'update must be a JSON object' };
    }
    const u = update as Record<string, JsonValue>;
    const distinct = u.$distinct_id;
    if (Buffer.byteLength(JSON.stringify(u)) > MAX_UPDATE_BYTES) {
      return { $distinct_id: distinct ?? null, field: '', message: UPDATE_TOO_LARGE };
    }
    if (typeof distinct !== 'string' || distinct.trim() === '' || PLACEHOLDERS.has(distinct.trim().toLowerCase())) {
      return { $distinct_id: distinct ?? null, field: '$distinct_id', message: INVALID_DISTINCT_ID };
    }
    const ops = OPERATIONS.filter((o) => o in u);
    if (ops.length !== 1) {
      return {
        $distinct_id: distinct,
        field: '',
        message: `an update needs exactly one operation (${OPERATIONS.join(', ')})`,
      };
    }
    const op = ops[0]!;
    const value = u[op];
    if (op === '$delete') return undefined;
    if (op === '$unset') {
      return Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string')
        ? undefined
        : { $distinct_id: distinct, field: '$unset', message: "'$unset' must be a non-empty list of property names" };
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return { $distinct_id: distinct, field: op, message: `'${op}' must be an object of property names and values` };
    }
    for (const [name, v] of Object.entries(value)) {
      if (name === '') return { $distinct_id: distinct, field: op, message: 'property names must not be empty' };
      if ((op === '$set' || op === '$set_once') && typeof v === 'string' && Buffer.byteLength(v) > MAX_STRING_BYTES) {
        return { $distinct_id: distinct, field: `${op}.${name}`, message: `'${name}': ${STRING_TOO_LONG}` };
      }
      if (op === '$add' && typeof v !== 'number') {
        return { $distinct_id: distinct, field: `${op}.${name}`, message: `'${name}' must be a number to be added` };
      }
      if (op === '$union' && !Array.isArray(v)) {
        return { $distinct_id: distinct, field: `${op}.${name}`, message: `'${name}' must be a list for $union` };
      }
    }
    return undefined;
  };

  const engage = (query: URLSearchParams, headers: IncomingHttpHeaders, raw: string, now: number): Answer => {
    const strict = query.get('strict') === '1';
    const bytes = Buffer.byteLength(raw);
    if (bytes > MAX_REQUEST_BYTES) {
      return {
        status: 413,
        body: {
          code: 413,
          error: `request exceeds max limit of ${MAX_REQUEST_BYTES} bytes`,
          status: 'Request Entity Too Large',
        },
      };
    }
    // A service account, when sent, must be right (HTTP Basic and the project's id).
    const auth = headers.authorization;
    if (auth !== undefined) {
      const account = options.serviceAccount;
      const expected = account && `Basic ${Buffer.from(`${account.username}:${account.secret}`).toString('base64')}`;
      if (!account || auth !== expected || query.get('project_id') !== account.projectId) return unauthorized;
    }
    let updates: unknown;
    try {
      updates = JSON.parse(raw);
    } catch {
      return strictAnswer(
        strict,
        400,
        { code: 400, error: 'request body is not valid JSON', status: 'Bad Request' },
        false,
      );
    }
    if (!Array.isArray(updates)) updates = [updates];
    const list = updates as unknown[];
    if (list.length === 0) {
      return strictAnswer(strict, 400, { code: 400, error: 'no updates in the request', status: 'Bad Request' }, false);
    }
    if (list.length > MAX_UPDATES) {
      return strictAnswer(
        strict,
        400,
        { code: 400, error: `request contains more than ${MAX_UPDATES} updates`, status: 'Bad Request' },
        false,
      );
    }
    // The token names the project: an unknown one is refused (strict) or silently dropped.
    const tokens = list.map((u) => (u && typeof u === 'object' ? (u as Record<string, unknown>).$token : undefined));
    if (revoked || tokens.some((t) => t !== options.token)) {
      return strict ? unauthorized : { status: 200, body: 0 };
    }
    if (throttles > 0 || overLimit(now, list.length, bytes)) {
      if (throttles > 0) throttles--;
      return { status: 429, body: { code: 429, error: RATE_LIMITED, status: 'Too Many Requests' } };
    }
    recent.push({ at: now, updates: list.length, bytes });
    const failed: Failed[] = [];
    for (const [index, update] of list.entries()) {
      const problem = check(update);
      if (problem) {
        failed.push({ index, ...problem });
        continue;
      }
      const u = update as Record<string, JsonValue>;
      apply(u, u.$distinct_id as string);
    }
    const imported = list.length - failed.length;
    if (failed.length === 0)
      return strictAnswer(strict, 200, { code: 200, num_records_imported: imported, status: 'OK' }, true);
    return strictAnswer(
      strict,
      400,
      {
        code: 400,
        error: 'Some data points in the request failed validation.',
        status: 'Bad Request',
        num_records_imported: imported,
        failed_records: failed,
      },
      imported > 0,
    );
  };

  const overLimit = (now: number, updates: number, bytes: number): boolean => {
    while (recent.length > 0 && now - recent[0]!.at >= 60_000) recent.shift();
    const used = recent.reduce((a, r) => ({ updates: a.updates + r.updates, bytes: a.bytes + r.bytes }), {
      updates: 0,
      bytes: 0,
    });
    return used.updates + updates > updatesPerMinute || used.bytes + bytes > bytesPerMinute;
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
        query: target.searchParams,
        headers: req.headers,
        body: parseJson(raw),
        bytes: Buffer.byteLength(raw),
        at: now,
        status: 0,
      };
      requests.push(request);
      const failure = failures.shift();
      const result: Answer =
        failure ??
        (request.method === 'POST' && request.path === '/engage'
          ? engage(target.searchParams, req.headers, raw, now)
          : { status: 404, body: { error: 'Not Found', status: 'error' } });
      request.status = result.status;
      send(res, result);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    profiles,
    stored(object) {
      if (object !== 'profiles') return new Map();
      return new Map([...profiles].map(([id, p]) => [id, { ...p }]));
    },
    writeTimes: () => requests.filter((r) => r.path === '/engage').map((r) => r.at),
    requestTimes: () => requests.map((r) => r.at),
    throttleNext(n) {
      throttles += n;
    },
    failNext(n, status, body = { error: 'Internal Server Error', status: 'error' }) {
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

function parseJson(raw: string): unknown {
  try {
    return raw === '' ? '' : JSON.parse(raw);
  } catch {
    return raw;
  }
}

function send(res: ServerResponse, { status, body }: Answer): void {
  const text = typeof body === 'number' ? String(body) : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'number' ? 'text/plain' : 'application/json' });
  res.end(text);
}
