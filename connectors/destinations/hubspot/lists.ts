import {
  type FieldInfo,
  keepProgress,
  type OutboundRecord,
  type RecordOutcome,
  type WriteBatch,
} from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import type { BatchRefused, HubSpotClient, HubSpotList } from './client.ts';
import { problemsOf, reasonOf } from './errors.ts';
import { fieldTypeOf, isIdProperty, isWritable } from './fields.ts';
import { MAX_BATCH_INPUTS } from './limits.ts';
import { LIST_PREFIX } from './manifest.ts';
import {
  isolate,
  lookup,
  matchText,
  normalized,
  type Outcomes,
  type Target,
  throwIfConfigProblem,
  upsert,
} from './write.ts';

/**
 * Membership of a HubSpot list (now called a segment), the object `list:<listId>`: a membership
 * sync keeps a static list equal to a Backflow segment. The list is named by its ILS list ID ("The
 * ILS list ID is referenced when using the Exports API or the v3 Lists API … found by navigating
 * to a list and clicking Details", https://knowledge.hubspot.com/lists/lists-faq).
 *
 * - enter (op `upsert`): the contacts are looked up by the match property (`batch/read` with
 *   `idProperty`: `email` or a unique property), then added by record ID with
 *   `PUT /crm/v3/lists/{listId}/memberships/add`; adding a member again is ignored by HubSpot.
 *   A member without a contact is rejected ("no HubSpot contact with email …"), unless the option
 *   `create_missing_contacts` creates it first (`batch/upsert` by the match property).
 * - leave (op `delete`): the contacts are looked up (and the contact ID kept from the enter, when
 *   the state has it), then removed with `…/memberships/remove`; the contact itself stays. A member
 *   that is no contact, or no member, is left as it is: ok.
 * - Only `MANUAL` and `SNAPSHOT` lists take memberships ("This endpoint only works for lists that
 *   have a processingType of MANUAL or SNAPSHOT"); a `DYNAMIC` list's members are computed by
 *   HubSpot from its filters and is refused with a ConnectorConfigError before anything is sent.
 * https://developers.hubspot.com/docs/api-reference/latest/crm/lists/guide
 * https://developers.hubspot.com/docs/api-reference/legacy/crm/lists/memberships/add-to-list
 *
 * Every request is paced by the client. Each chunk of 100 (the `batch/read` maximum) is one part of
 * `keepProgress`: a rate limit on chunk k keeps chunks 1..k-1 and gives back the rest, throttled.
 */

/** The lists of one connection, read once each. */
export interface ListsContext {
  readonly client: HubSpotClient;
  /** Option `create_missing_contacts`. */
  readonly createMissingContacts: boolean;
  readonly lists: Map<string, Promise<HubSpotList>>;
}

/** Processing types whose memberships the API changes; `DYNAMIC` lists are HubSpot's to fill. */
const STATIC_TYPES = new Set(['MANUAL', 'SNAPSHOT']);
const CONTACTS_TYPE_ID = '0-1';
/** Requests one chunk may spend creating missing contacts (narrowing down refused upserts). */
const MAX_CREATE_ATTEMPTS = 10;

export function isListObject(object: string): boolean {
  return object.startsWith(LIST_PREFIX);
}

/** The list ID of `list:<id>`; a ConnectorConfigError when it is not one. */
export function listIdOf(object: string): string {
  const id = object.slice(LIST_PREFIX.length);
  if (!/^\d+$/.test(id)) {
    throw new ConnectorConfigError(
      `HubSpot object "${object}": name a list by its ILS list ID, a number (list:123) — in HubSpot, open the list and click Details`,
    );
  }
  return id;
}

/** The list, read once per connection; refused unless it is a static list of contacts. */
export function staticList(context: ListsContext, listId: string): Promise<HubSpotList> {
  let found = context.lists.get(listId);
  if (!found) {
    found = readList(context.client, listId);
    context.lists.set(listId, found);
    found.catch(() => context.lists.delete(listId));
  }
  return found;
}

