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
 * - a batch member's `status` and `status_if_new` (both in Mailchimp's API definition:
 *   BatchSubscribeOrUnsubscribeListsRequestMembersItemStatus / …StatusIfNew in
 *   github.com/mailchimp/mailchimp-marketing-typescript-sdk; `update_existing`: "Whether this
 *   batch operation will change existing members' subscription status"). As for the member PUT
 *   (https://mailchimp.com/developer/marketing/api/list-members/add-or-update-list-member/),
 *   `status_if_new` is the status of a member new to the audience and `status` the one an
 *   existing member is changed to. Inferred: an existing member sent without `status` keeps its
 *   status; a new one takes `status_if_new`, else `status`; a member with neither is refused;
 * - a batch member's `tags` (names): added to an existing member's tags, or replacing them with
 *   `sync_tags: true` and `update_existing: true`
 *   (https://mailchimp.com/developer/release-notes/added-ability-sync-tags-existing-members/);
 * - merge fields paged by `count` (at most 1,000) and `offset`, FNAME, LNAME, ADDRESS and PHONE
 *   present in every new audience (https://mailchimp.com/developer/marketing/docs/merge-fields/);
 *   a date field's `date_format` (`MM/DD/YYYY` or `DD/MM/YYYY`), a birthday's `MM/DD` or `DD/MM`.
 *   Inferred: a date value is only taken in its field's `date_format` (`YYYY-MM-DD` for a field
 *   without one), and new date fields default to `MM/DD/YYYY`, birthdays to `MM/DD`;
 * - a member by subscriber hash (`GET …/members/{subscriber_hash}`), member tags
 *   (`POST …/members/{subscriber_hash}/tags`, 204) and archiving
 *   (`DELETE …/members/{subscriber_hash}`, 204), the subscriber hash being the MD5 of the
 *   lowercased address;
 * - segments (https://mailchimp.com/developer/marketing/api/list-segments/): tags ARE static
 *   segments — the segments collection's `exclude_type=static` "excludes tags from the response"
 *   (ListSegmentsListsRequest in github.com/mailchimp/mailchimp-marketing-typescript-sdk), so a
 *   static segment here is a tag: its name is the tag's name, its id the tag's id in a member's
 *   `tags`, its members the members carrying the tag. `GET …/segments` (`type`, `count` ≤ 1,000,
 *   `offset`), `GET …/segments/{id}`, `POST …/segments` with `static_segment` (emails; "Passing an
 *   empty array will create a static segment without any subscribers"; not together with
 *   `options`: 400 'Must provide either an "options" field or a "static_segment" field', as quoted
 *   in github.com/brandonseydel/MailChimp.Net issue 160) or `options` (a saved segment), and
 *   `POST …/segments/{id}` with `members_to_add` / `members_to_remove` ("A maximum of 500 members
 *   can be sent" in each; "Any emails provided that are not present on the list will be ignored")
 *   answering `members_added`, `members_removed`, `errors[]` of `{ email_addresses, error }`,
 *   `total_added`, `total_removed`, `error_count` (BatchAddOrRemoveMembersListsRequest/Response in
 *   the TypeScript SDK). A saved segment takes no members: 400 "A Static Segment with an id of …
 *   does not exist for this list." (as reported in MailChimp.Net issue 377 and thorning/node-mailchimp
 *   issue 32). Inferred: addresses not in the audience (or archived, or invalid) come back in
 *   `errors[]` ("could not be added to the segment or removed"); a member already in the segment
 *   (or one to remove who is not in it) is in neither list; a second static segment with a name
 *   already taken is refused 400;
 * - every refusal as problem details; a 403 `Forbidden` with such a body for a key that may not
 *   reach a resource (https://mailchimp.com/developer/marketing/docs/errors/), and under load a
 *   bare 403 with no JSON body (the throttle; API limits in
 *   https://mailchimp.com/developer/marketing/docs/fundamentals/ as read by
 *   github.com/api-evangelist/mailchimp; Inferred: its body is a short HTML page).
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
  /**
   * Answers the next `n` write requests (those whose path matches `only`, when given) with a 429,
   * after letting `after` of them through.
   */
  throttleNext(n: number, only?: RegExp, after?: number): void;
  /**
   * Fault: the next `n` write requests (matching `only`) are applied, then never answered — as
   * when a connection drops after Mailchimp committed — until the client gives up.
   */
  commitThenHang(n: number, only?: RegExp): void;
  /**
   * The next `n` requests are answered 403: `bare` as Mailchimp's throttle under load (no JSON
   * body), `problem` as a real refusal (`Forbidden` problem details).
   */
  forbidNext(n: number, kind: 'bare' | 'problem'): void;
  /** Creates a segment: `static` (a tag; `emails` of members get it) or `saved` (conditions); returns its id. */
  createSegment(
    listId: string,
    segment: { name: string; type: 'static' | 'saved'; emails?: readonly string[] },
  ): number;
  /** Deletes a segment (a tag: removed from every member), as done in Mailchimp's UI. */
  deleteSegment(listId: string, id: number): void;
  /**
   * Who is in a membership object now, lower-cased emails of live members: `tag:<name>` or
   * `segment:<id>` (static), across the fake's audiences.
   */
  members(object: string): ReadonlySet<string>;
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
  /** Saved (condition) segments by id: they take no members by API. */
  readonly savedSegments: Map<number, string>;
}

const STATUSES = ['subscribed', 'unsubscribed', 'cleaned', 'pending', 'transactional'];
const MAX_MEMBERS = 500;
/** Each of `members_to_add` and `members_to_remove`. */
const MAX_SEGMENT_CHANGES = 500;
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
  let throttleAfter = 0;
  let throttleOnly: RegExp | undefined;
  let hang = 0;
  let hangOnly: RegExp | undefined;
  const hung = new Set<ServerResponse>();
  let forbid = 0;
  let forbidKind: 'bare' | 'problem' = 'bare';
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
      savedSegments: new Map(),
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
        // Inferred: Mailchimp's defaults for a new date or birthday field.
        options: {
          ...(f.type === 'date' ? { date_format: 'MM/DD/YYYY' } : {}),
          ...(f.type === 'birthday' ? { date_format: 'MM/DD' } : {}),
          ...(f.options ?? {}),
        },
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
        return typeof value === 'string' && inFormat(value, field.options.date_format as string | undefined)
          ? undefined
          : 'Please enter a date';
      case 'birthday':
        return typeof value === 'string' &&
          inFormat(value, (field.options.date_format as string | undefined) ?? 'MM/DD')
          ? undefined
          : 'Please enter a month and day';
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
      for (const key of ['status', 'status_if_new'] as const) {
        if (member[key] !== undefined && !STATUSES.includes(member[key] as string)) {
          throw invalid(`members.item:${i}.${key}`, `Value is not one of enum values: ${STATUSES.join(', ')}`);
        }
      }
      // Inferred: one of the two is needed, or a new member would have no status.
      if (member.status === undefined && member.status_if_new === undefined) {
        throw invalid(`members.item:${i}.status`, 'Required fields were not provided: status or status_if_new');
      }
      if (
        member.tags !== undefined &&
        (!Array.isArray(member.tags) || member.tags.some((t) => typeof t !== 'string' || t.trim() === ''))
      ) {
        throw invalid(`members.item:${i}.tags`, 'Schema describes array of tag names, something else found instead');
      }
      if (
        member.merge_fields !== undefined &&
        (member.merge_fields === null || typeof member.merge_fields !== 'object')
      ) {
        throw invalid(`members.item:${i}.merge_fields`, 'Schema describes object, something else found instead');
      }
    }

    const updateExisting = b.update_existing === true;
    // sync_tags only works with update_existing (release note above).
    const syncTags = b.sync_tags === true && updateExisting;
    const skipDuplicates = query.get('skip_duplicate_check') === 'true';
    const skipMergeValidation = query.get('skip_merge_validation') === 'true';
    const newMembers: unknown[] = [];
    const updatedMembers: unknown[] = [];
    const errors: Record<string, string>[] = [];
    const seen = new Set<string>();
    for (const m of b.members as {
      email_address: string;
      status?: string;
      status_if_new?: string;
      merge_fields?: Record<string, unknown>;
      tags?: string[];
    }[]) {
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
      // An existing member changes status only with `status`; a new one takes `status_if_new`.
      const nextStatus = live ? m.status : (m.status_if_new ?? m.status);
      if (
        live &&
        ((existing.status === 'unsubscribed' && nextStatus === 'subscribed') ||
          (existing.status === 'cleaned' && (nextStatus === 'subscribed' || nextStatus === 'pending')))
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
      const tags = (m.tags ?? []).map((t) => t.trim());
      for (const t of tags) if (!audience.tagIds.has(t)) audience.tagIds.set(t, nextId++);
      if (live) {
        if (nextStatus !== undefined) existing.status = nextStatus;
        Object.assign(existing.merge_fields, known);
        if (syncTags) existing.tags = [...new Set(tags)];
        else for (const t of tags) if (!existing.tags.includes(t)) existing.tags.push(t);
        updatedMembers.push(memberJson(audience, existing));
      } else {
        const status = nextStatus as string;
        const member: FakeMember = existing ?? {
          id: hash(email),
          email_address: email,
          status,
          merge_fields: blankMergeFields(audience),
          tags: [],
        };
        member.status = status;
        member.tags = [...new Set(tags)];
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

  const live = (audience: Audience, email: string): FakeMember | undefined => {
    const m = audience.members.get(email.toLowerCase());
    return m && m.status !== 'archived' ? m : undefined;
  };

  const tagNameOf = (audience: Audience, id: number): string | undefined => {
    for (const [name, tagId] of audience.tagIds) if (tagId === id) return name;
    return undefined;
  };

  const segmentJson = (audience: Audience, id: number) => {
    const tag = tagNameOf(audience, id);
    const name = tag ?? audience.savedSegments.get(id) ?? '';
    return {
      id,
      name,
      member_count: tag
        ? [...audience.members.values()].filter((m) => m.status !== 'archived' && m.tags.includes(tag)).length
        : 0,
      type: tag !== undefined ? 'static' : 'saved',
      created_at: '2024-01-01T00:00:00+00:00',
      updated_at: '2024-01-01T00:00:00+00:00',
      ...(tag === undefined ? { options: { match: 'all', conditions: [] } } : {}),
      list_id: audience.id,
    };
  };

  const segmentIds = (audience: Audience, type?: string | null): number[] => {
    const ids = [
      ...(type === 'saved' || type === 'fuzzy' ? [] : [...audience.tagIds.values()]),
      ...(type === 'static' || type === 'fuzzy' ? [] : [...audience.savedSegments.keys()]),
    ];
    return ids.sort((a, b) => a - b);
  };

  const invalid = (field: string, message: string) =>
    new Problem(400, 'Invalid Resource', 'The resource submitted could not be validated.', [{ field, message }]);

  const createSegmentFromBody = (audience: Audience, body: unknown) => {
    const b = (body ?? {}) as { name?: unknown; static_segment?: unknown; options?: unknown };
    if (typeof b.name !== 'string' || b.name.trim() === '')
      throw invalid('name', 'Required fields were not provided: name');
    if ((b.static_segment === undefined) === (b.options === undefined)) {
      throw new Problem(400, 'Invalid Resource', 'Must provide either an "options" field or a "static_segment" field');
    }
    if (b.options !== undefined) {
      const id = nextId++;
      audience.savedSegments.set(id, b.name);
      return segmentJson(audience, id);
    }
    if (!Array.isArray(b.static_segment) || !b.static_segment.every((e) => typeof e === 'string')) {
      throw invalid('static_segment', 'Schema describes array of strings, something else found instead');
    }
    // Inferred: a tag name is unique within an audience.
    if (audience.tagIds.has(b.name)) {
      throw new Problem(400, 'Invalid Resource', `A tag named "${b.name}" already exists in this list.`);
    }
    const id = nextId++;
    audience.tagIds.set(b.name, id);
    for (const email of b.static_segment as string[]) {
      const m = live(audience, email);
      if (m && !m.tags.includes(b.name)) m.tags.push(b.name);
    }
    return segmentJson(audience, id);
  };

  const changeSegmentMembers = (audience: Audience, id: number, body: unknown) => {
    const tag = tagNameOf(audience, id);
    if (tag === undefined) {
      if (audience.savedSegments.has(id)) {
        throw new Problem(
          400,
          'Invalid Resource',
          `A Static Segment with an id of ${id} does not exist for this list.`,
        );
      }
      throw notFound();
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw invalid('', 'Schema describes object, something else found instead');
    }
    const b = body as { members_to_add?: unknown; members_to_remove?: unknown };
    const lists: Record<'members_to_add' | 'members_to_remove', string[]> = {
      members_to_add: [],
      members_to_remove: [],
    };
    for (const key of ['members_to_add', 'members_to_remove'] as const) {
      const value = b[key];
      if (value === undefined) continue;
      if (!Array.isArray(value) || !value.every((e) => typeof e === 'string')) {
        throw invalid(key, 'Schema describes array of strings, something else found instead');
      }
      if (value.length > MAX_SEGMENT_CHANGES) {
        throw invalid(key, `A maximum of ${MAX_SEGMENT_CHANGES} members can be sent.`);
      }
      lists[key] = value as string[];
    }
    if (b.members_to_add === undefined && b.members_to_remove === undefined) {
      throw invalid('', 'Required fields were not provided: members_to_add or members_to_remove');
    }
    const added: unknown[] = [];
    const removed: unknown[] = [];
    const notInList: string[] = [];
    for (const email of lists.members_to_add) {
      const m = live(audience, email);
      if (!m) notInList.push(email);
      else if (!m.tags.includes(tag)) {
        m.tags.push(tag);
        added.push(memberJson(audience, m));
      }
    }
    for (const email of lists.members_to_remove) {
      const m = live(audience, email);
      if (!m) notInList.push(email);
      else if (m.tags.includes(tag)) {
        m.tags = m.tags.filter((t) => t !== tag);
        removed.push(memberJson(audience, m));
      }
    }
    // Inferred wording; the shape is the API definition's.
    const errors =
      notInList.length > 0 ? [{ email_addresses: notInList, error: 'Email addresses are not list members' }] : [];
    return {
      members_added: added,
      members_removed: removed,
      errors,
      total_added: added.length,
      total_removed: removed.length,
      error_count: notInList.length,
      _links: [],
    };
  };

  const segmentsRoute = (
    method: string,
    audience: Audience,
    id: string | undefined,
    rest: string[],
    query: URLSearchParams,
    body: unknown,
  ): [number, unknown] => {
    if (id === undefined) {
      if (method === 'POST') return [200, createSegmentFromBody(audience, body)];
      if (method !== 'GET') throw methodNotAllowed();
      const count = Number(query.get('count') ?? 10);
      const offset = Number(query.get('offset') ?? 0);
      if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT || !Number.isInteger(offset) || offset < 0) {
        throw new Problem(400, 'Invalid Resource', `count must be between 1 and ${MAX_COUNT}, offset 0 or more.`);
      }
      const ids = segmentIds(audience, query.get('type'));
      return [
        200,
        {
          segments: ids.slice(offset, offset + count).map((i) => segmentJson(audience, i)),
          list_id: audience.id,
          total_items: ids.length,
          _links: [],
        },
      ];
    }
    const segmentId = Number(id);
    if (!Number.isInteger(segmentId) || rest.length > 0) throw notFound();
    const exists = tagNameOf(audience, segmentId) !== undefined || audience.savedSegments.has(segmentId);
    if (method === 'GET') {
      if (!exists) throw notFound();
      return [200, segmentJson(audience, segmentId)];
    }
    if (method === 'POST') return [200, changeSegmentMembers(audience, segmentId, body)];
    throw methodNotAllowed();
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
    if (sub === 'segments') return segmentsRoute(method, audience, memberId, segments.slice(4), query, body);
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
    let bare = false;
    try {
      if (options.latencyMs) await sleep(options.latencyMs);
      const auth = authorize(req.headers.authorization);
      if (auth) throw auth;
      if (forbid > 0) {
        forbid--;
        if (forbidKind === 'bare') bare = true;
        throw new Problem(403, 'Forbidden', "You don't have permission to access this resource.");
      }
      let throttled = isWrite && throttle > 0 && (!throttleOnly || throttleOnly.test(url.pathname));
      if (throttled && throttleAfter > 0) {
        throttleAfter--;
        throttled = false;
      }
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
    if (bare) {
      res.writeHead(403, { 'content-type': 'text/html' }).end('<html><body><h1>403 Forbidden</h1></body></html>');
      return;
    }
    if (isWrite && status < 300 && hang > 0 && (!hangOnly || hangOnly.test(url.pathname))) {
      // Applied above; the answer never leaves. The client's timeout ends the wait.
      hang--;
      hung.add(res);
      res.on('close', () => hung.delete(res));
      return;
    }
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
    createSegment(listId, segment) {
      const audience = audienceOf(listId);
      if (segment.type === 'saved') return createSegmentFromBody(audience, { name: segment.name, options: {} }).id;
      return createSegmentFromBody(audience, { name: segment.name, static_segment: [...(segment.emails ?? [])] }).id;
    },
    deleteSegment(listId, id) {
      const audience = audienceOf(listId);
      const tag = tagNameOf(audience, id);
      audience.savedSegments.delete(id);
      if (tag === undefined) return;
      audience.tagIds.delete(tag);
      for (const m of audience.members.values()) m.tags = m.tags.filter((t) => t !== tag);
    },
    members(object) {
      const out = new Set<string>();
      for (const audience of audiences.values()) {
        let tag: string | undefined;
        if (object.startsWith('tag:')) tag = audience.tagIds.has(object.slice(4)) ? object.slice(4) : undefined;
        else if (object.startsWith('segment:')) tag = tagNameOf(audience, Number(object.slice(8)));
        if (tag === undefined) continue;
        for (const m of audience.members.values()) {
          if (m.status !== 'archived' && m.tags.includes(tag)) out.add(m.email_address.toLowerCase());
        }
      }
      return out;
    },
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
    requestTimes: () => requests.map((r) => r.at),
    throttleNext(n, only, after = 0) {
      throttle = n;
      throttleOnly = only;
      throttleAfter = after;
    },
    commitThenHang(n, only) {
      hang = n;
      hangOnly = only;
    },
    forbidNext(n, kind) {
      forbid = n;
      forbidKind = kind;
    },
    revoke() {
      revoked = true;
    },
    restore() {
      revoked = false;
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        for (const res of hung) res.destroy();
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** Whether a date or birthday value is written in a field's `date_format`, with a real month and day. */
function inFormat(value: string, format: string | undefined): boolean {
  const f = (format ?? 'YYYY-MM-DD').toUpperCase().replace(/\s/g, '');
  const parts = /^(\d+)[-/](\d+)(?:[-/](\d+))?$/.exec(value);
  const order = f.split(/[-/]/);
  if (!parts || order.length !== parts.slice(1).filter((p) => p !== undefined).length) return false;
  const at = (name: string) => {
    const i = order.findIndex((o) => o.startsWith(name));
    return i < 0 ? undefined : parts[i + 1];
  };
  const [year, month, day] = [at('Y'), at('M'), at('D')];
  if ((year !== undefined && year.length !== 4) || month?.length !== 2 || day?.length !== 2) return false;
  if (!value.includes(f.includes('/') ? '/' : '-')) return false;
  const m = Number(month);
  const d = Number(day);
  return m >= 1 && m <= 12 && d >= 1 && d <= new Date(Date.UTC(Number(year ?? 2000), m, 0)).getUTCDate();
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
