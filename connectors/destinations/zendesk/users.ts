import { keepProgress, type OutboundRecord, type RecordOutcome, type WriteBatch } from '#connectors/sdk/destination';
import { ConnectorConfigError, UnconfirmedWriteError } from '#connectors/sdk/errors';
import type { JsonValue } from '#connectors/sdk/types';
import type { JobResult, JobStatus, ZendeskClient } from './client.ts';
import { CUSTOM_PREFIX, USER_PROPERTIES } from './fields.ts';
import { MAX_USERS_PER_REQUEST } from './limits.ts';
import { MATCH_KEYS, type MatchKey } from './manifest.ts';

/** A record ready to send: its user object, and the Zendesk id when a lookup found one. */
interface Prepared {
  readonly record: OutboundRecord;
  readonly match: string;
  readonly user: Record<string, JsonValue>;
  id?: number;
}

const REASON_CHARS = 500;

/**
 * Writes one batch of `users`: each operation in chunks of at most 100, each chunk one Zendesk
 * job that is awaited (bounded by `jobTimeoutMs`). Outcomes come from the job's `results`.
 *
 * - upsert: `POST /api/v2/users/create_or_update_many` (finds users by `external_id` or `email`:
 *   an upsert by key, so it is sent again after a timeout like any idempotent call)
 * - insert: `POST /api/v2/users/create_many`, after `show_many` skips external ids already there;
 *   a create that may have reached Zendesk is never sent twice: the users are looked up instead
 * - update: `show_many` by external id, then `PUT /api/v2/users/update_many` by Zendesk id
 * - delete: `show_many` by external id, then `DELETE /api/v2/users/destroy_many?ids=` (soft delete)
 *
 * Every request is paced (lookups and job polls too). The chunks run in order; when one fails as
 * a whole (a 429, the lane's pace), the chunks already written keep their outcomes and the rest
 * come back `retry` (keepProgress).
 *
 * See https://developer.zendesk.com/api-reference/ticketing/users/users/
 */
export async function writeUsers(
  client: ZendeskClient,
  batch: WriteBatch,
  jobTimeoutMs: number,
): Promise<RecordOutcome[]> {
  const matchField = batch.matchField as MatchKey;
  if (!MATCH_KEYS.includes(matchField)) {
    throw new ConnectorConfigError(
      `zendesk users: cannot match on "${batch.matchField}": use external_id or email (the keys Zendesk's bulk endpoints find users by)`,
    );
  }
  const outcomes: RecordOutcome[] = [];
  const byOp = new Map<OutboundRecord['op'], Prepared[]>();
  for (const record of batch.records) {
    const prepared = prepare(record, matchField);
    if ('status' in prepared) {
      outcomes.push(prepared);
      continue;
    }
    const group = byOp.get(record.op) ?? [];
    group.push(prepared);
    byOp.set(record.op, group);
  }
  const parts: Part[] = [];
  for (const [op, group] of byOp) {
    if ((op === 'update' || op === 'delete') && matchField !== 'external_id') {
      throw new ConnectorConfigError(
        `zendesk users: ${op === 'update' ? 'update mode' : 'mirror mode (deletes)'} needs \`match: { external_id: … }\`: Zendesk's update_many and destroy_many address users by id or external id, not by email`,
      );
    }
    for (let i = 0; i < group.length; i += MAX_USERS_PER_REQUEST) {
      parts.push({ op, chunk: group.slice(i, i + MAX_USERS_PER_REQUEST) });
    }
  }
  outcomes.push(
    ...(await keepProgress(
      parts,
      (part) => part.chunk.map((p) => p.record.key),
      (part) => writeChunk(client, part.op, matchField, part.chunk, jobTimeoutMs),
    )),
  );
  const order = new Map(batch.records.map((r, i) => [r.key, i]));
  return outcomes.sort((a, b) => order.get(a.key)! - order.get(b.key)!);
}

