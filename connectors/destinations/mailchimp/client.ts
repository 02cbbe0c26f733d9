import { createHash } from 'node:crypto';
import { ConnectorConfigError, RateLimitedError } from '#connectors/sdk/errors';
import { createHttpClient, HttpError, type HttpRefusal } from '#connectors/sdk/http';
import type { JsonValue, RequestPace } from '#connectors/sdk/types';
import { MAX_PAGE_SIZE, THROTTLE_WAIT_MS } from './limits.ts';

/**
 * The Mailchimp Marketing API calls Backflow makes, on top of the shared HTTP client.
 * Conventions (auth, data centres, errors): https://mailchimp.com/developer/marketing/docs/fundamentals/
 */

/** A subscription status as the API spells it. */
export const MEMBER_STATUSES = ['subscribed', 'unsubscribed', 'cleaned', 'pending', 'transactional'] as const;
export type MemberStatus = (typeof MEMBER_STATUSES)[number];

/** An audience field (`GET /lists/{list_id}/merge-fields`). */
export interface MergeField {
  readonly tag: string;
  readonly name: string;
  /** text, number, address, phone, date, url, imageurl, radio, dropdown, birthday, zip. */
  readonly type: string;
  readonly required: boolean;
  readonly options?: { readonly date_format?: string; readonly choices?: readonly string[] };
}

/**
 * A member as batch subscribe returns it in `new_members` and `updated_members`, and as
 * `GET /lists/{list_id}/members/{subscriber_hash}` returns it.
 * https://mailchimp.com/developer/marketing/api/list-members/get-member-info/
 */
export interface Member {
  /** MD5 of the lowercased email address: the subscriber hash. */
  readonly id: string;
  readonly email_address: string;
  readonly status: string;
  readonly merge_fields?: Readonly<Record<string, JsonValue>>;
  readonly tags?: readonly { readonly id?: number; readonly name: string }[];
}

/** One refused member of a batch subscribe (`errors[]`). */
export interface BatchMemberError {
  readonly email_address: string;
  readonly error: string;
  /** `ERROR_CONTACT_EXISTS`, `ERROR_GENERIC`. */
  readonly error_code?: string;
  readonly field?: string;
  readonly field_message?: string;
}

export interface BatchSubscribeResult {
  readonly new_members: readonly Member[];
  readonly updated_members: readonly Member[];
  readonly errors: readonly BatchMemberError[];
}

/**
 * What batch subscribe takes for one member. `status_if_new` is the status of a member new to the
 * audience; `status` (sent only when the user asked for it: a mapped status, or
 * `overwrite_status`) also changes the status of a member already there, when `update_existing`.
 * `tags` are tag names: added to the member's tags, or replacing them with `sync_tags`.
 * Members' fields: Mailchimp's API definition (BatchSubscribeOrUnsubscribeListsRequestMembersItem
 * Status / StatusIfNew in github.com/mailchimp/mailchimp-marketing-typescript-sdk); tags:
 * https://mailchimp.com/developer/release-notes/added-ability-sync-tags-existing-members/
 */
export interface MemberInput {
  readonly email_address: string;
  readonly status?: MemberStatus;
  readonly status_if_new: MemberStatus;
  readonly merge_fields?: Readonly<Record<string, JsonValue>>;
  readonly tags?: readonly string[];
}

/**
 * Mailchimp's error body, RFC 7807 problem details: `type`, `title`, `status`, `detail`, `instance`
 * and, for validation errors, `errors[]` of `{ field, message }`.
 * https://mailchimp.com/developer/marketing/docs/errors/
 */
export interface Problem {
  readonly title?: string;
  readonly status?: number;
  readonly detail?: string;
  readonly instance?: string;
  readonly errors?: readonly { readonly field?: string; readonly message?: string }[];
}

/**
 * The data centre an API key belongs to: the suffix after its last dash (`…-us21` → `us21`).
 * https://mailchimp.com/developer/marketing/docs/fundamentals/#api-structure
 */
export function dataCentreOf(apiKey: string): string | undefined {
  return /-([a-z]+\d+)$/.exec(apiKey)?.[1];
}

/** `https://<dc>.api.mailchimp.com/3.0`, from the key's data centre. */
export function apiBaseUrl(apiKey: string): string | undefined {
  const dc = dataCentreOf(apiKey);
  return dc ? `https://${dc}.api.mailchimp.com/3.0` : undefined;
}

