import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonValue } from '#connectors/sdk/types';
import type { VendorFake } from '../../conformance/suite.ts';

/**
 * A fake Airtable Web API for one base on 127.0.0.1 and a free port, written from Airtable's
 * documentation:
 *
 * - auth: `Authorization: Bearer <personal access token>`; a missing, wrong or revoked token is
 *   `401 {"error":{"type":"AUTHENTICATION_REQUIRED",…}}`; another base than the token's is
 *   `403 INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND`
 *   (https://support.airtable.com/docs/airtable-api-common-troubleshooting);
 * - the rate limit: 5 requests per second per base; over it, `429` and a 30-second lock-out during
 *   which every request is refused ("you will receive a 429 status code and must wait 30 seconds
 *   before subsequent requests will succeed",
 *   https://support.airtable.com/docs/managing-api-call-limits-in-airtable). Every request counts
 *   (reads, the schema, writes). Inferred: no `Retry-After` header (the page documents none), and
 *   the body `{"errors":[{"error":"RATE_LIMIT_REACHED","message":"Rate limit exceeded. Please try again later"}]}`;
 * - the base schema, `GET /v0/meta/bases/{baseId}/tables`
 *   (https://airtable.com/developers/web/api/get-base-schema), field types and cell values
 *   (https://airtable.com/developers/web/api/field-model);
 * - list records with `filterByFormula` (only `{field}=value` terms joined by `OR(…)`, what the
 *   connector sends; anything else is `422 INVALID_FILTER_BY_FORMULA`, Inferred), `fields[]`,
 *   `pageSize` (≤ 100) and `offset` (https://airtable.com/developers/web/api/list-records);
 * - create (`POST`), update and upsert (`PATCH`, `performUpsert.fieldsToMergeOn`, 1 to 3 fields;
 *   answered with `createdRecords` and `updatedRecords`), delete (`DELETE ?records[]=`): at most
 *   10 records a request (https://airtable.com/developers/web/api/create-records,
 *   https://airtable.com/developers/web/api/update-multiple-records,
 *   https://airtable.com/developers/web/api/delete-multiple-records). An upsert whose merge values
 *   match several records fails ("if multiple matches are found, the request will fail");
 * - values checked by field type; one bad value refuses the whole request with
 *   `422 INVALID_VALUE_FOR_COLUMN` ("Field \"x\" cannot accept the provided value") and nothing of
 *   it is stored; an unknown select option without `typecast` is `INVALID_MULTIPLE_CHOICE_OPTIONS`,
 *   with `typecast` it is created; an unknown field is `UNKNOWN_FIELD_NAME`; a computed field is
 *   refused; `null` clears a cell (an empty cell is left out of `fields`). Inferred: an email field
 *   refuses a value that is not an address (Airtable validates email cells), a record ID that does
 *   not exist is `422 ROW_DOES_NOT_EXIST`, more than 10 records is `422 INVALID_RECORDS`, a table
 *   not in the base is `404 TABLE_NOT_FOUND`.
 */

export interface FakeAirtableField {
  readonly id?: string;
  readonly name: string;
  readonly type: string;
  readonly options?: Record<string, unknown>;
}

export interface FakeAirtableTable {
  readonly id: string;
  readonly name: string;
  readonly fields: readonly FakeAirtableField[];
}

export interface AirtableFakeOptions {
  readonly token: string;
  readonly baseId?: string;
  readonly tables?: readonly FakeAirtableTable[];
  /** The field `stored()` keys records by. Default `email`. */
  readonly keyField?: string;
  /** Requests per rolling window per base. Default 5 a second. */
  readonly rate?: { readonly max: number; readonly ms: number };
  /** Lock-out after a 429. Default 30 s. */
  readonly lockoutMs?: number;
}

export interface AirtableFakeRequest {
  readonly method: string;
  readonly path: string;
  readonly at: number;
  readonly body?: unknown;
  status: number;
}

interface StoredRecord {
  readonly id: string;
  readonly createdTime: string;
  fields: Record<string, JsonValue>;
}

export interface AirtableFake extends VendorFake {
  readonly url: string;
  readonly baseId: string;
  readonly requests: readonly AirtableFakeRequest[];
  /** Every record of a table, in creation order. */
  records(table: string): readonly StoredRecord[];
  /** Adds a record directly (duplicates included). */
  seed(table: string, fields: Record<string, JsonValue>): string;
  /** Choices of a select field (with those typecast created). */
  choices(table: string, field: string): string[];
  /** Makes the next `n` POST/PATCH requests fail after applying them (answer 503). */
  failAfterApplying(n: number): void;
}

