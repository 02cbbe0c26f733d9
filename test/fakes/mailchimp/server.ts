import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JsonValue } from '#connectors/sdk/types';
import type { VendorFake } from '../../conformance/suite.ts';

/**
 * A fake Mailchimp Marketing API (3.0) on 127.0.0.1 and a free port, written from Mailchimp's docs,
 * enforcing what they promise:
 * - HTTP Basic auth with any user name and the API key as the password; 401 `API Key Missing` /
 *   `API Key Invalid` otherwise (https://mailchimp.com/developer/marketing/docs/fundamentals/);
 * - 10 simultaneous connections per user, the 11th answered 429 `Too Many Requests` without any
 *   rate-limit header; errors as problem details (`type`, `title`, `status`, `detail`, `instance`)
 *   (https://mailchimp.com/developer/marketing/docs/errors/);
 * - batch subscribe (`POST /lists/{list_id}`): at most 500 members, `update_existing` (an existing
 *   member without it is `ERROR_CONTACT_EXISTS`), invalid addresses and merge values refused in
 *   `errors[]` of a 200 answer, no re-subscribing of unsubscribed or cleaned contacts
 *   (https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/);
 * - merge fields paged by `count` (at most 1,000) and `offset`, FNAME, LNAME, ADDRESS and PHONE
 *   present in every new audience (https://mailchimp.com/developer/marketing/docs/merge-fields/);
 * - member tags (`POST …/members/{subscriber_hash}/tags`, 204) and archiving
 *   (`DELETE …/members/{subscriber_hash}`, 204), the subscriber hash being the MD5 of the
 *   lowercased address.
 * Dates are only taken as `YYYY-MM-DD` and birthdays as `MM/DD`: what Backflow promises to send.
 */

export interface FakeMergeFieldInput {
  readonly tag: string;
  readonly name?: string;
  /** text, number, address, phone, date, url, imageurl, radio, dropdown, birthday, zip. */
  readonly type: string;
  readonly required?: boolean;
  readonly options?: { readonly date_format?: string; readonly choices?: readonly string[] };
}

export interface FakeMember {
  readonly id: string;
  email_address: string;
  status: string;
  merge_fields: Record<string, JsonValue>;
  tags: string[];
}

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  body: unknown;
  readonly at: number;
  status: number;
}

export interface MailchimpFakeOptions {
  /** The one valid key; its suffix (`-us21`) is the fake's data centre. */
  readonly apiKey: string;
  /** Milliseconds every request is held before its answer, so simultaneous connections add up. */
  readonly latencyMs?: number;
  /** Simultaneous connections allowed per user (Mailchimp: 10). */
  readonly maxConnections?: number;
}

export interface MailchimpFake extends VendorFake {
  /** The API root to use as `base_url`, e.g. http://127.0.0.1:41234/3.0 */
  readonly url: string;
  readonly apiKey: string;
  readonly requests: FakeRequest[];
  /** Most requests held at once so far. */
  readonly maxInFlight: number;
  /** Creates an audience (with FNAME, LNAME, ADDRESS, PHONE, then `mergeFields`); returns its id. */
  createList(options?: { id?: string; name?: string; mergeFields?: readonly FakeMergeFieldInput[] }): string;
  /** The member of an address, archived ones included. */
  member(listId: string, email: string): FakeMember | undefined;
  /** Answers the next `n` write requests (those whose path matches `only`, when given) with a 429. */
  throttleNext(n: number, only?: RegExp): void;
  /** Adds or changes a member directly (e.g. someone who unsubscribed through a campaign). */
  seedMember(
    listId: string,
    member: { email: string; status: string; mergeFields?: Record<string, JsonValue>; tags?: string[] },
  ): void;
}

interface MergeField {
  readonly merge_id: number;
  readonly tag: string;
  readonly name: string;
  readonly type: string;
  readonly required: boolean;
  readonly default_value: string;
  readonly public: boolean;
  readonly display_order: number;
  readonly options: Record<string, unknown>;
  readonly list_id: string;
}

interface Audience {
  readonly id: string;
  readonly name: string;
  readonly mergeFields: MergeField[];
  readonly members: Map<string, FakeMember>;
  readonly tagIds: Map<string, number>;
}

