import { type OutboundRecord, type RecordOutcome, unfinished, type WriteBatch } from '#connectors/sdk/destination';
import { ConnectorConfigError, UnconfirmedWriteError } from '#connectors/sdk/errors';
import type { JsonValue } from '#connectors/sdk/types';
import type { BatchInput, BatchRefused, HubSpotClient, HubSpotError, HubSpotRecord } from './client.ts';
import { contextStrings, mentions, type Problem, problemsOf, reasonOf } from './errors.ts';
import { MAX_BATCH_INPUTS } from './limits.ts';

/**
 * Writing one batch with the CRM v3 batch endpoints, one outcome per record.
 *
 * - upsert: `batch/upsert` with `idProperty` = the match field and `id` = its value.
 * - insert: `batch/create` with the match field among the properties.
 * - update: `batch/read` by the match field, then `batch/update` by record ID: updates by
 *   `idProperty` are refused for a contact's `email` ("Unable to perform update/upsert by
 *   non-unique 0-1 property"), and update mode must never create.
 * - delete (mirror): `batch/read`, then `batch/archive` by record ID (archive takes IDs only).
 *
 * Each input carries `objectWriteTraceId` = the record key, which turns on HubSpot's multi-status
 * answers (207) where it supports them: per-input `errors[]` name the input in
 * `context.objectWriteTraceId`. Where it does not (an upsert by `email` is all or nothing:
 * "Partial upserts are not supported when using email as the idProperty"), HubSpot refuses the
 * whole batch with a 400 and nothing is written: the records at fault are found in the error body
 * (the invalid value is quoted in it), rejected, and the rest is sent again; a refusal that names
 * no record is narrowed down by halving the batch.
 *
 * A write may take several requests (chunks of 100, a read before an update or an archive, the
 * retries that narrow a refusal down): once one write request went through, a failure of a later
 * one (a 429, the lane's pace, a timeout) keeps what was written and gives back the rest.
 * A create that may have been applied (a timeout, a dropped connection, a 5xx: UnconfirmedWriteError)
 * is reconciled by reading the records by their match value.
 * https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
 * https://developers.hubspot.com/docs/api-reference/error-handling
 */

/**
 * Requests one chunk may spend narrowing down refusals (a refusal naming no record costs about
 * two per halving); records left unresolved are retried later, in a smaller message.
 */
const MAX_ATTEMPTS_PER_CHUNK = 10;

/**
 * How far HubSpot's clock may be behind ours when reconciling an unconfirmed create: a record
 * created earlier than this before the request was sent was not created by it. Inferred.
 */
const CLOCK_SKEW_MS = 60_000;

/** Codes about a property itself (not a value): every record sending that property is at fault. */
const PROPERTY_CODES = new Set(['PROPERTY_DOESNT_EXIST', 'READ_ONLY_VALUE']);

export type Outcomes = Map<string, RecordOutcome>;
export type Attempt = { readonly outcomes: Outcomes } | { readonly refused: BatchRefused };

export interface Target {
  readonly client: HubSpotClient;
  readonly object: string;
  readonly matchField: string;
  /** Whether a write request (not a read) may have changed HubSpot yet. */
  readonly progress: { written: boolean };
}

export async function writeBatch(client: HubSpotClient, batch: WriteBatch): Promise<RecordOutcome[]> {
  const target: Target = { client, object: batch.object, matchField: batch.matchField, progress: { written: false } };
  const outcomes: Outcomes = new Map();
  const byOp = new Map<OutboundRecord['op'], OutboundRecord[]>();
  const seen = new Set<string>();
  for (const record of batch.records) {
    if (matchText(record.match) === undefined) {
      outcomes.set(record.key, {
        key: record.key,
        status: 'rejected',
        reason: `no ${batch.matchField} value: HubSpot identifies records by it`,
        field: batch.matchField,
      });
      continue;
    }
    const value = `${record.op}\u0000${normalized(batch.matchField, matchText(record.match)!)}`;
    if (seen.has(value)) {
      // HubSpot refuses duplicate IDs in one batch: the later record goes in a later request.
      outcomes.set(record.key, {
        key: record.key,
        status: 'retry',
        reason: `another record of this batch has the same ${batch.matchField}`,
      });
      continue;
    }
    seen.add(value);
    byOp.set(record.op, [...(byOp.get(record.op) ?? []), record]);
  }
  try {
    for (const [op, records] of byOp) {
      const attempt = (part: readonly OutboundRecord[]) => {
        switch (op) {
          case 'upsert':
            return upsert(target, part);
          case 'insert':
            return insert(target, part);
          case 'update':
            return update(target, part);
          case 'delete':
            return archive(target, part);
        }
      };
      // A lane's batch_size may exceed what one request takes.
      for (let at = 0; at < records.length; at += MAX_BATCH_INPUTS) {
        const chunk = records.slice(at, at + MAX_BATCH_INPUTS);
        await isolate(target, chunk, attempt, { left: MAX_ATTEMPTS_PER_CHUNK }, outcomes);
      }
    }
  } catch (error) {
    // Nothing written yet: the whole batch's failure, for the engine (a rate limit gives it back
    // without spending its retry budget).
    if (!target.progress.written) throw error;
    // Something was: it stands, and the records not done go back (throttled for a rate limit).
    const rest = batch.records.filter((r) => !outcomes.has(r.key)).map((r) => r.key);
    for (const outcome of unfinished(rest, error)) outcomes.set(outcome.key, outcome);
  }
  return batch.records.map(
    (r) => outcomes.get(r.key) ?? { key: r.key, status: 'retry', reason: 'HubSpot returned no result for this record' },
  );
}

