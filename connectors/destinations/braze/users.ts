import { keepProgress, type OutboundRecord, type RecordOutcome, type WriteBatch } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import type { JsonValue } from '#connectors/sdk/types';
import type { AttributesObject, BrazeClient, BrazeObjectError, DeleteRequest, TrackAnswer } from './client.ts';
import { objectOf, RESERVED_KEYS } from './fields.ts';
import { MAX_DELETE_IDS, MAX_TRACK_OBJECTS } from './limits.ts';
import { MATCH_KEYS, type MatchKey } from './manifest.ts';

/**
 * How Backflow records become Braze user attributes objects and deletions, and how Braze's answers
 * become outcomes. https://www.braze.com/docs/api/objects_filters/user_attributes_object/
 */

/**
 * Which profile `/users/delete` removes when several share an email: one with an `external_id`
 * first, then the most recently updated, the same profile `/users/track` updates for that email.
 * https://www.braze.com/docs/api/endpoints/user_data/post_user_delete/#deleting-users-by-email-addresses-and-phone-numbers
 */
export const EMAIL_DELETE_PRIORITIZATION = ['identified', 'most_recently_updated'] as const;

/** How much of Braze's error text an outcome keeps. */
const REASON_CHARS = 500;

/** The identifier value of a record, or why it cannot identify a Braze user. */
export function identifierOf(record: OutboundRecord, matchField: MatchKey): string | { problem: string } {
  const { match } = record;
  if (match === null || match === '') return { problem: `missing ${matchField}: a Braze user needs one` };
  if (typeof match === 'number' && Number.isFinite(match) && matchField === 'external_id') return String(match);
  if (typeof match !== 'string') return { problem: `${matchField} must be text, got ${JSON.stringify(match)}` };
  return match;
}

/**
 * One attributes object: the identifier, `_update_existing_only: true` for `update` (Braze then
 * never creates a profile), and the mapped fields. A null clears the attribute ("To remove a
 * profile attribute, set it to null"); a field left out is left as it is.
 */
export function attributesObject(record: OutboundRecord, matchField: MatchKey, id: string): AttributesObject {
  const object: Record<string, JsonValue> = { [matchField]: id };
  if (record.op === 'update') object._update_existing_only = true;
  for (const [name, value] of Object.entries(record.fields)) object[name] = value;
  return object;
}

/** `/users/delete` for records matched on `matchField`: one kind of identifier per request. */
export function deleteRequest(ids: readonly string[], matchField: MatchKey): DeleteRequest {
  if (matchField === 'external_id') return { external_ids: ids };
  return { email_addresses: ids.map((email) => ({ email, prioritization: [...EMAIL_DELETE_PRIORITIZATION] })) };
}

/**
 * Outcomes of one `/users/track` request, by the index of each refused attributes object. With a
 * 2xx, "any data not affected by an error in the errors array will still be processed"; a 400 that
 * lists refused objects processed none, so the objects it does not list are retried.
 */
export function trackOutcomes(
  records: readonly OutboundRecord[],
  objects: readonly AttributesObject[],
  answer: TrackAnswer,
  redact: (text: string) => string,
): RecordOutcome[] {
  const byIndex = new Map<number, BrazeObjectError[]>();
  for (const error of answer.errors) {
    if (error.index === undefined || (error.input_array !== undefined && error.input_array !== 'attributes')) continue;
    byIndex.set(error.index, [...(byIndex.get(error.index) ?? []), error]);
  }
  const fatal = answer.status >= 400;
  return records.map((record, i): RecordOutcome => {
    const errors = byIndex.get(i);
    if (errors) {
      const reason = redact(errors.map((e) => e.type).join('; ')).slice(0, REASON_CHARS);
      const field = fieldOf(errors, objects[i] ?? {});
      return { key: record.key, status: 'rejected', reason, ...(field !== undefined && { field }) };
    }
    if (fatal) {
      return {
        key: record.key,
        status: 'retry',
        reason: `Braze processed no object of the request (${redact(answer.message).slice(0, 200)})`,
      };
    }
    return { key: record.key, status: 'ok' };
  });
}