async function readList(client: HubSpotClient, listId: string): Promise<HubSpotList> {
  const list = await client.list(listId);
  if (!list) {
    throw new ConnectorConfigError(
      `HubSpot has no list with ILS list ID ${listId} (list:${listId}): open the list in HubSpot and copy the ILS list ID from Details`,
    );
  }
  const named = `HubSpot list ${listId}${list.name ? ` ("${list.name}")` : ''}`;
  if (!STATIC_TYPES.has(list.processingType)) {
    throw new ConnectorConfigError(
      `${named} is ${list.processingType === 'DYNAMIC' ? 'an active (DYNAMIC) list: HubSpot computes its members from its filters' : `of processing type ${list.processingType}`}, so Backflow cannot add or remove members; sync to a static (MANUAL) list`,
    );
  }
  if (list.objectTypeId !== CONTACTS_TYPE_ID) {
    throw new ConnectorConfigError(
      `${named} holds records of object type ${list.objectTypeId}, not contacts (0-1): membership syncs write contact lists`,
    );
  }
  return list;
}

/** The fields of `list:<id>`: the contact properties a member can be matched on. */
export async function listFields(context: ListsContext, object: string): Promise<FieldInfo[]> {
  await staticList(context, listIdOf(object));
  const properties = await context.client.properties('contacts');
  return properties
    .filter((p) => isWritable(p) && isIdProperty('contacts', p))
    .map(
      (p): FieldInfo => ({
        name: p.name,
        type: fieldTypeOf(p),
        required: false,
        kind: p.hubspotDefined === true ? 'known' : 'custom',
        matchable: true,
      }),
    );
}

interface Part {
  readonly kind: 'enter' | 'leave';
  readonly records: readonly OutboundRecord[];
}

export async function writeMembership(context: ListsContext, batch: WriteBatch): Promise<RecordOutcome[]> {
  const listId = listIdOf(batch.object);
  await staticList(context, listId);
  const target: Target = {
    client: context.client,
    object: 'contacts',
    matchField: batch.matchField,
    progress: { written: false },
  };
  const outcomes: RecordOutcome[] = [];
  const entering: OutboundRecord[] = [];
  const leaving: OutboundRecord[] = [];
  const change = new Map<string, Part['kind']>();
  for (const record of batch.records) {
    const value = matchText(record.match);
    if (value === undefined) {
      outcomes.push({
        key: record.key,
        status: 'rejected',
        reason: `no ${batch.matchField} value: HubSpot finds the contact by it`,
        field: batch.matchField,
      });
      continue;
    }
    const kind = record.op === 'delete' ? 'leave' : 'enter';
    const contact = normalized(batch.matchField, value);
    const earlier = change.get(contact);
    if (earlier !== undefined && earlier !== kind) {
      // Two model rows on one contact, one entering and one leaving: the later goes in a later batch.
      outcomes.push({
        key: record.key,
        status: 'retry',
        reason: `another record of this batch ${earlier === 'enter' ? 'adds' : 'removes'} the contact with this ${batch.matchField}`,
      });
      continue;
    }
    change.set(contact, kind);
    (kind === 'enter' ? entering : leaving).push(record);
  }
  const parts: Part[] = [];
  for (let at = 0; at < entering.length; at += MAX_BATCH_INPUTS)
    parts.push({ kind: 'enter', records: entering.slice(at, at + MAX_BATCH_INPUTS) });
  for (let at = 0; at < leaving.length; at += MAX_BATCH_INPUTS)
    parts.push({ kind: 'leave', records: leaving.slice(at, at + MAX_BATCH_INPUTS) });
  outcomes.push(
    ...(await keepProgress(
      parts,
      (part) => part.records.map((r) => r.key),
      (part) =>
        part.kind === 'enter'
          ? enter(context, target, listId, batch.object, part.records)
          : leave(context, target, listId, batch.object, part.records),
    )),
  );
  return outcomes;
}

/** Contact IDs by record key, and the outcomes of the records whose contact could not be found. */
async function contactIds(
  target: Target,
  records: readonly OutboundRecord[],
): Promise<{ readonly ids: Map<string, string>; readonly absent: OutboundRecord[] } | { readonly retry: string }> {
  const found = await lookup(target, records);
  if ('refused' in found) {
    throwIfConfigProblem(target, found.refused);
    return { retry: `HubSpot refused the contact lookup: ${refusalReason(found.refused)}` };
  }
  const ids = new Map<string, string>();
  const absent: OutboundRecord[] = [];
  for (const record of records) {
    const id = found.ids.get(normalized(target.matchField, matchText(record.match)!));
    if (id === undefined) absent.push(record);
    else ids.set(record.key, id);
  }
  return { ids, absent };
}