/** A member's id in paths: the MD5 hash of the lowercased email address. */
export function subscriberHash(email: string): string {
  return createHash('md5').update(email.toLowerCase()).digest('hex');
}

/** `Title: detail (field: message; …)`, for error messages and rejection reasons. */
export function describeProblem(body: unknown): string {
  if (typeof body === 'string') return body.slice(0, 300) || '(no body)';
  if (body === null || typeof body !== 'object') return String(body);
  const problem = body as Problem;
  const fields = (problem.errors ?? [])
    .map((e) => [e.field, e.message].filter(Boolean).join(': '))
    .filter((e) => e !== '')
    .join('; ');
  const text = [problem.title, problem.detail].filter(Boolean).join(': ') || JSON.stringify(body).slice(0, 300);
  return fields ? `${text} (${fields})` : text;
}

export interface MailchimpClientOptions {
  readonly apiKey: string;
  readonly baseUrl: string;
  readonly timeoutMs: number;
  /** The lane's pace: every request takes its slot first. */
  readonly pace?: RequestPace;
  readonly fetch?: typeof fetch;
}

/** A problem-details body (`title`/`status`/`detail`), as every answer of Mailchimp's API has. */
function isProblem(body: unknown): boolean {
  return body !== null && typeof body === 'object' && ('title' in body || 'status' in body || 'detail' in body);
}

/**
 * Mailchimp's refusals that are not what their status says. Its API answers every refusal with a
 * problem-details body (https://mailchimp.com/developer/marketing/docs/errors/): a 403 with one (`Forbidden`, `User Disabled`, `Wrong
 * Datacenter`) is a real refusal of the key and stays an AuthError. Under heavy load Mailchimp's
 * throttle also answers a bare 403 with no JSON body (https://mailchimp.com/developer/marketing/docs/fundamentals/, the API-limits
 * section, as read by github.com/api-evangelist/mailchimp rate-limits): that is a rate limit.
 * Inferred: any 403 without a problem body is that throttle (its exact body is not published).
 */
export function classifyRefusal(response: HttpRefusal): Error | undefined {
  if (response.status === 403 && !isProblem(response.body)) {
    return new RateLimitedError(
      `${response.where} was throttled (403 without an error body, Mailchimp's answer under load); retry after ${THROTTLE_WAIT_MS} ms`,
      THROTTLE_WAIT_MS,
    );
  }
  return undefined;
}

/**
 * A segment of an audience (`GET /lists/{list_id}/segments`): `static` segments are tags — the
 * collection's `exclude_type=static` "excludes tags from the response" (ListSegmentsListsRequest in
 * github.com/mailchimp/mailchimp-marketing-typescript-sdk); `saved` and `fuzzy` ones are computed
 * from conditions and take no members by API.
 * https://mailchimp.com/developer/marketing/api/list-segments/list-segments/
 */
export interface Segment {
  readonly id: number;
  readonly name: string;
  readonly type: string;
  readonly member_count?: number;
}

/**
 * The answer of `POST /lists/{list_id}/segments/{segment_id}` (BatchAddOrRemoveMembersListsResponse
 * in the TypeScript SDK): the members added and removed, and `errors[]` of `{ email_addresses,
 * error }` — "email addresses that could not be added to the segment or removed".
 * https://mailchimp.com/developer/marketing/api/list-segments/batch-add-or-remove-members/
 */
export interface SegmentBatchResult {
  readonly members_added: readonly { readonly email_address: string }[];
  readonly members_removed: readonly { readonly email_address: string }[];
  readonly errors: readonly { readonly email_addresses: readonly string[]; readonly error: string }[];
}

export type ArchiveResult = 'archived' | 'absent' | { readonly status: number; readonly reason: string };