/** The attribute an error names (`The value provided for the 'email' field is not a valid email.`). */
function fieldOf(errors: readonly BrazeObjectError[], object: AttributesObject): string | undefined {
  for (const error of errors) {
    for (const [, name] of error.type.matchAll(/[‘'"`]([A-Za-z0-9_$.-]+)[’'"`]/g)) {
      if (name !== undefined && name in object) return name;
    }
  }
  return undefined;
}

/** Splits a list into runs of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const runs: T[][] = [];
  for (let i = 0; i < items.length; i += size) runs.push(items.slice(i, i + size));
  return runs;
}

/**
 * Writes one batch: attributes objects through `/users/track` (75 per request), deletions through
 * `/users/delete` (50 per request), in that order. Throws only when the first request fails (nothing
 * landed yet); once a request landed, a throttled or failing later request leaves its records and
 * the following ones to be retried on their own (`keepProgress`), a rate limit without spending
 * their retry budget.
 */
export async function writeUsers(client: BrazeClient, batch: WriteBatch): Promise<RecordOutcome[]> {
  objectOf(batch.object);
  const matchField = matchKeyOf(batch.matchField);
  checkFields(batch, matchField);
  const refused: RecordOutcome[] = [];
  const tracks: { record: OutboundRecord; id: string }[] = [];
  const deletes: { record: OutboundRecord; id: string }[] = [];
  for (const record of batch.records) {
    const id = identifierOf(record, matchField);
    if (typeof id !== 'string') {
      refused.push({ key: record.key, status: 'rejected', reason: id.problem, field: matchField });
      continue;
    }
    if (record.op === 'insert') {
      throw new ConnectorConfigError(
        'Braze cannot insert without updating (/users/track has no create-only mode): use mode upsert',
      );
    }
    const operation = record.op === 'delete' ? undefined : operationField(record);
    if (operation) {
      refused.push({ key: record.key, status: 'rejected', reason: operation.reason, field: operation.field });
      continue;
    }
    (record.op === 'delete' ? deletes : tracks).push({ record, id });
  }

  type Part = { records: OutboundRecord[]; send: () => Promise<RecordOutcome[]> };
  const parts: Part[] = [
    ...chunk(tracks, MAX_TRACK_OBJECTS).map(
      (run): Part => ({
        records: run.map((t) => t.record),
        send: async () => {
          const records = run.map((t) => t.record);
          const objects = run.map((t) => attributesObject(t.record, matchField, t.id));
          return trackOutcomes(records, objects, await client.track(objects), client.redact);
        },
      }),
    ),
    ...chunk(deletes, MAX_DELETE_IDS).map(
      (run): Part => ({
        records: run.map((d) => d.record),
        send: async () => {
          await client.deleteUsers(
            deleteRequest(
              run.map((d) => d.id),
              matchField,
            ),
          );
          return run.map(({ record }): RecordOutcome => ({ key: record.key, status: 'ok', action: 'deleted' }));
        },
      }),
    ),
  ];
  const sent = await keepProgress(
    parts,
    (part) => part.records.map((r) => r.key),
    (part) => part.send(),
  );
  // In the batch's order.
  const byKey = new Map([...refused, ...sent].map((o) => [o.key, o]));
  return batch.records.map((r) => byKey.get(r.key) ?? { key: r.key, status: 'retry', reason: 'not sent to Braze' });
}

/**
 * A field whose value Braze would read as an operation on the stored value rather than as the
 * value: `{"inc": n}` on a number, `{"add": [...], "remove": [...]}` on an array, `$add`, `$update`,
 * `$remove` on an array of objects (https://www.braze.com/docs/api/objects_filters/user_attributes_object/).
 * Backflow syncs values: an operation would apply again on every change and every retry.
 */
export function operationField(record: OutboundRecord): { field: string; reason: string } | undefined {
  for (const [field, value] of Object.entries(record.fields)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
    const keys = Object.keys(value);
    if (keys.length > 0 && keys.every((k) => OPERATION_KEYS.has(k))) {
      return {
        field,
        reason: `${field}: an object of ${keys.map((k) => `"${k}"`).join(', ')} is a Braze operation on the stored value, not a value; Backflow syncs values (an operation would apply again on every retry)`,
      };
    }
  }
  return undefined;
}

const OPERATION_KEYS = new Set(['inc', 'add', 'remove', '$add', '$update', '$remove']);

/** The match key of a batch: Backflow identifies Braze users by `external_id` or `email`. */
function matchKeyOf(field: string): MatchKey {
  if ((MATCH_KEYS as readonly string[]).includes(field)) return field as MatchKey;
  throw new ConnectorConfigError(
    `Braze users are matched on ${MATCH_KEYS.join(' or ')}, not "${field}": set the sync's match to one of them`,
  );
}

/** Fields no mapping may set: they are identifiers or flags, and would change which user is written. */
function checkFields(batch: WriteBatch, matchField: MatchKey): void {
  for (const record of batch.records) {
    for (const name of Object.keys(record.fields)) {
      if (RESERVED_KEYS.has(name)) {
        throw new ConnectorConfigError(
          `"${name}" is a Braze identifier or flag, not an attribute: remove it from the sync's mappings`,
        );
      }
      if (matchField === 'email' && name === 'external_id') {
        throw new ConnectorConfigError(
          'a sync matched on email cannot map external_id: Braze would identify users by external_id instead; match on external_id',
        );
      }
    }
  }
}