export const DEFAULT_TABLES: readonly FakeAirtableTable[] = [
  {
    id: 'tblCustomers00001',
    name: 'Customers',
    fields: [
      { name: 'email', type: 'email' },
      { name: 'firstname', type: 'singleLineText' },
      { name: 'lastname', type: 'singleLineText' },
      { name: 'plan', type: 'singleLineText' },
      { name: 'ltv', type: 'currency', options: { precision: 2, symbol: '$' } },
      { name: 'visits', type: 'number', options: { precision: 0 } },
      { name: 'signup', type: 'date', options: { dateFormat: { name: 'iso' } } },
      { name: 'last_seen', type: 'dateTime', options: { timeZone: 'utc' } },
      { name: 'active', type: 'checkbox' },
      { name: 'tier', type: 'singleSelect', options: { choices: [{ name: 'free' }, { name: 'pro' }] } },
      { name: 'tags', type: 'multipleSelects', options: { choices: [{ name: 'a' }, { name: 'b' }] } },
      { name: 'score', type: 'formula', options: { result: { type: 'number' } } },
      { name: 'created', type: 'createdTime' },
    ],
  },
];

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TEXT_TYPES = new Set(['singleLineText', 'multilineText', 'richText', 'phoneNumber', 'url', 'email']);
const NUMBER_TYPES = new Set(['number', 'currency', 'percent', 'rating', 'duration']);
const COMPUTED = new Set([
  'formula',
  'rollup',
  'count',
  'lookup',
  'multipleLookupValues',
  'autoNumber',
  'createdTime',
  'lastModifiedTime',
  'createdBy',
  'lastModifiedBy',
  'button',
  'externalSyncSource',
  'aiText',
]);
const MAX_RECORDS = 10;

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const newId = (prefix: string) =>
  prefix +
  randomBytes(14)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, 'x')
    .slice(0, 14);

