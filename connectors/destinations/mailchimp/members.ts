import type { OutboundRecord, RecordOutcome } from '#connectors/sdk/destination';
import { RateLimitedError, TransientError } from '#connectors/sdk/errors';
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

/**
 * Writing one batch to an audience: members go in one batch subscribe per 500, then tag changes
 * member by member, then archives (mirror) member by member. Every record gets an outcome.
 */

export interface AudienceWrite {
  readonly client: MailchimpClient;
  readonly listId: string;
  readonly mergeFields: readonly MergeField[];
  /** The `status` option: sent with each member whose record maps no status of its own. */
  readonly status: MemberStatus;
}

/** A member ready for batch subscribe, and what its tags should become. */
interface Prepared {
  readonly record: OutboundRecord;
  readonly email: string;
  readonly input: MemberInput;
  readonly tags?: readonly string[];
}

/** Mailchimp's per-contact anti-abuse limit ("signed up to a lot of lists very recently"): retry later. */
const SIGNUP_THROTTLE = /too many recent signup|signed up to a lot of lists very recently/i;
const SIGNUP_THROTTLE_WAIT_MS = 15 * 60_000;
/** A record whose email already appears in the same batch waits for the next round. */
const DUPLICATE_WAIT_MS = 1_000;

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
    const email = typeof record.match === 'string' ? record.match.trim() : '';
    if (email === '') {
      outcomes.set(record.key, {
        key: record.key,
        status: 'rejected',
        reason: `the email address must be text, got ${JSON.stringify(record.match)}`,
        field: 'email_address',
      });
      continue;
    }
    // Batch subscribe refuses an address twice in one request; the later record waits its turn.
    const lower = email.toLowerCase();
    if (seen.has(lower)) {
      outcomes.set(record.key, {
        key: record.key,
        status: 'retry',
        reason: 'another record of this batch has the same email address',
        afterMs: DUPLICATE_WAIT_MS,
      });
      continue;
    }
    seen.add(lower);
    if (record.op === 'delete') {
      deletes.push(record);
      continue;
    }
    const prepared = prepare(target, record, email);
    if ('reason' in prepared) outcomes.set(record.key, prepared);
    else (record.op === 'insert' ? inserts : upserts).push(prepared);
  }

  for (const [group, updateExisting] of [
    [upserts, true],
    [inserts, false],
  ] as const) {
    for (let i = 0; i < group.length; i += MAX_BATCH_MEMBERS) {
      const chunk = group.slice(i, i + MAX_BATCH_MEMBERS);
      const result = await target.client.batchSubscribe(
        target.listId,
        chunk.map((p) => p.input),
        updateExisting,
      );
      const members = applyBatchResult(chunk, result, outcomes);
      await applyTags(target, chunk, members, outcomes);
    }
  }

  // A throttled first call with nothing written yet throws: the lane then slows down as a whole.
  await archiveMembers(target, deletes, outcomes, upserts.length + inserts.length === 0);
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
  let status = target.status;
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
  const input: MemberInput =
    Object.keys(mergeFields).length > 0
      ? { email_address: email, status, merge_fields: mergeFields }
      : { email_address: email, status };
  return tags === undefined ? { record, email, input } : { record, email, input, tags };
}

