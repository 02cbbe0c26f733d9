import type { OutboundRecord, RecordOutcome, WriteBatch } from '#connectors/sdk/destination';
import {
  AuthError,
  ConnectorConfigError,
  errorMessage,
  RateLimitedError,
  TransientError,
} from '#connectors/sdk/errors';
import { HttpError } from '#connectors/sdk/http';
import type { FieldType, JsonValue } from '#connectors/sdk/types';
import {
  type ContactAnswer,
  conflictingId,
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

/**
 * Writes a batch of contacts. Intercom has no bulk contact upsert, so a batch costs one search
 * (per 15 records) to find the existing contacts by `external_id` or `email`, then one call per
 * record: `PUT /contacts/{id}` when found, else `POST /contacts`; a `409` on create (a contact the
 * search index did not show yet) falls back to updating the contact it names. Mirror mode archives.
 *
 * A 401/403 ends the batch with AuthError. A 429 or an outage ends it with RateLimitedError or
 * TransientError when nothing was written yet; once some records went through, the rest are
 * answered `retry` instead, so that what was written is not written again.
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
  const pending: { record: OutboundRecord; match: string }[] = [];
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

  const existing = await findContacts(client, matchField, [...new Set(pending.map((p) => p.match))]);

  // Set by the concurrent calls: the error that ends the batch, and how many records went through.
  const run: { stop?: Error; written: number } = { written: 0 };
  await eachLimit(pending, settings.concurrency, async ({ record, match }) => {
    if (run.stop) return;
    try {
      const outcome = await writeOne(client, record, match, matchField, existing.get(normalize(matchField, match)), {
        role: settings.role,
        fieldTypes: batch.fieldTypes,
      });
      outcomes.set(record.key, outcome);
      if (outcome.status === 'ok') run.written++;
    } catch (error) {
      if (error instanceof HttpError) {
        // A status Intercom does not document for one contact (405, 413…): this record cannot pass.
        const reason = client.redact(error.message);
        outcomes.set(record.key, { key: record.key, status: 'rejected', reason });
      } else if (error instanceof AuthError) {
        run.stop = error;
      } else if (error instanceof RateLimitedError || error instanceof TransientError) {
        run.stop ??= error;
      } else {
        run.stop ??= new TransientError(client.redact(`Intercom write failed: ${errorMessage(error)}`), {
          cause: error,
        });
      }
    }
  });

  const { stop } = run;
  if (stop instanceof AuthError || (stop && run.written === 0)) throw stop;
  return batch.records.map(
    (record) =>
      outcomes.get(record.key) ?? {
        key: record.key,
        status: 'retry',
        reason: client.redact(stop?.message ?? 'not written'),
        ...(stop instanceof RateLimitedError && stop.retryAfterMs !== undefined && { afterMs: stop.retryAfterMs }),
      },
  );
}

interface BodyContext {
  readonly role: 'user' | 'lead';
  readonly fieldTypes: Readonly<Record<string, FieldType>>;
}

async function writeOne(
  client: IntercomClient,
  record: OutboundRecord,
  match: string,
  matchField: MatchField,
  candidates: readonly IntercomContact[] | undefined,
  context: BodyContext,
): Promise<RecordOutcome> {
  const { key } = record;
  const found = pick(candidates ?? [], context.role);
  if (found === 'ambiguous') {
    const ids = (candidates ?? []).map((c) => c.id).join(', ');
    return {
      key,
      status: 'rejected',
      reason: `several Intercom contacts have ${matchField} ${match} (${ids}): merge them, or match on external_id`,
      field: matchField,
    };
  }

  if (record.op === 'delete') {
    if (!found) return { key, status: 'ok', action: 'deleted' };
    const answer = await client.archiveContact(found.id);
    if (answer.ok || answer.status === 404) return { key, status: 'ok', action: 'deleted', destinationId: found.id };
    return refusal(key, answer);
  }

  const update = contactBody(record.fields, context, undefined);
  if (found) {
    if (record.op === 'insert') {
      return {
        key,
        status: 'rejected',
        reason: `already exists in Intercom (contact ${found.id}); insert mode never updates`,
      };
    }
    return updated(client, key, found.id, update);
  }
  if (record.op === 'update') {
    return { key, status: 'rejected', reason: 'no matching contact in Intercom (update mode never creates)' };
  }

  const created = await client.createContact(contactBody(record.fields, context, { field: matchField, value: match }));
  if (created.ok) return { key, status: 'ok', action: 'created', destinationId: created.contact.id };
  if (created.status !== 409) return refusal(key, created);
  // The contact exists but the search did not show it (Intercom indexes new contacts with a delay).
  const id = conflictingId(created.problems);
  if (record.op === 'insert') {
    return {
      key,
      status: 'rejected',
      reason: `already exists in Intercom${id ? ` (contact ${id})` : ''}; insert mode never updates`,
    };
  }
  if (!id) return { key, status: 'retry', reason: `Intercom answered 409: ${describeProblems(created.problems)}` };
  return updated(client, key, id, update);
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

/**
 * A contact's JSON for create or update: standard attributes at the top level, every other field
 * under `custom_attributes`. On update a null clears the attribute; on create nulls are left out.
 * Dates (`YYYY-MM-DD`) become Unix timestamps at midnight UTC, as Intercom stores dates.
 */
export function contactBody(
  fields: Readonly<Record<string, JsonValue>>,
  context: BodyContext,
  create: { readonly field: MatchField; readonly value: string } | undefined,
): Record<string, JsonValue> {
  const body: Record<string, JsonValue> = {};
  const custom: Record<string, JsonValue> = {};
  for (const [name, raw] of Object.entries(fields)) {
    const value = context.fieldTypes[name] === 'date' ? midnightSeconds(raw) : raw;
    if (create && value === null) continue;
    if (name.startsWith(CUSTOM_PREFIX)) custom[name.slice(CUSTOM_PREFIX.length)] = value;
    else if (STANDARD_FIELDS.has(name)) body[name] = value;
    else custom[name] = value;
  }
  if (Object.keys(custom).length > 0) body.custom_attributes = custom;
  if (create) {
    body.role ??= context.role;
    body[create.field] = create.value;
  }
  return body;
}

function midnightSeconds(value: JsonValue): JsonValue {
  if (typeof value !== 'string' || !/^\d{4}-\d\d-\d\d$/.test(value)) return value;
  const ms = Date.parse(`${value}T00:00:00Z`);
  return Number.isNaN(ms) ? value : ms / 1000;
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
