import { keepProgress, type OutboundRecord, type RecordOutcome, type WriteBatch } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import type { JsonValue } from '#connectors/sdk/types';
import { type BatchAnswer, batchBody, type CustomerioClient, describe, type PersonAction } from './client.ts';
import { objectOf, RESERVED_ATTRIBUTES } from './fields.ts';
import {
  MAX_ACTION_BYTES,
  MAX_ATTRIBUTE_NAME_BYTES,
  MAX_ATTRIBUTE_VALUE_BYTES,
  MAX_ATTRIBUTES,
  MAX_BATCH_BYTES,
  MAX_ID_BYTES,
} from './limits.ts';
import { MATCH_KEYS, type MatchKey } from './manifest.ts';

/**
 * How Backflow records become `/api/v2/batch` person actions, and how Customer.io's answers become
 * outcomes. https://docs.customer.io/integrations/api/track/#tag/track_v2/operation/batch
 */

/** How much of Customer.io's error text an outcome keeps. */
const REASON_CHARS = 500;
const bytes = (text: string) => Buffer.byteLength(text);

/** The identifier value of a record, or why it cannot identify a person. */
export function identifierOf(record: OutboundRecord, matchField: MatchKey): string | { problem: string } {
  const { match } = record;
  if (match === null || match === '') return { problem: `missing ${matchField}: a Customer.io person needs one` };
  let id: string;
  if (typeof match === 'number' && Number.isFinite(match) && matchField === 'id') id = String(match);
  else if (typeof match === 'string') id = match;
  else return { problem: `${matchField} must be text, got ${JSON.stringify(match)}` };
  if (bytes(id) > MAX_ID_BYTES) {
    return { problem: `${matchField} is ${bytes(id)} bytes: Customer.io takes at most ${MAX_ID_BYTES} bytes` };
  }
  return id;
}

/**
 * The person action of a record: `delete`, or `identify` with the mapped attributes (`"_update": true`
 * for update, so Customer.io never creates a person). A null is sent as null, which removes the
 * attribute; a field left out is left as it is.
 */
export function actionOf(record: OutboundRecord, matchField: MatchKey, id: string): PersonAction {
  const identifiers = { [matchField]: id };
  if (record.op === 'delete') return { type: 'person', identifiers, action: 'delete' };
  const attributes: Record<string, JsonValue> = { ...record.fields };
  if (record.op === 'update') attributes._update = true;
  return { type: 'person', identifiers, action: 'identify', attributes };
}

/** Why the documented customer limits refuse a record's attributes, if they do. */
export function attributeProblem(record: OutboundRecord): { field?: string; reason: string } | undefined {
  const names = Object.keys(record.fields);
  if (names.length > MAX_ATTRIBUTES) {
    return { reason: `${names.length} attributes: Customer.io takes at most ${MAX_ATTRIBUTES} per identify call` };
  }
  for (const name of names) {
    if (bytes(name) > MAX_ATTRIBUTE_NAME_BYTES) {
      return { field: name, reason: `attribute name is over ${MAX_ATTRIBUTE_NAME_BYTES} bytes` };
    }
    const value = record.fields[name];
    if (value === null || value === undefined) continue;
    const size = bytes(typeof value === 'string' ? value : JSON.stringify(value));
    if (size > MAX_ATTRIBUTE_VALUE_BYTES) {
      return {
        field: name,
        reason: `${name}: the value is ${size} bytes; Customer.io attribute values are at most ${MAX_ATTRIBUTE_VALUE_BYTES} bytes`,
      };
    }
  }
  return undefined;
}

