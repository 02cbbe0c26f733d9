import { ConnectorConfigError, RateLimitedError } from '#connectors/sdk/errors';
import { createHttpClient, type HttpRefusal, type HttpResponse, retryAfterMs } from '#connectors/sdk/http';
import type { RequestPace } from '#connectors/sdk/types';

/**
 * The HubSpot calls of the destination, on the shared HTTP client: CRM v3 object batch endpoints,
 * the properties API and the account details. Auth is a private app's access token, sent as
 * `Authorization: Bearer <token>`.
 * https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
 */

/**
 * HubSpot's error body. "The fields … should all be treated as optional in any error parsing."
 * https://developers.hubspot.com/docs/api-reference/error-handling
 */
export interface HubSpotError {
  readonly status?: string;
  readonly message?: string;
  readonly category?: string;
  readonly correlationId?: string;
  /** Per-error details; `context` values are lists of strings (`propertyName`, `ids`, …). */
  readonly errors?: readonly {
    readonly message?: string;
    readonly code?: string;
    readonly in?: string;
    readonly context?: Readonly<Record<string, unknown>>;
  }[];
  /** In a multi-status answer, `objectWriteTraceId` names the input an error belongs to. */
  readonly context?: Readonly<Record<string, unknown>>;
  /** On a 429: `TEN_SECONDLY_ROLLING`, `SECONDLY` or `DAILY`. */
  readonly policyName?: string;
  readonly errorType?: string;
}

/** A record as the object APIs return it: values are always strings (or null when empty). */
export interface HubSpotRecord {
  readonly id: string;
  readonly properties?: Readonly<Record<string, string | null>>;
  /** When the record was created (ISO 8601). */
  readonly createdAt?: string;
  /** Upsert only: true when the record was created. */
  readonly new?: boolean;
  readonly objectWriteTraceId?: string;
}

/** A property definition from the properties API. */
export interface HubSpotProperty {
  readonly name: string;
  readonly label?: string;
  /** `string`, `number`, `date`, `datetime`, `bool`, `enumeration`, `phone_number`, … */
  readonly type: string;
  /** `text`, `number`, `date`, `booleancheckbox`, `checkbox` (multiple checkboxes), `select`, … */
  readonly fieldType?: string;
  readonly hasUniqueValue?: boolean;
  readonly hubspotDefined?: boolean;
  readonly calculated?: boolean;
  readonly archived?: boolean;
  readonly modificationMetadata?: { readonly readOnlyValue?: boolean };
}

/** One input of a batch call. */
export interface BatchInput {
  readonly id?: string;
  readonly idProperty?: string;
  readonly properties?: Readonly<Record<string, string>>;
  readonly objectWriteTraceId?: string;
}

/** The answer of a batch call that HubSpot processed (200, 201, 204 or 207 multi-status). */
export interface BatchDone {
  readonly kind: 'done';
  readonly results: readonly HubSpotRecord[];
  /** Per-input errors of a multi-status answer. */
  readonly errors: readonly HubSpotError[];
}

/** HubSpot refused the whole batch (400, 404, 409): nothing in it was written. */
export interface BatchRefused {
  readonly kind: 'refused';
  readonly status: number;
  readonly error: HubSpotError;
}

export type BatchAnswer = BatchDone | BatchRefused;

export type BatchAction = 'upsert' | 'create' | 'update' | 'read' | 'archive';

export interface HubSpotClientOptions {
  readonly baseUrl: string;
  readonly accessToken: string;
  readonly timeoutMs?: number;
  /** The lane's pace: every request (writes, lookups, field discovery) takes a slot first. */
  readonly pace?: RequestPace;
  readonly fetch?: typeof fetch;
}

/**
 * `423 Locked` answers a large volume of writes to one object in a short time: "Include a delay of
 * at least 2 seconds between your API requests."
 * https://developers.hubspot.com/docs/api-reference/error-handling
 */
const LOCKED_WAIT_MS = 2_000;
/**
 * `477 Migration in Progress`: "returned when a HubSpot account is currently being migrated
 * between data hosting locations. HubSpot will return a Retry-After response header indicating how
 * many seconds to wait before retrying the request (typically up to 24 hours)."
 * https://developers.hubspot.com/docs/api-reference/error-handling
 * Inferred: without the header, wait an hour (the documented waits run to hours).
 */
export const MIGRATING_STATUS = 477;
const MIGRATING_WAIT_MS = 60 * 60_000;
/** Waits per exhausted policy when the answer carries no hint: the window of the policy. */
const POLICY_WAIT_MS: Readonly<Record<string, number>> = {
  SECONDLY: 1_000,
  TEN_SECONDLY_ROLLING: 10_000,
  // The daily count resets at midnight in the account's time zone: wait the longest a lane can.
  DAILY: 15 * 60_000,
};

