import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JsonValue } from '#connectors/sdk/types';
import type { VendorFake } from '../../conformance/suite.ts';

/**
 * A fake Intercom REST API (contacts, contact search, data attributes, `/me`) on 127.0.0.1 and a
 * free port, written from Intercom's API reference (version 2.11) and its rate-limiting page. It
 * enforces what those pages promise:
 *
 * - `Authorization: Bearer <token>`, else 401 `unauthorized` "Access Token Invalid" (revocable);
 *   a known `Intercom-Version`, else 400 `intercom_version_invalid`.
 * - The app's rate limit, spread over 10-second windows (10,000 / min → 1,667 per window): every
 *   authenticated answer carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
 *   `X-RateLimit-Reset` (epoch seconds); over it, 429 with `rate_limit_exceeded`.
 * - Contacts one at a time: `POST /contacts` answers 409 `conflict` "A contact matching those details
 *   already exists with id=…" for a taken external_id (or a user's email), `PUT /contacts/{id}`
 *   404 for an unknown contact, `POST /contacts/{id}/archive` archives it and
 *   `POST /contacts/{id}/unarchive` brings it back.
 * - Archived contacts are kept, as Intercom keeps them: hidden from search and from the list, yet
 *   still holding their external_id and email, so a create of either answers 409 naming the archived
 *   contact ("An archived contact matching those details already exists with id=…").
 * - Every request is logged with its arrival time (`requestTimes`), 401s and 429s included: Intercom
 *   counts every REST call against the app's limit.
 * - A fault knob (`failAfterCommit`) stores a create and then fails to answer it (the client times
 *   out, the connection drops, or a 500), as a vendor that committed before the answer was lost.
 * - Values are validated like the vendor: an invalid email, an unknown or mistyped custom attribute,
 *   an unknown contact parameter → 400 `parameter_invalid`, nothing stored.
 * - `POST /contacts/search`: single or AND/OR filters, at most 15 filters per group and 2 levels of
 *   nesting, `IN`/`NIN` with arrays, `per_page` ≤ 150 with `starting_after` cursors; archived
 *   contacts are not found, and new contacts only after the index delay.
 *
 * Documented in: https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/contacts,
 * https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting. Where the reference
 * shows no example (the message of an invalid email, unknown parameters) the fake picks one and says so.
 */

export type AttributeType = 'string' | 'integer' | 'float' | 'boolean' | 'date';

export interface IntercomFakeOptions {
  /** The valid access token. */
  readonly token: string;
  /** Custom contact attributes of the workspace (name → data_type). */
  readonly customAttributes?: Readonly<Record<string, AttributeType>>;
  /** The app's limit (default 10,000 calls per minute), enforced per 10-second window. */
  readonly callsPerMinute?: number;
  /** How long a new contact stays out of search results (Intercom indexes with a delay). Default 0. */
  readonly searchIndexDelayMs?: number;
  /** Most results on one search page: `per_page` is capped to it (default 150, the vendor's cap). */
  readonly searchPageSize?: number;
  /** Delay before each answer, so tests can watch concurrent calls. Default 0. */
  readonly latencyMs?: number;
  /** `app.region` of `GET /me`. Default `US`. */
  readonly region?: string;
}

export interface FakeContact {
  readonly id: string;
  role: 'user' | 'lead';
  external_id: string | null;
  email: string | null;
  name: string | null;
  phone: string | null;
  avatar: string | null;
  owner_id: number | null;
  unsubscribed_from_emails: boolean;
  signed_up_at: number | null;
  last_seen_at: number | null;
  custom_attributes: Record<string, JsonValue>;
  archived: boolean;
  readonly created_at: number;
  updated_at: number;
  /** When search starts returning the contact (ms). */
  readonly indexedAt: number;
}

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
  /** Arrival time (ms since epoch). */
  readonly at: number;
  status: number;
}

