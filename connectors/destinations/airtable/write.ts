import { type OutboundRecord, type RecordOutcome, unfinished, type WriteBatch } from '#connectors/sdk/destination';
import { ConnectorConfigError, UnconfirmedWriteError } from '#connectors/sdk/errors';
import type { JsonValue } from '#connectors/sdk/types';
import type { AirtableClient, AirtableRecord, Refused, WriteAnswer } from './client.ts';
import { MAX_RECORDS } from './limits.ts';

/**
 * Writing one batch, one outcome per record, 10 records a request:
 *
 * - upsert: `PATCH` with `performUpsert: { fieldsToMergeOn: [match field] }`.
 * - insert: `POST` (create), the match field among the fields.
 * - update: the records looked up by the match field (`filterByFormula`), then `PATCH` by record
 *   ID; a value no record has is rejected (update mode never creates).
 * - delete (mirror): looked up the same way, then `DELETE ?records[]=…` by record ID.
 *
 * Airtable answers a write as a whole: one invalid cell value refuses the request (422
 * `INVALID_VALUE_FOR_COLUMN`, "Field "X" cannot accept the provided value") without saying which
 * record, and nothing of it is written. The part is halved until the refused record is alone,
 * then rejected with Airtable's reason; the others land.
 *
 * A write may take several requests (a lookup, chunks, the halvings): once one write went through,
 * a failure of a later request (a 429, the lane's pace, a timeout) keeps what was written and gives
 * back the rest.
 * https://airtable.com/developers/web/api/update-multiple-records
 * https://support.airtable.com/docs/airtable-api-common-troubleshooting
 */

/** Requests one chunk of 10 may spend narrowing refusals down (one bad record costs about 7). */
const MAX_REQUESTS_PER_CHUNK = 12;
/** How far Airtable's clock may be behind ours when reconciling a create. Inferred. */
const CLOCK_SKEW_MS = 60_000;
const MAX_REASON = 500;

type Outcomes = Map<string, RecordOutcome>;

interface Target {
  readonly client: AirtableClient;
  readonly table: string;
  readonly matchField: string;
  readonly progress: { written: boolean };
}

/** A match value as text, to compare with what Airtable returns; undefined when empty. */
export function matchText(value: JsonValue): string | undefined {
  if (value === null || value === undefined) return undefined;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text === '' ? undefined : text;
}

export async function writeBatch(client: AirtableClient, batch: WriteBatch): Promise<RecordOutcome[]> {
  const target: Target = { client, table: batch.object, matchField: batch.matchField, progress: { written: false } };
  const outcomes: Outcomes = new Map();
  const byOp = new Map<OutboundRecord['op'], OutboundRecord[]>();
  const seen = new Set<string>();
  for (const record of batch.records) {
    const value = matchText(record.match);
    if (value === undefined) {
      outcomes.set(record.key, {
        key: record.key,
        status: 'rejected',
        reason: `no ${batch.matchField} value: Airtable records are matched on it`,
        field: batch.matchField,
      });
      continue;
    }
    if (seen.has(`${record.op}\u0000${value}`)) {
      // Two records merging on one value in one request: the later one goes in a later request.
      outcomes.set(record.key, {
        key: record.key,
        status: 'retry',
        reason: `another record of this batch has the same ${batch.matchField}`,
      });
      continue;
    }
    seen.add(`${record.op}\u0000${value}`);
    byOp.set(record.op, [...(byOp.get(record.op) ?? []), record]);
  }
  try {
    for (const [op, records] of byOp) {
      for (let at = 0; at < records.length; at += MAX_RECORDS) {
        const chunk = records.slice(at, at + MAX_RECORDS);
        const done = await OPERATIONS[op](target, chunk);
        for (const [key, outcome] of done) outcomes.set(key, outcome);
      }
    }
  } catch (error) {
    if (!target.progress.written) throw error;
    const rest = batch.records.filter((r) => !outcomes.has(r.key)).map((r) => r.key);
    for (const outcome of unfinished(rest, error)) outcomes.set(outcome.key, outcome);
  }
  return batch.records.map(
    (r) =>
      outcomes.get(r.key) ?? { key: r.key, status: 'retry', reason: 'Airtable returned no result for this record' },
  );
}

