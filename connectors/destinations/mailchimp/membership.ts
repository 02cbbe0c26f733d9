import { keepProgress, type OutboundRecord, type RecordOutcome, unfinished } from '#connectors/sdk/destination';
import { ConnectorConfigError, RateLimitedError, TransientError, UnconfirmedWriteError } from '#connectors/sdk/errors';
import {
  type MailchimpClient,
  type MemberStatus,
  type Segment,
  type SegmentBatchResult,
  subscriberHash,
} from './client.ts';
import { MAX_SEGMENT_CHANGES } from './limits.ts';
import { MATCH_FIELD, SEGMENT_PREFIX, TAG_PREFIX } from './manifest.ts';
import { batchEmail } from './members.ts';

/**
 * Membership syncs: a tag (`tag:<name>`) or a static segment (`segment:<id>`) of the `list_id`
 * audience kept equal to a Backflow segment. Tags are static segments in Mailchimp's API (the
 * segments collection's `exclude_type=static` "excludes tags"), so both are written with the same
 * call: `POST /lists/{list_id}/segments/{segment_id}` with up to 500 emails in `members_to_add`
 * (entered) and 500 in `members_to_remove` (left) — one request for up to 1,000 changes.
 * https://mailchimp.com/developer/marketing/api/list-segments/batch-add-or-remove-members/
 */

export type MembershipObject =
  | { readonly kind: 'tag'; readonly name: string }
  | { readonly kind: 'segment'; readonly id: number };

/** The membership object a sync's object names, or undefined for an audience id. */
export function membershipObject(object: string): MembershipObject | undefined {
  if (object.startsWith(TAG_PREFIX)) {
    const name = object.slice(TAG_PREFIX.length).trim();
    if (name === '') throw new ConnectorConfigError('mailchimp: "tag:" needs a tag name, e.g. tag:VIP');
    // Inferred: Mailchimp's tag names are at most 100 characters (its UI's limit; not in the API reference).
    if (name.length > 100)
      throw new ConnectorConfigError(`mailchimp: tag name "${name.slice(0, 40)}…" is longer than 100 characters`);
    return { kind: 'tag', name };
  }
  if (object.startsWith(SEGMENT_PREFIX)) {
    const id = object.slice(SEGMENT_PREFIX.length).trim();
    if (!/^\d{1,18}$/.test(id)) {
      throw new ConnectorConfigError(
        `mailchimp: "${object}" is not a segment id; use segment:<numeric id> (Audience → Segments, or GET /lists/{list_id}/segments)`,
      );
    }
    return { kind: 'segment', id: Number(id) };
  }
  return undefined;
}

/**
 * The static segment behind a membership object. A tag is found by name among the audience's
 * static segments (exact name first, then ignoring case); a missing one is created empty when
 * `createTags`, else refused. A create whose answer was lost, or refused (another exporter may
 * have created the same tag meanwhile), is followed by a second look-up rather than a second create.
 * A segment by id must exist and be static: saved (conditions) segments take no members by API.
 */
export async function resolveSegment(
  client: MailchimpClient,
  listId: string,
  target: MembershipObject,
  createTags: boolean,
): Promise<Segment> {
  if (target.kind === 'segment') {
    const segment = await client.segment(listId, target.id);
    if (!segment) {
      throw new ConnectorConfigError(`mailchimp audience ${listId} has no segment ${target.id} (segment:${target.id})`);
    }
    if (segment.type !== 'static') {
      throw new ConnectorConfigError(
        `mailchimp segment ${target.id} ("${segment.name}") of audience ${listId} is a ${segment.type} segment: its members follow its conditions, only a static segment or a tag takes members (use tag:<name>)`,
      );
    }
    return segment;
  }
  const find = (all: readonly Segment[]) =>
    all.find((s) => s.name === target.name) ?? all.find((s) => s.name.toLowerCase() === target.name.toLowerCase());
  const existing = find(await client.staticSegments(listId));
  if (existing) return existing;
  if (!createTags) {
    throw new ConnectorConfigError(
      `mailchimp audience ${listId} has no tag "${target.name}": create it in Mailchimp, or set create_tags: true`,
    );
  }
  try {
    return await client.createStaticSegment(listId, target.name);
  } catch (error) {
    if (!(error instanceof UnconfirmedWriteError || error instanceof ConnectorConfigError)) throw error;
    const created = find(await client.staticSegments(listId));
    if (created) return created;
    throw error;
  }
}