export interface IntercomFake extends VendorFake {
  readonly url: string;
  readonly requests: FakeRequest[];
  /** Every contact, archived ones included, by Intercom id. */
  readonly contacts: Map<string, FakeContact>;
  /** Most requests handled at the same time so far. */
  readonly maxInFlight: number;
  /** Stores a contact directly (as if created earlier, already indexed unless told otherwise). */
  seed(contact: Partial<Omit<FakeContact, 'id'>> & { indexedAt?: number }): FakeContact;
  /** Archives and removes custom attributes (e.g. to watch the connector refuse a deleted attribute). */
  removeAttribute(name: string): void;
  /**
   * The next `n` creates (`POST /contacts`) are stored, then their answer is lost: `timeout` never
   * answers (the client gives up), `drop` closes the connection, `500` answers a server error.
   */
  failAfterCommit(n: number, how?: 'timeout' | 'drop' | 500): void;
}

/** Versions the reference lists for `Intercom-Version`. */
const VERSIONS = new Set([
  '1.0',
  '1.1',
  '1.2',
  '1.3',
  '1.4',
  '2.0',
  '2.1',
  '2.2',
  '2.3',
  '2.4',
  '2.5',
  '2.6',
  '2.7',
  '2.8',
  '2.9',
  '2.10',
  '2.11',
  '2.12',
  '2.13',
  '2.14',
  '2.15',
  '2.16',
  'Unstable',
  'Preview',
]);

