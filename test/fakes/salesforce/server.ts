import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonValue } from '#connectors/sdk/types';
import type { VendorFake } from '../../conformance/suite.ts';

/**
 * A fake Salesforce org on 127.0.0.1 and a free port, written from Salesforce's documentation and
 * enforcing it:
 * - OAuth token endpoint (`POST /services/oauth2/token`): client credentials flow and JWT bearer
 *   flow (RS256 signature, iss/sub/aud/exp checked); errors as `400 {error, error_description}`.
 * - REST API under `/services/data/vXX.X` (46.0–67.0): a bearer session (`401 INVALID_SESSION_ID`
 *   once expired or revoked), the daily API allocation (`403 REQUEST_LIMIT_EXCEEDED`, and
 *   `Sforce-Limit-Info: api-usage=N/M` on every answer), sObject describe, SOQL lookups
 *   (`SELECT … FROM … WHERE f IN (…)`, paged with `nextRecordsUrl`), sObject Collections upsert by
 *   external ID / update by Id / create / delete, at most 200 records, `allOrNone`, per-record
 *   errors (`INVALID_EMAIL_ADDRESS`, `REQUIRED_FIELD_MISSING`, `STRING_TOO_LONG`, `DUPLICATE_VALUE`,
 *   `INVALID_FIELD_FOR_INSERT_UPDATE`, `ENTITY_IS_DELETED`…), a whole-request `400` for unknown
 *   fields (`INVALID_FIELD`) and undeserializable values (`JSON_PARSER_ERROR`).
 * - Bulk API 2.0 ingest jobs (upsert and insert): create, CSV upload, `UploadComplete`, state,
 *   `successfulResults/`, `failedResults/`, `unprocessedrecords/`, Get All Jobs; `#N/A` clears a field.
 * - Campaigns and their members: `Campaign` and `CampaignMember` ("Represents the association
 *   between a campaign and either a lead or a contact"; `CampaignId` required, `ContactId` or
 *   `LeadId` required, `Status` one of the campaign's member statuses, the default one when unset:
 *   https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_campaignmember.htm,
 *   https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/api/sforce_api_objects_campaignmemberstatus.htm);
 *   a second member for one Contact or Lead is refused `DUPLICATE_VALUE: Already a campaign member.`
 *   (the text orgs report, https://github.com/openstax/tutor-server/pull/1653). SOQL `WHERE` takes
 *   conditions joined by `AND` (`CampaignId = '…' AND ContactId IN (…)`).
 * - Faults a real network has: a request that commits and then loses its answer (`failAfterCommit`:
 *   the connection dropped, or no answer until the client times out); a login host that is not a
 *   My Domain (`genericLoginHost`); an org or user without API access (`disableApi`).
 */

export interface FakeField {
  readonly name: string;
  /** A Salesforce field type: id, string, email, picklist, boolean, double, currency, date, datetime… */
  readonly type: string;
  readonly length?: number;
  readonly nillable: boolean;
  readonly createable: boolean;
  readonly updateable: boolean;
  readonly externalId?: boolean;
  readonly idLookup?: boolean;
  readonly unique?: boolean;
  readonly custom?: boolean;
  readonly defaultedOnCreate?: boolean;
}

export interface FakeObject {
  /** First three characters of the record Ids (003 for Contact). */
  readonly keyPrefix: string;
  readonly fields: readonly FakeField[];
  /** Field `stored()` keys the records by; default the first External ID field. */
  readonly key?: string;
}

export interface SalesforceFakeOptions {
  /** Consumer key of the external client app. */
  readonly clientId?: string;
  /** Consumer secret: enables the client credentials flow. */
  readonly clientSecret?: string;
  /**
   * Enables the JWT bearer flow for one user, verified with the certificate's public key; the
   * assertion's `aud` must be `audience`, by default the fake's own URL (the login server).
   */
  readonly jwt?: { readonly publicKey: string; readonly username: string; readonly audience?: string };
  /** The org's daily API request allocation. Default 100,000. */
  readonly dailyApiLimit?: number;
  /** Records per query page before `nextRecordsUrl`. Default 2,000. */
  readonly queryPageSize?: number;
  /** How long a closed Bulk API job stays InProgress. Default 0. */
  readonly bulkProcessingMs?: number;
  /** Replaces or adds objects (default: Contact, Lead, Account, Subscription__c, Everything__c). */
  readonly objects?: Readonly<Record<string, FakeObject>>;
  /**
   * The fake's URL plays `login.salesforce.com` / `test.salesforce.com`: the client credentials
   * flow is refused with `400 invalid_grant: request not supported on this domain` — the flow
   * needs the org's My Domain
   * (https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm).
   * Inferred: the error text is the one reported by users (e.g.
   * https://github.com/pozil/pub-sub-api-node-client/issues/58); the help page does not quote it.
   */
  readonly genericLoginHost?: boolean;
}

/** What happens to the answer of a request that was processed (committed): `failAfterCommit`. */
export interface CommitFault {
  readonly method?: string;
  /** Matched against the path after `/services/data/vXX.X` (e.g. `/composite/sobjects`). */
  readonly path?: RegExp;
  /** `drop`: the connection is closed without an answer; `stall`: no answer until the client gives up. */
  readonly mode: 'drop' | 'stall';
  /** How many matching requests (default 1). */
  readonly times?: number;
}

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** Parsed JSON, or the text (CSV, form). */
  readonly body: unknown;
  readonly at: number;
  status: number;
}

export interface FakeJob {
  readonly id: string;
  /** `2026-01-31T12:00:00.000+0000`, as the API writes dates. */
  readonly createdDate: string;
  readonly object: string;
  readonly operation: string;
  readonly externalIdFieldName: string | undefined;
  state: 'Open' | 'UploadComplete' | 'InProgress' | 'JobComplete' | 'Failed' | 'Aborted';
  csv: string | undefined;
  closedAt: number;
  errorMessage: string | undefined;
  successful: string[][];
  failed: string[][];
  unprocessed: string[][];
  header: string[];
}

export interface SalesforceFake extends VendorFake {
  /** `http://127.0.0.1:PORT`: login URL and instance URL at once. */
  readonly url: string;
  readonly requests: FakeRequest[];
  /** Records of an object by Id. */
  records(object: string): ReadonlyMap<string, Readonly<Record<string, JsonValue>>>;
  /** Adds a record as if created in Salesforce; returns its Id. */
  seed(object: string, fields: Record<string, JsonValue>): string;
  /** The members of `campaign:<CampaignId>` now: their Contact's or Lead's Email, lower-cased. */
  members(object: string): ReadonlySet<string>;
  /** Ends every session (the org's session timeout): the next call answers 401 INVALID_SESSION_ID. */
  expireSessions(): void;
  /** API requests counted against the daily allocation. */
  apiUsage(): number;
  /** Answers `n` write requests with `403 REQUEST_LIMIT_EXCEEDED`, after letting `after` through. */
  throttleNext(n: number, after?: number): void;
  /** The next matching request is processed — it commits — and then its answer is lost. */
  failAfterCommit(fault: CommitFault): void;
  /** From now on every REST call answers `403 API_DISABLED_FOR_ORG` (until `disableApi(false)`). */
  disableApi(disabled?: boolean): void;
  readonly jobs: Map<string, FakeJob>;
  readonly tokensIssued: number;
}

