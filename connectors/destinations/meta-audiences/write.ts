import { keepProgress, type OutboundRecord, type RecordOutcome, type WriteBatch } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import {
  type IdentifierKind,
  isSha256Hex,
  metaDateOfBirth,
  normalizeIdentifier,
  sha256Hex,
} from '#connectors/sdk/identifiers';
import type { JsonValue } from '#connectors/sdk/types';
import type { MetaClient, UsersPayload } from './client.ts';
import { AUDIENCE_OBJECT, META_IDENTIFIER_FIELDS } from './manifest.ts';

/**
 * Meta's multi-key schema names, in the order the connector sends them
 * (https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#multikey;
 * the SDK's CustomAudience.Schema.MultiKeySchema).
 */
const KEY_ORDER = [
  'EMAIL',
  'PHONE',
  'FN',
  'LN',
  'CT',
  'ST',
  'ZIP',
  'COUNTRY',
  'DOBY',
  'DOBM',
  'DOBD',
  'GEN',
  'EXTERN_ID',
];

const SCHEMA_KEY: Record<Exclude<IdentifierKind, 'date_of_birth'>, string> = {
  email: 'EMAIL',
  phone: 'PHONE',
  first_name: 'FN',
  last_name: 'LN',
  city: 'CT',
  state: 'ST',
  zip: 'ZIP',
  postal_code: 'ZIP',
  country: 'COUNTRY',
  gender: 'GEN',
  external_id: 'EXTERN_ID',
};

/** The audience id of a membership object `audience:<id>`. */
export function audienceId(object: string): string {
  const match = AUDIENCE_OBJECT.exec(object);
  if (!match) {
    throw new ConnectorConfigError(
      `Meta Custom Audiences writes to objects named audience:<custom_audience_id> (digits), not "${object}"`,
    );
  }
  return match[1]!;
}

const KNOWN = new Set<string>([...META_IDENTIFIER_FIELDS, 'postal_code']);

/** One person's row: schema key → the value Meta gets (a SHA-256, or EXTERN_ID as it is). */
type Row = Map<string, string>;

/**
 * A record's identifiers as Meta's keys and hashed values; or the reason it cannot be sent, which
 * names the field and never quotes its value.
 */
export function rowOf(record: OutboundRecord, matchField: string): { row: Row } | { reason: string; field: string } {
  const values: [string, JsonValue | undefined][] = [[matchField, record.match], ...Object.entries(record.fields)];
  const row: Row = new Map();
  for (const [field, value] of values) {
    if (value === null || value === undefined || value === '') continue;
    if (typeof value !== 'string' && typeof value !== 'number') return { reason: `${field} is not text`, field };
    const text = String(value);
    const kind = field as IdentifierKind;
    if (kind === 'date_of_birth') {
      const dob = metaDateOfBirth(text);
      if (!dob.ok) return { reason: dob.reason, field };
      row.set('DOBY', sha256Hex(dob.year));
      row.set('DOBM', sha256Hex(dob.month));
      row.set('DOBD', sha256Hex(dob.day));
      continue;
    }
    const key = SCHEMA_KEY[kind];
    if (kind === 'external_id') {
      // EXTERN_ID is sent as it is (never hashed by Meta's SDK); an id already hashed stays so.
      const normalized = normalizeIdentifier(kind, text, 'meta');
      if (!normalized.ok) return { reason: normalized.reason, field };
      row.set(key, normalized.value);
      continue;
    }
    // A value the mapping already hashed (`hash:`) is sent as it is.
    if (isSha256Hex(text)) {
      row.set(key, text.trim().toLowerCase());
      continue;
    }
    const normalized = normalizeIdentifier(kind, text, 'meta');
    if (!normalized.ok) return { reason: normalized.reason, field };
    row.set(key, sha256Hex(normalized.value));
  }
  if (row.size === 0)
    return { reason: `no identifier: ${matchField} and the other identifier fields are empty`, field: matchField };
  return { row };
}

interface Part {
  readonly method: 'POST' | 'DELETE';
  readonly schema: readonly string[];
  readonly keys: string[];
  readonly data: string[][];
}

/**
 * Writes one batch: entered members (`upsert`) are added, members that left (`delete`) removed.
 * Records are grouped by operation and by the keys they carry — every row of a request has a
 * value for every key of its schema — and sent in requests of at most `rowsPerRequest` rows. A
 * request that fails after others were sent keeps their outcomes (keepProgress).
 */
export async function writeBatch(
  client: MetaClient,
  batch: WriteBatch,
  rowsPerRequest: number,
): Promise<RecordOutcome[]> {
  const audience = audienceId(batch.object);
  for (const field of [batch.matchField, ...new Set(batch.records.flatMap((r) => Object.keys(r.fields)))]) {
    if (!KNOWN.has(field)) {
      throw new ConnectorConfigError(
        `Meta Custom Audiences takes the identifier fields ${META_IDENTIFIER_FIELDS.join(', ')}; "${field}" is none of them: map the column to one of these names`,
      );
    }
  }
  const rejected: RecordOutcome[] = [];
  const groups = new Map<string, Part>();
  const parts: Part[] = [];
  for (const record of batch.records) {
    if (record.op !== 'upsert' && record.op !== 'delete') {
      rejected.push({
        key: record.key,
        status: 'rejected',
        reason: `Meta Custom Audiences cannot ${record.op}: only upsert (add) and delete (remove)`,
      });
      continue;
    }
    const result = rowOf(record, batch.matchField);
    if ('reason' in result) {
      rejected.push({ key: record.key, status: 'rejected', reason: result.reason, field: result.field });
      continue;
    }
    const schema = KEY_ORDER.filter((k) => result.row.has(k));
    const method = record.op === 'delete' ? 'DELETE' : 'POST';
    const id = `${method} ${schema.join(',')}`;
    let part = groups.get(id);
    if (!part || part.data.length >= rowsPerRequest) {
      part = { method, schema, keys: [], data: [] };
      groups.set(id, part);
      parts.push(part);
    }
    part.keys.push(record.key);
    part.data.push(schema.map((k) => result.row.get(k)!));
  }
  if (parts.length === 0) return rejected;
  const written = await keepProgress(
    parts,
    (part) => part.keys,
    async (part) => {
      const payload: UsersPayload = { schema: part.schema, data: part.data };
      await client.users(part.method, audience, payload);
      const action = part.method === 'POST' ? 'created' : 'deleted';
      return part.keys.map((key) => ({ key, status: 'ok' as const, action }));
    },
  );
  return [...written, ...rejected];
}
