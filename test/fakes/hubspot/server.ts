import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonValue } from '#connectors/sdk/types';

/**
 * A fake HubSpot on 127.0.0.1 and a free port, written from HubSpot's developer docs and enforcing
 * what they promise (https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis):
 *
 * - auth: `Authorization: Bearer <private app token>`, else 401 `INVALID_AUTHENTICATION`; scopes
 *   (403 `MISSING_SCOPES`); a revocable token;
 * - rate limits of private apps: a rolling window (default 100 requests / 10 s) and a daily count,
 *   `X-HubSpot-RateLimit-*` headers, and the 429 body `{"status":"error","message":"You have
 *   reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","policyName":
 *   "TEN_SECONDLY_ROLLING",…}`; `423 Locked` on demand;
 * - CRM v3 batch endpoints (`upsert`, `create`, `update`, `read`, `archive`) with at most 100
 *   inputs, property values as strings, unknown and read-only properties refused, values checked
 *   by type (emails, numbers, dates at midnight UTC, booleans, enumeration options);
 * - the documented error semantics: with an `objectWriteTraceId` on every input, batch create
 *   answers 207 multi-status with per-input `errors[]` naming `context.objectWriteTraceId` ("For the
 *   object APIs' batch create endpoints, you can enable multi status responses that include partial
 *   failures", https://developers.hubspot.com/docs/api-reference/error-handling#multi-status-errors);
 *   an upsert is all or nothing: one invalid input refuses the batch with a 400 `VALIDATION_ERROR`
 *   "Property values were not valid: […]" and nothing is written ("Partial upserts are not supported
 *   when using email as the idProperty", https://developers.hubspot.com/docs/api-reference/latest/crm/objects/contacts/batch/upsert-contacts).
 *   Inferred: the same for an upsert by a unique property — no page documents partial upserts; the
 *   OpenAPI spec lists a 207 answer for batch/upsert (BatchResponseSimplePublicUpsertObjectWithErrors
 *   in github:HubSpot/hubspot-api-nodejs codegen/crm/objects/apis/BatchApi.ts), which the option
 *   `upsertMultiStatus` turns on for unique properties. A read answers 207 with `OBJECT_NOT_FOUND`
 *   for the IDs it could not find; updates by `idProperty` need a property with unique values
 *   (`email` is refused: "Unable to perform update/upsert by non-unique 0-1 property"); archive
 *   takes record IDs;
 * - `423 Locked`, `477 Migration in Progress` with `Retry-After`, and faults on demand: 429s after
 *   a number of writes, a create that commits and then never answers (a timeout after commit).
 *
 * Error codes PROPERTY_DOESNT_EXIST, INVALID_EMAIL and CONFLICT are HubSpot's; the codes of the
 * other value checks follow the same shape under the fake's own names.
 *
 * Lists (segments), v3 Lists API (https://developers.hubspot.com/docs/api-reference/latest/crm/lists/guide;
 * paths, bodies and answers from github:HubSpot/hubspot-api-nodejs codegen/crm/lists, ListsApi.ts
 * and MembershipsApi.ts): create (`POST /crm/v3/lists/`), fetch by ILS list ID
 * (`GET /crm/v3/lists/{listId}` → `{ list }` with `processingType`), memberships add / remove
 * (`PUT …/memberships/add|remove`, a JSON array of record IDs, answered `MembershipsUpdateResponse`
 * `{ recordsIdsAdded, recordIdsRemoved, recordIdsMissing }`: records that do not exist are
 * `missing`, members added again or non-members removed are ignored) and fetch
 * (`GET …/memberships`, at most 250 a page). Adding to or removing from a list whose
 * processingType is not MANUAL or SNAPSHOT is refused ("This endpoint only works for lists that have
 * a processingType of MANUAL or SNAPSHOT"). Scopes `crm.lists.read` / `crm.lists.write`.
 */

export interface FakeProperty {
  readonly name: string;
  readonly type: 'string' | 'number' | 'date' | 'datetime' | 'bool' | 'enumeration' | 'phone_number';
  readonly fieldType: string;
  readonly hasUniqueValue?: boolean;
  readonly hubspotDefined?: boolean;
  readonly readOnly?: boolean;
  readonly calculated?: boolean;
  /** Values checked as email addresses (a contact's `email`). */
  readonly email?: boolean;
  readonly options?: readonly string[];
}

export interface FakeObject {
  /** Path name: `contacts`, `companies`, or a custom object's name. */
  readonly name: string;
  /** `0-1`, `0-2`, `2-…`: also accepted in paths. */
  readonly objectTypeId: string;
  /** Other names accepted in paths (a custom object's fully qualified name `p_…`). */
  readonly aliases?: readonly string[];
  /** Upper-case name used in messages (`CONTACT`). */
  readonly label: string;
  /** The property `stored()` keys records by. */
  readonly storeKey: string;
  readonly properties: readonly FakeProperty[];
  /** Scope family: `contacts`, `companies` or `custom`. */
  readonly scope: string;
}

export interface HubSpotFakeOptions {
  /** The private app's access token. */
  readonly token: string;
  /** Granted scopes; default every scope. */
  readonly scopes?: readonly string[];
  /** Objects and their properties; default contacts, companies and a custom object `pets`. */
  readonly objects?: readonly FakeObject[];
  /** Rolling-window limit; default 100 requests per 10,000 ms (Free and Starter private apps). */
  readonly burst?: { readonly max: number; readonly intervalMs: number };
  /** Requests per day; default 250,000 (Free and Starter, per account). */
  readonly daily?: number;
  /**
   * Answer an upsert by a unique property (not `email`) with 207 multi-status when some inputs
   * fail, as the OpenAPI spec allows; default false: all or nothing, as for `email`.
   */
  readonly upsertMultiStatus?: boolean;
  readonly portalId?: number;
}

/** A list (segment) and its memberships: contact record ID → when it joined. */
export interface FakeList {
  readonly listId: string;
  readonly name: string;
  readonly objectTypeId: string;
  readonly processingType: 'MANUAL' | 'SNAPSHOT' | 'DYNAMIC';
  readonly createdAt: string;
  updatedAt: string;
  listVersion: number;
  readonly members: Map<string, string>;
}

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  /** When it arrived (ms since epoch). */
  readonly at: number;
  status: number;
}

