import { keepProgress, type OutboundRecord, type RecordOutcome, unfinished } from '#connectors/sdk/destination';
import { RateLimitedError, TransientError, UnconfirmedWriteError } from '#connectors/sdk/errors';
import type { JsonValue } from '#connectors/sdk/types';
import {
  type BatchSubscribeResult,
  type MailchimpClient,
  type Member,
  type MemberInput,
  type MemberStatus,
  type MergeField,
  subscriberHash,
} from './client.ts';
import { mergeValue, resolveTarget, STATUS_FIELD, statusValue, TAGS_FIELD, tagNames } from './fields.ts';
import { MAX_BATCH_MEMBERS } from './limits.ts';
import { MATCH_FIELD } from './manifest.ts';

/**
 * Writing one batch to an audience: members (with their merge fields and tags) go in one batch
 * subscribe per 500, then archives (mirror) member by member. Every request is one part of the
 * batch: a rate limit on part k keeps parts 1..k-1 and gives the rest back (keepProgress).
 */

export interface AudienceWrite {
  readonly client: MailchimpClient;
  readonly listId: string;
  readonly mergeFields: readonly MergeField[];
  /** The `status` option: the status of members new to the audience (`status_if_new`). */
  readonly status: MemberStatus;
  /** The `overwrite_status` option: also send `status`, which changes existing members' status. */
  readonly overwriteStatus: boolean;
}

/** A member ready for batch subscribe. */
interface Prepared {
  readonly record: OutboundRecord;
  readonly email: string;
  readonly input: MemberInput;
}

/** One request of a batch. */
type Part =
  | {
      readonly kind: 'subscribe';
      readonly members: readonly Prepared[];
      readonly updateExisting: boolean;
      readonly syncTags: boolean;
    }
  | { readonly kind: 'archive'; readonly record: OutboundRecord };

/** Mailchimp's per-contact anti-abuse limit ("signed up to a lot of lists very recently"): retry later. */
const SIGNUP_THROTTLE = /too many recent signup|signed up to a lot of lists very recently/i;
const SIGNUP_THROTTLE_WAIT_MS = 15 * 60_000;
/** A record whose email already appears in the same batch waits for the next round. */
const DUPLICATE_WAIT_MS = 1_000;
const INSERT_REFUSED = '(insert mode never updates a member)';

/**
 * The email of a record for one request: its match value trimmed, or the outcome that keeps it
 * out of the request — refused when it is no text, given back when another record of the batch
 * has the same address (Mailchimp's batch calls refuse an address twice; the later record waits
 * its turn). `seen` collects the batch's addresses, lower-cased.
 */
export function batchEmail(record: OutboundRecord, seen: Set<string>): string | RecordOutcome {
  const email = typeof record.match === 'string' ? record.match.trim() : '';
  if (email === '') {
    return {
      key: record.key,
      status: 'rejected',
      reason: `the email address must be text, got ${JSON.stringify(record.match)}`,
      field: MATCH_FIELD,
    };
  }
  const lower = email.toLowerCase();
  if (seen.has(lower)) {
    return {
      key: record.key,
      status: 'retry',
      reason: 'another record of this batch has the same email address',
      afterMs: DUPLICATE_WAIT_MS,
    };
  }
  seen.add(lower);
  return email;
}

export async function writeAudience(
  target: AudienceWrite,
  records: readonly OutboundRecord[],
): Promise<RecordOutcome[]> {
  const outcomes = new Map<string, RecordOutcome>();
  const upserts: Prepared[] = [];
  const inserts: Prepared[] = [];
  const deletes: OutboundRecord[] = [];
  const seen = new Set<string>();

  for (const record of records) {
    const email = batchEmail(record, seen);
    if (typeof email !== 'string') {
      outcomes.set(record.key, email);
      continue;
    }
    if (record.op === 'delete') {
      deletes.push(record);
      continue;
    }
    const prepared = prepare(target, record, email);
    if ('reason' in prepared) outcomes.set(record.key, prepared);
    else (record.op === 'insert' ? inserts : upserts).push(prepared);
  }

  const parts: Part[] = [];
  for (const [group, updateExisting] of [
    [upserts, true],
    [inserts, false],
  ] as const) {
    // `sync_tags` replaces the tags of every existing member of the call, so members whose
    // record carries no tags (tags not mapped, or skipped) go in a call without it.
    for (const tagged of [true, false]) {
      const members = group.filter((p) => (p.input.tags !== undefined) === tagged);
      for (let i = 0; i < members.length; i += MAX_BATCH_MEMBERS) {
        parts.push({
          kind: 'subscribe',
          members: members.slice(i, i + MAX_BATCH_MEMBERS),
          updateExisting,
          // Only with update_existing: it has no effect without (release note, 2022-01-24).
          syncTags: tagged && updateExisting,
        });
      }
    }
  }
  for (const record of deletes) parts.push({ kind: 'archive', record });

  const written = await keepProgress(
    parts,
    (part) => (part.kind === 'archive' ? [part.record.key] : part.members.map((p) => p.record.key)),
    (part) => (part.kind === 'archive' ? archive(target, part.record) : subscribe(target, part)),
  );
  for (const outcome of written) outcomes.set(outcome.key, outcome);
  return records.map(
    (r) => outcomes.get(r.key) ?? { key: r.key, status: 'retry', reason: 'Mailchimp gave no answer for this member' },
  );
}

