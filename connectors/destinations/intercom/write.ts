import {
  keepProgress,
  type OutboundRecord,
  type RecordOutcome,
  unfinished,
  type WriteBatch,
} from '#connectors/sdk/destination';
import {
  AuthError,
  BackflowError,
  ConnectorConfigError,
  errorMessage,
  TransientError,
  UnconfirmedWriteError,
} from '#connectors/sdk/errors';
import { HttpError } from '#connectors/sdk/http';
import type { JsonValue } from '#connectors/sdk/types';
import {
  type ContactAnswer,
  conflictOf,
  describeProblems,
  type IntercomClient,
  type IntercomContact,
} from './client.ts';
import { CUSTOM_PREFIX, STANDARD_FIELDS } from './fields.ts';
import { SEARCH_CHUNK } from './limits.ts';
import { MATCH_FIELDS, type MatchField } from './manifest.ts';

export interface WriteSettings {
  /** `role` of the contacts Backflow creates. */
  readonly role: 'user' | 'lead';
  /** One-contact calls in flight at once within a batch. */
  readonly concurrency: number;
}

/** A record to write, with its match value as text. */
interface Pending {
  readonly record: OutboundRecord;
  readonly match: string;
}

/**
 * Writes a batch of contacts. Intercom has no bulk contact upsert, so each group of 15 records
 * costs one search to find the existing contacts by `external_id` or `email`, then one call per
 * record: `PUT /contacts/{id}` when found, else `POST /contacts`. A `409` on create names the
 * contact that holds the match value: a live one the search index did not show yet is updated, an
 * archived one (search never shows those) is unarchived, then updated. Mirror mode archives.
 *
 * Every request takes its slot from the lane's pace (concurrent ones queue on it). A 401/403 ends
 * the batch with AuthError. A 429, the lane's pace running out or an outage ends it with
 * RateLimitedError or TransientError while nothing was written yet; once records went through,
 * those stand and the rest come back `retry` (throttled ones without spending their retry budget).
 */
export async function writeContacts(
  client: IntercomClient,
  batch: WriteBatch,
  settings: WriteSettings,
): Promise<RecordOutcome[]> {
  if (batch.object !== 'contacts') {
    throw new ConnectorConfigError(`Intercom has no object "${batch.object}": this destination writes "contacts"`);
  }
  if (!(MATCH_FIELDS as readonly string[]).includes(batch.matchField)) {
    throw new ConnectorConfigError(
      `Intercom contacts cannot be matched on "${batch.matchField}": match on ${MATCH_FIELDS.join(' or ')}`,
    );
  }
  const matchField = batch.matchField as MatchField;
  const outcomes = new Map<string, RecordOutcome>();
  const pending: Pending[] = [];
  for (const record of batch.records) {
    const match = matchText(record.match);
    if (match === undefined) {
      outcomes.set(record.key, {
        key: record.key,
        status: 'rejected',
        reason: `empty ${matchField}`,
        field: matchField,
      });
    } else {
      pending.push({ record, match });
    }
  }

  // One search per group of 15 records, then their calls: a group stopped by a rate limit keeps
  // what the earlier groups (and its own first calls) wrote.
  const groups: Pending[][] = [];
  for (let i = 0; i < pending.length; i += SEARCH_CHUNK) groups.push(pending.slice(i, i + SEARCH_CHUNK));
  const written = await keepProgress(
    groups,
    (group) => group.map((p) => p.record.key),
    (group) => writeGroup(client, group, matchField, settings),
  );
  for (const outcome of written) outcomes.set(outcome.key, outcome);
  return batch.records.map(
    (record) => outcomes.get(record.key) ?? { key: record.key, status: 'retry', reason: 'not written (no outcome)' },
  );
}

/**
 * One search, then one call per record, `concurrency` at a time. Throws when it wrote nothing (the
 * caller's keepProgress decides what that means for the batch); otherwise the records a failure
 * stopped come back `retry` through `unfinished`.
 */
async function writeGroup(
  client: IntercomClient,
  group: readonly Pending[],
  matchField: MatchField,
  settings: WriteSettings,
): Promise<RecordOutcome[]> {
  const existing = await findContacts(client, matchField, [...new Set(group.map((p) => p.match))]);
  const done = new Map<string, RecordOutcome>();
  let stop: Error | undefined;
  await eachLimit(group, settings.concurrency, async ({ record, match }) => {
    if (stop) return;
    try {
      const candidates = existing.get(normalize(matchField, match));
      done.set(record.key, await writeOne(client, record, match, matchField, candidates, settings.role));
    } catch (error) {
      if (error instanceof HttpError) {
        // A status Intercom does not document for one contact (405, 413…): this record cannot pass.
        done.set(record.key, { key: record.key, status: 'rejected', reason: client.redact(error.message) });
      } else if (error instanceof AuthError) {
        stop = error;
      } else if (!stop) {
        stop =
          error instanceof BackflowError
            ? error
            : new TransientError(client.redact(`Intercom write failed: ${errorMessage(error)}`), { cause: error });
      }
    }
  });
  if (stop instanceof AuthError || (stop && done.size === 0)) throw stop;
  return group.map((p) => done.get(p.record.key) ?? unfinished([p.record.key], stop)[0]!);
}