/** One stored record: HubSpot property values are strings; an absent key has no value. */
export interface FakeRecord {
  readonly id: string;
  properties: Record<string, string>;
  archived: boolean;
  readonly createdAt: string;
  updatedAt: string;
}

export interface HubSpotFake {
  readonly url: string;
  readonly requests: readonly FakeRequest[];
  /** Live records of an object keyed by its `storeKey` value → their properties (no archived ones). */
  stored(object: string): ReadonlyMap<string, Readonly<Record<string, JsonValue>>>;
  /** Every record of an object, archived ones included. */
  records(object: string): readonly FakeRecord[];
  /** Adds a record as if created in HubSpot; returns its ID. */
  seed(object: string, properties: Record<string, string>, createdAt?: string): string;
  /** When each write request (a batch POST, a list create or membership PUT) arrived, 429s included. */
  writeTimes(): number[];
  /** When each request of any kind arrived (reads, field discovery, account details), 429s included. */
  requestTimes(): number[];
  /** Answers the next `n` writes (batch POSTs, list creates and membership PUTs) with HubSpot's 429 (`TEN_SECONDLY_ROLLING`). */
  throttleNext(n: number): void;
  /** Lets `skip` writes through, then answers the `n` after them with a 429. */
  throttleAfter(skip: number, n: number): void;
  /** Answers the next `n` requests with `477 Migration in Progress` and `Retry-After: seconds`. */
  migrateNext(n: number, retryAfterSeconds: number): void;
  /** The next `n` batch creates are applied, then never answered (the client times out). */
  commitThenStall(n: number): void;
  /** Answers the next `n` batch POSTs with `423 Locked`. */
  lockNext(n: number): void;
  /** Uses up the daily limit: every request is answered 429 `DAILY`. */
  exhaustDaily(): void;
  /** Creates a list as if made in HubSpot (default a MANUAL list of contacts); returns its ILS list ID. */
  createList(name: string, processingType?: 'MANUAL' | 'SNAPSHOT' | 'DYNAMIC', objectTypeId?: string): string;
  /** The members of `list:<listId>` now, as HubSpot keys contacts: their emails, lower-cased. */
  members(object: string): ReadonlySet<string>;
  revoke(): void;
  restore(): void;
  stop(): Promise<void>;
}

const MAX_INPUTS = 100;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const DAY_MS = 86_400_000;
const ISO_DATETIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/;

const text = (name: string, more: Partial<FakeProperty> = {}): FakeProperty => ({
  name,
  type: 'string',
  fieldType: 'text',
  hubspotDefined: true,
  ...more,
});
const readOnly = (name: string, type: FakeProperty['type']): FakeProperty => ({
  name,
  type,
  fieldType: type === 'number' ? 'number' : 'date',
  hubspotDefined: true,
  readOnly: true,
});
const custom = (name: string, type: FakeProperty['type'], fieldType: string, more: Partial<FakeProperty> = {}) =>
  ({ name, type, fieldType, hubspotDefined: false, ...more }) satisfies FakeProperty;

const SYSTEM: readonly FakeProperty[] = [
  { ...readOnly('hs_object_id', 'number'), hasUniqueValue: true },
  readOnly('createdate', 'datetime'),
  readOnly('lastmodifieddate', 'datetime'),
];

/** Contacts and companies with a few HubSpot properties and the custom ones the tests map. */
export const DEFAULT_OBJECTS: readonly FakeObject[] = [
  {
    name: 'contacts',
    objectTypeId: '0-1',
    label: 'CONTACT',
    storeKey: 'email',
    scope: 'contacts',
    properties: [
      ...SYSTEM,
      // HubSpot reports hasUniqueValue false for email: it is the contacts' own identifier.
      text('email', { email: true }),
      text('firstname'),
      text('lastname'),
      { name: 'phone', type: 'phone_number', fieldType: 'phonenumber', hubspotDefined: true },
      {
        name: 'lifecyclestage',
        type: 'enumeration',
        fieldType: 'radio',
        hubspotDefined: true,
        options: ['subscriber', 'lead', 'customer'],
      },
      { name: 'hs_analytics_num_visits', type: 'number', fieldType: 'number', hubspotDefined: true, calculated: true },
      custom('plan', 'string', 'text'),
      custom('lifetime_value', 'number', 'number'),
      custom('customer_id', 'string', 'text', { hasUniqueValue: true }),
      custom('signup_date', 'date', 'date'),
      custom('last_seen_at', 'datetime', 'date'),
      custom('is_active', 'bool', 'booleancheckbox', { options: ['true', 'false'] }),
      custom('interests', 'enumeration', 'checkbox', { options: ['sql', 'crm', 'etl'] }),
    ],
  },
  {
    name: 'companies',
    objectTypeId: '0-2',
    label: 'COMPANY',
    storeKey: 'account_id',
    scope: 'companies',
    properties: [
      ...SYSTEM,
      text('name'),
      text('domain'),
      text('industry'),
      custom('account_id', 'string', 'text', { hasUniqueValue: true }),
      custom('plan', 'string', 'text'),
    ],
  },
  {
    name: 'pets',
    objectTypeId: '2-1001',
    aliases: ['p_pets'],
    label: 'PET',
    storeKey: 'pet_id',
    scope: 'custom',
    properties: [
      ...SYSTEM,
      custom('pet_id', 'string', 'text', { hasUniqueValue: true }),
      custom('pet_name', 'string', 'text'),
      custom('species', 'enumeration', 'select', { options: ['cat', 'dog'] }),
    ],
  },
];

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };
type Input = Record<string, unknown>;
interface Invalid {
  readonly name: string;
  readonly error: string;
  readonly message: string;
}