/** The member of one record, or why the record cannot be sent. */
function prepare(
  target: AudienceWrite,
  record: OutboundRecord,
  email: string,
): Prepared | Extract<RecordOutcome, { status: 'rejected' }> {
  const mergeFields: Record<string, JsonValue> = {};
  // The status of existing members changes only when asked: a mapped status, or overwrite_status.
  let status: MemberStatus | undefined = target.overwriteStatus ? target.status : undefined;
  let tags: string[] | undefined;
  const reject = (field: string, reason: string) => ({ key: record.key, status: 'rejected' as const, reason, field });
  for (const [name, value] of Object.entries(record.fields)) {
    // Unknown names were refused for the whole batch before: see the destination's write().
    const resolved = resolveTarget(name, target.mergeFields);
    if (!resolved) return reject(name, `audience ${target.listId} has no merge field ${name}`);
    if (resolved.kind === 'status') {
      if (value === null) continue;
      const converted = statusValue(value);
      if (!converted.ok) return reject(STATUS_FIELD, converted.reason);
      status = converted.value;
    } else if (resolved.kind === 'tags') {
      const converted = tagNames(value);
      if (!converted.ok) return reject(TAGS_FIELD, converted.reason);
      tags = converted.value;
    } else {
      const converted = mergeValue(resolved.field, value);
      if (!converted.ok) return reject(resolved.field.tag, converted.reason);
      mergeFields[resolved.field.tag] = converted.value;
    }
  }
  const input: MemberInput = {
    email_address: email,
    ...(status !== undefined ? { status } : {}),
    status_if_new: status ?? target.status,
    ...(Object.keys(mergeFields).length > 0 ? { merge_fields: mergeFields } : {}),
    ...(tags !== undefined ? { tags } : {}),
  };
  return { record, email, input };
}

/**
 * One batch subscribe. Upserts are idempotent and retried by the client after a timeout. An
 * insert whose answer was lost (UnconfirmedWriteError) is reconciled: each member is looked up.
 * A member an insert finds already there (ERROR_CONTACT_EXISTS) is looked up too: when it holds
 * what this record sends, it is this record's own earlier attempt, and counts as created.
 */
async function subscribe(target: AudienceWrite, part: Extract<Part, { kind: 'subscribe' }>): Promise<RecordOutcome[]> {
  let result: BatchSubscribeResult;
  try {
    result = await target.client.batchSubscribe(
      target.listId,
      part.members.map((p) => p.input),
      { updateExisting: part.updateExisting, syncTags: part.syncTags },
    );
  } catch (error) {
    if (!(error instanceof UnconfirmedWriteError)) throw error;
    return reconcile(target, part.members, () => ({
      status: 'retry',
      reason: `not in the audience after an unconfirmed batch subscribe (${error.message})`,
    }));
  }
  const outcomes = new Map<string, RecordOutcome>();
  const conflicts = applyBatchResult(part.members, result, outcomes);
  if (conflicts.length > 0) {
    for (const o of await reconcile(target, conflicts, () => ({
      status: 'retry',
      reason: 'Mailchimp said this member exists, but it is not in the audience',
    }))) {
      outcomes.set(o.key, o);
    }
  }
  return part.members.map(
    (p) => outcomes.get(p.record.key) ?? { key: p.record.key, status: 'retry', reason: 'no answer for this member' },
  );
}

/**
 * Outcomes from `new_members`, `updated_members` and `errors[]`; returns the members an insert
 * found already in the audience, to reconcile.
 */