/** `batch/upsert` by the match field. */
export async function upsert(target: Target, records: readonly OutboundRecord[]): Promise<Attempt> {
  const answer = await target.client.batch(target.object, 'upsert', {
    inputs: records.map((r) => ({
      idProperty: target.matchField,
      id: matchText(r.match)!,
      properties: propertiesOf(r.fields),
      objectWriteTraceId: r.key,
    })),
  });
  if (answer.kind === 'refused') return { refused: answer };
  target.progress.written = true;
  return { outcomes: resultsToOutcomes(target, records, answer.results, answer.errors, 'upsert') };
}

/**
 * `batch/create`: the match field is one of the new record's properties. A create is not sent
 * twice blindly: when HubSpot may have applied it without answering, the records are looked up.
 */
async function insert(target: Target, records: readonly OutboundRecord[]): Promise<Attempt> {
  let answer: Awaited<ReturnType<HubSpotClient['batch']>>;
  const sentAt = Date.now();
  try {
    answer = await target.client.batch(target.object, 'create', {
      inputs: records.map((r) => ({
        properties: { ...propertiesOf(r.fields), [target.matchField]: matchText(r.match)! },
        objectWriteTraceId: r.key,
      })),
    });
  } catch (error) {
    if (!(error instanceof UnconfirmedWriteError)) throw error;
    return { outcomes: await reconcile(target, records, error, sentAt) };
  }
  if (answer.kind === 'refused') return { refused: answer };
  target.progress.written = true;
  return { outcomes: resultsToOutcomes(target, records, answer.results, answer.errors, 'create') };
}

/**
 * After a create HubSpot may have applied (UnconfirmedWriteError): `batch/read` by the match field.
 * A record found that HubSpot created since the request was sent is that request's work, reported
 * written with its ID; one created well before (more than CLOCK_SKEW_MS: the clocks differ) was
 * there already, and is rejected as insert mode rejects it (HubSpot's CONFLICT); one not found was
 * not created, and goes back to be sent again. When the match field cannot identify records (a
 * property without unique values), nothing can be confirmed: every record goes back.
 * https://developers.hubspot.com/docs/api-reference/latest/crm/objects/objects/batch/get-objects
 */
async function reconcile(
  target: Target,
  records: readonly OutboundRecord[],
  error: UnconfirmedWriteError,
  sentAt: number,
): Promise<Outcomes> {
  // Whatever happens next, HubSpot may hold some of these records now.
  target.progress.written = true;
  const outcomes: Outcomes = new Map();
  const found = await lookup(target, records);
  if ('refused' in found) {
    for (const outcome of unfinished(
      records.map((r) => r.key),
      error,
    ))
      outcomes.set(outcome.key, outcome);
    return outcomes;
  }
  for (const record of records) {
    const value = matchText(record.match)!;
    const id = found.ids.get(normalized(target.matchField, value));
    const createdAt = id === undefined ? Number.NaN : Date.parse(found.createdAt.get(id) ?? '');
    if (id === undefined) {
      outcomes.set(record.key, {
        key: record.key,
        status: 'retry',
        reason: `${error.message}; no HubSpot ${target.object} record has ${target.matchField} = ${value} since, so it was not created: sent again later`,
      });
    } else if (createdAt < sentAt - CLOCK_SKEW_MS) {
      outcomes.set(record.key, {
        key: record.key,
        status: 'rejected',
        reason: `already exists in HubSpot (insert mode never updates): record ${id} was created at ${new Date(createdAt).toISOString()}, before this create`,
        field: target.matchField,
      });
    } else outcomes.set(record.key, { key: record.key, status: 'ok', destinationId: id });
  }
  return outcomes;
}