export interface MembershipWrite {
  readonly client: MailchimpClient;
  readonly listId: string;
  readonly segment: Segment;
  /** The `add_missing_members` option. */
  readonly addMissing: boolean;
  /** The status of members new to the audience, when `addMissing`. */
  readonly status: MemberStatus;
}

interface Change {
  readonly record: OutboundRecord;
  readonly email: string;
}

/** One request: up to 500 members entering and 500 leaving. */
interface Part {
  readonly add: readonly Change[];
  readonly remove: readonly Change[];
}

/**
 * Writes one batch of membership changes: op `delete` leaves the tag, every other op enters it.
 * Each request is one part: a rate limit on part k keeps parts 1..k-1 (keepProgress).
 */
export async function writeMembership(
  target: MembershipWrite,
  records: readonly OutboundRecord[],
): Promise<RecordOutcome[]> {
  const outcomes = new Map<string, RecordOutcome>();
  const adds: Change[] = [];
  const removes: Change[] = [];
  const seen = new Set<string>();
  for (const record of records) {
    // One address in both arrays of one request would make its outcome ambiguous: one per request.
    const email = batchEmail(record, seen);
    if (typeof email !== 'string') {
      outcomes.set(record.key, email);
      continue;
    }
    (record.op === 'delete' ? removes : adds).push({ record, email });
  }

  const parts: Part[] = [];
  for (let i = 0; i < Math.max(adds.length, removes.length); i += MAX_SEGMENT_CHANGES) {
    parts.push({ add: adds.slice(i, i + MAX_SEGMENT_CHANGES), remove: removes.slice(i, i + MAX_SEGMENT_CHANGES) });
  }
  const written = await keepProgress(
    parts,
    (part) => [...part.add, ...part.remove].map((c) => c.record.key),
    (part) => writePart(target, part),
  );
  for (const outcome of written) outcomes.set(outcome.key, outcome);
  return records.map(
    (r) => outcomes.get(r.key) ?? { key: r.key, status: 'retry', reason: 'Mailchimp gave no answer for this member' },
  );
}

/** What one batch call answered for each address it was sent: added/removed, refused, or neither. */
function answers(result: SegmentBatchResult) {
  const done = new Set(
    [...result.members_added, ...result.members_removed].map((m) => String(m.email_address).toLowerCase()),
  );
  const errors = new Map<string, string>();
  for (const entry of result.errors) {
    for (const email of entry.email_addresses ?? []) errors.set(String(email).toLowerCase(), entry.error || 'refused');
  }
  return { done, errors };
}

async function send(
  target: MembershipWrite,
  add: readonly Change[],
  remove: readonly Change[],
): Promise<SegmentBatchResult> {
  const result = await target.client.batchSegmentMembers(target.listId, target.segment.id, {
    add: add.map((c) => c.email),
    remove: remove.map((c) => c.email),
  });
  if ('refused' in result) {
    throw new ConnectorConfigError(
      `mailchimp refused the member changes of ${describe(target)} (${result.refused}: ${result.reason}); was it deleted, or is it no longer static?`,
    );
  }
  return result;
}

function describe(target: MembershipWrite): string {
  return `tag "${target.segment.name}" (segment ${target.segment.id}) of audience ${target.listId}`;
}

/**
 * One request, then what its answer leaves open. Left: removed, refused (an address not in the
 * audience is in no tag) or neither (not in the tag) — all mean the member is out. Entered: added
 * is done; refused means not in the audience ("Any emails provided that are not present on the
 * list will be ignored", and `errors[]` lists "email addresses that could not be added"); neither
 * is either already tagged or silently ignored, so each such member is looked up (one paced
 * `GET …/members/{hash}` each) and counts as entered only when it carries the tag. Addresses not
 * in the audience are refused, or with `add_missing_members` upserted into the audience (one batch
 * subscribe) and sent again. A failure after the first request gives back what is still open.
 */
