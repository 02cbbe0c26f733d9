import { ConnectorConfigError, RateLimitedError } from '#connectors/sdk/errors';
import { createHttpClient, type HttpRefusal, retryAfterMs } from '#connectors/sdk/http';
import type { JsonValue, RequestPace } from '#connectors/sdk/types';
import { LOCKOUT_MS } from './limits.ts';

/**
 * The Airtable Web API calls of the destination, on the shared HTTP client. Auth is a personal
 * access token, `Authorization: Bearer <token>`.
 * https://airtable.com/developers/web/api/authentication
 */

/** Airtable's error body: `{"error": {"type", "message"}}`, or `{"error": "NOT_FOUND"}`. */
export interface AirtableErrorBody {
  readonly error?: string | { readonly type?: string; readonly message?: string };
}

export interface AirtableRecord {
  readonly id: string;
  readonly createdTime?: string;
  readonly fields?: Readonly<Record<string, JsonValue>>;
}

/** A field of the base schema. https://airtable.com/developers/web/api/get-base-schema */
export interface AirtableField {
  readonly id: string;
  readonly name: string;
  readonly type: string;
  readonly options?: Readonly<Record<string, unknown>>;
}

export interface AirtableTable {
  readonly id: string;
  readonly name: string;
  readonly primaryFieldId?: string;
  readonly fields: readonly AirtableField[];
}

/** A write Airtable refused as a whole (422, 404…): nothing of it was written. */
export interface Refused {
  readonly status: number;
  readonly type: string;
  readonly message: string;
}

export type WriteAnswer =
  | { readonly kind: 'done'; readonly records: readonly AirtableRecord[]; readonly created?: readonly string[] }
  | { readonly kind: 'refused'; readonly refused: Refused };

export interface AirtableClientOptions {
  readonly baseUrl: string;
  readonly baseId: string;
  readonly accessToken: string;
  readonly typecast: boolean;
  readonly timeoutMs?: number;
  readonly pace?: RequestPace;
  readonly fetch?: typeof fetch;
}

export function errorOf(body: unknown, status: number): Refused {
  const error = (typeof body === 'object' && body !== null ? (body as AirtableErrorBody) : {}).error;
  if (typeof error === 'string') return { status, type: error, message: error };
  return { status, type: error?.type ?? `HTTP_${status}`, message: error?.message ?? '' };
}

/**
 * Airtable's refusals that mean something else than the defaults: a 429 locks the base out for
 * 30 seconds ("must wait 30 seconds before subsequent requests will succeed"): without
 * `Retry-After`, the records wait those 30 s. A 403 `INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND` is a
 * token without the scope or the access to the base (or a base that does not exist): a
 * configuration to fix, not a revoked token.
 * https://support.airtable.com/docs/managing-api-call-limits-in-airtable
 * https://support.airtable.com/docs/airtable-api-common-troubleshooting
 */
export function airtableRefusal(response: HttpRefusal): Error | undefined {
  if (response.status === 429) {
    const wait = retryAfterMs(response.headers, Date.now()) ?? LOCKOUT_MS;
    return new RateLimitedError(
      `Airtable rate limited the request (429: more than 5 requests a second to the base, or 50 a second for the token); retry after ${wait} ms`,
      wait,
    );
  }
  if (response.status === 403) {
    const error = errorOf(response.body, 403);
    if (error.type === 'INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND' || error.type === 'INVALID_PERMISSIONS') {
      return new ConnectorConfigError(
        `${response.where} answered 403 ${error.type}: give the token the scopes data.records:read, data.records:write and schema.bases:read, and access to the base (or check base_id)`,
      );
    }
  }
  return undefined;
}