/** `batch/read` to find the records, then `batch/update` of those found, by record ID. */
async function update(target: Target, records: readonly OutboundRecord[]): Promise<Attempt> {
  const found = await lookup(target, records);
  if ('refused' in found) return found;
  const outcomes: Outcomes = new Map();
  const inputs: BatchInput[] = [];
  const byId = new Map<string, OutboundRecord>();
  for (const record of records) {
    const id = found.ids.get(normalized(target.matchField, matchText(record.match)!));
    if (id === undefined) {
      outcomes.set(record.key, {
        key: record.key,
        status: 'rejected',
        reason: `no HubSpot ${target.object} record has ${target.matchField} = ${matchText(record.match)} (update mode never creates)`,
        field: target.matchField,
      });
    } else if (byId.has(id)) {
      // Two model rows on one HubSpot record: HubSpot refuses duplicate IDs in one batch.
      outcomes.set(record.key, {
        key: record.key,
        status: 'retry',
        reason: `another record of this batch also updates HubSpot record ${id}`,
      });
    } else {
      byId.set(id, record);
      inputs.push({ id, properties: propertiesOf(record.fields), objectWriteTraceId: record.key });
    }
  }
  if (inputs.length === 0) return { outcomes };
  const answer = await target.client.batch(target.object, 'update', { inputs });
  if (answer.kind === 'refused') return { refused: answer };
  target.progress.written = true;
  const updated = resultsToOutcomes(target, [...byId.values()], answer.results, answer.errors, 'update', byId);
  for (const [key, outcome] of updated) outcomes.set(key, outcome);
  return { outcomes };
}

/** `batch/read`, then `batch/archive` of those found; a record already gone counts as deleted. */
async function archive(target: Target, records: readonly OutboundRecord[]): Promise<Attempt> {
  const found = await lookup(target, records);
  if ('refused' in found) return found;
  const ids = [...new Set(found.ids.values())];
  if (ids.length > 0) {
    const answer = await target.client.batch(target.object, 'archive', { inputs: ids.map((id) => ({ id })) });
    if (answer.kind === 'refused') return { refused: answer };
    target.progress.written = true;
  }
  const outcomes: Outcomes = new Map();
  for (const record of records) {
    const id = found.ids.get(normalized(target.matchField, matchText(record.match)!));
    outcomes.set(record.key, {
      key: record.key,
      status: 'ok',
      action: 'deleted',
      ...(id !== undefined && { destinationId: id }),
    });
  }
  return { outcomes };
}

/**
 * Record IDs by match value. Values not found come back as a multi-status `OBJECT_NOT_FOUND`
 * error, which only means "no such record" here.
 * https://developers.hubspot.com/docs/api-reference/latest/crm/objects/objects/batch/get-objects
 */
export async function lookup(
  target: Target,
  records: readonly OutboundRecord[],
): Promise<
  { readonly ids: Map<string, string>; readonly createdAt: Map<string, string> } | { readonly refused: BatchRefused }
> {
  const values = [...new Set(records.map((r) => matchText(r.match)!))];
  const answer = await target.client.batch(target.object, 'read', {
    idProperty: target.matchField,
    properties: [target.matchField],
    inputs: values.map((id) => ({ id })),
  });
  if (answer.kind === 'refused') return { refused: answer };
  const ids = new Map<string, string>();
  const createdAt = new Map<string, string>();
  for (const result of answer.results) {
    if (result.createdAt !== undefined) createdAt.set(result.id, result.createdAt);
    const value = result.properties?.[target.matchField];
    if (typeof value === 'string') ids.set(normalized(target.matchField, value), result.id);
    else if (values.length === 1 && answer.results.length === 1)
      ids.set(normalized(target.matchField, values[0]!), result.id);
  }
  return { ids, createdAt };
}

/**
 * Outcomes from a processed batch: per-input errors by `objectWriteTraceId`, results by trace ID,
 * by record ID (updates) or by match value; results that echo none of them are paired with the
 * records left by position, when their counts agree.
 */