/** One request's worth of one operation. */
interface Part {
  readonly op: OutboundRecord['op'];
  readonly chunk: Prepared[];
}

async function writeChunk(
  client: ZendeskClient,
  op: OutboundRecord['op'],
  matchField: MatchKey,
  chunk: Prepared[],
  jobTimeoutMs: number,
): Promise<RecordOutcome[]> {
  const outcomes: RecordOutcome[] = [];
  let send = chunk;
  if (op !== 'upsert' && matchField === 'external_id') {
    const found = await idsByExternalId(client, chunk);
    send = [];
    for (const p of chunk) {
      p.id = found.get(p.match.toLowerCase());
      const key = p.record.key;
      if (op === 'insert' && p.id !== undefined) {
        outcomes.push({
          key,
          status: 'rejected',
          reason: `a Zendesk user with external_id "${p.match}" already exists (insert mode never updates)`,
        });
      } else if (op === 'update' && p.id === undefined) {
        outcomes.push({
          key,
          status: 'rejected',
          reason: `no Zendesk user with external_id "${p.match}" (update mode never creates)`,
        });
      } else if (op === 'delete' && p.id === undefined) {
        outcomes.push({ key, status: 'ok', action: 'deleted' });
      } else {
        send.push(p);
      }
    }
  }
  if (send.length === 0) return outcomes;

  let job: JobStatus;
  switch (op) {
    case 'upsert':
      // "Creates a user if the user does not already exist, or updates an existing user identified
      // by e-mail address or external ID": an upsert by key, safe to send again.
      job = await client.queueJob({
        method: 'POST',
        path: 'api/v2/users/create_or_update_many',
        json: { users: send.map((p) => p.user) },
        idempotent: true,
      });
      break;
    case 'insert':
      try {
        job = await client.queueJob({
          method: 'POST',
          path: 'api/v2/users/create_many',
          json: { users: send.map((p) => p.user) },
        });
      } catch (error) {
        if (!(error instanceof UnconfirmedWriteError)) throw error;
        return [...outcomes, ...(await reconcileCreates(client, matchField, send, error))];
      }
      break;
    case 'update':
      job = await client.queueJob({
        method: 'PUT',
        path: 'api/v2/users/update_many',
        json: { users: send.map(({ user, id }) => ({ ...withoutMatch(user, matchField), id: id! })) },
      });
      break;
    case 'delete':
      job = await client.queueJob({
        method: 'DELETE',
        path: 'api/v2/users/destroy_many',
        query: { ids: send.map((p) => p.id!).join(',') },
      });
      break;
  }
  const waited = await client.waitForJob(job, jobTimeoutMs);
  if (!waited.done) {
    return [
      ...outcomes,
      ...send.map(
        (p): RecordOutcome => ({
          key: p.record.key,
          status: 'retry',
          reason: waited.reason,
          afterMs: waited.afterMs,
          ...(waited.throttled && { throttled: waited.throttled }),
        }),
      ),
    ];
  }
  return [...outcomes, ...jobOutcomes(send, waited.job, op, client.redact)];
}

/** Zendesk ids of the chunk's users, by lower-cased external id (one `show_many`). */
async function idsByExternalId(client: ZendeskClient, chunk: readonly Prepared[]): Promise<Map<string, number>> {
  return new Map(
    (await client.usersByExternalId(chunk.map((p) => p.match)))
      .filter((u) => typeof u.external_id === 'string')
      .map((u) => [u.external_id!.toLowerCase(), u.id]),
  );
}

/**
 * A `create_many` that timed out or got a 5xx may have queued its job: it is not sent again.
 * Matched on external id, the users are looked up (`show_many`): those found were created; the
 * others are retried later (the job may still be queued, so they are not sent again now). Matched
 * on email there is no bulk lookup (search is indexed with a delay, one query per address), so
 * every user is retried later.
 */