const API_VERSIONS = { min: 46, max: 67 };
const COLLECTION_MAX = 200;
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ORG_ID = '00D5g000004XyZ1EAK';
/** The integration user every session runs as. */
const USER_ID = '0055g00000AbCdEAAV';
const STRING_TYPES = new Set([
  'id',
  'reference',
  'string',
  'textarea',
  'email',
  'phone',
  'url',
  'picklist',
  'multipicklist',
  'combobox',
  'encryptedstring',
]);
const NUMBER_TYPES = new Set(['int', 'long', 'double', 'currency', 'percent']);

const idField: FakeField = {
  name: 'Id',
  type: 'id',
  length: 18,
  nillable: false,
  createable: false,
  updateable: false,
  idLookup: true,
  defaultedOnCreate: true,
};
const text = (name: string, length: number, extra: Partial<FakeField> = {}): FakeField => ({
  name,
  type: 'string',
  length,
  nillable: true,
  createable: true,
  updateable: true,
  ...extra,
});
const externalId = (name = 'External_Id__c'): FakeField =>
  text(name, 255, { externalId: true, idLookup: true, unique: true, custom: true });
const createdDate: FakeField = {
  name: 'CreatedDate',
  type: 'datetime',
  nillable: false,
  createable: false,
  updateable: false,
  defaultedOnCreate: true,
};

export const DEFAULT_OBJECTS: Readonly<Record<string, FakeObject>> = {
  Contact: {
    keyPrefix: '003',
    key: 'External_Id__c',
    fields: [
      idField,
      text('FirstName', 40),
      text('LastName', 80, { nillable: false }),
      text('Email', 80, { type: 'email', idLookup: true }),
      text('Phone', 40, { type: 'phone' }),
      {
        name: 'HasOptedOutOfEmail',
        type: 'boolean',
        nillable: false,
        createable: true,
        updateable: true,
        defaultedOnCreate: true,
      },
      { name: 'Birthdate', type: 'date', nillable: true, createable: true, updateable: true },
      text('Plan__c', 255, { type: 'picklist', custom: true }),
      { name: 'Lifetime_Value__c', type: 'currency', nillable: true, createable: true, updateable: true, custom: true },
      text('Interests__c', 4099, { type: 'multipicklist', custom: true }),
      text('Signup_Code__c', 20, { updateable: false, custom: true }),
      {
        name: 'Customer_Number__c',
        type: 'double',
        nillable: true,
        createable: true,
        updateable: true,
        externalId: true,
        idLookup: true,
        custom: true,
      },
      externalId(),
      createdDate,
    ],
  },
  Lead: {
    keyPrefix: '00Q',
    fields: [
      idField,
      text('FirstName', 40),
      text('LastName', 80, { nillable: false }),
      text('Company', 255, { nillable: false }),
      text('Email', 80, { type: 'email', idLookup: true }),
      externalId(),
      createdDate,
    ],
  },
  Account: {
    keyPrefix: '001',
    fields: [idField, text('Name', 255, { nillable: false, idLookup: true }), externalId(), createdDate],
  },
  Campaign: {
    keyPrefix: '701',
    key: 'Name',
    fields: [
      idField,
      text('Name', 80, { nillable: false }),
      {
        name: 'IsActive',
        type: 'boolean',
        nillable: false,
        createable: true,
        updateable: true,
        defaultedOnCreate: true,
      },
      createdDate,
    ],
  },
  /** The association of a campaign with a Contact or a Lead (the object reference's field properties). */
  CampaignMember: {
    keyPrefix: '00v',
    key: 'Id',
    fields: [
      idField,
      // "Required. ID of the Campaign to which this Lead or Contact is associated." Create, not Update.
      { name: 'CampaignId', type: 'reference', length: 18, nillable: false, createable: true, updateable: false },
      // "Required. ID of the Contact …" / "… of the Lead …": one of the two; Create, Nillable.
      { name: 'ContactId', type: 'reference', length: 18, nillable: true, createable: true, updateable: false },
      { name: 'LeadId', type: 'reference', length: 18, nillable: true, createable: true, updateable: false },
      // Create, Update, Nillable: one of the campaign's member statuses.
      text('Status', 40, { type: 'picklist' }),
      createdDate,
    ],
  },
  /** One field of each Salesforce type the connector maps, for field discovery and value formats. */
  Everything__c: {
    keyPrefix: 'a02',
    fields: [
      idField,
      externalId('Key__c'),
      ...(
        [
          ['Date__c', 'date'],
          ['Datetime__c', 'datetime'],
          ['Boolean__c', 'boolean'],
          ['Double__c', 'double'],
          ['Currency__c', 'currency'],
          ['Percent__c', 'percent'],
          ['Int__c', 'int'],
          ['String__c', 'string'],
          ['Textarea__c', 'textarea'],
          ['Picklist__c', 'picklist'],
          ['Multipicklist__c', 'multipicklist'],
          ['Email__c', 'email'],
          ['Phone__c', 'phone'],
          ['Url__c', 'url'],
          ['Reference__c', 'reference'],
        ] as const
      ).map(
        ([name, type]): FakeField => ({
          name,
          type,
          nillable: true,
          createable: true,
          updateable: true,
          custom: true,
          ...(STRING_TYPES.has(type) ? { length: 255 } : {}),
        }),
      ),
      createdDate,
    ],
  },
  Subscription__c: {
    keyPrefix: 'a01',
    fields: [
      idField,
      text('Name', 80, { idLookup: true, defaultedOnCreate: true }),
      text('Plan__c', 255, { type: 'picklist', custom: true }),
      externalId('Subscription_Key__c'),
      createdDate,
    ],
  },
};

type Values = Record<string, JsonValue>;
interface RecordError {
  statusCode: string;
  message: string;
  fields: string[];
}
interface Result {
  id: string | null;
  success: boolean;
  errors: RecordError[];
  created?: boolean;
}

/** A whole request refused: the REST API's `[{ message, errorCode }]` with a status. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly fields?: string[],
  ) {
    super(message);
  }
}

/**
 * The member statuses of every campaign of the fake, the first the default. Inferred: the two a new
 * campaign starts with in Salesforce (Sent, the default, and Responded); the API documents only
 * that every campaign has a default status and one with `HasResponded`.
 */
export const CAMPAIGN_MEMBER_STATUSES = ['Sent', 'Responded'] as const;

const recordError = (statusCode: string, message: string, fields: string[] = []): RecordError => ({
  statusCode,
  message,
  fields,
});