/** Outcomes from `new_members`, `updated_members` and `errors[]`; returns the members by address. */
function applyBatchResult(
  chunk: readonly Prepared[],
  result: BatchSubscribeResult,
  outcomes: Map<string, RecordOutcome>,
): Map<string, Member> {
  const created = new Map(result.new_members.map((m) => [m.email_address.toLowerCase(), m]));
  const updated = new Map(result.updated_members.map((m) => [m.email_address.toLowerCase(), m]));
  const errors = new Map(result.errors.map((e) => [String(e.email_address).toLowerCase(), e]));
  const members = new Map<string, Member>();
  for (const { record, email } of chunk) {
    const lower = email.toLowerCase();
    const error = errors.get(lower);
    if (error) {
      const reason = [error.error, error.field_message].filter(Boolean).join(' — ') || 'refused by Mailchimp';
      if (SIGNUP_THROTTLE.test(reason)) {
        outcomes.set(record.key, { key: record.key, status: 'retry', reason, afterMs: SIGNUP_THROTTLE_WAIT_MS });
      } else if (error.error_code === 'ERROR_CONTACT_EXISTS') {
        outcomes.set(record.key, {
          key: record.key,
          status: 'rejected',
          reason: `${reason} (insert mode never updates a member)`,
        });
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
    if (member) members.set(lower, member);
    const action = created.has(lower) ? 'created' : updated.has(lower) ? 'updated' : undefined;
    outcomes.set(record.key, {
      key: record.key,
      status: 'ok',
      ...(action ? { action } : {}),
      destinationId: member?.id ?? subscriberHash(email),
    });
  }
  return members;
}

/**
 * Batch subscribe takes no tags, so a mapped `tags` field becomes one call per member whose tags
 * differ: the listed tags made active, the member's other tags made inactive (null or an empty list
 * clears them all). The member's current tags come from the batch answer.
 */
async function applyTags(
  target: AudienceWrite,
  chunk: readonly Prepared[],
  members: ReadonlyMap<string, Member>,
  outcomes: Map<string, RecordOutcome>,
): Promise<void> {
  const pending = chunk.filter((p) => p.tags !== undefined && outcomes.get(p.record.key)?.status === 'ok');
  for (let i = 0; i < pending.length; i++) {
    const { record, email, tags = [] } = pending[i]!;
    const member = members.get(email.toLowerCase());
    // Without the member in the answer its tags are unknown: only the listed ones are made active.
    const current = new Set((member?.tags ?? []).map((t) => t.name));
    const wanted = new Set(tags);
    const changes = [
      ...[...wanted].filter((t) => !current.has(t)).map((name) => ({ name, status: 'active' as const })),
      ...[...current].filter((t) => !wanted.has(t)).map((name) => ({ name, status: 'inactive' as const })),
    ];
    if (changes.length === 0) continue;
    try {
      const result = await target.client.setTags(target.listId, subscriberHash(email), changes);
      if (!result.ok) {
        outcomes.set(record.key, { key: record.key, status: 'rejected', reason: result.reason, field: TAGS_FIELD });
      }
    } catch (error) {
      // The members landed: only the tags of this and the following records wait for a retry.
      if (!(error instanceof RateLimitedError || error instanceof TransientError)) throw error;
      const rest = error instanceof RateLimitedError ? pending.slice(i) : [pending[i]!];
      for (const p of rest) {
        outcomes.set(p.record.key, {
          key: p.record.key,
          status: 'retry',
          reason: `tags not set: ${error.message}`,
          ...(error instanceof RateLimitedError && error.retryAfterMs !== undefined
            ? { afterMs: error.retryAfterMs }
            : {}),
        });
      }
      if (error instanceof RateLimitedError) return;
    }
  }
}

/** Mirror mode: archives each member that left the model; one already gone counts as archived. */
async function archiveMembers(
  target: AudienceWrite,
  deletes: readonly OutboundRecord[],
  outcomes: Map<string, RecordOutcome>,
  firstWrite: boolean,
): Promise<void> {
  for (let i = 0; i < deletes.length; i++) {
    const record = deletes[i]!;
    try {
      const result = await target.client.archive(target.listId, subscriberHash(String(record.match).trim()));
      outcomes.set(
        record.key,
        typeof result === 'string'
          ? { key: record.key, status: 'ok', action: 'deleted' }
          : { key: record.key, status: 'rejected', reason: result.reason },
      );
    } catch (error) {
      if (!(error instanceof RateLimitedError || error instanceof TransientError)) throw error;
      if (error instanceof RateLimitedError && firstWrite && i === 0) throw error;
      const rest = error instanceof RateLimitedError ? deletes.slice(i) : [record];
      for (const r of rest) {
        outcomes.set(r.key, {
          key: r.key,
          status: 'retry',
          reason: `not archived: ${error.message}`,
          ...(error instanceof RateLimitedError && error.retryAfterMs !== undefined
            ? { afterMs: error.retryAfterMs }
            : {}),
        });
      }
      if (error instanceof RateLimitedError) return;
    }
  }
}