export function createHubSpotClient(options: HubSpotClientOptions) {
  let redact = (text: string) => text;
  const http = createHttpClient({
    vendor: 'HubSpot',
    baseUrl: options.baseUrl,
    headers: { authorization: `Bearer ${options.accessToken}` },
    secrets: [options.accessToken],
    timeoutMs: options.timeoutMs,
    pace: options.pace,
    fetch: options.fetch,
    // HubSpot's waits (429, 423, 477) are RateLimitedErrors thrown here; a 429 slows the lane
    // down (pace.throttled) before the batch goes back on it, 423 and 477 only wait.
    refusal: (response) => hubspotRefusal(response, redact),
  });
  redact = http.redact;

  /**
   * Sends one request. `idempotent` for the POSTs that are safe to send twice (reads, upserts by a
   * key, updates and archives by record ID); a create is not, and comes back UnconfirmedWriteError
   * when it may have been applied.
   */
  const send = async <T>(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    extra: { json?: unknown; query?: Record<string, string>; accept?: readonly number[]; idempotent?: boolean } = {},
  ): Promise<HttpResponse<T>> =>
    http.request<T>({
      method,
      path,
      json: extra.json,
      query: extra.query,
      accept: extra.accept,
      idempotent: extra.idempotent,
    });

  return {
    redact: http.redact,

    /** The cheapest authenticated call, open to every token: who the token belongs to. */
    async accountDetails(): Promise<{ portalId?: number; timeZone?: string }> {
      return (await send<{ portalId?: number; timeZone?: string }>('GET', '/account-info/v3/details')).body;
    },

    /**
     * Every property of an object, custom ones included; the answer is not paginated.
     * https://developers.hubspot.com/docs/api-reference/legacy/crm/properties/get-properties
     */
    async properties(object: string): Promise<HubSpotProperty[]> {
      const response = await send<{ results?: HubSpotProperty[] } & HubSpotError>(
        'GET',
        `/crm/v3/properties/${encodeURIComponent(object)}`,
        { query: { archived: 'false' }, accept: [400, 404] },
      );
      if (response.status >= 400) {
        throw new ConnectorConfigError(
          `HubSpot has no object "${object}" (${response.status}: ${http.redact(response.body.message ?? '')}): use contacts, companies, or a custom object's name or objectTypeId`,
        );
      }
      return response.body.results ?? [];
    },

    /**
     * `POST /crm/v3/objects/{objectType}/batch/{action}`. A whole-batch refusal (400, 404, 409)
     * is returned, not thrown, so the caller can find the records at fault.
     * https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts
     */
    async batch(
      object: string,
      action: BatchAction,
      body: { inputs: readonly BatchInput[]; idProperty?: string; properties?: readonly string[] },
    ): Promise<BatchAnswer> {
      const response = await send<{ results?: HubSpotRecord[]; errors?: HubSpotError[] } & HubSpotError>(
        'POST',
        `/crm/v3/objects/${encodeURIComponent(object)}/batch/${action}`,
        {
          json: body,
          accept: [207, 400, 404, 409],
          // Only a create makes something new each time it is sent; a read reads, an upsert finds
          // its record by the idProperty, an update or an archive by record ID sets the same state.
          idempotent: action !== 'create',
          ...(action === 'read' ? { query: { archived: 'false' } } : {}),
        },
      );
      if (response.status >= 400) {
        const error = typeof response.body === 'object' && response.body !== null ? response.body : {};
        return { kind: 'refused', status: response.status, error };
      }
      const answer = typeof response.body === 'object' && response.body !== null ? response.body : {};
      return { kind: 'done', results: answer.results ?? [], errors: answer.errors ?? [] };
    },

    /**
     * A list's definition: `GET /crm/v3/lists/{listId}`, answered `{ list: PublicObjectList }`
     * (github:HubSpot/hubspot-api-nodejs codegen/crm/lists/apis/ListsApi.ts `getById`,
     * models/ListFetchResponse.ts); undefined when HubSpot has no such list (404, or the 400 of an
     * ID that is not a number).
     * https://developers.hubspot.com/docs/api-reference/latest/crm/lists/guide
     */
    async list(listId: string): Promise<HubSpotList | undefined> {
      const response = await send<{ list?: HubSpotList } & HubSpotError>(
        'GET',
        `/crm/v3/lists/${encodeURIComponent(listId)}`,
        { accept: [400, 404] },
      );
      if (response.status >= 400) return undefined;
      return response.body.list;
    },

    /**
     * `PUT /crm/v3/lists/{listId}/memberships/add` or `/remove` with the record IDs: "Records that
     * do not exist or that are already members of the list are ignored" (add), "Records that do not
     * exist or that are not members of the list are ignored" (remove); both "only work for lists
     * that have a processingType of MANUAL or SNAPSHOT". A PUT: the HTTP client sends it again
     * after a timeout or a 5xx, which is safe — the same IDs give the same membership.
     * https://developers.hubspot.com/docs/api-reference/legacy/crm/lists/memberships/add-to-list
     * github:HubSpot/hubspot-api-nodejs codegen/crm/lists/apis/MembershipsApi.ts (`add`, `remove`)
     */
    async memberships(
      listId: string,
      action: 'add' | 'remove',
      recordIds: readonly string[],
    ): Promise<MembershipsAnswer> {
      const response = await send<MembershipsUpdate & HubSpotError>(
        'PUT',
        `/crm/v3/lists/${encodeURIComponent(listId)}/memberships/${action}`,
        { json: recordIds, accept: [400, 404] },
      );
      if (response.status >= 400) {
        const error = typeof response.body === 'object' && response.body !== null ? response.body : {};
        return { kind: 'refused', status: response.status, error };
      }
      const body = typeof response.body === 'object' && response.body !== null ? response.body : {};
      return {
        kind: 'done',
        added: body.recordsIdsAdded ?? [],
        removed: body.recordIdsRemoved ?? [],
        missing: body.recordIdsMissing ?? [],
      };
    },
  };
}