async function enter(
  context: ListsContext,
  target: Target,
  listId: string,
  object: string,
  records: readonly OutboundRecord[],
): Promise<RecordOutcome[]> {
  const found = await contactIds(target, records);
  if ('retry' in found) return records.map((r) => ({ key: r.key, status: 'retry', reason: found.retry }));
  const { ids } = found;
  const outcomes: RecordOutcome[] = [];
  if (found.absent.length > 0 && !context.createMissingContacts) {
    for (const record of found.absent) {
      outcomes.push({
        key: record.key,
        status: 'rejected',
        reason: `no HubSpot contact with ${target.matchField} ${matchText(record.match)} (create_missing_contacts: true creates it)`,
        field: target.matchField,
      });
    }
  } else if (found.absent.length > 0) {
    // Upsert by the match property creates the contact (only that property set); the membership
    // carries identifiers, not contact properties, so none of its fields are written.
    const created: Outcomes = new Map();
    await isolate(
      target,
      found.absent.map((r) => ({ ...r, op: 'upsert', fields: {} })),
      (part) => upsert(target, part),
      { left: MAX_CREATE_ATTEMPTS },
      created,
    );
    for (const record of found.absent) {
      const result = created.get(record.key);
      if (result?.status === 'ok' && result.destinationId !== undefined) ids.set(record.key, result.destinationId);
      else if (result?.status === 'rejected')
        outcomes.push({ ...result, reason: `could not create the HubSpot contact: ${result.reason}` });
      else
        outcomes.push(
          result ?? { key: record.key, status: 'retry', reason: 'HubSpot returned no contact for this record' },
        );
    }
  }
  if (ids.size === 0) return outcomes;
  const answer = await context.client.memberships(listId, 'add', [...new Set(ids.values())]);
  if (answer.kind === 'refused') throw listRefused(object, answer);
  const added = new Set(answer.added);
  const missing = new Set(answer.missing);
  for (const [key, id] of ids) {
    if (missing.has(id)) {
      outcomes.push({
        key,
        status: 'retry',
        reason: `HubSpot contact ${id} no longer exists (deleted or merged since the lookup)`,
      });
    } else
      outcomes.push({ key, status: 'ok', destinationId: id, ...(added.has(id) && { action: 'created' as const }) });
  }
  return outcomes;
}

async function leave(
  context: ListsContext,
  target: Target,
  listId: string,
  object: string,
  records: readonly OutboundRecord[],
): Promise<RecordOutcome[]> {
  const found = await contactIds(target, records);
  if ('retry' in found) return records.map((r) => ({ key: r.key, status: 'retry', reason: found.retry }));
  // The contact this sync added (kept in the state) too: its email may have changed in HubSpot since.
  const remove = new Set(found.ids.values());
  for (const record of records)
    if (record.destinationId !== undefined && /^\d+$/.test(record.destinationId)) remove.add(record.destinationId);
  if (remove.size > 0) {
    const answer = await context.client.memberships(listId, 'remove', [...remove]);
    if (answer.kind === 'refused') throw listRefused(object, answer);
  }
  // Removed, not a member, or no such contact: the member is out of the list either way.
  return records.map((r) => {
    const id = found.ids.get(r.key) ?? r.destinationId;
    return { key: r.key, status: 'ok', action: 'deleted', ...(id !== undefined && { destinationId: id }) };
  });
}

/** A membership call refused as a whole: the list is gone, or cannot take memberships. */
function listRefused(object: string, refused: BatchRefused): ConnectorConfigError {
  return new ConnectorConfigError(
    `HubSpot refused the membership change of ${object} (${refused.status}: ${refusalReason(refused)}): the list must exist and be a static (MANUAL) list of contacts`,
  );
}

function refusalReason(refused: BatchRefused): string {
  return reasonOf(problemsOf(refused.error)[0]!, refused.error);
}