export async function startAirtableFake(options: AirtableFakeOptions): Promise<AirtableFake> {
  const baseId = options.baseId ?? 'appBackflowTest01';
  const keyField = options.keyField ?? 'email';
  const rate = options.rate ?? { max: 5, ms: 1_000 };
  const lockoutMs = options.lockoutMs ?? 30_000;
  const tables = (options.tables ?? DEFAULT_TABLES).map((t) => ({
    id: t.id,
    name: t.name,
    fields: t.fields.map((f) => ({ ...f, id: f.id ?? newId('fld'), options: structuredClone(f.options) })),
    records: [] as StoredRecord[],
  }));
  type Table = (typeof tables)[number];
  const requests: AirtableFakeRequest[] = [];
  let revoked = false;
  let throttle = 0;
  let failApplied = 0;
  let lockedUntil = 0;

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const tableOf = (nameOrId: string): Table => {
    const table = tables.find((t) => t.id === nameOrId) ?? tables.find((t) => t.name === nameOrId);
    if (!table) throw new Refusal(404, 'TABLE_NOT_FOUND', `Could not find table ${nameOrId} in application ${baseId}`);
    return table;
  };
  const fieldOf = (table: Table, name: string) => {
    const field = table.fields.find((f) => f.name === name || f.id === name);
    if (!field) throw new Refusal(422, 'UNKNOWN_FIELD_NAME', `Unknown field name: "${name}"`);
    return field;
  };
  const cannot = (name: string) =>
    new Refusal(422, 'INVALID_VALUE_FOR_COLUMN', `Field "${name}" cannot accept the provided value`);

  /** A cell value for a field, checked by its type (and converted with typecast). */
  function cell(table: Table, name: string, value: unknown, typecast: boolean): JsonValue {
    const field = fieldOf(table, name);
    if (COMPUTED.has(field.type)) {
      throw new Refusal(
        422,
        'INVALID_VALUE_FOR_COLUMN',
        `Field "${field.name}" cannot accept a value because the field is computed`,
      );
    }
    if (value === null) return null;
    const choices = () => (field.options?.choices ?? []) as { name: string }[];
    const choose = (option: string) => {
      if (choices().some((c) => c.name === option)) return;
      if (!typecast) {
        throw new Refusal(
          422,
          'INVALID_MULTIPLE_CHOICE_OPTIONS',
          `Insufficient permissions to create new select option ""${option}""`,
        );
      }
      field.options = { ...field.options, choices: [...choices(), { name: option }] };
    };
    if (typecast && typeof value === 'number' && (TEXT_TYPES.has(field.type) || field.type === 'singleSelect')) {
      value = String(value);
    }
    if (typecast && typeof value === 'string' && NUMBER_TYPES.has(field.type) && value.trim() !== '') {
      value = Number(value);
    }
    switch (true) {
      case TEXT_TYPES.has(field.type):
        if (typeof value !== 'string') throw cannot(field.name);
        if (field.type === 'email' && value !== '' && !EMAIL.test(value)) throw cannot(field.name);
        return value === '' ? null : value;
      case NUMBER_TYPES.has(field.type):
        if (typeof value !== 'number' || !Number.isFinite(value)) throw cannot(field.name);
        return value;
      case field.type === 'checkbox':
        if (typeof value !== 'boolean') throw cannot(field.name);
        return value ? true : null;
      case field.type === 'date':
        if (typeof value !== 'string' || !DATE.test(value)) throw cannot(field.name);
        return value;
      case field.type === 'dateTime': {
        if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw cannot(field.name);
        return new Date(value).toISOString();
      }
      case field.type === 'singleSelect':
        if (typeof value !== 'string') throw cannot(field.name);
        choose(value);
        return value;
      case field.type === 'multipleSelects':
        if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw cannot(field.name);
        for (const v of value as string[]) choose(v);
        return value.length === 0 ? null : (value as string[]);
      default:
        return value as JsonValue;
    }
  }

  function apply(table: Table, record: StoredRecord, fields: Record<string, JsonValue>): void {
    for (const [name, value] of Object.entries(fields)) {
      const field = fieldOf(table, name);
      if (value === null) delete record.fields[field.name];
      else record.fields[field.name] = value;
    }
  }

  /** Checks every record's cells first: one bad value refuses the whole request. */
  function checked(table: Table, body: Record<string, unknown>): { id?: string; fields: Record<string, JsonValue> }[] {
    const records = body.records;
    if (!Array.isArray(records) || records.length === 0) {
      throw new Refusal(422, 'INVALID_REQUEST_MISSING_FIELDS', 'Could not find field "records" in the request body');
    }
    if (records.length > MAX_RECORDS) {
      throw new Refusal(
        422,
        'INVALID_RECORDS',
        `You can only create or update up to ${MAX_RECORDS} records per request`,
      );
    }
    const typecast = body.typecast === true;
    return records.map((r: { id?: unknown; fields?: unknown }) => {
      if (typeof r !== 'object' || r === null || typeof r.fields !== 'object' || r.fields === null) {
        throw new Refusal(422, 'INVALID_REQUEST_UNKNOWN', 'Invalid request: parameter validation failed');
      }
      const fields: Record<string, JsonValue> = {};
      for (const [name, value] of Object.entries(r.fields as Record<string, unknown>)) {
        fields[fieldOf(table, name).name] = cell(table, name, value, typecast);
      }
      return { ...(typeof r.id === 'string' && { id: r.id }), fields };
    });
  }

  const view = (record: StoredRecord, only?: readonly string[]) => ({
    id: record.id,
    createdTime: record.createdTime,
    fields: only
      ? Object.fromEntries(Object.entries(record.fields).filter(([name]) => only.includes(name)))
      : { ...record.fields },
  });
  const create = (table: Table, fields: Record<string, JsonValue>): StoredRecord => {
    const record: StoredRecord = {
      id: newId('rec'),
      createdTime: new Date(Math.floor(Date.now() / 1000) * 1000).toISOString(),
      fields: {},
    };
    apply(table, record, fields);
    table.records.push(record);
    return record;
  };
  const byId = (table: Table, id: string) => {
    const record = table.records.find((r) => r.id === id);
    if (!record) throw new Refusal(422, 'ROW_DOES_NOT_EXIST', `Record ID ${id} does not exist in this table`);
    return record;
  };

  /** `OR({f}="v",{f}=1)` or `{f}="v"`: the terms, else 422. */
  function filter(table: Table, formula: string): (r: StoredRecord) => boolean {
    const inner = /^OR\((.*)\)$/s.exec(formula)?.[1] ?? formula;
    const term = /\{((?:\\.|[^}\\])*)\}=("((?:\\.|[^"\\])*)"|-?\d+(?:\.\d+)?)\s*(,|$)/gy;
    const tests: { field: string; value: JsonValue }[] = [];
    let at = 0;
    while (at < inner.length) {
      term.lastIndex = at;
      const m = term.exec(inner);
      if (!m)
        throw new Refusal(422, 'INVALID_FILTER_BY_FORMULA', `The formula for filtering records is invalid: ${formula}`);
      const field = fieldOf(table, m[1]!.replace(/\\(.)/g, '$1')).name;
      const value = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : Number(m[2]);
      tests.push({ field, value });
      at = term.lastIndex;
    }
    return (r) =>
      tests.some((t) => {
        const stored = r.fields[t.field];
        if (stored === undefined) return t.value === '';
        return typeof t.value === 'number' ? stored === t.value : String(stored) === t.value;
      });
  }

  async function readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new Refusal(400, 'INVALID_REQUEST_BODY', 'Could not parse request body');
    }
  }

  function route(method: string, url: URL, body: unknown): { status: number; body: unknown } {
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] !== 'v0') throw new Refusal(404, 'NOT_FOUND', 'Could not find what you are looking for');
    if (parts[1] === 'meta' && parts[2] === 'bases' && parts[4] === 'tables' && method === 'GET') {
      if (parts[3] !== baseId)
        throw new Refusal(
          403,
          'INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND',
          'Invalid permissions, or the requested model was not found.',
        );
      return {
        status: 200,
        body: {
          tables: tables.map((t) => ({ id: t.id, name: t.name, primaryFieldId: t.fields[0]!.id, fields: t.fields })),
        },
      };
    }
    if (parts.length !== 3) throw new Refusal(404, 'NOT_FOUND', 'Could not find what you are looking for');
    if (parts[1] !== baseId)
      throw new Refusal(
        403,
        'INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND',
        'Invalid permissions, or the requested model was not found.',
      );
    const table = tableOf(parts[2]!);
    const input = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    switch (method) {
      case 'GET': {
        const formula = url.searchParams.get('filterByFormula');
        const only = url.searchParams.getAll('fields[]');
        const pageSize = Number(url.searchParams.get('pageSize') ?? 100);
        if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) {
          throw new Refusal(422, 'INVALID_PAGE_SIZE', 'pageSize must be between 1 and 100');
        }
        const matches = formula ? table.records.filter(filter(table, formula)) : table.records;
        const offset = Number(url.searchParams.get('offset') ?? 0);
        const page = matches.slice(offset, offset + pageSize);
        return {
          status: 200,
          body: {
            records: page.map((r) => view(r, only.length > 0 ? only : undefined)),
            ...(offset + pageSize < matches.length && { offset: String(offset + pageSize) }),
          },
        };
      }
      case 'POST': {
        const records = checked(table, input);
        return { status: 200, body: { records: records.map((r) => view(create(table, r.fields))) } };
      }
      case 'PATCH':
      case 'PUT': {
        const records = checked(table, input);
        const upsert = input.performUpsert as { fieldsToMergeOn?: unknown } | undefined;
        if (!upsert) {
          // Check every ID before changing anything.
          const targets = records.map((r) => {
            if (!r.id) throw new Refusal(422, 'INVALID_RECORDS', 'Each record needs an id, or use performUpsert');
            return byId(table, r.id);
          });
          for (const [i, t] of targets.entries()) apply(table, t, records[i]!.fields);
          return { status: 200, body: { records: targets.map((t) => view(t)) } };
        }
        const mergeOn = upsert.fieldsToMergeOn;
        if (!Array.isArray(mergeOn) || mergeOn.length < 1 || mergeOn.length > 3) {
          throw new Refusal(422, 'INVALID_REQUEST_UNKNOWN', 'fieldsToMergeOn must list 1 to 3 fields');
        }
        const merge = mergeOn.map((name) => fieldOf(table, String(name)).name);
        const keyOf = (fields: Record<string, JsonValue>) => JSON.stringify(merge.map((m) => fields[m] ?? null));
        const seen = new Set<string>();
        const plan = records.map((r) => {
          if (r.id) throw new Refusal(422, 'INVALID_RECORDS', 'Records to upsert must not have an id');
          for (const m of merge) {
            if (r.fields[m] === undefined || r.fields[m] === null) {
              throw new Refusal(422, 'INVALID_RECORDS', `Each record must have a value for field "${m}"`);
            }
          }
          const key = keyOf(r.fields);
          if (seen.has(key))
            throw new Refusal(422, 'INVALID_RECORDS', 'Records to upsert must have unique merge values');
          seen.add(key);
          const existing = table.records.filter((s) => keyOf(s.fields) === key);
          if (existing.length > 1) {
            throw new Refusal(
              422,
              'INVALID_RECORDS',
              `Multiple records match the fields to merge on (${merge.join(', ')})`,
            );
          }
          return { fields: r.fields, existing: existing[0] };
        });
        const created: string[] = [];
        const updated: string[] = [];
        const out = plan.map((p) => {
          if (p.existing) {
            apply(table, p.existing, p.fields);
            updated.push(p.existing.id);
            return view(p.existing);
          }
          const record = create(table, p.fields);
          created.push(record.id);
          return view(record);
        });
        return { status: 200, body: { records: out, createdRecords: created, updatedRecords: updated } };
      }
      case 'DELETE': {
        const ids = url.searchParams.getAll('records[]');
        if (ids.length === 0 || ids.length > MAX_RECORDS) {
          throw new Refusal(422, 'INVALID_RECORDS', `Delete between 1 and ${MAX_RECORDS} records per request`);
        }
        for (const id of ids) byId(table, id);
        table.records = table.records.filter((r) => !ids.includes(r.id));
        return { status: 200, body: { records: ids.map((id) => ({ id, deleted: true })) } };
      }
      default:
        throw new Refusal(404, 'NOT_FOUND', 'Could not find what you are looking for');
    }
  }

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const method = req.method ?? 'GET';
      const entry: AirtableFakeRequest = { method, path: url.pathname + url.search, at: Date.now(), status: 0 };
      requests.push(entry);
      const answer = (status: number, body: unknown) => {
        entry.status = status;
        send(res, status, body);
      };
      try {
        const body = await readBody(req);
        (entry as { body?: unknown }).body = body;
        const auth = req.headers.authorization ?? '';
        if (revoked || auth !== `Bearer ${options.token}`) {
          return answer(401, { error: { type: 'AUTHENTICATION_REQUIRED', message: 'Authentication required' } });
        }
        const now = entry.at;
        const recent = requests.filter((r) => r !== entry && r.at > now - rate.ms && r.status !== 401).length + 1;
        const isWrite = method !== 'GET';
        if (now < lockedUntil || recent > rate.max || (isWrite && throttle > 0)) {
          if (isWrite && throttle > 0) throttle--;
          else if (now >= lockedUntil) lockedUntil = now + lockoutMs;
          return answer(429, {
            errors: [{ error: 'RATE_LIMIT_REACHED', message: 'Rate limit exceeded. Please try again later' }],
          });
        }
        const result = route(method, url, body);
        if ((method === 'POST' || method === 'PATCH') && failApplied > 0) {
          failApplied--;
          return answer(503, { error: { type: 'SERVICE_UNAVAILABLE', message: 'Service unavailable' } });
        }
        return answer(result.status, result.body);
      } catch (error) {
        if (error instanceof Refusal)
          return answer(error.status, { error: { type: error.type, message: error.message } });
        return answer(500, { error: { type: 'SERVER_ERROR', message: String(error) } });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const tableNamed = (name: string) => tables.find((t) => t.id === name || t.name === name)!;

  return {
    url: `http://127.0.0.1:${port}`,
    baseId,
    requests,
    stored(object) {
      const map = new Map<string, Readonly<Record<string, JsonValue>>>();
      for (const r of tableNamed(object)?.records ?? []) {
        const key = r.fields[keyField];
        if (key !== undefined && key !== null) map.set(String(key), r.fields);
      }
      return map;
    },
    records: (table) => tableNamed(table).records,
    seed: (table, fields) => create(tableNamed(table), fields).id,
    choices: (table, field) =>
      ((tableNamed(table).fields.find((f) => f.name === field)?.options?.choices ?? []) as { name: string }[]).map(
        (c) => c.name,
      ),
    failAfterApplying(n) {
      failApplied = n;
    },
    writeTimes: () => requests.filter((r) => r.method !== 'GET').map((r) => r.at),
    requestTimes: () => requests.filter((r) => r.status !== 401).map((r) => r.at),
    throttleNext(n) {
      throttle = n;
    },
    revoke() {
      revoked = true;
    },
    restore() {
      revoked = false;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