async function writeOne(
  client: IntercomClient,
  record: OutboundRecord,
  match: string,
  matchField: MatchField,
  candidates: readonly IntercomContact[] | undefined,
  role: 'user' | 'lead',
): Promise<RecordOutcome> {
  const { key } = record;
  const found = pick(candidates ?? [], role);
  if (found === 'ambiguous') return ambiguous(key, matchField, match, candidates ?? []);

  if (record.op === 'delete') {
    if (!found) return { key, status: 'ok', action: 'deleted' };
    const answer = await client.archiveContact(found.id);
    if (answer.ok || answer.status === 404) return { key, status: 'ok', action: 'deleted', destinationId: found.id };
    return refusal(key, answer);
  }

  if (found) {
    if (record.op === 'insert') {
      return {
        key,
        status: 'rejected',
        reason: `already exists in Intercom (contact ${found.id}); insert mode never updates`,
      };
    }
    return updated(client, key, found.id, contactBody(record.fields));
  }
  if (record.op === 'update') {
    return { key, status: 'rejected', reason: 'no matching contact in Intercom (update mode never creates)' };
  }
  return create(client, record, match, matchField, role);
}

/**
 * `POST /contacts` for a record the search did not find. When the create's fate is unknown (a
 * timeout, a dropped connection, a 5xx: UnconfirmedWriteError), the contact is looked up by its
 * match value before anything else is sent; not found, the create is sent once more only when
 * Intercom's uniqueness makes a second copy impossible — a 409 then names our own first attempt,
 * which is updated (upsert) or taken as created (insert).
 */
async function create(
  client: IntercomClient,
  record: OutboundRecord,
  match: string,
  matchField: MatchField,
  role: 'user' | 'lead',
): Promise<RecordOutcome> {
  const body = contactBody(record.fields, { field: matchField, value: match, role });
  try {
    return await afterCreate(client, record, await client.createContact(body), false);
  } catch (error) {
    if (!(error instanceof UnconfirmedWriteError)) throw error;
    return reconcile(client, record, match, matchField, role, body, error);
  }
}

async function reconcile(
  client: IntercomClient,
  record: OutboundRecord,
  match: string,
  matchField: MatchField,
  role: 'user' | 'lead',
  body: Record<string, JsonValue>,
  unconfirmed: UnconfirmedWriteError,
): Promise<RecordOutcome> {
  const { key } = record;
  const candidates = (await client.searchContacts(matchField, [match])).filter(
    (c) =>
      typeof c[matchField] === 'string' &&
      normalize(matchField, c[matchField] as string) === normalize(matchField, match),
  );
  const found = pick(candidates, role);
  if (found === 'ambiguous') return ambiguous(key, matchField, match, candidates);
  if (found) return ours(client, record, found.id);
  // Not found: the create failed, or Intercom has not indexed it yet (new contacts reach search
  // after a delay). A second create cannot duplicate a contact whose external_id (or a user's
  // email) Intercom keeps unique: it answers 409 naming the first one.
  const createdRole = typeof body.role === 'string' ? body.role : role;
  if (matchField === 'email' && createdRole !== 'user') {
    return {
      key,
      status: 'retry',
      reason: client.redact(
        `${unconfirmed.message}; a lead's email is not unique in Intercom, so the create is not sent again before a later search`,
      ),
      afterMs: 60_000,
    };
  }
  try {
    return await afterCreate(client, record, await client.createContact(body), true);
  } catch (error) {
    if (!(error instanceof UnconfirmedWriteError)) throw error;
    return { key, status: 'retry', reason: client.redact(error.message) };
  }
}

/**
 * What a create's answer means. A 409 names the contact holding the match value: an archived one
 * is unarchived first (`POST /contacts/{id}/unarchive`); then upsert updates it. After an
 * unconfirmed first attempt (`again`), a live one is our own create.
 */
async function afterCreate(
  client: IntercomClient,
  record: OutboundRecord,
  answer: ContactAnswer,
  again: boolean,
): Promise<RecordOutcome> {
  const { key } = record;
  if (answer.ok) return { key, status: 'ok', action: 'created', destinationId: answer.contact.id };
  if (answer.status !== 409) return refusal(key, answer);
  const conflict = conflictOf(answer.problems);
  if (!conflict) return { key, status: 'retry', reason: `Intercom answered 409: ${describeProblems(answer.problems)}` };
  if (again && !conflict.archived) return ours(client, record, conflict.id);
  if (record.op === 'insert') {
    return {
      key,
      status: 'rejected',
      reason: `already exists in Intercom (${conflict.archived ? 'archived ' : ''}contact ${conflict.id}); insert mode never updates`,
    };
  }
  if (conflict.archived) {
    // The row came back to the model after mirror mode archived its contact.
    const unarchived = await client.unarchiveContact(conflict.id);
    if (!unarchived.ok) {
      if (unarchived.status === 404) {
        return {
          key,
          status: 'retry',
          reason: `Intercom contact ${conflict.id} is archived and could not be unarchived (404): deleted since?`,
          afterMs: 1000,
        };
      }
      return refusal(key, unarchived);
    }
  }
  return updated(client, key, conflict.id, contactBody(record.fields));
}