function applyBatchResult(
  chunk: readonly Prepared[],
  result: BatchSubscribeResult,
  outcomes: Map<string, RecordOutcome>,
): Prepared[] {
  const created = new Map(result.new_members.map((m) => [m.email_address.toLowerCase(), m]));
  const updated = new Map(result.updated_members.map((m) => [m.email_address.toLowerCase(), m]));
  const errors = new Map(result.errors.map((e) => [String(e.email_address).toLowerCase(), e]));
  const conflicts: Prepared[] = [];
  for (const prepared of chunk) {
    const { record, email } = prepared;
    const lower = email.toLowerCase();
    const error = errors.get(lower);
    if (error) {
      const reason = [error.error, error.field_message].filter(Boolean).join(' — ') || 'refused by Mailchimp';
      if (SIGNUP_THROTTLE.test(reason)) {
        outcomes.set(record.key, { key: record.key, status: 'retry', reason, afterMs: SIGNUP_THROTTLE_WAIT_MS });
      } else if (error.error_code === 'ERROR_CONTACT_EXISTS') {
        conflicts.push(prepared);
      } else {
        outcomes.set(record.key, {
          key: record.key,
          status: 'rejected',
          reason,
          ...(error.field ? { field: error.field } : {}),
        });
      }
      continue;
    }
    const member = created.get(lower) ?? updated.get(lower);
    const action = created.has(lower) ? 'created' : updated.has(lower) ? 'updated' : undefined;
    outcomes.set(record.key, {
      key: record.key,
      status: 'ok',
      ...(action ? { action } : {}),
      destinationId: member?.id ?? subscriberHash(email),
    });
  }
  return conflicts;
}

/**
 * Looks each member up by subscriber hash (`GET …/members/{subscriber_hash}`, one request each):
 * one holding what the record sends is the record's own write (created); one holding something
 * else was there before (an insert refuses it); an absent one gets `absent`. A rate limit or a
 * failure during the look-ups gives the rest back for a retry, keeping the answers so far.
 */
async function reconcile(
  target: AudienceWrite,
  members: readonly Prepared[],
  absent: () => { status: 'retry'; reason: string },
): Promise<RecordOutcome[]> {
  const outcomes: RecordOutcome[] = [];
  for (let i = 0; i < members.length; i++) {
    const { record, email, input } = members[i]!;
    let member: Member | undefined;
    try {
      member = await target.client.member(target.listId, subscriberHash(email));
    } catch (error) {
      if (!(error instanceof RateLimitedError || error instanceof TransientError)) throw error;
      outcomes.push(
        ...unfinished(
          members.slice(i).map((p) => p.record.key),
          error,
        ),
      );
      return outcomes;
    }
    if (!member || member.status === 'archived') outcomes.push({ key: record.key, ...absent() });
    else if (holds(member, input, target.mergeFields)) {
      outcomes.push({ key: record.key, status: 'ok', action: 'created', destinationId: member.id });
    } else {
      outcomes.push({
        key: record.key,
        status: 'rejected',
        reason: `${email} is already a list member with other values ${INSERT_REFUSED}`,
      });
    }
  }
  return outcomes;
}

/**
 * Whether a member holds what a record sends: every text and number merge field as sent, every
 * tag present. Inferred: dates, birthdays and addresses are left out of the comparison, as
 * Mailchimp may store them in another form than they were sent in; the status too (a pending
 * member may have confirmed since).
 */
function holds(member: Member, input: MemberInput, fields: readonly MergeField[]): boolean {
  const kinds = new Map(fields.map((f) => [f.tag, f.type]));
  for (const [tag, value] of Object.entries(input.merge_fields ?? {})) {
    const kind = kinds.get(tag);
    if (kind === 'date' || kind === 'birthday' || kind === 'address') continue;
    const stored = member.merge_fields?.[tag];
    if (String(stored ?? '') !== String(value ?? '')) return false;
  }
  const tags = new Set((member.tags ?? []).map((t) => t.name));
  return (input.tags ?? []).every((t) => tags.has(t));
}

/** Mirror mode: archives a member that left the model; one already gone counts as archived. */
async function archive(target: AudienceWrite, record: OutboundRecord): Promise<RecordOutcome[]> {
  const result = await target.client.archive(target.listId, subscriberHash(String(record.match).trim()));
  return [
    typeof result === 'string'
      ? { key: record.key, status: 'ok', action: 'deleted' }
      : { key: record.key, status: 'rejected', reason: result.reason },
  ];
}
