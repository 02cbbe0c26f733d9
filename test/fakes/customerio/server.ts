import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonValue } from '#connectors/sdk/types';

/**
 * A fake Customer.io Track API on 127.0.0.1 and a free port, written from Customer.io's Track API
 * reference (https://docs.customer.io/integrations/api/track/, the OpenAPI document
 * docs.customer.io/files/journeys-track.json), not from the connector:
 *
 * - HTTP Basic authentication, "your Site ID as the user name and your secret key as the
 *   password"; 401 "Unauthorized request" otherwise (#section/Authentication).
 * - `POST /api/v2/batch` (#tag/track_v2/operation/batch): `{"batch": [ … ]}`; person actions
 *   `identify` (attributes; `"_update": true` "update only existing people … If no person matches
 *   the identifiers, the request does nothing") and `delete`; `identifiers` holds exactly one of
 *   `id`, `email`, `phone`, `cio_id` ("You cannot pass multiple identifiers"). The body "must be
 *   smaller than 500kb", each action "32kb or smaller". 200 with an empty object when every action
 *   is accepted; 207 `{"errors": [{batch_index, reason, field, message}]}` when "at least one object
 *   in the batch was invalid; all other requests are accepted"; 400 when "the entire request was
 *   malformed or invalid".
 * - "Customer limits": ID 150 bytes, attribute name 150 bytes, attribute value 1000 bytes, 300
 *   attributes per identify call. Inferred: an action over them is a 207 error, not truncated.
 * - `GET /api/v1/accounts/region` (#tag/trackRegion): `{url, region, environment_id}`.
 * - Rate limit: the Track API's 100 requests per second per workspace (#section/Rate-Limits; the
 *   current text says 1000 "not strictly enforced"; the fake holds the lower figure). Inferred:
 *   over it, 429 `{"meta":{"error":"rate limit exceeded"}}` with `Retry-After: 1` (the reference
 *   documents no 429 body or header for the Track API).
 * - Inferred: a null or empty string removes a person's attribute (documented for object
 *   attributes: "Pass `null` or an empty string to remove an attribute"); an `identifiers.email` or
 *   an `email` attribute that is not an address is a 207 error; `delete` of nobody is accepted.
 */

export interface FakePerson {
  /** Attributes, `id` and `email` included. */
  attributes: Record<string, JsonValue>;
}

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
  readonly bytes: number;
  readonly at: number;
  status: number;
}

export interface CustomerioFakeOptions {
  readonly siteId: string;
  readonly apiKey: string;
  /** The workspace's region, as `/api/v1/accounts/region` reports it. */
  readonly region?: 'us' | 'eu';
  /** Requests per second; 100 by default. */
  readonly requestsPerSecond?: number;
}

export interface CustomerioFake {
  readonly url: string;
  readonly requests: FakeRequest[];
  readonly people: FakePerson[];
  person(identifier: 'id' | 'email', value: string): Record<string, JsonValue> | undefined;
  /** People by `id` (the conformance suite's view); `people` is the only object. */
  stored(object: string): ReadonlyMap<string, Readonly<Record<string, JsonValue>>>;
  addPerson(attributes: Record<string, JsonValue>): FakePerson;
  writeTimes(): number[];
  /** Every request, 429s and refusals included: the workspace's rate limit counts them all. */
  requestTimes(): number[];
  throttleNext(n: number): void;
  failNext(n: number, status: number, body?: unknown): void;
  revoke(): void;
  restore(): void;
  stop(): Promise<void>;
}

export const MAX_BATCH_BYTES = 500_000;
export const MAX_ACTION_BYTES = 32_000;
export const INVALID_EMAIL = 'is not a valid email address';
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const IDENTIFIERS = ['id', 'email', 'phone', 'cio_id'] as const;

type Answer = { status: number; body: unknown; headers?: Record<string, string> };
type ActionError = { batch_index: number; reason: string; field: string; message: string };