/**
 * The contact our unconfirmed create made (found by search, or named by the 409 of the second
 * attempt): an upsert sends its fields again (harmless if they are there, needed if the contact was
 * someone else's), an insert takes it as created.
 */
async function ours(client: IntercomClient, record: OutboundRecord, id: string): Promise<RecordOutcome> {
  if (record.op === 'insert') return { key: record.key, status: 'ok', action: 'created', destinationId: id };
  const outcome = await updated(client, record.key, id, contactBody(record.fields));
  return outcome.status === 'ok' ? { ...outcome, action: 'created' } : outcome;
}

async function updated(
  client: IntercomClient,
  key: string,
  id: string,
  body: Record<string, JsonValue>,
): Promise<RecordOutcome> {
  if (Object.keys(body).length === 0) return { key, status: 'ok', action: 'updated', destinationId: id };
  const answer = await client.updateContact(id, body);
  if (answer.ok) return { key, status: 'ok', action: 'updated', destinationId: id };
  if (answer.status === 404) {
    // Deleted or merged since the search: the next attempt searches again and creates it if needed.
    return { key, status: 'retry', reason: `Intercom contact ${id} is gone (deleted or merged)`, afterMs: 1000 };
  }
  return refusal(key, answer);
}

function refusal(key: string, answer: ContactAnswer & { ok: false }): RecordOutcome {
  const detail = describeProblems(answer.problems) || 'no reason given';
  return { key, status: 'rejected', reason: `Intercom refused the contact (${answer.status}): ${detail}` };
}

function ambiguous(
  key: string,
  matchField: MatchField,
  match: string,
  candidates: readonly IntercomContact[],
): RecordOutcome {
  const ids = candidates.map((c) => c.id).join(', ');
  return {
    key,
    status: 'rejected',
    reason: `several Intercom contacts have ${matchField} ${match} (${ids}): merge them, or match on external_id`,
    field: matchField,
  };
}

/**
 * A contact's JSON for create or update: standard attributes at the top level, every other field
 * under `custom_attributes`. On update a null clears the attribute; on create nulls are left out.
 * Values arrive formatted by the SDK from the attributes' discovered types (dates as Unix seconds).
 */
export function contactBody(
  fields: Readonly<Record<string, JsonValue>>,
  create?: { readonly field: MatchField; readonly value: string; readonly role: 'user' | 'lead' },
): Record<string, JsonValue> {
  const body: Record<string, JsonValue> = {};
  const custom: Record<string, JsonValue> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (create && value === null) continue;
    if (name.startsWith(CUSTOM_PREFIX)) custom[name.slice(CUSTOM_PREFIX.length)] = value;
    else if (STANDARD_FIELDS.has(name)) body[name] = value;
    else custom[name] = value;
  }
  if (Object.keys(custom).length > 0) body.custom_attributes = custom;
  if (create) {
    body.role ??= create.role;
    body[create.field] = create.value;
  }
  return body;
}

/** The existing contacts of the batch, by normalized match value. */
async function findContacts(
  client: IntercomClient,
  field: MatchField,
  values: readonly string[],
): Promise<Map<string, IntercomContact[]>> {
  const byValue = new Map<string, IntercomContact[]>();
  for (let i = 0; i < values.length; i += SEARCH_CHUNK) {
    const chunk = values.slice(i, i + SEARCH_CHUNK);
    for (const contact of await client.searchContacts(field, chunk)) {
      const value = contact[field];
      if (typeof value !== 'string' || value === '') continue;
      const norm = normalize(field, value);
      const list = byValue.get(norm) ?? [];
      if (!list.some((c) => c.id === contact.id)) list.push(contact);
      byValue.set(norm, list);
    }
  }
  return byValue;
}

/** One contact, none, or several that cannot be told apart (same email on two users). */
function pick(candidates: readonly IntercomContact[], role: string): IntercomContact | undefined | 'ambiguous' {
  if (candidates.length <= 1) return candidates[0];
  const sameRole = candidates.filter((c) => c.role === role);
  return sameRole.length === 1 ? sameRole[0] : 'ambiguous';
}

function matchText(value: JsonValue): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/** Intercom compares emails without regard to case. */
function normalize(field: MatchField, value: string): string {
  return field === 'email' ? value.toLowerCase() : value;
}

async function eachLimit<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await run(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