const OPERATIONS: Record<OutboundRecord['op'], (target: Target, chunk: OutboundRecord[]) => Promise<Outcomes>> = {
  upsert: (target, chunk) =>
    isolate(target, chunk, async (part) => {
      const answer = await target.client.upsert(
        target.table,
        target.matchField,
        part.map((r) => fieldsOf(target, r)),
      );
      return written(target, part, answer, (record, i) => ({
        key: record.key,
        status: 'ok',
        action: answer.kind === 'done' && answer.created?.includes(i.id) ? 'created' : 'updated',
        destinationId: i.id,
      }));
    }),
  insert: insert,
  update: async (target, chunk) => {
    const outcomes: Outcomes = new Map();
    const ids = await lookup(target, chunk);
    const found: { record: OutboundRecord; id: string }[] = [];
    for (const record of chunk) {
      const matches = ids.get(matchText(record.match)!) ?? [];
      if (matches.length === 1) found.push({ record, id: matches[0]! });
      else {
        outcomes.set(record.key, {
          key: record.key,
          status: 'rejected',
          reason:
            matches.length === 0
              ? `no Airtable record in ${target.table} has ${target.matchField} = ${matchText(record.match)} (update mode never creates)`
              : `${matches.length} Airtable records in ${target.table} have ${target.matchField} = ${matchText(record.match)}: update mode needs exactly one`,
          field: target.matchField,
        });
      }
    }
    const idOf = new Map(found.map((f) => [f.record.key, f.id]));
    const done = await isolate(
      target,
      found.map((f) => f.record),
      async (part) => {
        const answer = await target.client.update(
          target.table,
          part.map((r) => ({ id: idOf.get(r.key)!, fields: { ...r.fields } })),
        );
        return written(target, part, answer, (record, i) => ({
          key: record.key,
          status: 'ok',
          action: 'updated',
          destinationId: i.id,
        }));
      },
    );
    for (const [key, outcome] of done) outcomes.set(key, outcome);
    return outcomes;
  },
  delete: async (target, chunk) => {
    const outcomes: Outcomes = new Map();
    const ids = await lookup(target, chunk);
    const toDelete: { key: string; id: string }[] = [];
    for (const record of chunk) {
      const matches = ids.get(matchText(record.match)!) ?? [];
      // Gone already: what mirror wants.
      if (matches.length === 0) outcomes.set(record.key, { key: record.key, status: 'ok', action: 'deleted' });
      for (const id of matches) toDelete.push({ key: record.key, id });
    }
    for (let at = 0; at < toDelete.length; at += MAX_RECORDS) {
      const part = toDelete.slice(at, at + MAX_RECORDS);
      const answer = await target.client.delete(
        target.table,
        part.map((p) => p.id),
      );
      if (answer.kind === 'refused') {
        // A record deleted meanwhile (ROW_DOES_NOT_EXIST): the next lookup finds it gone. Never
        // rejected: a row that left the model never changes again, so it would never be re-sent.
        for (const p of part) {
          outcomes.set(p.key, { key: p.key, status: 'retry', reason: reasonOf(answer.refused) });
        }
        continue;
      }
      target.progress.written = true;
      const deleted = new Set(answer.records.map((r) => r.id));
      for (const p of part) {
        if (outcomes.get(p.key)?.status === 'retry') continue;
        outcomes.set(
          p.key,
          deleted.has(p.id)
            ? { key: p.key, status: 'ok', action: 'deleted', destinationId: p.id }
            : { key: p.key, status: 'retry', reason: `Airtable did not confirm the deletion of ${p.id}` },
        );
      }
    }
    return outcomes;
  },
};

/** The fields of a record, with its match value. */
function fieldsOf(target: Target, record: OutboundRecord): Record<string, JsonValue> {
  return { ...record.fields, [target.matchField]: record.match };
}

/**
 * `POST` creates. A create Airtable may have applied without answering (UnconfirmedWriteError)
 * is reconciled: the records found by their match value, created since the request was sent, are
 * that request's work; the others go back.
 */
async function insert(target: Target, chunk: OutboundRecord[]): Promise<Outcomes> {
  return isolate(target, chunk, async (part) => {
    const sentAt = Date.now();
    let answer: WriteAnswer;
    try {
      answer = await target.client.create(
        target.table,
        part.map((r) => fieldsOf(target, r)),
      );
    } catch (error) {
      if (!(error instanceof UnconfirmedWriteError)) throw error;
      target.progress.written = true;
      return { outcomes: await reconcile(target, part, error, sentAt) };
    }
    return written(target, part, answer, (record, i) => ({
      key: record.key,
      status: 'ok',
      action: 'created',
      destinationId: i.id,
    }));
  });
}