export function createMailchimpClient(options: MailchimpClientOptions) {
  // HTTP Basic with any user name and the key as the password.
  const basic = Buffer.from(`backflow:${options.apiKey}`).toString('base64');
  const http = createHttpClient({
    baseUrl: options.baseUrl,
    vendor: 'Mailchimp',
    headers: { authorization: `Basic ${basic}` },
    secrets: [options.apiKey, basic],
    timeoutMs: options.timeoutMs,
    // A 429 carries no Retry-After: the connection cap clears when a request in flight ends.
    retryAfter: () => THROTTLE_WAIT_MS,
    refusal: classifyRefusal,
    pace: options.pace,
    fetch: options.fetch,
  });
  const audience = (listId: string) => `lists/${encodeURIComponent(listId)}`;
  const notFound = (listId: string) =>
    new ConnectorConfigError(
      `Mailchimp has no audience "${listId}" in this account: the object of a mailchimp sync is the audience id (Audience → Settings → Audience name and defaults → Audience ID)`,
    );
  /** A whole request refused (other than auth and rate limits): retrying will not help. */
  const refused = (what: string, error: unknown): never => {
    if (error instanceof HttpError) {
      throw new ConnectorConfigError(
        `Mailchimp refused ${what} (${error.status}): ${http.redact(describeProblem(error.body))}`,
      );
    }
    throw error;
  };

  return {
    redact: http.redact,

    /** `GET /ping`: checks the key and the data centre. */
    async ping(): Promise<void> {
      await http.request({ path: 'ping' }).catch((e) => refused('the health check', e));
    },

    /** Every merge field of an audience, page by page (`count`/`offset`, `total_items`). */
    async mergeFields(listId: string): Promise<MergeField[]> {
      const fields: MergeField[] = [];
      for (let offset = 0; ; offset += MAX_PAGE_SIZE) {
        const response = await http
          .request<{ merge_fields?: MergeField[]; total_items?: number }>({
            path: `${audience(listId)}/merge-fields`,
            query: { count: MAX_PAGE_SIZE, offset },
            accept: [404],
          })
          .catch((e) => refused(`the merge fields of audience ${listId}`, e));
        if (response.status === 404) throw notFound(listId);
        const page = response.body.merge_fields ?? [];
        fields.push(...page);
        const total = response.body.total_items ?? fields.length;
        if (page.length === 0 || fields.length >= total) return fields;
      }
    },

    /**
     * `POST /lists/{list_id}`: adds or updates up to 500 members; refused members come back in
     * `errors[]` of a 200 answer. With `update_existing` it is an upsert by email address — sent
     * twice, it leaves the audience as sent once (a member created by the first attempt is
     * updated with the same values, its status untouched without `status`) — so the client may
     * retry it after a timeout. Without it (insert mode) it is a create: an unconfirmed attempt
     * throws UnconfirmedWriteError for the caller to reconcile.
     * https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/
     */
    async batchSubscribe(
      listId: string,
      members: readonly MemberInput[],
      mode: { readonly updateExisting: boolean; readonly syncTags?: boolean },
    ): Promise<BatchSubscribeResult> {
      const response = await http
        .request<Partial<BatchSubscribeResult>>({
          method: 'POST',
          path: audience(listId),
          json: {
            members,
            update_existing: mode.updateExisting,
            ...(mode.syncTags ? { sync_tags: true } : {}),
          },
          accept: [404],
          idempotent: mode.updateExisting,
        })
        .catch((e) => refused(`the batch subscribe to audience ${listId}`, e));
      if (response.status === 404) throw notFound(listId);
      return {
        new_members: response.body.new_members ?? [],
        updated_members: response.body.updated_members ?? [],
        errors: response.body.errors ?? [],
      };
    },

    /**
     * `GET /lists/{list_id}/members/{subscriber_hash}`: one member (archived ones included), or
     * undefined when the address is not in the audience (404).
     * https://mailchimp.com/developer/marketing/api/list-members/get-member-info/
     */
    async member(listId: string, hash: string): Promise<Member | undefined> {
      const response = await http
        .request<Member>({ path: `${audience(listId)}/members/${hash}`, accept: [404] })
        .catch((e) => refused(`a member of audience ${listId}`, e));
      return response.status === 404 ? undefined : response.body;
    },

    /**
     * Every static segment (tag) of an audience, 1,000 a page (`type=static`, `count`/`offset`,
     * `total_items`). https://mailchimp.com/developer/marketing/api/list-segments/list-segments/
     */
    async staticSegments(listId: string): Promise<Segment[]> {
      const found: Segment[] = [];
      for (let offset = 0; ; offset += MAX_PAGE_SIZE) {
        const response = await http
          .request<{ segments?: Segment[]; total_items?: number }>({
            path: `${audience(listId)}/segments`,
            query: {
              type: 'static',
              count: MAX_PAGE_SIZE,
              offset,
              fields: 'segments.id,segments.name,segments.type,total_items',
            },
            accept: [404],
          })
          .catch((e) => refused(`the tags of audience ${listId}`, e));
        if (response.status === 404) throw notFound(listId);
        const page = response.body.segments ?? [];
        found.push(...page);
        const total = response.body.total_items ?? found.length;
        if (page.length === 0 || found.length >= total) return found;
      }
    },

    /**
     * `GET /lists/{list_id}/segments/{segment_id}`, or undefined when the audience has no such
     * segment (404). https://mailchimp.com/developer/marketing/api/list-segments/get-segment-info/
     */
    async segment(listId: string, segmentId: number): Promise<Segment | undefined> {
      const response = await http
        .request<Segment>({
          path: `${audience(listId)}/segments/${segmentId}`,
          query: { fields: 'id,name,type,member_count' },
          accept: [404],
        })
        .catch((e) => refused(`segment ${segmentId} of audience ${listId}`, e));
      return response.status === 404 ? undefined : response.body;
    },

    /**
     * `POST /lists/{list_id}/segments` with `static_segment: []`: "Passing an empty array will
     * create a static segment without any subscribers" (CreateSegmentListsRequest in the TypeScript
     * SDK) — a new, empty tag. A create: not retried after a lost answer (UnconfirmedWriteError),
     * the caller looks the tag up by name instead.
     * https://mailchimp.com/developer/marketing/api/list-segments/add-segment/
     */
    async createStaticSegment(listId: string, name: string): Promise<Segment> {
      const response = await http
        .request<Segment>({
          method: 'POST',
          path: `${audience(listId)}/segments`,
          json: { name, static_segment: [] },
          accept: [404],
        })
        .catch((e) => refused(`creating tag "${name}" in audience ${listId}`, e));
      if (response.status === 404) throw notFound(listId);
      return response.body;
    },

    /**
     * `POST /lists/{list_id}/segments/{segment_id}`: adds and removes members of a static segment
     * by email address, at most 500 in each of `members_to_add` and `members_to_remove`. Sent twice
     * it leaves the segment as sent once (a segment is a set of members: adding a member already
     * in it or removing one already out changes nothing), so the client may retry it after a
     * timeout. A 400 (a segment that is not static) is returned for the caller to explain.
     * https://mailchimp.com/developer/marketing/api/list-segments/batch-add-or-remove-members/
     */
    async batchSegmentMembers(
      listId: string,
      segmentId: number,
      change: { readonly add: readonly string[]; readonly remove: readonly string[] },
    ): Promise<SegmentBatchResult | { readonly refused: number; readonly reason: string }> {
      const response = await http
        .request<Partial<SegmentBatchResult>>({
          method: 'POST',
          path: `${audience(listId)}/segments/${segmentId}`,
          json: {
            ...(change.add.length > 0 ? { members_to_add: change.add } : {}),
            ...(change.remove.length > 0 ? { members_to_remove: change.remove } : {}),
          },
          accept: [400, 404],
          idempotent: true,
        })
        .catch((e) => refused(`the member changes of segment ${segmentId} in audience ${listId}`, e));
      if (response.status === 400 || response.status === 404) {
        return { refused: response.status, reason: http.redact(describeProblem(response.body)) };
      }
      return {
        members_added: response.body.members_added ?? [],
        members_removed: response.body.members_removed ?? [],
        errors: response.body.errors ?? [],
      };
    },

    /**
     * `DELETE /lists/{list_id}/members/{subscriber_hash}` archives a member (204); permanent deletion
     * is another call Backflow never makes.
     * https://mailchimp.com/developer/marketing/api/list-members/archive-list-member/
     */
    async archive(listId: string, hash: string): Promise<ArchiveResult> {
      const response = await http
        .request({ method: 'DELETE', path: `${audience(listId)}/members/${hash}`, accept: [400, 404, 405] })
        .catch((e) => refused(`archiving a member of audience ${listId}`, e));
      if (response.status === 404) return 'absent';
      if (response.status === 400 || response.status === 405) {
        return { status: response.status, reason: http.redact(describeProblem(response.body)) };
      }
      return 'archived';
    },
  };
}

export type MailchimpClient = ReturnType<typeof createMailchimpClient>;