async function reconcileCreates(
  client: ZendeskClient,
  matchField: MatchKey,
  sent: readonly Prepared[],
  error: UnconfirmedWriteError,
): Promise<RecordOutcome[]> {
  const reason = `${error.message}; looked up before any resend`;
  if (matchField !== 'external_id') {
    return sent.map((p) => ({ key: p.record.key, status: 'retry', reason, afterMs: UNCONFIRMED_RETRY_MS }));
  }
  const found = await idsByExternalId(client, sent);
  return sent.map((p): RecordOutcome => {
    const id = found.get(p.match.toLowerCase());
    return id !== undefined
      ? { key: p.record.key, status: 'ok', action: 'created', destinationId: String(id) }
      : { key: p.record.key, status: 'retry', reason, afterMs: UNCONFIRMED_RETRY_MS };
  });
}

/** Records of an unconfirmed create are retried this much later, when its job has surely run. */
const UNCONFIRMED_RETRY_MS = 60_000;

/** The user object for one record, or its refusal when the match value cannot address a user. */
function prepare(record: OutboundRecord, matchField: MatchKey): Prepared | RecordOutcome {
  const key = record.key;
  const { match } = record;
  if (typeof match !== 'string' && typeof match !== 'number') {
    return { key, status: 'rejected', reason: `${matchField} must be text, got ${JSON.stringify(match)}` };
  }
  const text = String(match);
  if (matchField === 'external_id' && record.op !== 'upsert' && text.includes(',')) {
    // show_many and destroy_many take a comma-separated list of external ids.
    return {
      key,
      status: 'rejected',
      reason: `${matchField} "${text}" contains a comma, which Zendesk's bulk lookups cannot address`,
    };
  }
  const user: Record<string, JsonValue> = {};
  const custom: Record<string, JsonValue> = {};
  for (const [name, value] of Object.entries(record.fields)) {
    if (name.startsWith(CUSTOM_PREFIX)) custom[name.slice(CUSTOM_PREFIX.length)] = value;
    else if (value !== null) user[name] = value;
    else if (USER_PROPERTIES[name]?.type !== 'boolean') user[name] = emptyValue(name);
    // A null flag (suspended, restricted_agent, verified…) is left out: untouched.
  }
  if (Object.keys(custom).length > 0) user.user_fields = custom;
  user[matchField] = text;
  return { record, match: text, user };
}

/**
 * What "cleared" is for a property: no tags, else null. A user field is cleared with null
 * (https://developer.zendesk.com/api-reference/ticketing/users/users/#json-format). Flags are
 * never "cleared": false is a value (`suspended: false` unsuspends a user), and the Users
 * reference documents no null for them, so a null flag is not sent at all.
 */
function emptyValue(name: string): JsonValue {
  if (name === 'tags') return [];
  return null;
}

function withoutMatch(user: Record<string, JsonValue>, matchField: MatchKey): Record<string, JsonValue> {
  const { [matchField]: _match, ...rest } = user;
  return rest;
}

/**
 * Reads a finished job. Each result is placed by, in order: its `index` (bulk create and failure
 * results, Job Statuses "Results"); else the `external_id` or `email` it names (create_or_update_many
 * results carry the user's email, as observed); else its position, when there is one result per
 * user (Zendesk confirmed results keep the request's order,
 * https://support.zendesk.com/hc/en-us/community/posts/4408861015066); else by Zendesk id when
 * every user sent had one (update and delete). A user without a result (a failed or killed job,
 * results that cannot be placed) is retried.
 */