async function reconcile(
  target: Target,
  part: readonly OutboundRecord[],
  error: UnconfirmedWriteError,
  sentAt: number,
): Promise<Outcomes> {
  const outcomes: Outcomes = new Map();
  let found: Map<string, AirtableRecord[]>;
  try {
    found = await lookupRecords(target, part);
  } catch (lookupError) {
    for (const o of unfinished(
      part.map((r) => r.key),
      lookupError,
    ))
      outcomes.set(o.key, o);
    return outcomes;
  }
  for (const record of part) {
    const fresh = (found.get(matchText(record.match)!) ?? []).find(
      (r) => Date.parse(r.createdTime ?? '') >= sentAt - CLOCK_SKEW_MS,
    );
    outcomes.set(
      record.key,
      fresh
        ? { key: record.key, status: 'ok', action: 'created', destinationId: fresh.id }
        : {
            key: record.key,
            status: 'retry',
            reason: `${error.message}; no ${target.matchField} = ${matchText(record.match)} record was created since: sent again later`,
          },
    );
  }
  return outcomes;
}

type Attempt = { readonly outcomes: Outcomes } | { readonly refused: Refused };

/**
 * The outcomes of a write Airtable answered. Inferred: its `records` come back in the request's
 * order (the documented examples do; the records of an upsert carry no other link to the input).
 */
function written(
  target: Target,
  part: readonly OutboundRecord[],
  answer: WriteAnswer,
  ok: (record: OutboundRecord, result: AirtableRecord) => RecordOutcome,
): Attempt {
  if (answer.kind === 'refused') return { refused: answer.refused };
  target.progress.written = true;
  const outcomes: Outcomes = new Map();
  part.forEach((record, i) => {
    const result = answer.records[i];
    if (result) outcomes.set(record.key, ok(record, result));
  });
  return { outcomes };
}

/**
 * Runs a part; when Airtable refuses it as a whole, halves it until each refused record is alone,
 * and rejects that one with Airtable's reason. A missing table is the configuration's fault; an
 * unknown field name is every record's that sends it.
 */
async function isolate(
  target: Target,
  records: readonly OutboundRecord[],
  run: (part: readonly OutboundRecord[]) => Promise<Attempt>,
  budget = { left: MAX_REQUESTS_PER_CHUNK },
): Promise<Outcomes> {
  const outcomes: Outcomes = new Map();
  if (records.length === 0) return outcomes;
  if (budget.left <= 0) {
    for (const r of records) {
      outcomes.set(r.key, {
        key: r.key,
        status: 'retry',
        reason: 'Airtable refused the request; the records at fault are narrowed down in a later attempt',
      });
    }
    return outcomes;
  }
  budget.left--;
  const attempt = await run(records);
  if ('outcomes' in attempt) return attempt.outcomes;
  const { refused } = attempt;
  if (refused.status === 404 || refused.type === 'TABLE_NOT_FOUND') {
    throw new ConnectorConfigError(`Airtable has no table "${target.table}" in the base (${refused.type})`);
  }
  const unknown = /Unknown field name: "(.*)"/.exec(refused.message)?.[1];
  if (records.length === 1 || refused.type === 'UNKNOWN_FIELD_NAME') {
    for (const r of records) {
      const field = unknown ?? /Field "(.*?)"/.exec(refused.message)?.[1];
      outcomes.set(r.key, {
        key: r.key,
        status: 'rejected',
        reason: reasonOf(refused),
        ...(field && { field }),
      });
    }
    return outcomes;
  }
  const half = Math.ceil(records.length / 2);
  for (const part of [records.slice(0, half), records.slice(half)]) {
    for (const [key, outcome] of await isolate(target, part, run, budget)) outcomes.set(key, outcome);
  }
  return outcomes;
}

export function reasonOf(refused: Refused): string {
  return `${refused.type}: ${refused.message || `HTTP ${refused.status}`}`.slice(0, MAX_REASON);
}

/** Record IDs by match value (as text): one `filterByFormula` lookup for the chunk. */
async function lookup(target: Target, records: readonly OutboundRecord[]): Promise<Map<string, string[]>> {
  const found = await lookupRecords(target, records);
  return new Map([...found].map(([value, list]) => [value, list.map((r) => r.id)]));
}

async function lookupRecords(
  target: Target,
  records: readonly OutboundRecord[],
): Promise<Map<string, AirtableRecord[]>> {
  const byValue = new Map<string, AirtableRecord[]>();
  if (records.length === 0) return byValue;
  const results = await target.client.find(
    target.table,
    target.matchField,
    records.map((r) => r.match),
  );
  for (const result of results) {
    const value = matchText(result.fields?.[target.matchField] ?? null);
    if (value === undefined) continue;
    byValue.set(value, [...(byValue.get(value) ?? []), result]);
  }
  return byValue;
}