export async function startHubspotFake(options: HubSpotFakeOptions): Promise<HubSpotFake> {
  const objects = options.objects ?? DEFAULT_OBJECTS;
  const burst = options.burst ?? { max: 100, intervalMs: 10_000 };
  const dailyLimit = options.daily ?? 250_000;
  const portalId = options.portalId ?? 42_424_242;
  const requests: FakeRequest[] = [];
  const store = new Map<string, Map<string, FakeRecord>>(objects.map((o) => [o.name, new Map()]));
  const recent: number[] = [];
  let dailyUsed = 0;
  let throttles = 0;
  let throttleSkip = 0;
  let migrations = 0;
  let migrationWait = 0;
  let stalls = 0;
  let locks = 0;
  let revoked = false;
  let nextId = 101;
  const lists = new Map<string, FakeList>();
  let nextListId = 1001;

  const objectOf = (name: string) =>
    objects.find((o) => o.name === name || o.objectTypeId === name || o.aliases?.includes(name));
  const propertyOf = (object: FakeObject, name: string) => object.properties.find((p) => p.name === name);
  const recordsOf = (object: FakeObject) => store.get(object.name)!;
  const normalized = (property: FakeProperty | undefined, value: string) =>
    property?.email ? value.trim().toLowerCase() : value;
  const findBy = (object: FakeObject, name: string, value: string): FakeRecord | undefined => {
    const property = propertyOf(object, name);
    const wanted = normalized(property, value);
    for (const record of recordsOf(object).values()) {
      if (record.archived) continue;
      const have = name === 'hs_object_id' ? record.id : record.properties[name];
      if (have !== undefined && normalized(property, have) === wanted) return record;
    }
    return undefined;
  };
  const view = (record: FakeRecord, only?: readonly string[]) => {
    const all: Record<string, string> = {
      ...record.properties,
      hs_object_id: record.id,
      createdate: record.createdAt,
      lastmodifieddate: record.updatedAt,
    };
    const properties = only ? Object.fromEntries(only.filter((n) => n in all).map((n) => [n, all[n]!])) : all;
    return {
      id: record.id,
      properties,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      archived: record.archived,
    };
  };

  // ---- error bodies (https://developers.hubspot.com/docs/api-reference/error-handling) ----
  const error = (status: number, category: string, message: string, more: Record<string, unknown> = {}): Reply => ({
    status,
    body: { status: 'error', message, correlationId: randomUUID(), category, ...more },
  });
  const invalidJson = (detail: string) =>
    error(400, 'VALIDATION_ERROR', `Invalid input JSON on line 1, column 1: ${detail}`);
  const invalidList = (invalids: readonly Invalid[]) =>
    `Property values were not valid: ${JSON.stringify(
      invalids.map((i) => ({
        isValid: false,
        message: i.message,
        error: i.error,
        name: i.name,
        localizedErrorMessage: i.message,
        portalId,
      })),
    )}`;
  const validationError = (invalids: readonly Invalid[], context?: Record<string, string[]>) => ({
    status: 'error',
    category: 'VALIDATION_ERROR',
    message: invalidList(invalids),
    correlationId: randomUUID(),
    errors: invalids.map((i) => ({ message: i.message, code: i.error, context: { propertyName: [i.name] } })),
    ...(context && { context }),
  });
  const notFound = (object: FakeObject, ids: readonly string[], status = 404) =>
    error(
      status,
      'OBJECT_NOT_FOUND',
      `Could not get some ${object.label} objects, they may be deleted or not exist. Check that ids are valid.`,
      {
        context: { ids },
      },
    );
  const rateHeaders = (): Record<string, string> => ({
    'x-hubspot-ratelimit-max': String(burst.max),
    'x-hubspot-ratelimit-remaining': String(Math.max(0, burst.max - recent.length)),
    'x-hubspot-ratelimit-interval-milliseconds': String(burst.intervalMs),
    'x-hubspot-ratelimit-daily': String(dailyLimit),
    'x-hubspot-ratelimit-daily-remaining': String(Math.max(0, dailyLimit - dailyUsed)),
  });
  const tooMany = (policy: 'TEN_SECONDLY_ROLLING' | 'DAILY'): Reply => ({
    status: 429,
    headers: { ...rateHeaders(), 'x-hubspot-ratelimit-remaining': '0' },
    body: {
      status: 'error',
      message:
        policy === 'DAILY' ? 'You have reached your daily limit.' : 'You have reached your ten_secondly_rolling limit.',
      errorType: 'RATE_LIMIT',
      correlationId: randomUUID(),
      policyName: policy,
      requestId: randomUUID(),
    },
  });

  // ---- value checks ----
  const checkValue = (object: FakeObject, name: string, value: unknown): Invalid | undefined => {
    const property = propertyOf(object, name);
    if (!property) return { name, error: 'PROPERTY_DOESNT_EXIST', message: `Property "${name}" does not exist` };
    if (property.readOnly || property.calculated) {
      return { name, error: 'READ_ONLY_VALUE', message: `"${name}" is a read only property; its value cannot be set.` };
    }
    if (typeof value !== 'string') return undefined; // refused earlier as malformed JSON
    if (value === '') return undefined; // clears the property
    const bad = (error: string, message: string): Invalid => ({ name, error, message });
    if (property.email && !EMAIL.test(value)) return bad('INVALID_EMAIL', `Email address ${value} is invalid`);
    switch (property.type) {
      case 'number':
        return /^-?\d+(\.\d+)?$/.test(value) ? undefined : bad('INVALID_NUMBER', `${value} is not a valid number`);
      // "Date properties will only store the date, and must be set to midnight UTC for the date you
      // want … If you try to set a value that is not midnight UTC, you will receive an error."
      // https://developers.hubspot.com/docs/faq/how-should-timestamps-be-formatted-for-hubspots-apis
      // YYYY-MM-DD too: https://developers.hubspot.com/changelog/new-standardization-of-date-formats-for-hubspots-form-submissions-api
      case 'date': {
        if (/^\d{4}-\d\d-\d\d$/.test(value) && !Number.isNaN(Date.parse(value))) return undefined;
        if (/^\d+$/.test(value) && Number(value) % DAY_MS === 0) return undefined;
        return bad('INVALID_DATE', `${value} is not a date at midnight UTC (epoch milliseconds or YYYY-MM-DD)`);
      }
      // "Datetime properties can store any time, so any valid millisecond timestamp would be
      // accepted" (same FAQ); ISO 8601 `YYYY-MM-DDThh:mm:ss.sTZD` (same changelog).
      case 'datetime':
        return /^\d+$/.test(value) || (ISO_DATETIME.test(value) && !Number.isNaN(Date.parse(value)))
          ? undefined
          : bad('INVALID_DATETIME', `${value} is not a timestamp in epoch milliseconds or ISO 8601`);
      case 'bool':
        return value === 'true' || value === 'false'
          ? undefined
          : bad('INVALID_BOOLEAN', `${value} is not true or false`);
      case 'enumeration': {
        const values = property.fieldType === 'checkbox' ? value.split(';') : [value];
        const wrong = values.find((v) => !property.options?.includes(v));
        return wrong === undefined
          ? undefined
          : bad('INVALID_OPTION', `${wrong} was not one of the allowed options: [${property.options?.join(', ')}]`);
      }
      default:
        return undefined;
    }
  };
  const checkProperties = (object: FakeObject, properties: Record<string, string>): Invalid[] =>
    Object.entries(properties)
      .map(([name, value]) => checkValue(object, name, value))
      .filter((i): i is Invalid => i !== undefined);
  /** A property that can identify records in `operation` (upsert and read accept a contact's email). */
  const idPropertyProblem = (
    object: FakeObject,
    name: string,
    operation: 'upsert' | 'update' | 'read',
  ): Reply | undefined => {
    const property = propertyOf(object, name);
    if (!property) {
      return {
        status: 400,
        body: validationError([{ name, error: 'PROPERTY_DOESNT_EXIST', message: `Property "${name}" does not exist` }]),
      };
    }
    const unique = property.hasUniqueValue === true || (property.email === true && operation !== 'update');
    if (!unique) {
      return error(
        400,
        'VALIDATION_ERROR',
        `Unable to perform update/upsert by non-unique ${object.objectTypeId} property`,
      );
    }
    return undefined;
  };

  const apply = (object: FakeObject, record: FakeRecord, properties: Record<string, string>) => {
    for (const [name, value] of Object.entries(properties)) {
      const property = propertyOf(object, name);
      if (value === '') delete record.properties[name];
      else record.properties[name] = property?.email ? value.trim().toLowerCase() : value;
    }
    record.updatedAt = new Date().toISOString();
  };
  const create = (object: FakeObject, properties: Record<string, string>): FakeRecord => {
    const now = new Date().toISOString();
    const record: FakeRecord = {
      id: String(nextId++),
      properties: {},
      archived: false,
      createdAt: now,
      updatedAt: now,
    };
    for (const [name, value] of Object.entries(properties)) {
      if (value === '') continue;
      record.properties[name] = propertyOf(object, name)?.email ? value.trim().toLowerCase() : value;
    }
    recordsOf(object).set(record.id, record);
    return record;
  };
  /** A unique value already held by another live record. */
  const conflict = (object: FakeObject, properties: Record<string, string>, self?: FakeRecord) => {
    for (const [name, value] of Object.entries(properties)) {
      const property = propertyOf(object, name);
      if (!property || value === '' || !(property.hasUniqueValue || property.email)) continue;
      const other = findBy(object, name, value);
      if (other && other !== self) return other;
    }
    return undefined;
  };
  const conflictError = (object: FakeObject, existing: FakeRecord, trace?: string) => ({
    status: 'error',
    category: 'CONFLICT',
    message: `${object.label[0]}${object.label.slice(1).toLowerCase()} already exists. Existing ID: ${existing.id}`,
    correlationId: randomUUID(),
    context: { existingId: [existing.id], ...(trace !== undefined && { objectWriteTraceId: [trace] }) },
  });

  // ---- request shapes ----
  /** The inputs of a batch body, or the 400 HubSpot answers a malformed one. */
  const inputsOf = (body: unknown, name: string): Input[] | Reply => {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return invalidJson(`expected an object`);
    const inputs = (body as { inputs?: unknown }).inputs;
    if (!Array.isArray(inputs)) {
      return invalidJson(`Cannot build ${name}, some of required attributes are not set [inputs]`);
    }
    if (inputs.length > MAX_INPUTS) {
      return error(
        400,
        'VALIDATION_ERROR',
        `Batch input of ${inputs.length} exceeds the limit of ${MAX_INPUTS} inputs`,
      );
    }
    for (const input of inputs) {
      if (input === null || typeof input !== 'object' || Array.isArray(input))
        return invalidJson('inputs must be objects');
      const { properties } = input as Input;
      if (properties !== undefined) {
        if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) {
          return invalidJson('properties must be an object');
        }
        for (const [key, value] of Object.entries(properties)) {
          if (typeof value !== 'string') {
            return invalidJson(
              `Cannot deserialize value of type \`java.lang.String\` from ${JSON.stringify(value)} (property "${key}")`,
            );
          }
        }
      }
    }
    return inputs as Input[];
  };
  const duplicates = (values: readonly string[]) => values.filter((v, i) => values.indexOf(v) !== i);
  const duplicateError = (ids: readonly string[]) =>
    error(
      400,
      'VALIDATION_ERROR',
      `Duplicate IDs found in batch input: [${[...new Set(ids)].join(', ')}]. IDs must be unique`,
    );
  const stringOf = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const propertiesIn = (input: Input) => (input.properties ?? {}) as Record<string, string>;
  const done = (results: unknown[], errors: unknown[], okStatus = 200): Reply => {
    const now = new Date().toISOString();
    return {
      status: errors.length > 0 ? 207 : okStatus,
      body: {
        status: 'COMPLETE',
        results,
        ...(errors.length > 0 && { numErrors: errors.length, errors }),
        requestedAt: now,
        startedAt: now,
        completedAt: now,
      },
    };
  };

  // ---- batch endpoints ----
  const upsert = (object: FakeObject, body: unknown): Reply => {
    const inputs = inputsOf(body, 'BatchInputSimplePublicObjectBatchInputUpsert');
    if (!Array.isArray(inputs)) return inputs;
    const idProperty = stringOf(inputs[0]?.idProperty);
    for (const input of inputs) {
      if (stringOf(input.id) === undefined || stringOf(input.id) === '') return invalidJson('every input needs an id');
      if (stringOf(input.idProperty) === undefined) return invalidJson('every input needs an idProperty');
      if (input.idProperty !== idProperty)
        return error(400, 'VALIDATION_ERROR', 'All inputs must use the same idProperty');
    }
    if (idProperty === undefined) return done([], []);
    const refused = idPropertyProblem(object, idProperty, 'upsert');
    if (refused) return refused;
    const property = propertyOf(object, idProperty);
    const ids = inputs.map((i) => normalized(property, i.id as string));
    if (duplicates(ids).length > 0) return duplicateError(duplicates(ids));
    // "Partial upserts are not supported when using email as the idProperty." Inferred: nor by a
    // unique property, unless `upsertMultiStatus` (the OpenAPI spec's 207) is on.
    const partial =
      options.upsertMultiStatus === true &&
      !property?.email &&
      inputs.every((i) => stringOf(i.objectWriteTraceId) !== undefined);
    const checked = inputs.map((input) => {
      const invalids = checkProperties(object, propertiesIn(input));
      const idInvalid = checkValue(object, idProperty, input.id);
      return idInvalid ? [idInvalid, ...invalids] : invalids;
    });
    if (!partial && checked.some((c) => c.length > 0)) return { status: 400, body: validationError(checked.flat()) };
    const results: unknown[] = [];
    const errors: unknown[] = [];
    for (const [i, input] of inputs.entries()) {
      const trace = stringOf(input.objectWriteTraceId);
      if (checked[i]!.length > 0) {
        errors.push(validationError(checked[i]!, { objectWriteTraceId: [trace!] }));
        continue;
      }
      const id = input.id as string;
      const existing = findBy(object, idProperty, id);
      const properties = { ...propertiesIn(input) };
      const clash = conflict(object, properties, existing);
      if (clash) {
        if (!partial) return { status: 409, body: conflictError(object, clash) };
        errors.push(conflictError(object, clash, trace));
        continue;
      }
      const record = existing ?? create(object, { [idProperty]: id });
      apply(object, record, properties);
      results.push({ ...view(record), new: !existing, ...(trace !== undefined && { objectWriteTraceId: trace }) });
    }
    return done(results, errors);
  };

  const createBatch = (object: FakeObject, body: unknown): Reply => {
    const inputs = inputsOf(body, 'BatchInputSimplePublicObjectInputForCreate');
    if (!Array.isArray(inputs)) return inputs;
    // Multi-status for batch create: "include a unique objectWriteTraceId value for each input".
    const partial = inputs.length > 0 && inputs.every((i) => stringOf(i.objectWriteTraceId) !== undefined);
    const checked = inputs.map((input) => checkProperties(object, propertiesIn(input)));
    if (!partial && checked.some((c) => c.length > 0)) return { status: 400, body: validationError(checked.flat()) };
    const results: unknown[] = [];
    const errors: unknown[] = [];
    const created: FakeRecord[] = [];
    for (const [i, input] of inputs.entries()) {
      const trace = stringOf(input.objectWriteTraceId);
      if (checked[i]!.length > 0) {
        errors.push(validationError(checked[i]!, { objectWriteTraceId: [trace!] }));
        continue;
      }
      const clash = conflict(object, propertiesIn(input));
      if (clash) {
        if (!partial) {
          for (const record of created) recordsOf(object).delete(record.id);
          return { status: 409, body: conflictError(object, clash) };
        }
        errors.push(conflictError(object, clash, trace));
        continue;
      }
      const record = create(object, propertiesIn(input));
      created.push(record);
      results.push({ ...view(record), ...(trace !== undefined && { objectWriteTraceId: trace }) });
    }
    return done(results, errors, 201);
  };

  const update = (object: FakeObject, body: unknown): Reply => {
    const inputs = inputsOf(body, 'BatchInputSimplePublicObjectBatchInput');
    if (!Array.isArray(inputs)) return inputs;
    const targets: FakeRecord[] = [];
    const missing: string[] = [];
    for (const input of inputs) {
      const id = stringOf(input.id);
      if (id === undefined || id === '') return invalidJson('every input needs an id');
      const idProperty = stringOf(input.idProperty);
      if (idProperty !== undefined) {
        const refused = idPropertyProblem(object, idProperty, 'update');
        if (refused) return refused;
      }
      const record = idProperty ? findBy(object, idProperty, id) : recordsOf(object).get(id);
      if (!record || record.archived) missing.push(id);
      else targets.push(record);
    }
    const ids = targets.map((r) => r.id);
    if (duplicates(ids).length > 0) return duplicateError(duplicates(ids));
    if (missing.length > 0) return notFound(object, missing);
    const checked = inputs.map((input, i) => {
      const properties = propertiesIn(input);
      const invalids = checkProperties(object, properties);
      const clash = invalids.length === 0 ? conflict(object, properties, targets[i]) : undefined;
      return { invalids, clash };
    });
    const invalids = checked.flatMap((c) => c.invalids);
    if (invalids.length > 0) return { status: 400, body: validationError(invalids) };
    const clash = checked.find((c) => c.clash)?.clash;
    if (clash) return { status: 409, body: conflictError(object, clash) };
    const results = inputs.map((input, i) => {
      apply(object, targets[i]!, propertiesIn(input));
      return view(targets[i]!);
    });
    return done(results, []);
  };

  const read = (object: FakeObject, body: unknown, archived: boolean): Reply => {
    const inputs = inputsOf(body, 'BatchReadInputSimplePublicObjectId');
    if (!Array.isArray(inputs)) return inputs;
    const { idProperty, properties } = body as { idProperty?: unknown; properties?: unknown };
    if (idProperty !== undefined) {
      if (typeof idProperty !== 'string') return invalidJson('idProperty must be a string');
      const refused = idPropertyProblem(object, idProperty, 'read');
      if (refused) return refused;
    }
    const wanted = Array.isArray(properties) ? properties.filter((p): p is string => typeof p === 'string') : undefined;
    const results: unknown[] = [];
    const missing: string[] = [];
    for (const input of inputs) {
      const id = stringOf(input.id);
      if (id === undefined) return invalidJson('every input needs an id');
      const record =
        typeof idProperty === 'string'
          ? findBy(object, idProperty, id)
          : [...recordsOf(object).values()].find((r) => r.id === id && r.archived === archived);
      if (record) results.push(view(record, wanted));
      else missing.push(id);
    }
    const errors = missing.length > 0 ? [{ ...(notFound(object, missing).body as object) }] : [];
    return done(results, errors);
  };

  const archive = (object: FakeObject, body: unknown): Reply => {
    const inputs = inputsOf(body, 'BatchInputSimplePublicObjectId');
    if (!Array.isArray(inputs)) return inputs;
    for (const input of inputs) {
      const id = stringOf(input.id);
      if (id === undefined) return invalidJson('every input needs an id');
      const record = recordsOf(object).get(id);
      if (record) {
        record.archived = true;
        record.updatedAt = new Date().toISOString();
      }
    }
    return { status: 204 };
  };

  // ---- lists (segments) ----
  // https://developers.hubspot.com/docs/api-reference/latest/crm/lists/guide
  const PROCESSING_TYPES = ['MANUAL', 'SNAPSHOT', 'DYNAMIC'] as const;
  /**
   * Inferred: no page states a maximum of record IDs per membership call; the fake refuses more
   * than 100,000 (the size the memberships endpoints name as their limit for `add-from` and the
   * delete-all call: "only supports lists that have less than 100,000 memberships").
   */
  const MAX_MEMBERSHIP_IDS = 100_000;
  const listView = (list: FakeList) => ({
    listId: list.listId,
    listVersion: list.listVersion,
    name: list.name,
    objectTypeId: list.objectTypeId,
    processingType: list.processingType,
    processingStatus: 'COMPLETE',
    createdAt: list.createdAt,
    updatedAt: list.updatedAt,
    filtersUpdatedAt: list.createdAt,
    size: list.members.size,
  });
  const makeList = (name: string, processingType: FakeList['processingType'], objectTypeId: string): FakeList => {
    const now = new Date().toISOString();
    const list: FakeList = {
      listId: String(nextListId++),
      name,
      objectTypeId,
      processingType,
      createdAt: now,
      updatedAt: now,
      listVersion: 1,
      members: new Map(),
    };
    lists.set(list.listId, list);
    return list;
  };
  /**
   * Inferred: the body and subCategory of a missing list (the error shape is HubSpot's documented
   * one, https://developers.hubspot.com/docs/api-reference/error-handling; a list-API 400 with a
   * `subCategory` like `ListError.INVALID_OBJECT_TYPE_FOR_LIST` is reported in
   * https://github.com/singer-io/tap-hubspot/issues/299).
   */
  const listNotFound = (listId: string) =>
    error(404, 'OBJECT_NOT_FOUND', `List with id ${listId} does not exist.`, {
      subCategory: 'ListError.LIST_DOES_NOT_EXIST',
    });
  const createList = (body: unknown): Reply => {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return invalidJson('expected an object');
    const { name, objectTypeId, processingType, filterBranch } = body as Record<string, unknown>;
    // ListCreateRequest: `name`, `objectTypeId` and `processingType` are required.
    if (
      typeof name !== 'string' ||
      name === '' ||
      typeof objectTypeId !== 'string' ||
      typeof processingType !== 'string'
    )
      return invalidJson(
        'Cannot build ListCreateRequest, some of required attributes are not set [name, objectTypeId, processingType]',
      );
    if (!PROCESSING_TYPES.includes(processingType as FakeList['processingType']))
      return error(
        400,
        'VALIDATION_ERROR',
        `processingType must be one of SNAPSHOT, MANUAL, or DYNAMIC; got ${processingType}`,
      );
    // "The name of the list, which must be globally unique across all public lists in the portal."
    // Inferred: the status and text of the refusal.
    if ([...lists.values()].some((l) => l.name === name))
      return error(400, 'VALIDATION_ERROR', `A list named "${name}" already exists.`, {
        subCategory: 'ListError.LIST_NAME_ALREADY_EXISTS',
      });
    // Inferred: a DYNAMIC list needs the filters its members are computed from.
    if (processingType === 'DYNAMIC' && (filterBranch === null || typeof filterBranch !== 'object'))
      return error(400, 'VALIDATION_ERROR', 'A DYNAMIC list requires a filterBranch.');
    if (!objectOf(objectTypeId))
      return error(
        400,
        'VALIDATION_ERROR',
        `The objectTypeId ${objectTypeId} provided for the list is not valid for this portal.`,
        {
          subCategory: 'ListError.INVALID_OBJECT_TYPE_FOR_LIST',
        },
      );
    const list = makeList(name, processingType as FakeList['processingType'], objectOf(objectTypeId)!.objectTypeId);
    return { status: 200, body: { list: listView(list) } };
  };
  const changeMemberships = (list: FakeList, action: 'add' | 'remove', body: unknown): Reply => {
    // "This endpoint only works for lists that have a processingType of MANUAL or SNAPSHOT."
    // Inferred: the status, text and subCategory of the refusal.
    if (list.processingType === 'DYNAMIC') {
      return error(
        400,
        'VALIDATION_ERROR',
        `List ${list.listId} has processingType DYNAMIC: memberships can only be changed for MANUAL or SNAPSHOT lists.`,
        { subCategory: 'ListError.INVALID_PROCESSING_TYPE' },
      );
    }
    // The body is "The IDs of the records to add to the list": a JSON array of strings.
    if (!Array.isArray(body) || body.some((id) => typeof id !== 'string'))
      return invalidJson(
        'Cannot deserialize value of type `java.util.ArrayList<java.lang.String>`: expected an array of record IDs',
      );
    if (body.length > MAX_MEMBERSHIP_IDS)
      return error(
        400,
        'VALIDATION_ERROR',
        `Membership change of ${body.length} records exceeds the limit of ${MAX_MEMBERSHIP_IDS}`,
      );
    const object = objectOf(list.objectTypeId)!;
    const added: string[] = [];
    const removed: string[] = [];
    const missing: string[] = [];
    const now = new Date().toISOString();
    for (const id of new Set(body as string[])) {
      const record = recordsOf(object).get(id);
      if (!record || record.archived) {
        missing.push(id);
        continue;
      }
      // Members added again and non-members removed are ignored: in neither list of the answer.
      if (action === 'add' && !list.members.has(id)) {
        list.members.set(id, now);
        added.push(id);
      } else if (action === 'remove' && list.members.delete(id)) removed.push(id);
    }
    if (added.length + removed.length > 0) {
      list.updatedAt = now;
      list.listVersion++;
    }
    return { status: 200, body: { recordsIdsAdded: added, recordIdsRemoved: removed, recordIdsMissing: missing } };
  };
  /** `GET …/memberships`: ascending record IDs, `limit` at most 250, `after` as the paging token. */
  const readMemberships = (list: FakeList, url: URL): Reply => {
    const limit = Number(url.searchParams.get('limit') ?? '100');
    if (!Number.isInteger(limit) || limit < 1 || limit > 250)
      return error(400, 'VALIDATION_ERROR', 'limit must be between 1 and 250');
    const after = url.searchParams.get('after');
    const ids = [...list.members.keys()].sort((a, b) => Number(a) - Number(b));
    const start = after === null ? 0 : ids.findIndex((id) => Number(id) > Number(after));
    const page = start < 0 ? [] : ids.slice(start, start + limit);
    const more = start >= 0 && start + limit < ids.length;
    return {
      status: 200,
      body: {
        results: page.map((recordId) => ({ recordId, membershipTimestamp: list.members.get(recordId) })),
        total: ids.length,
        ...(more && { paging: { next: { after: page.at(-1) } } }),
      },
    };
  };
  const routeLists = (method: string, url: URL, body: unknown): Reply | undefined => {
    const path = url.pathname;
    if (!path.startsWith('/crm/v3/lists')) return undefined;
    const scopes = [method === 'GET' ? 'crm.lists.read' : 'crm.lists.write'];
    if (!allowed(scopes)) return missingScopes(scopes);
    if (method === 'POST' && /^\/crm\/v3\/lists\/?$/.test(path)) return createList(body);
    const m = /^\/crm\/v3\/lists\/([^/]+)(?:\/memberships(?:\/(add|remove))?)?$/.exec(path);
    if (!m) return undefined;
    const listId = decodeURIComponent(m[1]!);
    // Inferred: an ILS list ID that is not a number is a 400, as HubSpot answers a malformed path ID.
    if (!/^\d+$/.test(listId)) return invalidJson(`Unable to parse listId "${listId}" as a number`);
    const list = lists.get(listId);
    if (!list) return listNotFound(listId);
    const memberships = path.includes('/memberships');
    if (method === 'GET' && !memberships) return { status: 200, body: { list: listView(list) } };
    if (method === 'GET' && memberships && m[2] === undefined) return readMemberships(list, url);
    if (method === 'PUT' && m[2] !== undefined) return changeMemberships(list, m[2] as 'add' | 'remove', body);
    return undefined;
  };

  // ---- routing ----
  const allowed = (scopes: readonly string[]) =>
    options.scopes === undefined || scopes.some((s) => options.scopes!.includes(s));
  const missingScopes = (scopes: readonly string[]) =>
    error(
      403,
      'MISSING_SCOPES',
      "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
      {
        errors: [
          { message: 'One or more of the following scopes are required.', context: { requiredGranularScopes: scopes } },
        ],
        links: { scopes: 'https://developers.hubspot.com/scopes' },
      },
    );
  const unknownObject = (name: string) => error(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${name}`);

  const route = (method: string, url: URL, body: unknown): Reply => {
    const path = url.pathname;
    const listReply = routeLists(method, url, body);
    if (listReply) return listReply;
    if (method === 'GET' && path === '/account-info/v3/details') {
      return {
        status: 200,
        body: { portalId, accountType: 'STANDARD', timeZone: 'US/Eastern', companyCurrency: 'USD' },
      };
    }
    const properties = /^\/crm\/v3\/properties\/([^/]+)$/.exec(path);
    if (method === 'GET' && properties) {
      const object = objectOf(decodeURIComponent(properties[1]!));
      if (!object) return unknownObject(decodeURIComponent(properties[1]!));
      const scopes = [`crm.schemas.${object.scope}.read`, `crm.objects.${object.scope}.read`];
      if (!allowed(scopes)) return missingScopes(scopes);
      return { status: 200, body: { results: object.properties.map(describe) } };
    }
    const batch = /^\/crm\/v3\/objects\/([^/]+)\/batch\/(upsert|create|update|read|archive)$/.exec(path);
    if (method === 'POST' && batch) {
      const object = objectOf(decodeURIComponent(batch[1]!));
      if (!object) return unknownObject(decodeURIComponent(batch[1]!));
      const action = batch[2]!;
      const scopes = [`crm.objects.${object.scope}.${action === 'read' ? 'read' : 'write'}`];
      if (!allowed(scopes)) return missingScopes(scopes);
      switch (action) {
        case 'upsert':
          return upsert(object, body);
        case 'create':
          return createBatch(object, body);
        case 'update':
          return update(object, body);
        case 'read':
          return read(object, body, url.searchParams.get('archived') === 'true');
        default:
          return archive(object, body);
      }
    }
    return error(404, 'OBJECT_NOT_FOUND', 'resource not found');
  };

  const handle = (req: IncomingMessage, raw: string, request: FakeRequest): Reply => {
    const isWrite = isWriteRequest(req.method ?? '', request.path);
    if (revoked || req.headers.authorization !== `Bearer ${options.token}`) {
      return error(
        401,
        'INVALID_AUTHENTICATION',
        'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
      );
    }
    const now = Date.now();
    while (recent.length > 0 && now - recent[0]! >= burst.intervalMs) recent.shift();
    if (dailyUsed >= dailyLimit) return tooMany('DAILY');
    if (migrations > 0) {
      migrations--;
      // https://developers.hubspot.com/docs/api-reference/error-handling: "477 Migration in Progress
      // … HubSpot will return a Retry-After response header indicating how many seconds to wait
      // before retrying the request (typically up to 24 hours)." Inferred: the body's shape.
      return {
        ...error(477, 'MIGRATION_IN_PROGRESS', 'This account is being migrated between data hosting locations'),
        headers: { 'retry-after': String(migrationWait) },
      };
    }
    if (isWrite && throttleSkip > 0) throttleSkip--;
    else if (isWrite && throttles > 0) {
      throttles--;
      return tooMany('TEN_SECONDLY_ROLLING');
    }
    if (recent.length >= burst.max) return tooMany('TEN_SECONDLY_ROLLING');
    recent.push(now);
    dailyUsed++;
    if (isWrite && locks > 0) {
      locks--;
      return error(423, 'LOCKED', 'The resource is locked; retry after 2 seconds');
    }
    let body: unknown;
    if (raw !== '') {
      if (!(req.headers['content-type'] ?? '').includes('application/json')) {
        return {
          status: 415,
          body: { status: 'error', message: 'Unsupported media type', category: 'UNSUPPORTED_MEDIA_TYPE' },
        };
      }
      try {
        body = JSON.parse(raw);
      } catch (e) {
        return invalidJson((e as Error).message);
      }
    }
    (request as { body: unknown }).body = body;
    return route(req.method ?? 'GET', new URL(req.url ?? '/', 'http://fake'), body);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const request: FakeRequest = {
        method: req.method ?? '',
        path: new URL(req.url ?? '/', 'http://fake').pathname,
        body: undefined,
        at: Date.now(),
        status: 0,
      };
      requests.push(request);
      let reply: Reply;
      try {
        reply = handle(req, raw, request);
      } catch (e) {
        reply = error(500, 'INTERNAL_ERROR', String(e));
      }
      request.status = reply.status;
      if (stalls > 0 && request.method === 'POST' && /\/batch\/create$/.test(request.path) && reply.status < 300) {
        // Applied, then never answered: the client times out not knowing (closed on stop()).
        stalls--;
        request.status = 0;
        return;
      }
      const headers = { ...rateHeaders(), ...reply.headers };
      if (reply.body === undefined) {
        res.writeHead(reply.status, headers);
        res.end();
      } else {
        res.writeHead(reply.status, { ...headers, 'content-type': 'application/json;charset=utf-8' });
        res.end(JSON.stringify(reply.body));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const objectNamed = (name: string) => {
    const object = objectOf(name);
    if (!object) throw new Error(`the fake has no object ${name}`);
    return object;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stored(name) {
      const object = objectNamed(name);
      const out = new Map<string, Record<string, JsonValue>>();
      for (const record of recordsOf(object).values()) {
        const key = record.properties[object.storeKey];
        if (!record.archived && key !== undefined) out.set(key, { ...record.properties });
      }
      return out;
    },
    records: (name) => [...recordsOf(objectNamed(name)).values()],
    seed(name, properties, createdAt) {
      const record = create(objectNamed(name), properties);
      if (createdAt !== undefined) {
        (record as { createdAt: string }).createdAt = createdAt;
        record.updatedAt = createdAt;
      }
      return record.id;
    },
    writeTimes: () => requests.filter((r) => isWriteRequest(r.method, r.path)).map((r) => r.at),
    requestTimes: () => requests.map((r) => r.at),
    throttleNext(n) {
      throttles += n;
    },
    throttleAfter(skip, n) {
      throttleSkip = skip;
      throttles += n;
    },
    migrateNext(n, retryAfterSeconds) {
      migrations += n;
      migrationWait = retryAfterSeconds;
    },
    commitThenStall(n) {
      stalls += n;
    },
    lockNext(n) {
      locks += n;
    },
    exhaustDaily() {
      dailyUsed = dailyLimit;
    },
    createList(name, processingType = 'MANUAL', objectTypeId = '0-1') {
      return makeList(name, processingType, objectNamed(objectTypeId).objectTypeId).listId;
    },
    members(object) {
      const m = /^list:(\d+)$/.exec(object);
      const list = m ? lists.get(m[1]!) : undefined;
      if (!list) throw new Error(`the fake has no list ${object}`);
      const records = recordsOf(objectNamed(list.objectTypeId));
      const emails = new Set<string>();
      for (const id of list.members.keys()) {
        const email = records.get(id)?.properties.email;
        if (email !== undefined) emails.add(email.toLowerCase());
      }
      return emails;
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

/** Batch POSTs of the object APIs and the list writes (create, memberships): what `throttleNext` refuses. */
function isWriteRequest(method: string, path: string): boolean {
  return (
    (method === 'POST' && path.startsWith('/crm/v3/objects/')) ||
    ((method === 'PUT' || method === 'POST') && path.startsWith('/crm/v3/lists'))
  );
}

/** A property as the properties API describes it. */
function describe(property: FakeProperty) {
  return {
    name: property.name,
    label: property.name.replace(/_/g, ' '),
    type: property.type,
    fieldType: property.fieldType,
    groupName: property.hubspotDefined ? 'contactinformation' : 'custom',
    description: '',
    options: (property.options ?? []).map((value, i) => ({ label: value, value, displayOrder: i, hidden: false })),
    displayOrder: -1,
    hasUniqueValue: property.hasUniqueValue === true,
    hidden: false,
    ...(property.hubspotDefined && { hubspotDefined: true }),
    calculated: property.calculated === true,
    archived: false,
    formField: !property.readOnly,
    modificationMetadata: {
      archivable: !property.hubspotDefined,
      readOnlyDefinition: property.hubspotDefined === true,
      readOnlyOptions: false,
      readOnlyValue: property.readOnly === true || property.calculated === true,
    },
  };
}