/** Splits actions into runs whose `/api/v2/batch` body stays within `maxBytes`. */
export function splitByBytes<T extends { action: PersonAction }>(
  items: readonly T[],
  maxBytes = MAX_BATCH_BYTES,
): T[][] {
  const runs: T[][] = [];
  // `{"batch":[` + `]}`, and a comma between actions.
  const frame = bytes(batchBody([]));
  let run: T[] = [];
  let size = frame;
  for (const item of items) {
    const own = bytes(JSON.stringify(item.action));
    const added = own + (run.length > 0 ? 1 : 0);
    if (run.length > 0 && size + added > maxBytes) {
      runs.push(run);
      run = [];
      size = frame;
    }
    size += own + (run.length > 0 ? 1 : 0);
    run.push(item);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/**
 * Outcomes of one request: a 207's `errors` name the refused actions by `batch_index`; "all other
 * requests are accepted".
 */
export function batchOutcomes(
  records: readonly OutboundRecord[],
  answer: BatchAnswer,
  redact: (text: string) => string,
): RecordOutcome[] {
  const byIndex = new Map<number, BatchAnswer['errors'][number][]>();
  for (const error of answer.errors) {
    if (error.batch_index === undefined) continue;
    byIndex.set(error.batch_index, [...(byIndex.get(error.batch_index) ?? []), error]);
  }
  return records.map((record, i): RecordOutcome => {
    const errors = byIndex.get(i);
    if (errors) {
      const reason = redact(describe(errors)).slice(0, REASON_CHARS);
      const field = errors
        .map((e) => e.field?.replace(/^attributes\./, ''))
        .find((f) => f !== undefined && f in record.fields);
      return { key: record.key, status: 'rejected', reason, ...(field !== undefined && { field }) };
    }
    return record.op === 'delete'
      ? { key: record.key, status: 'ok', action: 'deleted' }
      : { key: record.key, status: 'ok' };
  });
}

/**
 * Writes one batch: identify and delete actions in the batch's order, in as many `/api/v2/batch`
 * requests as 500 KB allows. Throws only when the first request fails (nothing landed yet); once a
 * request landed, a throttled or failing later request leaves its records and the following ones
 * to be retried on their own (`keepProgress`), a rate limit without spending their retry budget.
 */
export async function writePeople(client: CustomerioClient, batch: WriteBatch): Promise<RecordOutcome[]> {
  objectOf(batch.object);
  const matchField = matchKeyOf(batch.matchField);
  checkFields(batch);
  const refused: RecordOutcome[] = [];
  const sendable: { record: OutboundRecord; action: PersonAction }[] = [];
  for (const record of batch.records) {
    if (record.op === 'insert') {
      throw new ConnectorConfigError(
        'Customer.io cannot insert without updating (identify has no create-only mode): use mode upsert',
      );
    }
    const id = identifierOf(record, matchField);
    if (typeof id !== 'string') {
      refused.push({ key: record.key, status: 'rejected', reason: id.problem, field: matchField });
      continue;
    }
    const problem = record.op === 'delete' ? undefined : attributeProblem(record);
    if (problem) {
      refused.push({ key: record.key, status: 'rejected', ...problem });
      continue;
    }
    const action = actionOf(record, matchField, id);
    const size = bytes(JSON.stringify(action));
    if (size > MAX_ACTION_BYTES) {
      refused.push({
        key: record.key,
        status: 'rejected',
        reason: `the person's action is ${size} bytes; Customer.io takes at most ${MAX_ACTION_BYTES} bytes per action in a batch`,
      });
      continue;
    }
    sendable.push({ record, action });
  }

  const parts = splitByBytes(sendable);
  const sent = await keepProgress(
    parts,
    (part) => part.map((p) => p.record.key),
    async (part) =>
      batchOutcomes(
        part.map((p) => p.record),
        await client.batch(part.map((p) => p.action)),
        client.redact,
      ),
  );
  const byKey = new Map([...refused, ...sent].map((o) => [o.key, o]));
  return batch.records.map(
    (r) => byKey.get(r.key) ?? { key: r.key, status: 'retry', reason: 'not sent to Customer.io' },
  );
}

/** The match key of a batch: Backflow identifies people by `id` or `email`. */
function matchKeyOf(field: string): MatchKey {
  if ((MATCH_KEYS as readonly string[]).includes(field)) return field as MatchKey;
  throw new ConnectorConfigError(
    `Customer.io people are matched on ${MATCH_KEYS.join(' or ')}, not "${field}": set the sync's match to one of them`,
  );
}

/** Fields no mapping may set: they are flags or identifiers Customer.io reads as such. */
function checkFields(batch: WriteBatch): void {
  for (const record of batch.records) {
    for (const name of Object.keys(record.fields)) {
      if (RESERVED_ATTRIBUTES.has(name)) {
        throw new ConnectorConfigError(
          `"${name}" is a Customer.io flag or identifier, not an attribute: remove it from the sync's mappings`,
        );
      }
    }
  }
}