function jobOutcomes(
  sent: readonly Prepared[],
  job: JobStatus,
  op: OutboundRecord['op'],
  redact: (s: string) => string,
): RecordOutcome[] {
  const failedJob = job.status === 'failed' || job.status === 'killed';
  const missing = failedJob
    ? `the Zendesk job ${job.id} was ${job.status === 'killed' ? 'killed' : 'failed'}: ${redact(String(job.message ?? 'no message')).slice(0, REASON_CHARS)}`
    : `the Zendesk job ${job.id} returned no result for this user`;
  const raw = job.results;
  if (!failedJob && op === 'delete' && raw && typeof raw === 'object' && !Array.isArray(raw)) {
    // Bulk deletes may answer `{ "success": true }` for the whole job.
    const ok = (raw as { success?: unknown }).success === true;
    return sent.map(
      (p): RecordOutcome =>
        ok
          ? { key: p.record.key, status: 'ok', action: 'deleted' }
          : { key: p.record.key, status: 'retry', reason: missing },
    );
  }
  const results = (Array.isArray(raw) ? raw : []).filter(
    (r): r is JobResult => r !== null && typeof r === 'object' && !Array.isArray(r),
  );
  const byPosition = placeResults(sent, results);
  return sent.map((p, i): RecordOutcome => {
    const key = p.record.key;
    const result = byPosition.get(i);
    if (!result) return { key, status: 'retry', reason: missing };
    return resultOutcome(key, result, op, redact);
  });
}

/** The result of each user sent, by position in the request (see jobOutcomes). */
function placeResults(sent: readonly Prepared[], results: readonly JobResult[]): Map<number, JobResult> {
  const placed = new Map<number, JobResult>();
  const lower = (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : undefined);
  const byKey = (field: 'external_id' | 'email') => {
    const positions = new Map<string, number>();
    sent.forEach((p, i) => {
      const value = lower(p.user[field]);
      if (value !== undefined) positions.set(value, i);
    });
    return positions;
  };
  const byExternalId = byKey('external_id');
  const byEmail = byKey('email');
  const oneEach = results.length === sent.length;
  const byId =
    sent.every((p) => p.id !== undefined) && results.every((r) => typeof r.id === 'number')
      ? new Map(sent.map((p, i) => [p.id!, i]))
      : undefined;
  for (const [n, r] of results.entries()) {
    let i: number | undefined;
    if (typeof r.index === 'number' && Number.isInteger(r.index) && r.index >= 0 && r.index < sent.length) i = r.index;
    else {
      // The user a result names may not be the one sent with that address (a user found by
      // external id answers with its own email): then its position decides.
      const named =
        (lower(r.external_id) !== undefined ? byExternalId.get(lower(r.external_id)!) : undefined) ??
        (lower(r.email) !== undefined ? byEmail.get(lower(r.email)!) : undefined);
      i = named ?? byId?.get(r.id!) ?? (oneEach ? n : undefined);
    }
    // A result that cannot be placed, or lands where another already did, is not guessed at.
    if (i !== undefined && !placed.has(i)) placed.set(i, r);
  }
  return placed;
}

function resultOutcome(
  key: string,
  result: JobResult,
  op: OutboundRecord['op'],
  redact: (s: string) => string,
): RecordOutcome {
  const failed = result.success === false || result.status === 'Failed' || typeof result.error === 'string';
  if (failed) {
    const said = [result.error, result.details].filter((s) => typeof s === 'string' && s !== '').join(': ');
    // A user deleted meanwhile is what a delete wanted.
    if (op === 'delete' && /not ?found/i.test(said)) return { key, status: 'ok', action: 'deleted' };
    return {
      key,
      status: 'rejected',
      reason: redact(said || `Zendesk refused the user (${JSON.stringify(result)})`).slice(0, REASON_CHARS),
    };
  }
  const what = `${result.action ?? ''} ${result.status ?? ''}`.toLowerCase();
  // A bulk create's results say only `{ id, index }`: create_many created the user.
  const action =
    op === 'delete' || /delete/.test(what) ? 'deleted' : op === 'insert' || /create/.test(what) ? 'created' : 'updated';
  const id = typeof result.id === 'number' && result.id > 0 ? String(result.id) : undefined;
  return { key, status: 'ok', action, ...(id !== undefined && action !== 'deleted' && { destinationId: id }) };
}