const WINDOW_MS = 10_000;
const MAX_PER_PAGE = 150;
const MAX_FILTERS_PER_GROUP = 15;
const MAX_NESTING = 2;
const STRING_OPERATORS = new Set(['~', '!~', '^', '$']);
const OPERATORS = new Set(['=', '!=', 'IN', 'NIN', '>', '<', ...STRING_OPERATORS]);
/** Top-level parameters of the create and update contact requests. */
const CONTACT_PARAMETERS = new Set([
  'role',
  'external_id',
  'email',
  'phone',
  'name',
  'avatar',
  'signed_up_at',
  'last_seen_at',
  'owner_id',
  'unsubscribed_from_emails',
  'custom_attributes',
]);
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Standard contact attributes as `GET /data_attributes` lists them (a representative subset). */
const STANDARD_ATTRIBUTES: readonly {
  name: string;
  full_name?: string;
  data_type: AttributeType;
  api_writable: boolean;
}[] = [
  { name: 'name', data_type: 'string', api_writable: true },
  { name: 'email', data_type: 'string', api_writable: true },
  { name: 'phone', data_type: 'string', api_writable: true },
  { name: 'external_id', data_type: 'string', api_writable: true },
  { name: 'role', data_type: 'string', api_writable: true },
  { name: 'avatar', data_type: 'string', api_writable: true },
  { name: 'owner_id', data_type: 'integer', api_writable: true },
  { name: 'unsubscribed_from_emails', data_type: 'boolean', api_writable: true },
  { name: 'signed_up_at', data_type: 'date', api_writable: true },
  { name: 'last_seen_at', data_type: 'date', api_writable: true },
  { name: 'created_at', data_type: 'date', api_writable: false },
  { name: 'updated_at', data_type: 'date', api_writable: false },
  { name: 'session_count', data_type: 'integer', api_writable: false },
  { name: 'city_name', full_name: 'location_data.city_name', data_type: 'string', api_writable: false },
];

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startIntercomFake(options: IntercomFakeOptions): Promise<IntercomFake> {
  const contacts = new Map<string, FakeContact>();
  const custom = new Map<string, AttributeType>(Object.entries(options.customAttributes ?? {}));
  const requests: FakeRequest[] = [];
  const writeTimes: number[] = [];
  const requestTimes: number[] = [];
  const lostAnswers: ('timeout' | 'drop' | 500)[] = [];
  const perWindow = Math.ceil((options.callsPerMinute ?? 10_000) / 6);
  const pageCap = Math.min(MAX_PER_PAGE, options.searchPageSize ?? MAX_PER_PAGE);
  let window = -1;
  let used = 0;
  let throttle = 0;
  let revoked = false;
  let inFlight = 0;
  let maxInFlight = 0;
  const now = () => Date.now();
  const seconds = () => Math.floor(now() / 1000);

  const create = (fields: Partial<Omit<FakeContact, 'id'>> & { indexedAt?: number }): FakeContact => {
    const at = seconds();
    const contact: FakeContact = {
      id: randomBytes(12).toString('hex'),
      role: fields.role ?? 'user',
      external_id: fields.external_id ?? null,
      email: fields.email ?? null,
      name: fields.name ?? null,
      phone: fields.phone ?? null,
      avatar: fields.avatar ?? null,
      owner_id: fields.owner_id ?? null,
      unsubscribed_from_emails: fields.unsubscribed_from_emails ?? false,
      signed_up_at: fields.signed_up_at ?? null,
      last_seen_at: fields.last_seen_at ?? null,
      custom_attributes: { ...fields.custom_attributes },
      archived: fields.archived ?? false,
      created_at: at,
      updated_at: at,
      indexedAt: fields.indexedAt ?? now() + (options.searchIndexDelayMs ?? 0),
    };
    contacts.set(contact.id, contact);
    return contact;
  };

  /**
   * The contact holding an external_id or (for users) an email, other than `except` — archived ones
   * included: an archived contact keeps its identifiers (Intercom's bulk-contacts reference rejects
   * "a contact [that] already exists with the given `external_id` or `email` (including an archived
   * contact)", descriptions/0 of https://github.com/intercom/Intercom-OpenAPI).
   */
  const holder = (field: 'external_id' | 'email', value: string, except?: string): FakeContact | undefined => {
    for (const c of contacts.values()) {
      if (c.id === except) continue;
      if (field === 'external_id' && c.external_id === value) return c;
      if (field === 'email' && c.role === 'user' && c.email?.toLowerCase() === value.toLowerCase()) return c;
    }
    return undefined;
  };

  // The live duplicate's 409 is the create-a-contact reference's example
  // (https://developers.intercom.com/docs/references/2.4/rest-api/contacts/create-a-contact). The
  // archived duplicate answers "the same status with a different message"
  // (https://github.com/intercom/Intercom-OpenAPI/pull/543). Inferred: the wording below, as
  // integrations that unarchive on it quote it.
  const conflict = (c: FakeContact) =>
    c.archived
      ? new Refusal(409, 'conflict', `An archived contact matching those details already exists with id=${c.id}`)
      : new Refusal(409, 'conflict', `A contact matching those details already exists with id=${c.id}`);

  /** Checks a create/update body like the vendor; returns the attributes to set. */
  const validate = (body: unknown, existing: FakeContact | undefined): Record<string, unknown> => {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new Refusal(400, 'parameter_invalid', 'The request body must be a JSON object');
    }
    const input = body as Record<string, unknown>;
    for (const key of Object.keys(input)) {
      // The reference lists these parameters only; the fake refuses others so a misplaced custom
      // attribute (outside `custom_attributes`) is caught. The message is the fake's own.
      if (!CONTACT_PARAMETERS.has(key))
        throw new Refusal(400, 'parameter_invalid', `${key} is not a contact parameter`);
    }
    const text = (key: string) => {
      const v = input[key];
      if (v !== undefined && v !== null && typeof v !== 'string') {
        throw new Refusal(400, 'parameter_invalid', `${key} must be a string`);
      }
    };
    ['external_id', 'email', 'phone', 'name', 'avatar'].forEach(text);
    if (input.role !== undefined && input.role !== 'user' && input.role !== 'lead') {
      throw new Refusal(400, 'parameter_invalid', 'role must be user or lead');
    }
    if (existing?.role === 'user' && input.role === 'lead') {
      throw new Refusal(400, 'client_error', "Contact with user role can't be converted to a lead");
    }
    if (typeof input.email === 'string' && !EMAIL.test(input.email)) {
      // The reference shows no example for this one: the message is the fake's own.
      throw new Refusal(400, 'parameter_invalid', `Invalid email address: ${input.email}`);
    }
    for (const key of ['signed_up_at', 'last_seen_at', 'owner_id']) {
      const v = input[key];
      if (v !== undefined && v !== null && !Number.isInteger(v)) {
        throw new Refusal(400, 'parameter_invalid', `${key} must be an integer`);
      }
    }
    if (input.unsubscribed_from_emails !== undefined && typeof input.unsubscribed_from_emails !== 'boolean') {
      throw new Refusal(400, 'parameter_invalid', 'unsubscribed_from_emails must be a boolean');
    }
    const attrs = input.custom_attributes;
    if (attrs !== undefined) {
      if (attrs === null || typeof attrs !== 'object' || Array.isArray(attrs)) {
        throw new Refusal(400, 'parameter_invalid', 'custom_attributes must be an object');
      }
      for (const [name, value] of Object.entries(attrs as Record<string, unknown>)) {
        const type = custom.get(name);
        if (!type) throw new Refusal(400, 'parameter_invalid', `Custom attribute '${name}' does not exist`);
        if (value !== null && !fits(type, value)) {
          throw new Refusal(400, 'parameter_invalid', `Custom attribute '${name}' must be of type ${type}`);
        }
      }
    }
    const role = (input.role as string | undefined) ?? existing?.role ?? 'user';
    const externalId = input.external_id !== undefined ? (input.external_id as string | null) : existing?.external_id;
    const email = input.email !== undefined ? (input.email as string | null) : existing?.email;
    if (role === 'user' && !externalId && !email) {
      throw new Refusal(400, 'parameter_invalid', 'A user needs an email or an external_id');
    }
    if (externalId) {
      const other = holder('external_id', externalId, existing?.id);
      if (other) throw conflict(other);
    }
    if (email && role === 'user') {
      const other = holder('email', email, existing?.id);
      if (other) throw conflict(other);
    }
    return input;
  };

  const apply = (contact: FakeContact, input: Record<string, unknown>) => {
    const target = contact as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(input)) {
      if (key === 'custom_attributes') {
        for (const [name, v] of Object.entries(value as Record<string, JsonValue>)) {
          if (v === null) delete contact.custom_attributes[name];
          else contact.custom_attributes[name] = v;
        }
      } else {
        target[key] = value;
      }
    }
    contact.updated_at = seconds();
  };

  const search = (body: unknown) => {
    if (body === null || typeof body !== 'object' || !('query' in body)) {
      throw new Refusal(400, 'parameter_invalid', 'query is required');
    }
    const { query, pagination } = body as {
      query: unknown;
      pagination?: { per_page?: unknown; starting_after?: unknown };
    };
    const test = compile(query, 0);
    const perPage = pagination?.per_page ?? 50;
    if (!Number.isInteger(perPage) || (perPage as number) < 1 || (perPage as number) > MAX_PER_PAGE) {
      throw new Refusal(400, 'parameter_invalid', `per_page must be between 1 and ${MAX_PER_PAGE}`);
    }
    const size = Math.min(perPage as number, pageCap);
    let offset = 0;
    if (pagination?.starting_after !== undefined) {
      offset = Number(Buffer.from(String(pagination.starting_after), 'base64url').toString());
      if (!Number.isInteger(offset) || offset < 0)
        throw new Refusal(400, 'parameter_invalid', 'starting_after is invalid');
    }
    const t = now();
    const all = [...contacts.values()].filter((c) => !c.archived && c.indexedAt <= t && test(c));
    const data = all.slice(offset, offset + size);
    const end = offset + data.length;
    return {
      type: 'list',
      data: data.map(view),
      total_count: all.length,
      pages: {
        type: 'pages',
        page: Math.floor(offset / size) + 1,
        per_page: size,
        total_pages: Math.ceil(all.length / size),
        ...(end < all.length && {
          next: { per_page: size, starting_after: Buffer.from(String(end)).toString('base64url') },
        }),
      },
    };
  };

  const route = (
    method: string,
    path: string,
    query: URLSearchParams,
    body: unknown,
  ): { status: number; json: unknown } => {
    if (method === 'GET' && path === '/me') {
      return {
        status: 200,
        json: {
          type: 'admin',
          id: '991267390',
          email: 'admin@example.com',
          name: 'Fake Admin',
          app: { type: 'app', id_code: 'fakeapp', name: 'Fake workspace', region: options.region ?? 'US' },
        },
      };
    }
    if (method === 'GET' && path === '/data_attributes') {
      const model = query.get('model');
      if (model !== null && model !== 'contact' && model !== 'company') {
        throw new Refusal(422, 'parameter_invalid', `model must be contact or company`);
      }
      const contactAttributes = [
        ...STANDARD_ATTRIBUTES.map((a) => ({
          type: 'data_attribute',
          model: 'contact',
          name: a.name,
          full_name: a.full_name ?? a.name,
          label: a.name,
          description: '',
          data_type: a.data_type,
          api_writable: a.api_writable,
          ui_writable: true,
          messenger_writable: false,
          custom: false,
          archived: false,
        })),
        ...[...custom].map(([name, type], i) => ({
          type: 'data_attribute',
          id: 1000 + i,
          model: 'contact',
          name,
          full_name: `custom_attributes.${name}`,
          label: name,
          description: '',
          data_type: type,
          api_writable: true,
          ui_writable: true,
          messenger_writable: false,
          custom: true,
          archived: false,
        })),
      ];
      const company = [
        {
          type: 'data_attribute',
          model: 'company',
          name: 'plan',
          full_name: 'plan',
          label: 'Plan',
          description: '',
          data_type: 'string',
          api_writable: true,
          custom: false,
          archived: false,
        },
      ];
      const data =
        model === 'contact' ? contactAttributes : model === 'company' ? company : [...contactAttributes, ...company];
      return { status: 200, json: { type: 'list', data } };
    }
    if (method === 'POST' && path === '/contacts/search') return { status: 200, json: search(body) };
    if (method === 'GET' && path === '/contacts') {
      // List all contacts: `per_page` (default 50 per the reference's pagination note) and the
      // `starting_after` cursor. Inferred: archived contacts are left out, as from search.
      const perPage = Number(query.get('per_page') ?? 50);
      if (!Number.isInteger(perPage) || perPage < 1 || perPage > MAX_PER_PAGE) {
        throw new Refusal(400, 'parameter_invalid', `per_page must be between 1 and ${MAX_PER_PAGE}`);
      }
      const offset = query.has('starting_after')
        ? Number(Buffer.from(query.get('starting_after') ?? '', 'base64url').toString())
        : 0;
      const all = [...contacts.values()].filter((c) => !c.archived);
      const data = all.slice(offset, offset + perPage);
      const end = offset + data.length;
      return {
        status: 200,
        json: {
          type: 'list',
          data: data.map(view),
          total_count: all.length,
          pages: {
            type: 'pages',
            page: Math.floor(offset / perPage) + 1,
            per_page: perPage,
            total_pages: Math.ceil(all.length / perPage),
            ...(end < all.length && {
              next: { per_page: perPage, starting_after: Buffer.from(String(end)).toString('base64url') },
            }),
          },
        },
      };
    }
    if (method === 'POST' && path === '/contacts') {
      const input = validate(body, undefined);
      const contact = create({});
      apply(contact, input);
      return { status: 200, json: view(contact) };
    }
    const one = /^\/contacts\/([^/]+)(\/archive|\/unarchive)?$/.exec(path);
    if (one) {
      const contact = contacts.get(decodeURIComponent(one[1] ?? ''));
      const action = one[2];
      // 404 `not_found` "Contact Not Found" is the archive/unarchive references' documented error
      // (https://developers.intercom.com/docs/references/2.1/rest-api/contacts/unarchive-a-contact).
      // Inferred: an archived contact cannot be read, updated or archived again until unarchived.
      if (!contact || (contact.archived && action !== '/unarchive')) {
        throw new Refusal(404, 'not_found', 'Contact Not Found');
      }
      if (method === 'GET' && !action) return { status: 200, json: view(contact) };
      if (method === 'PUT' && !action) {
        apply(contact, validate(body, contact));
        return { status: 200, json: view(contact) };
      }
      if (method === 'POST' && action) {
        contact.archived = action === '/archive';
        return {
          status: 200,
          json: { id: contact.id, external_id: contact.external_id, type: 'contact', archived: contact.archived },
        };
      }
    }
    throw new Refusal(404, 'not_found', 'Resource Not Found');
  };

  const isWrite = (method: string, path: string) =>
    (method === 'POST' && (path === '/contacts' || /^\/contacts\/[^/]+\/(archive|unarchive)$/.test(path))) ||
    (method === 'PUT' && /^\/contacts\/[^/]+$/.test(path));

  const send = (res: ServerResponse, status: number, json: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(json));
  };
  const errorList = (code: string, message: string) => ({
    type: 'error.list',
    request_id: randomUUID(),
    errors: [{ code, message }],
  });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const at = now();
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    let malformed = false;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        malformed = true;
      }
    }
    const record: FakeRequest = { method, path, query: url.searchParams, headers: req.headers, body, at, status: 0 };
    requests.push(record);
    requestTimes.push(at);
    const write = isWrite(method, path);
    if (write) writeTimes.push(at);
    const answer = (status: number, json: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      inFlight--;
      send(res, status, json, headers);
    };
    if (options.latencyMs) await sleep(options.latencyMs);

    if (revoked || req.headers.authorization !== `Bearer ${options.token}`) {
      return answer(401, errorList('unauthorized', 'Access Token Invalid'));
    }
    const version = req.headers['intercom-version'];
    if (typeof version === 'string' && !VERSIONS.has(version)) {
      return answer(400, errorList('intercom_version_invalid', 'The requested version could not be found'));
    }
    const current = Math.floor(at / WINDOW_MS);
    if (current !== window) {
      window = current;
      used = 0;
    }
    const reset = String(((current + 1) * WINDOW_MS) / 1000);
    const limited = (write && throttle > 0) || used >= perWindow;
    if (write && throttle > 0) throttle--;
    if (limited) {
      return answer(429, errorList('rate_limit_exceeded', `Exceeded rate limit of ${perWindow} in 10_seconds`), {
        'x-ratelimit-limit': String(perWindow),
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': reset,
      });
    }
    used++;
    const rate = {
      'x-ratelimit-limit': String(perWindow),
      'x-ratelimit-remaining': String(perWindow - used),
      'x-ratelimit-reset': reset,
    };
    if (malformed) return answer(400, errorList('parameter_invalid', 'The request body is not valid JSON'), rate);
    try {
      const { status, json } = route(method, path, url.searchParams, body);
      const lost = method === 'POST' && path === '/contacts' && status === 200 ? lostAnswers.shift() : undefined;
      if (lost !== undefined) {
        // The contact is stored; its answer never reaches the client. (The 500's message is the fake's own.)
        if (lost === 500) return answer(500, errorList('server_error', 'An unexpected error occurred'), rate);
        inFlight--;
        if (lost === 'drop') req.socket.destroy();
        return; // `timeout`: no answer until the client gives up (stop() closes what is left).
      }
      return answer(status, json, rate);
    } catch (error) {
      if (error instanceof Refusal) return answer(error.status, errorList(error.code, error.message), rate);
      return answer(500, errorList('server_error', String(error)), rate);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) send(res, 500, errorList('server_error', String(error)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    contacts,
    get maxInFlight() {
      return maxInFlight;
    },
    seed: (contact) => create({ indexedAt: 0, ...contact }),
    removeAttribute: (name) => {
      custom.delete(name);
    },
    failAfterCommit(n, how = 'timeout') {
      for (let i = 0; i < n; i++) lostAnswers.push(how);
    },
    stored(object) {
      const out = new Map<string, Record<string, JsonValue>>();
      if (object !== 'contacts') return out;
      for (const c of contacts.values()) {
        const key = c.external_id ?? c.email;
        if (key === null) continue;
        const previous = out.get(key);
        if (previous && previous.archived === false) continue;
        out.set(key, {
          id: c.id,
          role: c.role,
          external_id: c.external_id,
          email: c.email,
          name: c.name,
          phone: c.phone,
          owner_id: c.owner_id,
          unsubscribed_from_emails: c.unsubscribed_from_emails,
          signed_up_at: c.signed_up_at,
          last_seen_at: c.last_seen_at,
          ...c.custom_attributes,
          archived: c.archived,
        });
      }
      return out;
    },
    writeTimes: () => [...writeTimes],
    requestTimes: () => [...requestTimes],
    throttleNext(n) {
      throttle += n;
    },
    revoke() {
      revoked = true;
    },
    restore() {
      revoked = false;
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** A contact as the API shows it. */
function view(c: FakeContact) {
  return {
    type: 'contact',
    id: c.id,
    workspace_id: 'fakeapp',
    external_id: c.external_id,
    role: c.role,
    email: c.email,
    phone: c.phone,
    name: c.name,
    avatar: c.avatar === null ? null : { type: 'avatar', image_url: c.avatar },
    owner_id: c.owner_id,
    has_hard_bounced: false,
    marked_email_as_spam: false,
    unsubscribed_from_emails: c.unsubscribed_from_emails,
    created_at: c.created_at,
    updated_at: c.updated_at,
    signed_up_at: c.signed_up_at,
    last_seen_at: c.last_seen_at,
    custom_attributes: { ...c.custom_attributes },
  };
}

function fits(type: AttributeType, value: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
    case 'date':
      return Number.isInteger(value);
    case 'float':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
  }
}

/** A search query → a predicate, refusing what the reference says the endpoint refuses. */
function compile(query: unknown, depth: number): (c: FakeContact) => boolean {
  if (query === null || typeof query !== 'object' || Array.isArray(query)) {
    throw new Refusal(400, 'parameter_invalid', 'query must be an object');
  }
  const { field, operator, value } = query as { field?: unknown; operator?: unknown; value?: unknown };
  if (operator === 'AND' || operator === 'OR') {
    if (depth >= MAX_NESTING) {
      throw new Refusal(400, 'parameter_invalid', `There's a limit of max ${MAX_NESTING} nested filters`);
    }
    if (!Array.isArray(value) || value.length === 0) {
      throw new Refusal(400, 'parameter_invalid', `${operator} needs an array of filters`);
    }
    if (value.length > MAX_FILTERS_PER_GROUP) {
      throw new Refusal(
        400,
        'parameter_invalid',
        `There's a limit of max ${MAX_FILTERS_PER_GROUP} filters for each AND or OR group`,
      );
    }
    const parts = value.map((v) => compile(v, depth + 1));
    return operator === 'AND' ? (c) => parts.every((p) => p(c)) : (c) => parts.some((p) => p(c));
  }
  if (typeof field !== 'string' || field === '') throw new Refusal(400, 'parameter_invalid', 'field is required');
  if (typeof operator !== 'string' || !OPERATORS.has(operator)) {
    throw new Refusal(400, 'parameter_invalid', `Operator ${String(operator)} is not supported`);
  }
  if ((operator === 'IN' || operator === 'NIN') !== Array.isArray(value)) {
    throw new Refusal(
      400,
      'parameter_invalid',
      `${operator} ${Array.isArray(value) ? 'does not take' : 'needs'} an array value`,
    );
  }
  const read = reader(field);
  const caseless = field === 'email' || field === 'email_domain';
  const norm = (v: unknown) => (typeof v === 'string' && caseless ? v.toLowerCase() : v);
  const wanted = Array.isArray(value) ? value.map(norm) : norm(value);
  return (c) => {
    const actual = norm(read(c));
    switch (operator) {
      case '=':
        return actual === wanted;
      case '!=':
        return actual !== wanted;
      case 'IN':
        return (wanted as unknown[]).includes(actual);
      case 'NIN':
        return !(wanted as unknown[]).includes(actual);
      case '>':
        return typeof actual === 'number' && actual > Number(wanted);
      case '<':
        return typeof actual === 'number' && actual < Number(wanted);
      case '~':
        return typeof actual === 'string' && actual.includes(String(wanted));
      case '!~':
        return typeof actual === 'string' && !actual.includes(String(wanted));
      case '^':
        return typeof actual === 'string' && actual.startsWith(String(wanted));
      default:
        return typeof actual === 'string' && actual.endsWith(String(wanted));
    }
  };
}

function reader(field: string): (c: FakeContact) => unknown {
  if (field.startsWith('custom_attributes.')) {
    const name = field.slice('custom_attributes.'.length);
    return (c) => c.custom_attributes[name] ?? null;
  }
  switch (field) {
    case 'id':
    case 'role':
    case 'name':
    case 'email':
    case 'phone':
    case 'external_id':
    case 'owner_id':
    case 'created_at':
    case 'updated_at':
    case 'signed_up_at':
    case 'last_seen_at':
    case 'unsubscribed_from_emails':
      return (c) => c[field];
    case 'email_domain':
      return (c) => c.email?.split('@')[1] ?? null;
    default:
      throw new Refusal(400, 'parameter_invalid', `${field} is not a searchable contact field`);
  }
}