export function createAirtableClient(options: AirtableClientOptions) {
  const http = createHttpClient({
    vendor: 'Airtable',
    baseUrl: options.baseUrl,
    headers: { authorization: `Bearer ${options.accessToken}` },
    secrets: [options.accessToken],
    timeoutMs: options.timeoutMs,
    pace: options.pace,
    fetch: options.fetch,
    refusal: airtableRefusal,
  });
  const base = encodeURIComponent(options.baseId);
  const tablePath = (table: string) => `/v0/${base}/${encodeURIComponent(table)}`;
  /** Write answers Airtable gives per request, for the caller to narrow down. */
  const WRITE_REFUSALS = [400, 404, 422] as const;

  const write = async (
    method: 'POST' | 'PATCH',
    table: string,
    body: Record<string, unknown>,
  ): Promise<WriteAnswer> => {
    const response = await http.request<{
      records?: AirtableRecord[];
      createdRecords?: string[];
    }>({
      method,
      path: tablePath(table),
      json: { ...body, typecast: options.typecast },
      accept: WRITE_REFUSALS,
    });
    if (response.status >= 400) return { kind: 'refused', refused: errorOf(response.body, response.status) };
    return {
      kind: 'done',
      records: response.body.records ?? [],
      ...(response.body.createdRecords && { created: response.body.createdRecords }),
    };
  };

  return {
    redact: http.redact,

    /**
     * The tables of the base with their fields: `GET /v0/meta/bases/{baseId}/tables`.
     * https://airtable.com/developers/web/api/get-base-schema
     */
    async tables(): Promise<AirtableTable[]> {
      const response = await http.request<{ tables?: AirtableTable[] }>({
        path: `/v0/meta/bases/${base}/tables`,
        accept: [404],
      });
      if (response.status === 404) {
        throw new ConnectorConfigError(`Airtable has no base ${options.baseId} (404): check base_id`);
      }
      return response.body.tables ?? [];
    },

    /**
     * Upsert: `PATCH /v0/{baseId}/{table}` with `performUpsert.fieldsToMergeOn` — "records
     * without an id … will be created if no match is found; updated if exactly one match is found";
     * the answer lists `createdRecords` and `updatedRecords`. Safe to send twice (the same merge
     * key finds the same record), as PATCH is.
     * https://airtable.com/developers/web/api/update-multiple-records
     */
    upsert(table: string, mergeOn: string, records: readonly Record<string, JsonValue>[]): Promise<WriteAnswer> {
      return write('PATCH', table, {
        performUpsert: { fieldsToMergeOn: [mergeOn] },
        records: records.map((fields) => ({ fields })),
      });
    },

    /** Update by record ID: `PATCH /v0/{baseId}/{table}`, fields left out are kept. */
    update(table: string, records: readonly { id: string; fields: Record<string, JsonValue> }[]): Promise<WriteAnswer> {
      return write('PATCH', table, { records });
    },

    /**
     * Create: `POST /v0/{baseId}/{table}`. Not idempotent: a create that may have landed comes
     * back UnconfirmedWriteError, and the caller looks the records up.
     * https://airtable.com/developers/web/api/create-records
     */
    create(table: string, records: readonly Record<string, JsonValue>[]): Promise<WriteAnswer> {
      return write('POST', table, { records: records.map((fields) => ({ fields })) });
    },

    /**
     * The records whose `field` is one of `values`: `GET /v0/{baseId}/{table}` with
     * `filterByFormula`, only the match field returned, following `offset` pages of 100.
     * https://airtable.com/developers/web/api/list-records
     */
    async find(table: string, field: string, values: readonly JsonValue[]): Promise<AirtableRecord[]> {
      const formula = `OR(${values.map((v) => `${fieldRef(field)}=${literal(v)}`).join(',')})`;
      const found: AirtableRecord[] = [];
      let offset: string | undefined;
      do {
        const response = await http.request<{ records?: AirtableRecord[]; offset?: string }>({
          path: `${tablePath(table)}?fields%5B%5D=${encodeURIComponent(field)}`,
          query: { filterByFormula: formula, pageSize: 100, offset },
          accept: [404, 422],
        });
        if (response.status >= 400) {
          const error = errorOf(response.body, response.status);
          throw new ConnectorConfigError(
            `Airtable refused the lookup of ${table} by ${field} (${response.status} ${error.type}: ${http.redact(error.message)})`,
          );
        }
        found.push(...(response.body.records ?? []));
        offset = response.body.offset;
      } while (offset);
      return found;
    },

    /**
     * `DELETE /v0/{baseId}/{table}?records[]=…`, at most 10 IDs; answered `{records: [{id,
     * deleted}]}`. https://airtable.com/developers/web/api/delete-multiple-records
     */
    async delete(table: string, ids: readonly string[]): Promise<WriteAnswer> {
      const query = ids.map((id) => `records%5B%5D=${encodeURIComponent(id)}`).join('&');
      const response = await http.request<{ records?: AirtableRecord[] }>({
        method: 'DELETE',
        path: `${tablePath(table)}?${query}`,
        accept: WRITE_REFUSALS,
      });
      if (response.status >= 400) return { kind: 'refused', refused: errorOf(response.body, response.status) };
      return { kind: 'done', records: response.body.records ?? [] };
    },
  };
}

export type AirtableClient = ReturnType<typeof createAirtableClient>;

/**
 * A field in a formula: `{Field name}`; a `}` in the name is escaped with a backslash. Inferred
 * from the formula reference (field names with special characters go in braces).
 * https://support.airtable.com/docs/formula-field-reference
 */
export function fieldRef(name: string): string {
  return `{${name.replaceAll('\\', '\\\\').replaceAll('}', '\\}')}}`;
}

/** A value in a formula: numbers as they are, anything else as a double-quoted string. */
export function literal(value: JsonValue): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}
