import { keepProgress, type OutboundRecord, type RecordOutcome, type WriteBatch } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import type { JsonValue } from '#connectors/sdk/types';
import type { EngageAnswer, MixpanelClient, UpdateObject } from './client.ts';
import { CONTROL_KEYS, objectOf } from './fields.ts';
import { MAX_REQUEST_BYTES, MAX_UPDATE_BYTES, MAX_UPDATES } from './limits.ts';
import { MATCH_KEY } from './manifest.ts';

/**
 * How Backflow records become `/engage` update objects, and how Mixpanel's `failed_records` become
 * outcomes. https://docs.mixpanel.com/reference/profile-batch-update
 *
 * A record becomes one `$set` of its non-null properties (`$ignore_time: true`, so "Updated at"
 * stays the user's own), plus one `$unset` of the properties mapped to null (a null with
 * `nulls: sync`): each update object carries one operation. A deletion (mirror) is one `$delete`
 * with `$ignore_alias: true`, so that only the profile with this very `$distinct_id` is deleted.
 * A record's updates always travel in the same request.
 */

/** How much of Mixpanel's error text an outcome keeps. */
const REASON_CHARS = 500;

/** `[` and `]`, and a comma between updates. */
const ARRAY_OVERHEAD = 2;

/** The `$distinct_id` of a record, or why it cannot identify a profile. */
export function distinctIdOf(record: OutboundRecord): string | { problem: string } {
  const { match } = record;
  if (match === null || match === '') return { problem: `missing ${MATCH_KEY}: a Mixpanel profile needs one` };
  if (typeof match === 'number' && Number.isFinite(match)) return String(match);
  if (typeof match !== 'string') return { problem: `${MATCH_KEY} must be text, got ${JSON.stringify(match)}` };
  return match;
}

/** An ISO timestamp in Mixpanel's Date format: `YYYY-MM-DDTHH:MM:SS`, UTC, without zone or fraction. */
const ISO_UTC = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|\+00:?00)$/;

/** The update objects of one record, in order. */
export function updatesOf(record: OutboundRecord, id: string, token: string, batch: WriteBatch): UpdateObject[] {
  const base = { $token: token, $distinct_id: id };
  if (record.op === 'delete') return [{ ...base, $delete: '', $ignore_alias: true }];
  const set: Record<string, JsonValue> = {};
  const unset: string[] = [];
  for (const [name, value] of Object.entries(record.fields)) {
    if (value === null) {
      unset.push(name);
      continue;
    }
    // Mixpanel's Date: "An ISO formatted date YYYY-MM-DDTHH:MM:SS in UTC"
    // (https://docs.mixpanel.com/docs/data-structure/property-reference/data-type#date).
    const iso = batch.fieldTypes[name] === 'timestamp' && typeof value === 'string' ? ISO_UTC.exec(value) : null;
    set[name] = iso ? iso[1]! : value;
  }
  const updates: UpdateObject[] = [];
  if (Object.keys(set).length > 0 || unset.length === 0) updates.push({ ...base, $set: set, $ignore_time: true });
  if (unset.length > 0) updates.push({ ...base, $unset: unset, $ignore_time: true });
  return updates;
}

interface Pending {
  readonly record: OutboundRecord;
  readonly updates: UpdateObject[];
  readonly bytes: number;
}