const STATUSES = ['subscribed', 'unsubscribed', 'cleaned', 'pending', 'transactional'];
const MAX_MEMBERS = 500;
const MAX_COUNT = 1000;
const MAX_TEXT = 255;
const ERRORS_DOC = 'https://mailchimp.com/developer/marketing/docs/errors/';
/** What Mailchimp takes as an address: one @, no spaces, a dotted domain. */
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;

class Problem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors?: { field: string; message: string }[],
  ) {
    super(detail);
  }
}

const hash = (email: string) => createHash('md5').update(email.toLowerCase()).digest('hex');

export async function startMailchimpFake(options: MailchimpFakeOptions): Promise<MailchimpFake> {
  const audiences = new Map<string, Audience>();
  const requests: FakeRequest[] = [];
  const maxConnections = options.maxConnections ?? 10;
  let revoked = false;
  let throttle = 0;
  let throttleOnly: RegExp | undefined;
  let inFlight = 0;
  let maxInFlight = 0;
  let nextId = 1;

  const audienceOf = (id: string): Audience => {
    const audience = audiences.get(id);
    if (!audience) throw new Problem(404, 'Resource Not Found', 'The requested resource could not be found.');
    return audience;
  };

  const createList: MailchimpFake['createList'] = (list = {}) => {
    const id = list.id ?? randomUUID().replace(/-/g, '').slice(0, 10);
    const audience: Audience = {
      id,
      name: list.name ?? `Audience ${id}`,
      mergeFields: [],
      members: new Map(),
      tagIds: new Map(),
    };
    const defaults: FakeMergeFieldInput[] = [
      { tag: 'FNAME', name: 'First Name', type: 'text' },
      { tag: 'LNAME', name: 'Last Name', type: 'text' },
      { tag: 'ADDRESS', name: 'Address', type: 'address' },
      { tag: 'PHONE', name: 'Phone Number', type: 'phone' },
    ];
    for (const [i, f] of [...defaults, ...(list.mergeFields ?? [])].entries()) {
      audience.mergeFields.push({
        merge_id: i + 1,
        tag: f.tag,
        name: f.name ?? f.tag,
        type: f.type,
        required: f.required ?? false,
        default_value: '',
        public: true,
        display_order: i + 2,
        options: { ...(f.options ?? {}) },
        list_id: id,
      });
    }
    audiences.set(id, audience);
    return id;
  };

  const memberJson = (audience: Audience, m: FakeMember) => ({
    id: m.id,
    email_address: m.email_address,
    unique_email_id: m.id.slice(0, 10),
    email_type: 'html',
    status: m.status,
    merge_fields: { ...m.merge_fields },
    stats: { avg_open_rate: 0, avg_click_rate: 0 },
    tags_count: m.tags.length,
    tags: m.tags.map((name) => ({ id: audience.tagIds.get(name), name })),
    list_id: audience.id,
  });

  const blankMergeFields = (audience: Audience): Record<string, JsonValue> =>
    Object.fromEntries(audience.mergeFields.map((f) => [f.tag, '']));

  /** Why a merge value does not fit its field, as Mailchimp's `field_message`; undefined when it fits. */
  const mergeProblem = (field: MergeField, value: unknown): string | undefined => {
    if (value === '') return field.required ? 'Please enter a value' : undefined;
    switch (field.type) {
      case 'number':
        return typeof value === 'number' || (typeof value === 'string' && Number.isFinite(Number(value)))
          ? undefined
          : 'Please enter a number';
      case 'date':
        return typeof value === 'string' && /^\d{4}-\d\d-\d\d$/.test(value) ? undefined : 'Please enter a date';
      case 'birthday':
        return typeof value === 'string' && /^\d\d\/\d\d$/.test(value) ? undefined : 'Please enter a month and day';
      case 'address': {
        if (typeof value === 'string') return undefined;
        if (value === null || typeof value !== 'object' || Array.isArray(value))
          return 'Please enter a complete address';
        const a = value as Record<string, unknown>;
        return ['addr1', 'city', 'state', 'zip'].every((k) => typeof a[k] === 'string' && a[k] !== '')
          ? undefined
          : 'Please enter a complete address';
      }
      default:
        if (typeof value !== 'string') return 'Please enter a value';
        return value.length > MAX_TEXT ? `Please enter ${MAX_TEXT} characters or fewer` : undefined;
    }
  };

  const batchSubscribe = (audience: Audience, body: unknown, query: URLSearchParams) => {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new Problem(400, 'Invalid Resource', 'The resource submitted could not be validated.', [
        { field: '', message: 'Schema describes object, something else found instead' },
      ]);
    }
    const b = body as Record<string, unknown>;
    const invalid = (field: string, message: string) =>
      new Problem(
        400,
        'Invalid Resource',
        "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
        [{ field, message }],
      );
    if (!Array.isArray(b.members)) throw invalid('members', 'Required fields were not provided: members');
    if (b.members.length > MAX_MEMBERS) {
      throw invalid('members', `Array must contain at most ${MAX_MEMBERS} members, got ${b.members.length}`);
    }
    for (const key of ['update_existing', 'sync_tags'] as const) {
      if (b[key] !== undefined && typeof b[key] !== 'boolean') {
        throw invalid(key, 'Schema describes boolean, something else found instead');
      }
    }
    for (const [i, m] of (b.members as unknown[]).entries()) {
      if (m === null || typeof m !== 'object' || Array.isArray(m))
        throw invalid(`members.item:${i}`, 'Schema describes object');
      const member = m as Record<string, unknown>;
      if (typeof member.email_address !== 'string') {
        throw invalid(`members.item:${i}.email_address`, 'Required fields were not provided: email_address');
      }
      if (!STATUSES.includes(member.status as string)) {
        throw invalid(`members.item:${i}.status`, `Value is not one of enum values: ${STATUSES.join(', ')}`);
      }
      if (
        member.merge_fields !== undefined &&
        (member.merge_fields === null || typeof member.merge_fields !== 'object')
      ) {
        throw invalid(`members.item:${i}.merge_fields`, 'Schema describes object, something else found instead');
      }
    }

    const updateExisting = b.update_existing === true;
    const skipDuplicates = query.get('skip_duplicate_check') === 'true';
    const skipMergeValidation = query.get('skip_merge_validation') === 'true';
    const newMembers: unknown[] = [];
    const updatedMembers: unknown[] = [];
    const errors: Record<string, string>[] = [];
    const seen = new Set<string>();
    for (const m of b.members as { email_address: string; status: string; merge_fields?: Record<string, unknown> }[]) {
      const email = m.email_address.trim();
      const lower = email.toLowerCase();
      const refuse = (error: string, extra: Record<string, string> = {}) =>
        errors.push({ email_address: m.email_address, error, error_code: 'ERROR_GENERIC', ...extra });
      if (seen.has(lower)) {
        if (!skipDuplicates) refuse(`${email} is a duplicate of an earlier member of this request`);
        continue;
      }
      seen.add(lower);
      if (!EMAIL.test(email)) {
        refuse(`${email} looks fake or invalid, please enter a real email address.`, {
          field: 'email_address',
          field_message: 'Invalid email address',
        });
        continue;
      }
      const existing = audience.members.get(lower);
      const live = existing && existing.status !== 'archived';
      if (live && !updateExisting) {
        errors.push({
          email_address: m.email_address,
          error: `${email} is already a list member. Use PUT to insert or update list members.`,
          error_code: 'ERROR_CONTACT_EXISTS',
        });
        continue;
      }
      if (
        live &&
        ((existing.status === 'unsubscribed' && m.status === 'subscribed') ||
          (existing.status === 'cleaned' && (m.status === 'subscribed' || m.status === 'pending')))
      ) {
        refuse(
          `${email} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed.`,
        );
        continue;
      }
      const given = m.merge_fields ?? {};
      const problems = audience.mergeFields.flatMap((f) => {
        if (f.tag in given) {
          const problem = mergeProblem(f, given[f.tag]);
          return problem ? [{ tag: f.tag, problem }] : [];
        }
        // A new member must carry every required field, unless the request skips that check.
        return !live && f.required && !skipMergeValidation ? [{ tag: f.tag, problem: 'Please enter a value' }] : [];
      });
      const first = problems[0];
      if (first) {
        refuse('Your merge fields were invalid.', { field: first.tag, field_message: first.problem });
        continue;
      }
      // Merge tags the audience does not define are ignored.
      const known = Object.fromEntries(
        Object.entries(given).filter(([tag]) => audience.mergeFields.some((f) => f.tag === tag)),
      ) as Record<string, JsonValue>;
      if (live) {
        existing.status = m.status;
        Object.assign(existing.merge_fields, known);
        updatedMembers.push(memberJson(audience, existing));
      } else {
        const member: FakeMember = existing ?? {
          id: hash(email),
          email_address: email,
          status: m.status,
          merge_fields: blankMergeFields(audience),
          tags: [],
        };
        member.status = m.status;
        Object.assign(member.merge_fields, known);
        audience.members.set(lower, member);
        newMembers.push(memberJson(audience, member));
      }
    }
    return {
      new_members: newMembers,
      updated_members: updatedMembers,
      errors,
      total_created: newMembers.length,
      total_updated: updatedMembers.length,
      error_count: errors.length,
      _links: [],
    };
  };

  /** A member by subscriber hash (or, as Mailchimp also allows, by address). */
  const memberByHash = (audience: Audience, id: string): FakeMember | undefined => {
    const wanted = id.includes('@') ? hash(decodeURIComponent(id)) : id.toLowerCase();
    for (const m of audience.members.values()) if (m.id === wanted) return m;
    return undefined;
  };

  const setTags = (audience: Audience, member: FakeMember | undefined, body: unknown) => {
    const tags = (body as { tags?: unknown } | null)?.tags;
    if (!Array.isArray(tags)) {
      throw new Problem(400, 'Invalid Resource', 'The resource submitted could not be validated.', [
        { field: 'tags', message: 'Required fields were not provided: tags' },
      ]);
    }
    for (const [i, t] of tags.entries()) {
      const tag = t as { name?: unknown; status?: unknown } | null;
      if (
        typeof tag?.name !== 'string' ||
        tag.name.trim() === '' ||
        (tag.status !== 'active' && tag.status !== 'inactive')
      ) {
        throw new Problem(400, 'Invalid Resource', 'The resource submitted could not be validated.', [
          { field: `tags.item:${i}`, message: 'A tag needs a name and a status of active or inactive' },
        ]);
      }
    }
    if (!member || member.status === 'archived') {
      throw new Problem(404, 'Resource Not Found', 'The requested resource could not be found.');
    }
    for (const { name, status } of tags as { name: string; status: string }[]) {
      if (status === 'active' && !member.tags.includes(name)) {
        member.tags.push(name);
        if (!audience.tagIds.has(name)) audience.tagIds.set(name, nextId++);
      }
      if (status === 'inactive') member.tags = member.tags.filter((t) => t !== name);
    }
  };

  const route = (method: string, segments: string[], query: URLSearchParams, body: unknown): [number, unknown] => {
    const [resource, listId, sub, memberId, action] = segments;
    if (resource === 'ping' && segments.length === 1) {
      if (method !== 'GET') throw methodNotAllowed();
      return [200, { health_status: "Everything's Chimpy!" }];
    }
    if (resource !== 'lists' || listId === undefined) throw notFound();
    const audience = audienceOf(listId);
    if (sub === undefined) {
      if (method === 'GET')
        return [200, { id: audience.id, name: audience.name, stats: { member_count: audience.members.size } }];
      if (method === 'POST') return [200, batchSubscribe(audience, body, query)];
      throw methodNotAllowed();
    }
    if (sub === 'merge-fields' && memberId === undefined) {
      if (method !== 'GET') throw methodNotAllowed();
      const count = Number(query.get('count') ?? 10);
      const offset = Number(query.get('offset') ?? 0);
      if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT || !Number.isInteger(offset) || offset < 0) {
        throw new Problem(400, 'Invalid Resource', `count must be between 1 and ${MAX_COUNT}, offset 0 or more.`);
      }
      return [
        200,
        {
          merge_fields: audience.mergeFields.slice(offset, offset + count),
          list_id: audience.id,
          total_items: audience.mergeFields.length,
          _links: [],
        },
      ];
    }
    if (sub === 'members' && memberId !== undefined) {
      const member = memberByHash(audience, memberId);
      if (action === undefined) {
        if (method === 'GET') {
          if (!member) throw notFound();
          return [200, memberJson(audience, member)];
        }
        if (method === 'DELETE') {
          if (!member || member.status === 'archived') throw notFound();
          member.status = 'archived';
          return [204, undefined];
        }
        throw methodNotAllowed();
      }
      if (action === 'tags' && segments.length === 5) {
        if (method !== 'POST') throw methodNotAllowed();
        setTags(audience, member, body);
        return [204, undefined];
      }
    }
    throw notFound();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const isWrite = method !== 'GET' && method !== 'HEAD';
    const entry: FakeRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body: undefined,
      at: Date.now(),
      status: 0,
    };
    requests.push(entry);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let status = 200;
    let payload: unknown;
    try {
      if (options.latencyMs) await sleep(options.latencyMs);
      const auth = authorize(req.headers.authorization);
      if (auth) throw auth;
      const throttled = isWrite && throttle > 0 && (!throttleOnly || throttleOnly.test(url.pathname));
      if (inFlight > maxConnections || throttled) {
        if (throttled) throttle--;
        throw new Problem(429, 'Too Many Requests', 'You have exceeded the limit of 10 simultaneous connections.');
      }
      if (!url.pathname.startsWith('/3.0/')) throw notFound();
      let body: unknown;
      if (text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          throw new Problem(400, 'JSON Parse Error', 'We encountered an unspecified JSON parsing error.');
        }
      }
      entry.body = body;
      const segments = url.pathname.slice('/3.0/'.length).split('/').filter(Boolean);
      [status, payload] = route(method, segments, url.searchParams, body);
    } catch (error) {
      if (!(error instanceof Problem)) throw error;
      status = error.status;
      payload = {
        type: ERRORS_DOC,
        title: error.title,
        status: error.status,
        detail: error.detail,
        instance: randomUUID(),
        ...(error.errors ? { errors: error.errors } : {}),
      };
    } finally {
      inFlight--;
    }
    entry.status = status;
    if (status === 204) {
      res.writeHead(204).end();
      return;
    }
    res
      .writeHead(status, {
        'content-type': status >= 400 ? 'application/problem+json; charset=utf-8' : 'application/json; charset=utf-8',
      })
      .end(JSON.stringify(payload));
  };

  /** Basic auth: any user name, the key as password (a key of another data centre is invalid here). */
  const authorize = (header: string | undefined): Problem | undefined => {
    const basic = header?.match(/^Basic\s+(.+)$/i)?.[1];
    if (!basic) return new Problem(401, 'API Key Missing', 'Your request did not include an API key.');
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const key = decoded.slice(decoded.indexOf(':') + 1);
    if (revoked || decoded.indexOf(':') < 0 || key !== options.apiKey) {
      return new Problem(
        401,
        'API Key Invalid',
        "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
      );
    }
    return undefined;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/problem+json' }).end(
        JSON.stringify({
          type: ERRORS_DOC,
          title: 'Internal Server Error',
          status: 500,
          detail: String(error),
          instance: randomUUID(),
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/3.0`,
    apiKey: options.apiKey,
    requests,
    get maxInFlight() {
      return maxInFlight;
    },
    createList,
    member: (listId, email) => audiences.get(listId)?.members.get(email.toLowerCase()),
    seedMember(listId, m) {
      const audience = audienceOf(listId);
      const member: FakeMember = {
        id: hash(m.email),
        email_address: m.email,
        status: m.status,
        merge_fields: { ...blankMergeFields(audience), ...(m.mergeFields ?? {}) },
        tags: [...(m.tags ?? [])],
      };
      for (const t of member.tags) if (!audience.tagIds.has(t)) audience.tagIds.set(t, nextId++);
      audience.members.set(m.email.toLowerCase(), member);
    },
    stored(object) {
      const audience = audiences.get(object);
      return new Map(
        [...(audience?.members.values() ?? [])].map((m) => [
          m.email_address.toLowerCase(),
          { email_address: m.email_address, status: m.status, ...m.merge_fields, tags: [...m.tags] },
        ]),
      );
    },
    writeTimes: () => requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD').map((r) => r.at),
    throttleNext(n, only) {
      throttle = n;
      throttleOnly = only;
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

function notFound(): Problem {
  return new Problem(404, 'Resource Not Found', 'The requested resource could not be found.');
}

function methodNotAllowed(): Problem {
  return new Problem(
    405,
    'Method Not Allowed',
    "The requested method and resource are not compatible. See the Allow header for this resource's available methods.",
  );
}
