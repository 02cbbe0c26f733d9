import type { OutboundRecord, RecordOutcome, WriteBatch } from '#connectors/sdk/destination';
import { ConnectorConfigError, RateLimitedError, TransientError } from '#connectors/sdk/errors';
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
 * `/users/delete` (50 per request). Throws only when nothing landed yet; once a request landed, a
 * throttled or failing later request leaves its records to be retried on their own.
 */
export async function writeUsers(client: BrazeClient, batch: WriteBatch): Promise<RecordOutcome[]> {
  objectOf(batch.object);
  const matchField = matchKeyOf(batch.matchField);
  checkFields(batch, matchField);
  const outcomes: (RecordOutcome | undefined)[] = batch.records.map(() => undefined);
  const tracks: { index: number; id: string }[] = [];
  const deletes: { index: number; id: string }[] = [];
  for (const [index, record] of batch.records.entries()) {
    const id = identifierOf(record, matchField);
    if (typeof id !== 'string') {
      outcomes[index] = { key: record.key, status: 'rejected', reason: id.problem, field: matchField };
    } else if (record.op === 'insert') {
      throw new ConnectorConfigError(
        'Braze cannot insert without updating (/users/track has no create-only mode): use mode upsert',
      );
    } else (record.op === 'delete' ? deletes : tracks).push({ index, id });
  }

  const requests: { indexes: number[]; send: () => Promise<void> }[] = [
    ...chunk(tracks, MAX_TRACK_OBJECTS).map((run) => ({
      indexes: run.map((t) => t.index),
      send: async () => {
        const records = run.map((t) => batch.records[t.index]!);
        const objects = run.map((t, i) => attributesObject(records[i]!, matchField, t.id));
        const answer = await client.track(objects);
        for (const [i, outcome] of trackOutcomes(records, objects, answer, client.redact).entries()) {
          outcomes[run[i]!.index] = outcome;
        }
      },
    })),
    ...chunk(deletes, MAX_DELETE_IDS).map((run) => ({
      indexes: run.map((d) => d.index),
      send: async () => {
        await client.deleteUsers(
          deleteRequest(
            run.map((d) => d.id),
            matchField,
          ),
        );
        for (const { index } of run) {
          outcomes[index] = { key: batch.records[index]!.key, status: 'ok', action: 'deleted' };
        }
      },
    })),
  ];

  let sent = 0;
  for (const [n, request] of requests.entries()) {
    try {
      await request.send();
      sent++;
    } catch (error) {
      // Nothing landed yet: the whole batch goes back. Once a request landed, only the rest waits.
      if (sent === 0 || !(error instanceof RateLimitedError || error instanceof TransientError)) throw error;
      const afterMs = error instanceof RateLimitedError ? error.retryAfterMs : undefined;
      for (const { indexes } of requests.slice(n)) {
        for (const index of indexes) {
          outcomes[index] = {
            key: batch.records[index]!.key,
            status: 'retry',
            reason: error.message,
            ...(afterMs !== undefined && { afterMs }),
          };
        }
      }
      break;
    }
  }
  return outcomes.map(
    (outcome, index) => outcome ?? { key: batch.records[index]!.key, status: 'retry', reason: 'not sent to Braze' },
  );
}

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