function resultsToOutcomes(
  target: Target,
  records: readonly OutboundRecord[],
  results: readonly HubSpotRecord[],
  errors: readonly HubSpotError[],
  action: 'upsert' | 'create' | 'update',
  byId?: ReadonlyMap<string, OutboundRecord>,
): Outcomes {
  const outcomes: Outcomes = new Map();
  const byKey = new Map(records.map((r) => [r.key, r]));
  const byMatch = new Map(records.map((r) => [normalized(target.matchField, matchText(r.match)!), r]));
  for (const error of errors) {
    const keys = contextStrings(error, 'objectWriteTraceId').filter((k) => byKey.has(k));
    const named = keys.length > 0 ? keys : records.filter((r) => mentionsRecord(error, target, r)).map((r) => r.key);
    const problem = problemsOf(error)[0]!;
    for (const key of named) outcomes.set(key, rejection(key, problem, error, target, action));
  }
  const unclaimed: HubSpotRecord[] = [];
  for (const result of results) {
    const value = result.properties?.[target.matchField];
    const record =
      (result.objectWriteTraceId !== undefined ? byKey.get(result.objectWriteTraceId) : undefined) ??
      byId?.get(result.id) ??
      (typeof value === 'string' ? byMatch.get(normalized(target.matchField, value)) : undefined);
    if (record && !outcomes.has(record.key)) outcomes.set(record.key, success(record.key, result, action));
    else unclaimed.push(result);
  }
  const waiting = records.filter((r) => !outcomes.has(r.key));
  if (unclaimed.length === waiting.length) {
    for (const [i, result] of unclaimed.entries())
      outcomes.set(waiting[i]!.key, success(waiting[i]!.key, result, action));
  }
  if (errors.length === 0) {
    // A complete answer without errors: whatever was not echoed back was written too.
    for (const record of records)
      if (!outcomes.has(record.key)) outcomes.set(record.key, { key: record.key, status: 'ok' });
  }
  return outcomes;
}

function success(key: string, result: HubSpotRecord, action: 'upsert' | 'create' | 'update'): RecordOutcome {
  const done = actionOf(result, action);
  return { key, status: 'ok', destinationId: result.id, ...(done && { action: done }) };
}

/** An upsert tells with `new`; a create creates and an update updates. */
function actionOf(result: HubSpotRecord, action: 'upsert' | 'create' | 'update'): 'created' | 'updated' | undefined {
  if (action === 'create') return 'created';
  if (action === 'update') return 'updated';
  if (result.new === undefined) return undefined;
  return result.new ? 'created' : 'updated';
}

function rejection(
  key: string,
  problem: Problem,
  error: HubSpotError,
  target: Target,
  action: 'upsert' | 'create' | 'update',
): RecordOutcome {
  const conflict = error.category === 'CONFLICT' && action === 'create';
  const reason = reasonOf(problem, error);
  return {
    key,
    status: 'rejected',
    reason: conflict ? `already exists in HubSpot (insert mode never updates): ${reason}` : reason,
    ...(problem.property ? { field: problem.property } : conflict ? { field: target.matchField } : {}),
  };
}

/**
 * Sends `records` through `attempt`, narrowing a whole-batch refusal down to the records at fault:
 * those the error names are rejected and the rest sent again; when it names none, the part is
 * halved. Attempts are bounded per write: records still unresolved are retried later.
 */
export async function isolate(
  target: Target,
  records: readonly OutboundRecord[],
  attempt: (part: readonly OutboundRecord[]) => Promise<Attempt>,
  budget: { left: number },
  /** Where outcomes go as they are known, so a failure of a later request keeps them. */
  outcomes: Outcomes,
): Promise<void> {
  const parts: (readonly OutboundRecord[])[] = [records];
  let last: BatchRefused | undefined;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (budget.left <= 0) {
      const why = last ? `: ${reasonOf(problemsOf(last.error)[0]!, last.error)}` : '';
      for (const record of part) {
        outcomes.set(record.key, {
          key: record.key,
          status: 'retry',
          reason: `HubSpot refused its batch${why}; retried in a smaller batch`,
        });
      }
      continue;
    }
    budget.left--;
    const result = await attempt(part);
    if ('outcomes' in result) {
      for (const [key, outcome] of result.outcomes) outcomes.set(key, outcome);
      continue;
    }
    last = result.refused;
    throwIfConfigProblem(target, result.refused);
    const faults = culprits(target, result.refused.error, part);
    if (faults.size > 0) {
      for (const [key, outcome] of faults) outcomes.set(key, outcome);
      const rest = part.filter((r) => !faults.has(r.key));
      if (rest.length > 0) parts.unshift(rest);
    } else if (part.length === 1) {
      const record = part[0]!;
      const problem = problemsOf(result.refused.error)[0]!;
      outcomes.set(record.key, {
        key: record.key,
        status: 'rejected',
        reason: reasonOf(problem, result.refused.error),
        ...(problem.property && { field: problem.property }),
      });
    } else {
      const middle = Math.ceil(part.length / 2);
      parts.unshift(part.slice(0, middle), part.slice(middle));
    }
  }
}

