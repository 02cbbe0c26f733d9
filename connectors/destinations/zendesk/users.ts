import type { OutboundRecord, RecordOutcome, WriteBatch } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
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
 * - upsert: `POST /api/v2/users/create_or_update_many` (finds users by `external_id` or `email`)
 * - insert: `POST /api/v2/users/create_many`, after `show_many` skips external ids already there
 * - update: `show_many` by external id, then `PUT /api/v2/users/update_many` by Zendesk id
 * - delete: `show_many` by external id, then `DELETE /api/v2/users/destroy_many?ids=` (soft delete)
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
  for (const [op, group] of byOp) {
    if ((op === 'update' || op === 'delete') && matchField !== 'external_id') {
      throw new ConnectorConfigError(
        `zendesk users: ${op === 'update' ? 'update mode' : 'mirror mode (deletes)'} needs \`match: { external_id: … }\`: Zendesk's update_many and destroy_many address users by id or external id, not by email`,
      );
    }
    for (let i = 0; i < group.length; i += MAX_USERS_PER_REQUEST) {
      const chunk = group.slice(i, i + MAX_USERS_PER_REQUEST);
      outcomes.push(...(await writeChunk(client, op, matchField, chunk, jobTimeoutMs)));
    }
  }
  const order = new Map(batch.records.map((r, i) => [r.key, i]));
  return outcomes.sort((a, b) => order.get(a.key)! - order.get(b.key)!);
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
    const found = new Map(
      (await client.usersByExternalId(chunk.map((p) => p.match)))
        .filter((u) => typeof u.external_id === 'string')
        .map((u) => [u.external_id!.toLowerCase(), u.id]),
    );
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
      job = await client.queueJob({
        method: 'POST',
        path: 'api/v2/users/create_or_update_many',
        json: { users: send.map((p) => p.user) },
      });
      break;
    case 'insert':
      job = await client.queueJob({
        method: 'POST',
        path: 'api/v2/users/create_many',
        json: { users: send.map((p) => p.user) },
      });
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
        (p): RecordOutcome => ({ key: p.record.key, status: 'retry', reason: waited.reason, afterMs: waited.afterMs }),
      ),
    ];
  }
  return [...outcomes, ...jobOutcomes(send, waited.job, op, client.redact)];
}

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
    else user[name] = value === null ? emptyValue(name) : value;
  }
  if (Object.keys(custom).length > 0) user.user_fields = custom;
  user[matchField] = text;
  return { record, match: text, user };
}

/**
 * What "cleared" is for a property: no tags, a false flag, else null. A user field is cleared
 * with null (https://developer.zendesk.com/api-reference/ticketing/users/users/#json-format).
 */
function emptyValue(name: string): JsonValue {
  if (name === 'tags') return [];
  if (USER_PROPERTIES[name]?.type === 'boolean') return false;
  return null;
}

function withoutMatch(user: Record<string, JsonValue>, matchField: MatchKey): Record<string, JsonValue> {
  const { [matchField]: _match, ...rest } = user;
  return rest;
}

/**
 * Reads a finished job. Results come one per user in request order, with `index` in the
 * documented shape; Zendesk confirmed the order is kept when `index` is absent. A user without a
 * result (a failed job) is retried.
 */
function jobOutcomes(
  sent: readonly Prepared[],
  job: JobStatus,
  op: OutboundRecord['op'],
  redact: (s: string) => string,
): RecordOutcome[] {
  const failedJob = job.status === 'failed';
  const missing = failedJob
    ? `the Zendesk job failed: ${redact(String(job.message ?? 'no message')).slice(0, REASON_CHARS)}`
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
  const byPosition = new Map<number, JobResult>();
  if (results.length > 0 && results.every((r) => typeof r.index === 'number')) {
    for (const r of results) byPosition.set(r.index!, r);
  } else if (sent.every((p) => p.id !== undefined) && results.every((r) => typeof r.id === 'number')) {
    const position = new Map(sent.map((p, i) => [p.id!, i]));
    for (const r of results) {
      const i = position.get(r.id!);
      if (i !== undefined) byPosition.set(i, r);
    }
  } else if (results.length === sent.length) {
    for (const [i, r] of results.entries()) byPosition.set(i, r);
  }
  return sent.map((p, i): RecordOutcome => {
    const key = p.record.key;
    const result = byPosition.get(i);
    if (!result) return { key, status: 'retry', reason: missing };
    return resultOutcome(key, result, op, redact);
  });
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
  const action = op === 'delete' || /delete/.test(what) ? 'deleted' : /create/.test(what) ? 'created' : 'updated';
  const id = typeof result.id === 'number' && result.id > 0 ? String(result.id) : undefined;
  return { key, status: 'ok', action, ...(id !== undefined && action !== 'deleted' && { destinationId: id }) };
}
