import {
  type FieldInfo,
  keepProgress,
  type OutboundRecord,
  type RecordOutcome,
  type WriteBatch,
} from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import type { KlaviyoClient } from './client.ts';
import { PROFILE_FIELDS } from './fields.ts';
import { LIST_PREFIX, MATCH_KEYS } from './manifest.ts';

/**
 * Membership of a Klaviyo list, the object `list:<list id>`: a membership sync keeps a list equal
 * to a Backflow segment.
 *
 * - Profiles are found by the match identifier with Get Profiles
 *   (`filter=any(email,[…])`, 100 a page: chunks of 100 records).
 * - enter (op `upsert`): `POST /api/lists/{id}/relationships/profiles`; a record with no profile
 *   is rejected ("no Klaviyo profile with email …": sync the profiles first with the `profiles`
 *   object).
 * - leave (op `delete`): `DELETE /api/lists/{id}/relationships/profiles`; the profile stays. A
 *   record with no profile is not in the list: ok.
 * https://developers.klaviyo.com/en/v2025-01-15/reference/add_profiles_to_list
 * https://developers.klaviyo.com/en/v2025-01-15/reference/remove_profiles_from_list
 *
 * Every request is paced by the client; each chunk is a part of `keepProgress`.
 */

export interface ListsContext {
  readonly client: KlaviyoClient;
  /** Lists checked once per connection. */
  readonly lists: Map<string, Promise<void>>;
}

/** Get Profiles' largest page: the most identifiers one lookup resolves. */
const LOOKUP_CHUNK = 100;

export function isListObject(object: string): boolean {
  return object.startsWith(LIST_PREFIX);
}

export function listIdOf(object: string): string {
  const id = object.slice(LIST_PREFIX.length);
  if (!/^[A-Za-z0-9]+$/.test(id)) {
    throw new ConnectorConfigError(
      `Klaviyo object "${object}": name a list by its id (list:Y6nRLr) — in Klaviyo, open the list: the id is in its URL and under Settings`,
    );
  }
  return id;
}

function existingList(context: ListsContext, id: string): Promise<void> {
  let found = context.lists.get(id);
  if (!found) {
    found = context.client.list(id).then((list) => {
      if (!list) throw new ConnectorConfigError(`Klaviyo has no list with id "${id}" (list:${id})`);
    });
    found.catch(() => context.lists.delete(id));
    context.lists.set(id, found);
  }
  return found;
}

export async function listFields(context: ListsContext, object: string): Promise<FieldInfo[]> {
  await existingList(context, listIdOf(object));
  return PROFILE_FIELDS.filter((f) => f.matchable);
}

export async function writeMembership(context: ListsContext, batch: WriteBatch): Promise<RecordOutcome[]> {
  const listId = listIdOf(batch.object);
  if (!(MATCH_KEYS as readonly string[]).includes(batch.matchField)) {
    throw new ConnectorConfigError(
      `Klaviyo list membership matches profiles on email, external_id or phone_number, not "${batch.matchField}"`,
    );
  }
  await existingList(context, listId);
  const outcomes: RecordOutcome[] = [];
  const valid: OutboundRecord[] = [];
  for (const record of batch.records) {
    if (typeof record.match !== 'string' || record.match === '') {
      outcomes.push({
        key: record.key,
        status: 'rejected',
        reason: `the match field ${batch.matchField} is empty`,
        field: batch.matchField,
      });
    } else valid.push(record);
  }
  const chunks: OutboundRecord[][] = [];
  for (let i = 0; i < valid.length; i += LOOKUP_CHUNK) chunks.push(valid.slice(i, i + LOOKUP_CHUNK));
  outcomes.push(
    ...(await keepProgress(
      chunks,
      (chunk) => chunk.map((r) => r.key),
      (chunk) => writeChunk(context, listId, batch.matchField, chunk),
    )),
  );
  return outcomes;
}

async function writeChunk(
  context: ListsContext,
  listId: string,
  matchField: string,
  records: readonly OutboundRecord[],
): Promise<RecordOutcome[]> {
  const values = [...new Set(records.map((r) => String(r.match)))];
  const found = await context.client.profileIds(matchField, values);
  // Klaviyo stores emails lower-cased (Inferred): look both ways.
  const lower = new Map([...found].map(([k, v]) => [k.toLowerCase(), v]));
  const idOf = (r: OutboundRecord) => found.get(String(r.match)) ?? lower.get(String(r.match).toLowerCase());
  const outcomes: RecordOutcome[] = [];
  const enter: { record: OutboundRecord; id: string }[] = [];
  const leave: { record: OutboundRecord; id: string }[] = [];
  for (const record of records) {
    const id = idOf(record);
    if (record.op === 'delete') {
      if (id) leave.push({ record, id });
      else outcomes.push({ key: record.key, status: 'ok', action: 'deleted' });
    } else if (id) enter.push({ record, id });
    else {
      outcomes.push({
        key: record.key,
        status: 'rejected',
        reason: `no Klaviyo profile with ${matchField} ${String(record.match)}: sync the profiles first (object "profiles")`,
        field: matchField,
      });
    }
  }
  // One add, then one remove: both are ≤ 100 ids, under the 1,000 a call.
  const parts = [
    { method: 'POST' as const, items: enter },
    { method: 'DELETE' as const, items: leave },
  ].filter((p) => p.items.length > 0);
  const written = await keepProgress(
    parts,
    (part) => part.items.map((i) => i.record.key),
    async (part) => {
      await context.client.membership(
        part.method,
        listId,
        part.items.map((i) => i.id),
      );
      return part.items.map(
        (i): RecordOutcome => ({
          key: i.record.key,
          status: 'ok',
          action: part.method === 'DELETE' ? 'deleted' : 'created',
          destinationId: i.id,
        }),
      );
    },
  );
  return [...outcomes, ...written];
}