export async function startSalesforceFake(options: SalesforceFakeOptions = {}): Promise<SalesforceFake> {
  const clientId = options.clientId ?? 'backflow-test-client';
  const dailyLimit = options.dailyApiLimit ?? 100_000;
  const pageSize = options.queryPageSize ?? 2_000;
  const objects: Record<string, FakeObject> = { ...DEFAULT_OBJECTS, ...options.objects };
  const data = new Map<string, Map<string, Values>>(Object.keys(objects).map((name) => [name, new Map()]));
  const deleted = new Set<string>();
  const tokens = new Set<string>();
  const requests: FakeRequest[] = [];
  const writes: number[] = [];
  const faults: CommitFault[] = [];
  /** Answers to lose (`failAfterCommit`), by response. */
  const losing = new Map<ServerResponse, CommitFault['mode']>();
  let apiDisabled = false;
  const jobs = new Map<string, FakeJob>();
  const cursors = new Map<string, { object: string; rows: Values[]; fields: string[] }>();
  let revoked = false;
  let throttle = 0;
  /** Writes let through before `throttle` starts refusing (`throttleNext(n, after)`). */
  let throttleAfter = 0;
  let usage = 0;
  let sequence = 0;
  let tokensIssued = 0;
  let url = '';

  const objectOf = (name: string): [string, FakeObject] | undefined => {
    const found = Object.keys(objects).find((o) => o.toLowerCase() === name.toLowerCase());
    return found ? [found, objects[found]!] : undefined;
  };
  const fieldOf = (object: FakeObject, name: string) =>
    object.fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
  const keyFieldOf = (object: FakeObject) => object.key ?? object.fields.find((f) => f.externalId)?.name ?? 'Id';
  const newId = (object: FakeObject) => {
    sequence++;
    const body = `${object.keyPrefix}5g00000${String(sequence).padStart(5, '0')}`;
    return `${body}${'AAA'}`.slice(0, 18);
  };
  const same = (field: FakeField, a: JsonValue | undefined, b: JsonValue | undefined) =>
    a !== null &&
    a !== undefined &&
    b !== null &&
    b !== undefined &&
    (STRING_TYPES.has(field.type) ? String(a).toLowerCase() === String(b).toLowerCase() : Number(a) === Number(b));

  // ---------------------------------------------------------------- values and per-record rules

  /** JSON deserialization: a value of the wrong JSON type fails the whole request, like Salesforce. */
  const deserialize = (field: FakeField, value: JsonValue): JsonValue => {
    if (value === null) return null;
    const refuse = () => {
      throw new Refusal(
        400,
        'JSON_PARSER_ERROR',
        `Cannot deserialize instance of ${field.type} from ${Array.isArray(value) ? 'START_ARRAY' : `VALUE_${typeof value === 'string' ? 'STRING' : typeof value === 'number' ? 'NUMBER' : typeof value === 'boolean' ? 'TRUE' : 'OBJECT'}`} value ${JSON.stringify(value)} or request may be missing a required field`,
      );
    };
    if (STRING_TYPES.has(field.type) || field.type === 'time') {
      if (typeof value !== 'string') refuse();
      return value === '' ? null : value;
    }
    if (field.type === 'boolean') {
      if (typeof value !== 'boolean') refuse();
      return value;
    }
    if (NUMBER_TYPES.has(field.type)) {
      const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
      if (!Number.isFinite(n) || (typeof value === 'string' && value.trim() === '')) refuse();
      return n;
    }
    if (field.type === 'date') {
      if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(value))) refuse();
      return value;
    }
    if (field.type === 'datetime') {
      if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) refuse();
      return value;
    }
    return value;
  };

  /** Reads a CSV cell of a Bulk API job: empty = untouched, `#N/A` = null. */
  const fromCsv = (field: FakeField, cell: string): JsonValue | RecordError => {
    if (cell === '#N/A') return null;
    if (NUMBER_TYPES.has(field.type)) {
      const n = Number(cell);
      return Number.isFinite(n)
        ? n
        : recordError('INVALID_TYPE_ON_FIELD_IN_RECORD', `${field.name}: value not of required type: ${cell}`, [
            field.name,
          ]);
    }
    if (field.type === 'boolean') {
      if (/^(true|1)$/i.test(cell)) return true;
      if (/^(false|0)$/i.test(cell)) return false;
      return recordError('INVALID_TYPE_ON_FIELD_IN_RECORD', `${field.name}: value not of required type: ${cell}`, [
        field.name,
      ]);
    }
    if ((field.type === 'date' || field.type === 'datetime') && Number.isNaN(Date.parse(cell))) {
      return recordError('INVALID_TYPE_ON_FIELD_IN_RECORD', `${field.name}: value not of required type: ${cell}`, [
        field.name,
      ]);
    }
    return cell;
  };

  /** Validation rules of one create or update; the values are already deserialized. */
  const validate = (
    object: FakeObject,
    records: Map<string, Values>,
    id: string | undefined,
    values: Values,
  ): RecordError[] => {
    const errors: RecordError[] = [];
    const creating = id === undefined;
    const notWritable: string[] = [];
    for (const [name, value] of Object.entries(values)) {
      const field = fieldOf(object, name)!;
      if (creating ? !field.createable : !field.updateable) {
        notWritable.push(field.name);
        continue;
      }
      if (value === null) {
        if (!field.nillable)
          errors.push(
            recordError('REQUIRED_FIELD_MISSING', `Required fields are missing: [${field.name}]`, [field.name]),
          );
        continue;
      }
      if (field.type === 'email' && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(String(value))) {
        errors.push(
          recordError('INVALID_EMAIL_ADDRESS', `${field.name}: invalid email address: ${String(value)}`, [field.name]),
        );
      }
      if (field.length !== undefined && typeof value === 'string' && value.length > field.length) {
        errors.push(
          recordError(
            'STRING_TOO_LONG',
            `${field.name}: data value too large: ${value.slice(0, 40)} (max length=${field.length})`,
            [field.name],
          ),
        );
      }
      if (field.unique) {
        for (const [otherId, other] of records) {
          if (otherId !== id && same(field, other[field.name], value)) {
            errors.push(
              recordError(
                'DUPLICATE_VALUE',
                `duplicate value found: ${field.name} duplicates value on record with id: ${otherId}`,
                [field.name],
              ),
            );
            break;
          }
        }
      }
    }
    if (notWritable.length > 0) {
      errors.unshift(
        recordError(
          'INVALID_FIELD_FOR_INSERT_UPDATE',
          `Unable to create/update fields: ${notWritable.join(', ')}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`,
          notWritable,
        ),
      );
    }
    if (creating && object === objects.CampaignMember) errors.push(...campaignMemberErrors(records, values));
    if (creating) {
      const missing = object.fields
        .filter((f) => !f.nillable && f.createable && !f.defaultedOnCreate && f.type !== 'boolean')
        .filter((f) => !Object.keys(values).some((k) => k.toLowerCase() === f.name.toLowerCase()))
        .map((f) => f.name);
      if (missing.length > 0) {
        errors.push(
          recordError('REQUIRED_FIELD_MISSING', `Required fields are missing: [${missing.join(', ')}]`, missing),
        );
      }
    }
    return errors;
  };

  /**
   * A new CampaignMember: its campaign and its Contact or Lead must exist, and be a member once.
   * Inferred: the codes and texts of a missing Contact/Lead (`REQUIRED_FIELD_MISSING`), an Id that
   * names no record (`INVALID_CROSS_REFERENCE_KEY`, as for the other lookups), and a status that is
   * not one of the campaign's (`INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`).
   */
  const campaignMemberErrors = (members: Map<string, Values>, values: Values): RecordError[] => {
    const campaignId = values.CampaignId;
    const contactId = values.ContactId ?? null;
    const leadId = values.LeadId ?? null;
    if (contactId === null && leadId === null) {
      return [
        recordError('REQUIRED_FIELD_MISSING', 'Required fields are missing: [ContactId, LeadId]', [
          'ContactId',
          'LeadId',
        ]),
      ];
    }
    const errors: RecordError[] = [];
    const exists = (object: string, id: JsonValue | undefined) => typeof id === 'string' && data.get(object)!.has(id);
    if (campaignId !== undefined && campaignId !== null && !exists('Campaign', campaignId))
      errors.push(recordError('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', ['CampaignId']));
    if (contactId !== null && !exists('Contact', contactId))
      errors.push(recordError('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', ['ContactId']));
    if (leadId !== null && !exists('Lead', leadId))
      errors.push(recordError('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', ['LeadId']));
    const status = values.Status ?? null;
    if (status !== null && !CAMPAIGN_MEMBER_STATUSES.some((s) => s.toLowerCase() === String(status).toLowerCase())) {
      errors.push(
        recordError(
          'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST',
          `Status: bad value for restricted picklist field: ${String(status)}`,
          ['Status'],
        ),
      );
    }
    if (errors.length > 0) return errors;
    const member = contactId !== null ? { field: 'ContactId', id: contactId } : { field: 'LeadId', id: leadId };
    for (const other of members.values()) {
      if (other.CampaignId === campaignId && other[member.field] === member.id)
        return [recordError('DUPLICATE_VALUE', 'Already a campaign member.')];
    }
    return [];
  };

  const canonical = (object: FakeObject, values: Values): Values =>
    Object.fromEntries(Object.entries(values).map(([k, v]) => [fieldOf(object, k)!.name, v]));

  /** Creates or updates into `records` (a staging copy); returns the result. */
  const save = (object: FakeObject, records: Map<string, Values>, id: string | undefined, values: Values): Result => {
    const fields = canonical(object, values);
    const errors = validate(object, records, id, fields);
    if (errors.length > 0) return { id: null, success: false, errors };
    if (id === undefined) {
      const created = newId(object);
      const defaults: Values = { Id: created, CreatedDate: new Date().toISOString() };
      for (const f of object.fields) if (f.type === 'boolean' && f.defaultedOnCreate) defaults[f.name] = false;
      // A member without a status gets the campaign's default one.
      if (object === objects.CampaignMember) defaults.Status = CAMPAIGN_MEMBER_STATUSES[0];
      records.set(created, { ...defaults, ...fields });
      return { id: created, success: true, errors: [] };
    }
    records.set(id, { ...records.get(id), ...fields });
    return { id, success: true, errors: [] };
  };

  /** Checks a collections record's shape and fields; returns its values, deserialized. */
  const readRecord = (
    record: unknown,
    expectedType: string | undefined,
  ): { object: [string, FakeObject]; values: Values } => {
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new Refusal(400, 'JSON_PARSER_ERROR', 'Each record must be a JSON object');
    }
    const { attributes, ...rest } = record as Record<string, JsonValue>;
    const type =
      typeof attributes === 'object' && attributes !== null && !Array.isArray(attributes) ? attributes.type : undefined;
    if (typeof type !== 'string') {
      throw new Refusal(
        400,
        'INVALID_TYPE',
        'Must send a concrete entity type: each record needs attributes with a type',
      );
    }
    if (expectedType !== undefined && type.toLowerCase() !== expectedType.toLowerCase()) {
      throw new Refusal(400, 'INVALID_TYPE', `The records must all be of type ${expectedType}: found ${type}`);
    }
    const object = objectOf(type);
    if (!object) throw new Refusal(400, 'INVALID_TYPE', `sObject type '${type}' is not supported.`);
    const values: Values = {};
    for (const [name, value] of Object.entries(rest)) {
      const field = fieldOf(object[1], name);
      if (!field)
        throw new Refusal(400, 'INVALID_FIELD', `No such column '${name}' on sobject of type ${object[0]}`, [name]);
      values[field.name] = deserialize(field, value);
    }
    return { object, values };
  };

  const readCollection = (body: unknown): { allOrNone: boolean; records: unknown[] } => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new Refusal(400, 'JSON_PARSER_ERROR', 'The request body must be a JSON object with records');
    }
    const { allOrNone, records } = body as Record<string, unknown>;
    if (!Array.isArray(records)) throw new Refusal(400, 'JSON_PARSER_ERROR', 'records is required and must be a list');
    if (allOrNone !== undefined && typeof allOrNone !== 'boolean') {
      throw new Refusal(400, 'JSON_PARSER_ERROR', 'allOrNone must be true or false');
    }
    if (records.length > COLLECTION_MAX) {
      throw new Refusal(
        400,
        'EXCEEDED_ID_LIMIT',
        `record limit reached. cannot submit more than ${COLLECTION_MAX} records into this call`,
      );
    }
    return { allOrNone: allOrNone === true, records };
  };

  /** `allOrNone: true`: one failure rolls every record back. */
  const settle = (allOrNone: boolean, results: Result[], commit: () => void): Result[] => {
    if (allOrNone && results.some((r) => !r.success)) {
      return results.map((r) =>
        r.success
          ? {
              id: null,
              success: false,
              errors: [
                recordError(
                  'ALL_OR_NONE_OPERATION_ROLLED_BACK',
                  'Record rolled back because not all records were valid and the request was using AllOrNone header',
                ),
              ],
            }
          : r,
      );
    }
    commit();
    return results;
  };

  // ---------------------------------------------------------------- sObject Collections

  const upsertCollection = (objectName: string, fieldName: string, body: unknown): Result[] => {
    const object = objectOf(objectName);
    if (!object) throw new Refusal(404, 'NOT_FOUND', 'The requested resource does not exist');
    const extField = fieldOf(object[1], fieldName);
    if (!extField)
      throw new Refusal(400, 'INVALID_FIELD', `No such column '${fieldName}' on sobject of type ${object[0]}`);
    if (!extField.externalId && !extField.idLookup) {
      throw new Refusal(400, 'INVALID_FIELD', `Field ${extField.name} is not an external id field`);
    }
    if (extField.name === 'Id')
      throw new Refusal(
        400,
        'INVALID_FIELD',
        'Only external ids are supported: use the collections update to match on Id',
      );
    const { allOrNone, records } = readCollection(body);
    const read = records.map((r) => readRecord(r, object[0]));
    const staging = new Map([...data.get(object[0])!].map(([id, v]) => [id, { ...v }]));
    const seen = new Map<string, number>();
    for (const { values } of read) {
      const v = values[extField.name];
      if (v !== null && v !== undefined)
        seen.set(String(v).toLowerCase(), (seen.get(String(v).toLowerCase()) ?? 0) + 1);
    }
    const results = read.map(({ values }): Result => {
      if ('Id' in values)
        return {
          id: null,
          success: false,
          errors: [recordError('INVALID_FIELD', 'Id not allowed in an upsert by external id', ['Id'])],
        };
      const ext = values[extField.name];
      if (ext === null || ext === undefined) {
        return {
          id: null,
          success: false,
          errors: [recordError('MISSING_ARGUMENT', `${extField.name} not specified`, [extField.name])],
        };
      }
      if ((seen.get(String(ext).toLowerCase()) ?? 0) > 1) {
        return {
          id: null,
          success: false,
          errors: [
            recordError('DUPLICATE_EXTERNAL_ID', `Duplicate external id specified: ${String(ext)}`, [extField.name]),
          ],
        };
      }
      const matches = [...staging].filter(([, r]) => same(extField, r[extField.name], ext));
      if (matches.length > 1) {
        return {
          id: null,
          success: false,
          errors: [
            recordError(
              'DUPLICATE_EXTERNAL_ID',
              `${extField.name}: more than one record found for external id field: ${matches.map(([id]) => id).join(', ')}`,
              [extField.name],
            ),
          ],
        };
      }
      const existing = matches[0]?.[0];
      const { [extField.name]: _ext, ...rest } = values;
      const result = save(object[1], staging, existing, existing === undefined ? values : rest);
      return { ...result, created: result.success && existing === undefined };
    });
    return settle(allOrNone, results, () => data.set(object[0], staging));
  };

  const updateCollection = (body: unknown): Result[] => {
    const { allOrNone, records } = readCollection(body);
    const read = records.map((r) => readRecord(r, undefined));
    const staging = new Map(
      [...data].map(([name, rows]) => [name, new Map([...rows].map(([id, v]) => [id, { ...v }]))]),
    );
    const results = read.map(({ object, values }): Result => {
      const idKey = Object.keys(values).find((k) => k.toLowerCase() === 'id');
      const id = idKey === undefined ? undefined : values[idKey];
      if (typeof id !== 'string')
        return {
          id: null,
          success: false,
          errors: [recordError('MISSING_ARGUMENT', 'Id not specified in an update call', ['Id'])],
        };
      const rows = staging.get(object[0])!;
      if (!rows.has(id)) return { id: null, success: false, errors: [missingRecord(id)] };
      const { [idKey!]: _id, ...rest } = values;
      return save(object[1], rows, id, rest);
    });
    return settle(allOrNone, results, () => {
      for (const [name, rows] of staging) data.set(name, rows);
    });
  };

  const createCollection = (body: unknown): Result[] => {
    const { allOrNone, records } = readCollection(body);
    const read = records.map((r) => readRecord(r, undefined));
    const staging = new Map(
      [...data].map(([name, rows]) => [name, new Map([...rows].map(([id, v]) => [id, { ...v }]))]),
    );
    const results = read.map(({ object, values }): Result => {
      if (Object.keys(values).some((k) => k.toLowerCase() === 'id')) {
        return {
          id: null,
          success: false,
          errors: [recordError('INVALID_FIELD', 'cannot specify Id in an insert call', ['Id'])],
        };
      }
      return save(object[1], staging.get(object[0])!, undefined, values);
    });
    return settle(allOrNone, results, () => {
      for (const [name, rows] of staging) data.set(name, rows);
    });
  };

  const missingRecord = (id: string): RecordError =>
    !/^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$/.test(id)
      ? recordError('MALFORMED_ID', `malformed id ${id}`)
      : deleted.has(id)
        ? recordError('ENTITY_IS_DELETED', 'entity is deleted')
        : recordError('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id');

  const deleteCollection = (query: Record<string, string>): Result[] => {
    if (!query.ids) throw new Refusal(400, 'MISSING_ARGUMENT', 'ids is required');
    const ids = query.ids.split(',').filter(Boolean);
    if (ids.length > COLLECTION_MAX) {
      throw new Refusal(
        400,
        'EXCEEDED_ID_LIMIT',
        `record limit reached. cannot submit more than ${COLLECTION_MAX} records into this call`,
      );
    }
    const allOrNone = query.allOrNone === 'true';
    const results = ids.map((id): Result => {
      const owner = [...data.values()].find((rows) => rows.has(id));
      return owner ? { id, success: true, errors: [] } : { id: null, success: false, errors: [missingRecord(id)] };
    });
    return settle(allOrNone, results, () => {
      for (const id of ids) {
        for (const rows of data.values()) if (rows.delete(id)) deleted.add(id);
      }
    });
  };

  // ---------------------------------------------------------------- SOQL

  const parseLiterals = (list: string): JsonValue[] => {
    const values: JsonValue[] = [];
    const token = /\s*(?:'((?:[^'\\]|\\.)*)'|(-?\d+(?:\.\d+)?)|(null))\s*(,|$)/gy;
    let consumed = 0;
    for (let m = token.exec(list); m; m = token.exec(list)) {
      if (m[1] !== undefined)
        values.push(
          m[1].replace(/\\(.)/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t', b: '\b', f: '\f' })[c] ?? c),
        );
      else if (m[2] !== undefined) values.push(Number(m[2]));
      else values.push(null);
      consumed = token.lastIndex;
      if (m[4] === '') break;
    }
    if (consumed !== list.length)
      throw new Refusal(400, 'MALFORMED_QUERY', `unexpected token: ${list.slice(consumed, consumed + 20)}`);
    return values;
  };

  /** A WHERE clause's conditions joined by `AND` (outside quotes and parentheses). */
  const conjuncts = (where: string): string[] => {
    const parts: string[] = [];
    let depth = 0;
    let quoted = false;
    let start = 0;
    for (let i = 0; i < where.length; i++) {
      const c = where[i]!;
      if (quoted) {
        if (c === '\\') i++;
        else if (c === "'") quoted = false;
      } else if (c === "'") quoted = true;
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      else if (depth === 0 && /\s/.test(c)) {
        const and = /^\s+AND\s+/i.exec(where.slice(i));
        if (and) {
          parts.push(where.slice(start, i));
          i += and[0].length - 1;
          start = i + 1;
        }
      }
    }
    parts.push(where.slice(start));
    return parts.map((p) => p.trim());
  };

  const runQuery = (soql: string) => {
    const m = /^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?\s*$/is.exec(soql);
    if (!m) throw new Refusal(400, 'MALFORMED_QUERY', `unexpected token in: ${soql.slice(0, 80)}`);
    const object = objectOf(m[2]!);
    if (!object) throw new Refusal(400, 'INVALID_TYPE', `sObject type '${m[2]}' is not supported.`);
    const selected = m[1]!.split(',').map((s) => s.trim());
    const fields = selected.map((name) => {
      const field = fieldOf(object[1], name);
      if (!field) throw new Refusal(400, 'INVALID_FIELD', `No such column '${name}' on entity '${object[0]}'`);
      return field.name;
    });
    let rows = [...data.get(object[0])!.values()];
    for (const condition of m[3] ? conjuncts(m[3]) : []) {
      const c = /^(\w+)\s+(?:IN\s*\((.*)\)|=\s*(.+))$/is.exec(condition);
      if (!c) throw new Refusal(400, 'MALFORMED_QUERY', `unexpected token in: ${condition.slice(0, 80)}`);
      const where = fieldOf(object[1], c[1]!);
      if (!where) throw new Refusal(400, 'INVALID_FIELD', `No such column '${c[1]}' on entity '${object[0]}'`);
      const values = parseLiterals(c[2] ?? c[3] ?? '');
      for (const v of values) {
        if (STRING_TYPES.has(where.type) && typeof v === 'number') {
          throw new Refusal(
            400,
            'INVALID_FIELD',
            `value of filter criterion for field '${where.name}' must be of type string and should be enclosed in quotes`,
          );
        }
      }
      rows = rows.filter((r) => values.some((v) => same(where, r[where.name], v)));
    }
    return { object: object[0], fields, rows };
  };

  const queryPage = (object: string, fields: string[], rows: Values[], version: string) => {
    const page = rows.slice(0, pageSize);
    const rest = rows.slice(pageSize);
    const answer: Record<string, JsonValue> = {
      totalSize: rows.length,
      done: rest.length === 0,
      records: page.map((r) => ({
        attributes: { type: object, url: `/services/data/v${version}/sobjects/${object}/${String(r.Id)}` },
        ...Object.fromEntries(fields.map((f) => [f, r[f] ?? null])),
      })),
    };
    if (rest.length > 0) {
      const cursor = `01g5g00000${randomBytes(4).toString('hex')}-${pageSize}`;
      cursors.set(cursor, { object, rows: rest, fields });
      answer.nextRecordsUrl = `/services/data/v${version}/query/${cursor}`;
    }
    return answer;
  };

  // ---------------------------------------------------------------- Bulk API 2.0

  const jobInfo = (job: FakeJob, version: string) => ({
    id: job.id,
    operation: job.operation,
    object: job.object,
    createdById: USER_ID,
    createdDate: job.createdDate,
    systemModstamp: job.createdDate,
    state: job.state,
    ...(job.externalIdFieldName ? { externalIdFieldName: job.externalIdFieldName } : {}),
    concurrencyMode: 'Parallel',
    contentType: 'CSV',
    apiVersion: Number(version),
    jobType: 'V2Ingest',
    lineEnding: 'LF',
    columnDelimiter: 'COMMA',
    contentUrl: `services/data/v${version}/jobs/ingest/${job.id}/batches`,
    numberRecordsProcessed: job.successful.length + job.failed.length,
    numberRecordsFailed: job.failed.length,
    ...(job.errorMessage ? { errorMessage: job.errorMessage } : {}),
  });

  const processJob = (job: FakeJob) => {
    const [header = [], ...rows] = parseCsv(job.csv ?? '');
    job.header = header;
    const object = objectOf(job.object)!;
    const fields = header.map((name) => fieldOf(object[1], name));
    const unknown = header.find((_, i) => !fields[i]);
    if (unknown !== undefined) {
      job.state = 'Failed';
      job.errorMessage = `InvalidBatch : Field name not found : ${unknown}`;
      job.unprocessed = rows;
      return;
    }
    const records = data.get(object[0])!;
    const extField = job.externalIdFieldName ? fieldOf(object[1], job.externalIdFieldName) : undefined;
    for (const row of rows) {
      const values: Values = {};
      let error: RecordError | undefined;
      header.forEach((_, i) => {
        const cell = row[i] ?? '';
        if (cell === '' || error) return;
        const read = fromCsv(fields[i]!, cell);
        if (typeof read === 'object' && read !== null && 'statusCode' in read) error = read as RecordError;
        else values[fields[i]!.name] = read as JsonValue;
      });
      let result: Result;
      if (error) result = { id: null, success: false, errors: [error] };
      else if (job.operation === 'insert') result = { ...save(object[1], records, undefined, values), created: true };
      else {
        const ext = values[extField!.name];
        const matches = [...records].filter(([, r]) => same(extField!, r[extField!.name], ext));
        if (ext === null || ext === undefined) {
          result = {
            id: null,
            success: false,
            errors: [recordError('MISSING_ARGUMENT', `${extField!.name} not specified`, [extField!.name])],
          };
        } else if (matches.length > 1) {
          result = {
            id: null,
            success: false,
            errors: [
              recordError(
                'DUPLICATE_EXTERNAL_ID',
                `${extField!.name}: more than one record found for external id field`,
                [extField!.name],
              ),
            ],
          };
        } else {
          const existing = matches[0]?.[0];
          const { [extField!.name]: _ext, ...rest } = values;
          const saved = save(object[1], records, existing, existing === undefined ? values : rest);
          result = { ...saved, created: saved.success && existing === undefined };
        }
      }
      if (result.success) job.successful.push([result.id!, String(result.created === true), ...row]);
      else {
        const e = result.errors[0]!;
        job.failed.push(['', `${e.statusCode}:${e.message}:${e.fields.join(',')} --`, ...row]);
      }
    }
    job.state = 'JobComplete';
  };

  const jobResults = (job: FakeJob, kind: string): string => {
    if (!['JobComplete', 'Failed', 'Aborted'].includes(job.state)) {
      throw new Refusal(400, 'INVALIDJOBSTATE', `Job ${job.id} is not complete (${job.state})`);
    }
    if (kind === 'successfulResults') return toCsv(['sf__Id', 'sf__Created', ...job.header], job.successful);
    if (kind === 'failedResults') return toCsv(['sf__Id', 'sf__Error', ...job.header], job.failed);
    return toCsv(job.header, job.unprocessed);
  };

  // ---------------------------------------------------------------- OAuth

  const token = (form: URLSearchParams): [number, Record<string, string>] => {
    const refuse = (error: string, description: string): [number, Record<string, string>] => [
      400,
      { error, error_description: description },
    ];
    const grant = form.get('grant_type');
    if (!grant) return refuse('invalid_request', 'grant type is missing');
    if (grant === 'client_credentials') {
      if (options.genericLoginHost) return refuse('invalid_grant', 'request not supported on this domain');
      if (options.clientSecret === undefined) return refuse('invalid_grant', 'no client credentials user enabled');
      if (form.get('client_id') !== clientId) return refuse('invalid_client_id', 'client identifier invalid');
      if (form.get('client_secret') !== options.clientSecret)
        return refuse('invalid_client', 'invalid client credentials');
    } else if (grant === JWT_BEARER) {
      const problem = options.jwt
        ? checkAssertion(form.get('assertion') ?? '', clientId, { audience: url, ...options.jwt })
        : 'invalid assertion';
      if (problem) return refuse('invalid_grant', problem);
    } else {
      return refuse('unsupported_grant_type', 'grant type not supported');
    }
    if (revoked) return refuse('invalid_grant', 'authentication failure');
    const accessToken = `${ORG_ID}!AQ${randomBytes(24).toString('base64url')}`;
    tokens.add(accessToken);
    tokensIssued++;
    return [
      200,
      {
        access_token: accessToken,
        signature: randomBytes(32).toString('base64'),
        instance_url: url,
        id: `${url}/id/${ORG_ID}/${USER_ID}`,
        token_type: 'Bearer',
        issued_at: String(Date.now()),
      },
    ];
  };

  // ---------------------------------------------------------------- HTTP

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const lost = losing.get(res);
    if (lost) {
      // The work is done (committed) when the answer is sent: the answer is what gets lost.
      losing.delete(res);
      if (lost === 'drop') res.socket?.destroy();
      return;
    }
    const isText = typeof body === 'string';
    res.writeHead(status, {
      'content-type': isText ? 'text/csv; charset=UTF-8' : 'application/json;charset=UTF-8',
      ...headers,
    });
    res.end(body === undefined ? '' : isText ? body : JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, entry: FakeRequest, raw: string) => {
    const path = entry.path;
    const method = entry.method;
    if (path === '/services/oauth2/token') {
      if (method !== 'POST')
        return send(res, 405, { error: 'invalid_request', error_description: 'must use HTTP POST' });
      if (!(req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) {
        return send(res, 400, {
          error: 'invalid_request',
          error_description: 'must use application/x-www-form-urlencoded',
        });
      }
      const [status, body] = token(new URLSearchParams(raw));
      return send(res, status, body);
    }
    const m = /^\/services\/data\/v(\d+\.\d)(\/.*)?$/.exec(path);
    if (!m) return send(res, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    const write = method !== 'GET';
    if (write) writes.push(entry.at);
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!auth || !tokens.has(auth[1]!)) {
      return send(res, 401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    }
    usage++;
    const limitInfo = () => ({ 'sforce-limit-info': `api-usage=${Math.min(usage, dailyLimit)}/${dailyLimit}` });
    const throttled = write && throttle > 0 && throttleAfter-- <= 0;
    if (usage > dailyLimit || throttled) {
      if (usage <= dailyLimit) throttle--;
      return send(res, 403, [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }], {
        'sforce-limit-info': `api-usage=${dailyLimit}/${dailyLimit}`,
      });
    }
    // API_DISABLED_FOR_ORG: the org's edition has no API access or the user lacks "API Enabled".
    // The code is in the API's ExceptionCode list (Core Data Types Used in API Calls,
    // https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm);
    // REST's 403 "The request has been refused. Verify that the logged-in user has appropriate
    // permissions" (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
    // Inferred: the message text, as orgs report it.
    if (apiDisabled) {
      return send(
        res,
        403,
        [{ message: 'The REST API is not enabled for this Organization.', errorCode: 'API_DISABLED_FOR_ORG' }],
        limitInfo(),
      );
    }
    const version = m[1]!;
    if (Number(version) < API_VERSIONS.min || Number(version) > API_VERSIONS.max) {
      return send(
        res,
        404,
        [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }],
        limitInfo(),
      );
    }
    const rest = (m[2] ?? '/').replace(/\/+$/, '') || '/';
    const fault = faults.find((f) => (f.method ?? method) === method && (f.path?.test(rest) ?? true));
    if (fault) {
      losing.set(res, fault.mode);
      const left = (fault.times ?? 1) - 1;
      faults.splice(faults.indexOf(fault), 1, ...(left > 0 ? [{ ...fault, times: left }] : []));
    }
    const json = () => {
      if (!(req.headers['content-type'] ?? '').includes('application/json')) {
        throw new Refusal(415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json');
      }
      try {
        return JSON.parse(raw) as unknown;
      } catch (error) {
        throw new Refusal(400, 'JSON_PARSER_ERROR', `Unexpected character: ${(error as Error).message}`);
      }
    };
    try {
      const describeRoute = /^\/sobjects\/(\w+)\/describe$/.exec(rest);
      const cursorRoute = /^\/query\/([\w-]+)$/.exec(rest);
      const upsertRoute = /^\/composite\/sobjects\/(\w+)\/(\w+)$/.exec(rest);
      const jobRoute =
        /^\/jobs\/ingest\/(\w+)(?:\/(batches|successfulResults|failedResults|unprocessedrecords))?$/.exec(rest);
      if (method === 'GET' && rest === '/') {
        return send(
          res,
          200,
          { sobjects: `/services/data/v${version}/sobjects`, query: `/services/data/v${version}/query` },
          limitInfo(),
        );
      }
      if (method === 'GET' && describeRoute) {
        const object = objectOf(describeRoute[1]!);
        if (!object) throw new Refusal(404, 'NOT_FOUND', 'The requested resource does not exist');
        return send(res, 200, describe(object[0], object[1]), limitInfo());
      }
      if (method === 'GET' && rest === '/query') {
        const q = entry.query.q;
        if (!q) throw new Refusal(400, 'MALFORMED_QUERY', 'A query string has to be specified');
        const { object, fields, rows } = runQuery(q);
        return send(res, 200, queryPage(object, fields, rows, version), limitInfo());
      }
      if (method === 'GET' && cursorRoute) {
        const cursor = cursors.get(cursorRoute[1]!);
        if (!cursor) throw new Refusal(400, 'INVALID_QUERY_LOCATOR', 'invalid query locator');
        cursors.delete(cursorRoute[1]!);
        return send(res, 200, queryPage(cursor.object, cursor.fields, cursor.rows, version), limitInfo());
      }
      if (method === 'PATCH' && upsertRoute) {
        return send(res, 200, upsertCollection(upsertRoute[1]!, upsertRoute[2]!, json()), limitInfo());
      }
      if (rest === '/composite/sobjects') {
        if (method === 'PATCH') return send(res, 200, updateCollection(json()), limitInfo());
        if (method === 'POST') return send(res, 200, createCollection(json()), limitInfo());
        if (method === 'DELETE') return send(res, 200, deleteCollection(entry.query), limitInfo());
      }
      if (method === 'POST' && rest === '/jobs/ingest') return send(res, 200, createJob(json(), version), limitInfo());
      // Get All Jobs: every ingest job of the org, newest last; `done`/`nextRecordsUrl` paging.
      // https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/get_all_jobs.htm
      if (method === 'GET' && rest === '/jobs/ingest') {
        return send(
          res,
          200,
          { done: true, records: [...jobs.values()].map((job) => jobInfo(job, version)), nextRecordsUrl: null },
          limitInfo(),
        );
      }
      if (jobRoute) {
        const job = jobs.get(jobRoute[1]!);
        if (!job) throw new Refusal(404, 'NOT_FOUND', 'The requested resource does not exist');
        const part = jobRoute[2];
        if (method === 'PUT' && part === 'batches') {
          if (!(req.headers['content-type'] ?? '').includes('text/csv')) {
            throw new Refusal(400, 'INVALIDJOB', 'Content-Type must be text/csv');
          }
          if (job.state !== 'Open' || job.csv !== undefined) {
            throw new Refusal(400, 'INVALIDJOBSTATE', 'Job data can be uploaded once, while the job is Open');
          }
          job.csv = raw;
          return send(res, 201, undefined, limitInfo());
        }
        if (method === 'PATCH' && !part) return send(res, 200, changeJob(job, json(), version), limitInfo());
        if (method === 'GET' && !part) {
          if (
            (job.state === 'UploadComplete' || job.state === 'InProgress') &&
            Date.now() - job.closedAt >= (options.bulkProcessingMs ?? 0)
          ) {
            processJob(job);
          } else if (job.state === 'UploadComplete') job.state = 'InProgress';
          return send(res, 200, jobInfo(job, version), limitInfo());
        }
        if (method === 'GET' && part && part !== 'batches') return send(res, 200, jobResults(job, part), limitInfo());
      }
      throw new Refusal(404, 'NOT_FOUND', 'The requested resource does not exist');
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      return send(
        res,
        error.status,
        [{ message: error.message, errorCode: error.errorCode, ...(error.fields ? { fields: error.fields } : {}) }],
        limitInfo(),
      );
    }
  };

  const createJob = (body: unknown, version: string) => {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const object = typeof b.object === 'string' ? objectOf(b.object) : undefined;
    if (!object) throw new Refusal(400, 'INVALIDJOB', `InvalidJob : Unable to find object: ${String(b.object)}`);
    const operation = b.operation;
    if (operation !== 'upsert' && operation !== 'insert') {
      throw new Refusal(
        400,
        'INVALIDJOB',
        `InvalidJob : this fake runs upsert and insert jobs, not ${String(operation)}`,
      );
    }
    if (b.contentType !== undefined && b.contentType !== 'CSV')
      throw new Refusal(400, 'INVALIDJOB', 'InvalidJob : contentType must be CSV');
    if (b.lineEnding !== undefined && b.lineEnding !== 'LF')
      throw new Refusal(400, 'INVALIDJOB', 'InvalidJob : this fake reads LF line endings');
    let externalIdFieldName: string | undefined;
    if (operation === 'upsert') {
      const field = typeof b.externalIdFieldName === 'string' ? fieldOf(object[1], b.externalIdFieldName) : undefined;
      if (!field || (!field.externalId && !field.idLookup)) {
        throw new Refusal(
          400,
          'INVALIDJOB',
          `InvalidJob : External ID was blank for ${object[0]}. An External ID must be specified for upsert.`,
        );
      }
      externalIdFieldName = field.name;
    }
    const job: FakeJob = {
      id: `7505g0000${String(jobs.size + 1).padStart(6, '0')}AAA`.slice(0, 18),
      createdDate: new Date().toISOString().replace('Z', '+0000'),
      object: object[0],
      operation,
      externalIdFieldName,
      state: 'Open',
      csv: undefined,
      closedAt: 0,
      errorMessage: undefined,
      successful: [],
      failed: [],
      unprocessed: [],
      header: [],
    };
    jobs.set(job.id, job);
    return jobInfo(job, version);
  };

  const changeJob = (job: FakeJob, body: unknown, version: string) => {
    const state = (body as { state?: unknown } | null)?.state;
    if (state === 'Aborted') {
      if (['JobComplete', 'Failed', 'Aborted'].includes(job.state))
        throw new Refusal(400, 'INVALIDJOBSTATE', `Job is ${job.state}`);
      job.state = 'Aborted';
      job.unprocessed = parseCsv(job.csv ?? '').slice(1);
      return jobInfo(job, version);
    }
    if (state !== 'UploadComplete')
      throw new Refusal(400, 'INVALIDJOBSTATE', 'state must be UploadComplete or Aborted');
    if (job.state !== 'Open') throw new Refusal(400, 'INVALIDJOBSTATE', `Job is ${job.state}, not Open`);
    if (job.csv === undefined) {
      job.state = 'Failed';
      job.errorMessage = 'InvalidBatch : no data uploaded';
      return jobInfo(job, version);
    }
    job.state = 'UploadComplete';
    job.closedAt = Date.now();
    return jobInfo(job, version);
  };

  const describe = (name: string, object: FakeObject) => ({
    name,
    label: name.replace(/__c$/, '').replace(/_/g, ' '),
    custom: name.endsWith('__c'),
    keyPrefix: object.keyPrefix,
    createable: true,
    updateable: true,
    deletable: true,
    queryable: true,
    fields: object.fields.map((f) => ({
      name: f.name,
      label: f.name.replace(/__c$/, '').replace(/_/g, ' '),
      type: f.type,
      length: f.length ?? 0,
      nillable: f.nillable,
      createable: f.createable,
      updateable: f.updateable,
      externalId: f.externalId === true,
      idLookup: f.idLookup === true,
      unique: f.unique === true,
      custom: f.custom === true,
      defaultedOnCreate: f.defaultedOnCreate === true,
      filterable: true,
    })),
    urls: { sobject: `/services/data/v62.0/sobjects/${name}` },
  });

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const parsed = new URL(req.url ?? '/', 'http://fake');
      let body: unknown = raw;
      try {
        if (raw && (req.headers['content-type'] ?? '').includes('json')) body = JSON.parse(raw);
      } catch {
        body = raw;
      }
      const entry: FakeRequest = {
        method: req.method ?? 'GET',
        path: parsed.pathname,
        query: Object.fromEntries(parsed.searchParams),
        body,
        at: Date.now(),
        status: 0,
      };
      requests.push(entry);
      res.on('finish', () => {
        entry.status = res.statusCode;
      });
      handle(req, res, entry, raw).catch((error: unknown) => {
        send(res, 500, [{ errorCode: 'UNKNOWN_EXCEPTION', message: String(error) }]);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    jobs,
    get tokensIssued() {
      return tokensIssued;
    },
    stored(object) {
      const found = objectOf(object);
      const out = new Map<string, Readonly<Record<string, JsonValue>>>();
      if (!found) return out;
      const key = keyFieldOf(found[1]);
      for (const record of data.get(found[0])!.values()) {
        const value = record[key];
        if (value !== null && value !== undefined) out.set(String(value), record);
      }
      return out;
    },
    records(object) {
      const found = objectOf(object);
      return found ? data.get(found[0])! : new Map();
    },
    members(object) {
      const m = /^campaign:(\w+)$/.exec(object);
      if (!m || !data.get('Campaign')!.has(m[1]!)) throw new Error(`no campaign ${object} in the fake`);
      const emails = new Set<string>();
      for (const member of data.get('CampaignMember')!.values()) {
        if (member.CampaignId !== m[1]) continue;
        const person =
          typeof member.ContactId === 'string'
            ? data.get('Contact')!.get(member.ContactId)
            : typeof member.LeadId === 'string'
              ? data.get('Lead')!.get(member.LeadId)
              : undefined;
        if (typeof person?.Email === 'string') emails.add(person.Email.toLowerCase());
      }
      return emails;
    },
    seed(object, fields) {
      const found = objectOf(object);
      if (!found) throw new Error(`no object ${object} in the fake`);
      const id = newId(found[1]);
      data.get(found[0])!.set(id, { Id: id, ...canonical(found[1], fields) });
      return id;
    },
    writeTimes: () => [...writes],
    requestTimes: () => requests.map((r) => r.at),
    failAfterCommit(fault) {
      faults.push(fault);
    },
    disableApi(disabled = true) {
      apiDisabled = disabled;
    },
    throttleNext(n, after = 0) {
      throttle = n;
      throttleAfter = after;
    },
    revoke() {
      revoked = true;
      tokens.clear();
    },
    restore() {
      revoked = false;
    },
    expireSessions() {
      tokens.clear();
    },
    apiUsage: () => usage,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** Verifies a JWT bearer assertion the way the token endpoint documents; returns the refusal. */
function checkAssertion(
  assertion: string,
  clientId: string,
  jwt: { readonly publicKey: string; readonly username: string; readonly audience: string },
): string | undefined {
  const parts = assertion.split('.');
  if (parts.length !== 3) return 'invalid assertion';
  const [head, body, signature] = parts as [string, string, string];
  let header: { alg?: unknown };
  let claims: { iss?: unknown; sub?: unknown; aud?: unknown; exp?: unknown };
  try {
    header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return 'invalid assertion';
  }
  if (header.alg !== 'RS256') return 'invalid assertion: algorithm must be RS256';
  const signed = verify(
    'sha256',
    Buffer.from(`${head}.${body}`),
    createPublicKey(jwt.publicKey),
    Buffer.from(signature, 'base64url'),
  );
  if (!signed) return 'invalid assertion: signature does not match';
  if (claims.iss !== clientId) return 'client identifier invalid';
  if (claims.aud !== jwt.audience) return 'audience is invalid';
  if (claims.sub !== jwt.username) return "user hasn't approved this consumer";
  const now = Date.now() / 1000;
  // Three minutes of validity, plus Salesforce's three minutes of allowance for clock skew.
  if (typeof claims.exp !== 'number' || claims.exp < now - 180 || claims.exp > now + 360)
    return 'expired authorization code';
  return undefined;
}

function toCsv(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (v: string) => `"${v.replace(/"/g, '""')}"`;
  return `${[header, ...rows].map((r) => r.map(cell).join(',')).join('\n')}\n`;
}

/** RFC 4180, as Bulk API 2.0 reads it (comma, LF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}