/** A list definition (PublicObjectList); only what the destination reads. */
export interface HubSpotList {
  readonly listId: string;
  readonly name?: string;
  /** `MANUAL`, `SNAPSHOT` or `DYNAMIC`. */
  readonly processingType: string;
  /** `0-1` for contacts. */
  readonly objectTypeId: string;
  readonly size?: number;
}

/**
 * MembershipsUpdateResponse; HubSpot spells the added IDs `recordsIdsAdded`.
 * github:HubSpot/hubspot-api-nodejs codegen/crm/lists/models/MembershipsUpdateResponse.ts
 */
interface MembershipsUpdate {
  readonly recordsIdsAdded?: string[];
  readonly recordIdsRemoved?: string[];
  readonly recordIdsMissing?: string[];
}

export type MembershipsAnswer =
  | {
      readonly kind: 'done';
      readonly added: readonly string[];
      readonly removed: readonly string[];
      readonly missing: readonly string[];
    }
  | BatchRefused;

export type HubSpotClient = ReturnType<typeof createHubSpotClient>;

/**
 * HubSpot's documented refusals that mean "wait", before the HTTP client's defaults: 429 (its rate
 * limits), 423 Locked (2 seconds) and 477 Migration in Progress (`Retry-After`, up to hours).
 * https://developers.hubspot.com/docs/api-reference/error-handling
 */
export function hubspotRefusal(response: HttpRefusal, redact: (text: string) => string): Error | undefined {
  if (response.status === 429) return rateLimited(response.headers, response.body, redact);
  if (response.status === 423) {
    return new RateLimitedError(
      `${response.where} answered 423 Locked (too many writes to one object in a short time); retry after ${LOCKED_WAIT_MS} ms`,
      LOCKED_WAIT_MS,
      // A lock on one object says nothing about the request rate: the lane keeps its pace.
      { slowsLane: false },
    );
  }
  if (response.status === MIGRATING_STATUS) {
    const wait = retryAfterMs(response.headers, Date.now()) ?? MIGRATING_WAIT_MS;
    return new RateLimitedError(
      `${response.where} answered 477 Migration in Progress (the HubSpot account is moving between data hosting locations); retry after ${wait} ms`,
      wait,
      // The records wait as long as HubSpot says (the engine does not count a wait beyond SQS's
      // 15-minute delay towards its give-back limit); the lane's pace is not the cause.
      { slowsLane: false },
    );
  }
  return undefined;
}

/**
 * A 429: the wait comes from `Retry-After` when sent, else the window of the exhausted policy
 * (`X-HubSpot-RateLimit-Interval-Milliseconds`, or the policy named in the body).
 * https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines
 */
export function rateLimited(headers: Headers, body: unknown, redact: (text: string) => string): RateLimitedError {
  const error: HubSpotError = typeof body === 'object' && body !== null ? (body as HubSpotError) : {};
  const policy = error.policyName ?? (headers.get('x-hubspot-ratelimit-daily-remaining') === '0' ? 'DAILY' : undefined);
  const interval = Number(headers.get('x-hubspot-ratelimit-interval-milliseconds'));
  const wait =
    retryAfterMs(headers, Date.now()) ??
    (policy === 'DAILY' ? POLICY_WAIT_MS.DAILY : undefined) ??
    (Number.isFinite(interval) && interval > 0 ? interval : undefined) ??
    POLICY_WAIT_MS[policy ?? ''] ??
    POLICY_WAIT_MS.TEN_SECONDLY_ROLLING!;
  const what = policy === 'DAILY' ? 'its daily limit (it resets at midnight in the account time zone)' : policy;
  const message = error.message ? ` ("${redact(error.message).slice(0, 200)}")` : '';
  return new RateLimitedError(
    `HubSpot rate limited the request (429, ${what ?? 'unknown policy'})${message}; retry after ${wait} ms`,
    wait,
  );
}