/** Splits records into requests of at most 2,000 updates and 2,097,152 bytes, a record's updates together. */
export function requestsOf(pending: readonly Pending[]): Pending[][] {
  const runs: Pending[][] = [];
  let run: Pending[] = [];
  let updates = 0;
  let bytes = ARRAY_OVERHEAD;
  for (const p of pending) {
    if (run.length > 0 && (updates + p.updates.length > MAX_UPDATES || bytes + p.bytes > MAX_REQUEST_BYTES)) {
      runs.push(run);
      run = [];
      updates = 0;
      bytes = ARRAY_OVERHEAD;
    }
    run.push(p);
    updates += p.updates.length;
    bytes += p.bytes;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** Outcomes of one request: a record is refused when any of its updates is in `failed_records`. */
export function engageOutcomes(
  run: readonly Pending[],
  answer: EngageAnswer,
  redact: (t: string) => string,
): RecordOutcome[] {
  const byIndex = new Map(answer.failed.map((f) => [f.index, f]));
  let index = 0;
  return run.map(({ record, updates }): RecordOutcome => {
    const failures = updates.map((_, i) => byIndex.get(index + i)).filter((f) => f !== undefined);
    index += updates.length;
    if (failures.length === 0) {
      return { key: record.key, status: 'ok', ...(record.op === 'delete' && { action: 'deleted' }) };
    }
    const reason = redact(failures.map((f) => f.message).join('; ')).slice(0, REASON_CHARS);
    const field = failures.map((f) => propertyOf(f.field)).find((f) => f !== undefined && f in record.fields);
    return { key: record.key, status: 'rejected', reason, ...(field !== undefined && { field }) };
  });
}

/** `$set.plan` → `plan`. Inferred: `field` names the property under its operation. */
function propertyOf(field: string | undefined): string | undefined {
  if (field === undefined) return undefined;
  const at = field.indexOf('.');
  return at < 0 ? field : field.slice(at + 1);
}

/**
 * Writes one batch. Throws only when the first request fails (nothing landed yet); once a request
 * landed, a later throttled or failing request leaves its records to be retried (`keepProgress`).
 */
export async function writeProfiles(client: MixpanelClient, batch: WriteBatch): Promise<RecordOutcome[]> {
  objectOf(batch.object);
  if (batch.matchField !== MATCH_KEY) {
    throw new ConnectorConfigError(
      `Mixpanel profiles are matched on ${MATCH_KEY}, not "${batch.matchField}": set the sync's match to { ${MATCH_KEY}: <column> }`,
    );
  }
  const refused: RecordOutcome[] = [];
  const pending: Pending[] = [];
  for (const record of batch.records) {
    if (record.op === 'insert' || record.op === 'update') {
      throw new ConnectorConfigError(
        `Mixpanel cannot ${record.op} only (/engage $set creates or updates): use mode upsert or mirror`,
      );
    }
    for (const name of Object.keys(record.fields)) {
      if (CONTROL_KEYS.has(name)) {
        throw new ConnectorConfigError(
          `"${name}" is a key of Mixpanel's update object, not a profile property: remove it from the sync's mappings`,
        );
      }
    }
    const id = distinctIdOf(record);
    if (typeof id !== 'string') {
      refused.push({ key: record.key, status: 'rejected', reason: id.problem, field: MATCH_KEY });
      continue;
    }
    const updates = updatesOf(record, id, client.token, batch);
    const sizes = updates.map((u) => Buffer.byteLength(JSON.stringify(u)));
    const largest = Math.max(...sizes);
    if (largest > MAX_UPDATE_BYTES) {
      refused.push({
        key: record.key,
        status: 'rejected',
        reason: `the profile update is ${largest} bytes: Mixpanel takes at most 1 MB (${MAX_UPDATE_BYTES} bytes) per update`,
        ...(largestField(record) !== undefined && { field: largestField(record) }),
      });
      continue;
    }
    pending.push({ record, updates, bytes: sizes.reduce((a, b) => a + b + 1, 0) });
  }
  const runs = requestsOf(pending);
  const sent = await keepProgress(
    runs,
    (run) => run.map((p) => p.record.key),
    async (run) => engageOutcomes(run, await client.engage(run.flatMap((p) => p.updates)), client.redact),
  );
  const byKey = new Map([...refused, ...sent].map((o) => [o.key, o]));
  return batch.records.map((r) => byKey.get(r.key) ?? { key: r.key, status: 'retry', reason: 'not sent to Mixpanel' });
}

function largestField(record: OutboundRecord): string | undefined {
  let best: string | undefined;
  let size = -1;
  for (const [name, value] of Object.entries(record.fields)) {
    const n = JSON.stringify(value).length;
    if (n > size) {
      best = name;
      size = n;
    }
  }
  return best;
}