/** Refusals no record can fix: a missing object, or a match field HubSpot cannot identify records by. */
export function throwIfConfigProblem(target: Target, refused: BatchRefused): void {
  const { error } = refused;
  const message = error.message ?? '';
  const { object, matchField } = target;
  if (
    /unable to infer object type/i.test(message) ||
    (refused.status === 404 && error.category !== 'OBJECT_NOT_FOUND')
  ) {
    throw new ConnectorConfigError(
      `HubSpot has no object "${object}" (${refused.status}: ${message.slice(0, 200)}): use contacts, companies, or a custom object's name or objectTypeId`,
    );
  }
  if (/non-unique/i.test(message)) {
    throw new ConnectorConfigError(
      `HubSpot cannot identify ${object} records by "${matchField}": its values are not unique (${message.slice(0, 200)}). Match on a property created with "Require unique values" (hasUniqueValue)${object === 'contacts' ? ' or on email' : ''}; see \`backflow fields\``,
    );
  }
  if (problemsOf(error).some((p) => p.code === 'PROPERTY_DOESNT_EXIST' && p.property === matchField)) {
    throw new ConnectorConfigError(
      `HubSpot ${object} have no property "${matchField}" to match on; see \`backflow fields\``,
    );
  }
}

/** The records an error names, with their rejection. */
function culprits(target: Target, error: HubSpotError, part: readonly OutboundRecord[]): Outcomes {
  const faults: Outcomes = new Map();
  const reject = (record: OutboundRecord, problem: Problem) => {
    if (faults.has(record.key)) return;
    faults.set(record.key, {
      key: record.key,
      status: 'rejected',
      reason: reasonOf(problem, error),
      ...(problem.property && { field: problem.property }),
    });
  };
  for (const problem of problemsOf(error)) {
    const { property } = problem;
    if (property !== undefined) {
      const sending = part.filter((r) => sentValue(target, r, property) !== undefined);
      const named = sending.filter((r) => mentions(problem.message, sentValue(target, r, property)!));
      const atFault = named.length > 0 ? named : PROPERTY_CODES.has(problem.code ?? '') ? sending : [];
      for (const record of atFault) reject(record, problem);
    } else {
      for (const record of part) {
        if (mentionsRecord(error, target, record)) reject(record, { ...problem, property: target.matchField });
      }
    }
  }
  return faults;
}

/** Whether an error quotes the record's match value (in its message or `context.ids`). */
function mentionsRecord(error: HubSpotError, target: Target, record: OutboundRecord): boolean {
  const value = matchText(record.match)!;
  const ids = contextStrings(error, 'ids').map((id) => normalized(target.matchField, id));
  return mentions(error.message ?? '', value) || ids.includes(normalized(target.matchField, value));
}

/** The text a record sends for a property (the match value for the match field). */
function sentValue(target: Target, record: OutboundRecord, property: string): string | undefined {
  if (property === target.matchField) return matchText(record.match);
  if (!(property in record.fields)) return undefined;
  return propertyValue(record.fields[property] ?? null);
}

/**
 * HubSpot takes every property value as a string; an empty string clears the property. Values
 * arrive already formatted by the SDK (`formats` in manifest.ts) for the type of the property they
 * go to (`fieldTypeOf` in fields.ts): date properties midnight UTC in epoch ms, datetimes epoch ms,
 * text properties ISO 8601 text, booleans "true"/"false", multiple checkboxes `;`-joined.
 * https://developers.hubspot.com/docs/api/crm/properties
 */
export function propertiesOf(fields: Readonly<Record<string, JsonValue>>): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields)) properties[name] = propertyValue(value);
  return properties;
}

function propertyValue(value: JsonValue): string {
  if (value === null) return '';
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(';');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function matchText(match: JsonValue): string | undefined {
  if (typeof match === 'string') return match.trim() === '' ? undefined : match;
  if (typeof match === 'number' || typeof match === 'boolean') return String(match);
  return undefined;
}

/** HubSpot keeps contact emails lowercase; other unique values compare as they are. */
export function normalized(matchField: string, value: string): string {
  return matchField === 'email' ? value.trim().toLowerCase() : value;
}