export async function startCustomerioFake(options: CustomerioFakeOptions): Promise<CustomerioFake> {
  const rate = options.requestsPerSecond ?? 100;
  const requests: FakeRequest[] = [];
  const people: FakePerson[] = [];
  const failures: Answer[] = [];
  let throttles = 0;
  let revoked = false;
  let window = { start: 0, count: 0 };
  let nextCio = 1;

  const find = (kind: string, value: string): FakePerson | undefined =>
    people.find((p) =>
      kind === 'email'
        ? typeof p.attributes.email === 'string' && p.attributes.email.toLowerCase() === value.toLowerCase()
        : kind === 'cio_id'
          ? p.attributes.cio_id === value.replace(/^cio_/, '')
          : p.attributes[kind] === value,
    );

  const throttled = (): Answer => ({
    status: 429,
    body: { meta: { error: 'rate limit exceeded' } },
    headers: { 'retry-after': '1' },
  });

  const act = (index: number, action: unknown): ActionError | undefined => {
    const error = (field: string, reason: string, message: string): ActionError => ({
      batch_index: index,
      reason,
      field,
      message,
    });
    if (!isObject(action)) return error('', 'invalid', 'each batch entry must be an object');
    const size = Buffer.byteLength(JSON.stringify(action));
    if (size > MAX_ACTION_BYTES) return error('', 'too_large', `the request is ${size} bytes, over 32kb`);
    if (action.type !== 'person') return error('type', 'invalid', 'this workspace takes person actions here');
    const ids = isObject(action.identifiers) ? Object.entries(action.identifiers) : [];
    if (ids.length !== 1) return error('identifiers', 'invalid', 'exactly one identifier is required');
    const [kind, value] = ids[0]!;
    if (!(IDENTIFIERS as readonly string[]).includes(kind) || typeof value !== 'string' || value === '') {
      return error(`identifiers.${kind}`, 'invalid', 'must be a non-empty string');
    }
    if (Buffer.byteLength(value) > 150) return error(`identifiers.${kind}`, 'too_long', 'IDs are at most 150 bytes');
    if (kind === 'email' && !EMAIL.test(value))
      return error('identifiers.email', 'invalid', `${value} ${INVALID_EMAIL}`);
    if (action.action === 'delete') {
      const found = find(kind, value);
      if (found) people.splice(people.indexOf(found), 1);
      return undefined;
    }
    if (action.action !== 'identify') return error('action', 'invalid', `unsupported action ${String(action.action)}`);
    const attributes = action.attributes === undefined ? {} : action.attributes;
    if (!isObject(attributes)) return error('attributes', 'invalid', 'attributes must be an object');
    const names = Object.keys(attributes).filter((n) => n !== '_update');
    if (names.length > 300) return error('attributes', 'too_many', 'at most 300 attributes per identify call');
    for (const name of names) {
      const v = attributes[name]!;
      if (Buffer.byteLength(name) > 150)
        return error(`attributes.${name}`, 'too_long', 'attribute names are at most 150 bytes');
      if (v !== null && Buffer.byteLength(typeof v === 'string' ? v : JSON.stringify(v)) > 1000) {
        return error(`attributes.${name}`, 'too_long', 'attribute values are at most 1000 bytes');
      }
      if (name === 'email' && v !== null && v !== '' && (typeof v !== 'string' || !EMAIL.test(v))) {
        return error('attributes.email', 'invalid', `${JSON.stringify(v)} ${INVALID_EMAIL}`);
      }
    }
    const update = attributes._update;
    if (update !== undefined && typeof update !== 'boolean')
      return error('attributes._update', 'invalid', 'must be a boolean');
    let person = find(kind, value);
    if (!person) {
      if (update === true || kind === 'cio_id') return undefined; // "the request does nothing"
      person = { attributes: { [kind]: value, cio_id: String(nextCio++) } };
      people.push(person);
    }
    for (const name of names) {
      const v = attributes[name]!;
      if (v === null || v === '') delete person.attributes[name];
      else person.attributes[name] = v;
    }
    return undefined;
  };

  const batch = (raw: string): Answer => {
    if (Buffer.byteLength(raw) >= MAX_BATCH_BYTES) {
      return {
        status: 400,
        body: {
          errors: [{ reason: 'too_large', field: 'batch', message: 'batch requests must be smaller than 500kb' }],
        },
      };
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return {
        status: 400,
        body: { errors: [{ reason: 'invalid', field: '', message: 'the body is not valid JSON' }] },
      };
    }
    if (!isObject(body) || !Array.isArray(body.batch)) {
      return {
        status: 400,
        body: { errors: [{ reason: 'required', field: 'batch', message: 'batch must be an array' }] },
      };
    }
    const errors = body.batch.map((action, i) => act(i, action)).filter((e): e is ActionError => e !== undefined);
    return errors.length > 0 ? { status: 207, body: { errors } } : { status: 200, body: {} };
  };

  const answer = (method: string, path: string, headers: IncomingHttpHeaders, raw: string, now: number): Answer => {
    const failure = failures.shift();
    if (failure) return failure;
    const isBatch = method === 'POST' && path === '/api/v2/batch';
    const isRegion = method === 'GET' && path === '/api/v1/accounts/region';
    if (!isBatch && !isRegion) return { status: 404, body: { meta: { error: 'Not Found' } } };
    const expected = `Basic ${Buffer.from(`${options.siteId}:${options.apiKey}`).toString('base64')}`;
    if (revoked || headers.authorization !== expected) {
      return { status: 401, body: { meta: { error: 'Unauthorized request' } } };
    }
    if (isBatch && throttles > 0) {
      throttles--;
      return throttled();
    }
    const second = Math.floor(now / 1000) * 1000;
    if (window.start !== second) window = { start: second, count: 0 };
    if (++window.count > rate) return throttled();
    if (isRegion) {
      const region = options.region ?? 'us';
      return {
        status: 200,
        body: {
          url: region === 'eu' ? 'https://track-eu.customer.io' : 'https://track.customer.io',
          region,
          environment_id: 3,
        },
      };
    }
    if (!(headers['content-type'] ?? '').startsWith('application/json')) {
      return {
        status: 400,
        body: { errors: [{ reason: 'invalid', field: '', message: 'Content-Type must be application/json' }] },
      };
    }
    return batch(raw);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const path = new URL(req.url ?? '/', 'http://fake.invalid').pathname;
      const now = Date.now();
      const request: FakeRequest = {
        method: req.method ?? '',
        path,
        headers: req.headers,
        body: parseJson(raw),
        bytes: Buffer.byteLength(raw),
        at: now,
        status: 0,
      };
      requests.push(request);
      const result = answer(request.method, path, req.headers, raw, now);
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
    people,
    person(identifier, value) {
      const found = find(identifier, value);
      return found && { ...found.attributes };
    },
    stored(object) {
      const byId = new Map<string, Record<string, JsonValue>>();
      if (object !== 'people') return byId;
      for (const p of people) if (typeof p.attributes.id === 'string') byId.set(p.attributes.id, { ...p.attributes });
      return byId;
    },
    addPerson(attributes) {
      const person = { attributes: { cio_id: String(nextCio++), ...attributes } };
      people.push(person);
      return person;
    },
    writeTimes: () => requests.filter((r) => r.path === '/api/v2/batch').map((r) => r.at),
    requestTimes: () => requests.map((r) => r.at),
    throttleNext(n) {
      throttles += n;
    },
    failNext(n, status, body = { meta: { error: 'Internal Server Error' } }) {
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