async function writePart(target: MembershipWrite, part: Part): Promise<RecordOutcome[]> {
  const outcomes: RecordOutcome[] = [];
  const result = await send(target, part.add, part.remove);
  const { done, errors } = answers(result);
  for (const { record } of part.remove) outcomes.push({ key: record.key, status: 'ok', action: 'deleted' });

  const open = new Map<string, Change>();
  const missing: { change: Change; why: string }[] = [];
  const unsure: Change[] = [];
  for (const change of part.add) {
    const lower = change.email.toLowerCase();
    const error = errors.get(lower);
    if (done.has(lower))
      outcomes.push({
        key: change.record.key,
        status: 'ok',
        action: 'created',
        destinationId: subscriberHash(change.email),
      });
    else if (error !== undefined) missing.push({ change, why: error });
    else unsure.push(change);
    if (!done.has(lower)) open.set(change.record.key, change);
  }

  try {
    for (const change of unsure) {
      const member = await target.client.member(target.listId, subscriberHash(change.email));
      if (!member || member.status === 'archived') {
        missing.push({ change, why: 'not in the audience' });
        continue;
      }
      const tagged = (member.tags ?? []).some((t) => t.id === target.segment.id || t.name === target.segment.name);
      outcomes.push(
        tagged
          ? { key: change.record.key, status: 'ok', destinationId: member.id }
          : {
              key: change.record.key,
              status: 'retry',
              reason: `Mailchimp neither added ${change.email} to ${describe(target)} nor refused it`,
            },
      );
      open.delete(change.record.key);
    }

    if (!target.addMissing) {
      for (const { change, why } of missing) {
        outcomes.push({
          key: change.record.key,
          status: 'rejected',
          reason: `${change.email} is not a member of audience ${target.listId}, so Mailchimp did not add it to ${describe(target)} (${why}); set add_missing_members: true to add such members to the audience first`,
          field: MATCH_FIELD,
        });
        open.delete(change.record.key);
      }
    } else if (missing.length > 0) {
      for (const o of await addMissing(
        target,
        missing.map((m) => m.change),
      )) {
        outcomes.push(o);
        open.delete(o.key);
      }
    }
  } catch (error) {
    if (!(error instanceof RateLimitedError || error instanceof TransientError)) throw error;
    outcomes.push(...unfinished(open.keys(), error));
  }
  return outcomes;
}

/**
 * `add_missing_members`: upserts the members into the audience (batch subscribe with
 * `update_existing`, `status_if_new` the connector's status — idempotent), then adds them to the
 * tag again. One refused by the upsert is rejected with Mailchimp's reason.
 */
async function addMissing(target: MembershipWrite, changes: readonly Change[]): Promise<RecordOutcome[]> {
  const outcomes: RecordOutcome[] = [];
  const subscribed = await target.client.batchSubscribe(
    target.listId,
    changes.map((c) => ({ email_address: c.email, status_if_new: target.status })),
    { updateExisting: true },
  );
  const refused = new Map(subscribed.errors.map((e) => [String(e.email_address).toLowerCase(), e]));
  const members: Change[] = [];
  for (const change of changes) {
    const error = refused.get(change.email.toLowerCase());
    if (error) {
      outcomes.push({
        key: change.record.key,
        status: 'rejected',
        reason: `Mailchimp refused to add ${change.email} to audience ${target.listId}: ${[error.error, error.field_message].filter(Boolean).join(' — ') || 'refused'}`,
        field: MATCH_FIELD,
      });
    } else members.push(change);
  }
  if (members.length === 0) return outcomes;
  const { errors } = answers(await send(target, members, []));
  for (const change of members) {
    const error = errors.get(change.email.toLowerCase());
    outcomes.push(
      error === undefined
        ? { key: change.record.key, status: 'ok', action: 'created', destinationId: subscriberHash(change.email) }
        : {
            key: change.record.key,
            status: 'rejected',
            reason: `Mailchimp did not add ${change.email} to ${describe(target)}: ${error}`,
          },
    );
  }
  return outcomes;
}
