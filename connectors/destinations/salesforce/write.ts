import {
  keepProgress,
  type OutboundRecord,
  type RecordOperation,
  type RecordOutcome,
  type WriteBatch,
} from '#connectors/sdk/destination';
import { ConnectorConfigError, errorMessage, UnconfirmedWriteError } from '#connectors/sdk/errors';
import type { JsonValue } from '#connectors/sdk/types';
import { type BulkIngest, type BulkOutcome, csvValue } from './bulk.ts';
import type { CollectionRecord, RecordError, RecordResult, SalesforceClient } from './client.ts';
import { coerce, type Describe, type DescribeField, isMatchable, isTextType } from './fields.ts';
import { COLLECTION_MAX_RECORDS } from './limits.ts';

/**
 * One batch, written the Salesforce way:
 * - upsert: sObject Collections upsert by the external ID field, 200 records a call
 *   (Bulk API 2.0 above `bulk_threshold`); matching on `Id` updates by record Id;
 * - update: the records' Ids are looked up by the match field (SOQL), then updated by Id — a
 *   record not found is refused, update mode never creates;
 * - insert: records that already exist (looked up) are refused, the rest created;
 * - delete (mirror): Ids looked up, then deleted (to the Recycle Bin); one already gone is ok.
 * Values are checked against the describe first, so one undeserializable value refuses its record
 * instead of failing the whole request (Salesforce answers 400 JSON_PARSER_ERROR for the call).
 *
 * Two records of one batch with the same match value (two model keys on one Salesforce record)
 * never go in one request: Salesforce refuses *both* (`DUPLICATE_EXTERNAL_ID: Duplicate external id
 * specified`, sObject Collections upsert). They go in successive requests of the same write, in
 * the batch's order, so the last one's values are what Salesforce keeps — as if they had arrived
 * in two syncs. Every request is one part of `keepProgress`: a rate limit on request k keeps
 * requests 1..k-1 and gives back the rest.
 */

/** Statuses worth another attempt: lock contention, a sibling's rollback. */
const RETRYABLE = new Set(['UNABLE_TO_LOCK_ROW', 'ALL_OR_NONE_OPERATION_ROLLED_BACK']);
const RETRY_AFTER_MS = 2_000;
/** Largest IN (...) list of one lookup, in characters, so the query URL stays short. */
const MAX_LOOKUP_CHARS = 4_000;
/**
 * How long an unconfirmed create waits before it is tried again: Salesforce's timeout for a REST
 * call ("The timeout limit for REST and SOAP API calls is 10 minutes",
 * https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm):
 * by then the lost call has committed or given up, so the retry's own lookup sees its result.
 */
export const UNCONFIRMED_RETRY_MS = 10 * 60_000;

interface Prepared {
  readonly key: string;
  readonly match: JsonValue;
  readonly fields: Record<string, JsonValue>;
}

export interface WriterOptions {
  readonly client: SalesforceClient;
  readonly bulk: BulkIngest;
  readonly bulkThreshold: number;
}

export async function writeBatch(batch: WriteBatch, options: WriterOptions): Promise<RecordOutcome[]> {
  if (batch.records.length === 0) return [];
  const describe = await options.client.describe(batch.object);
  const target = new Target(batch, describe, options);
  const outcomes: RecordOutcome[] = [];
  const groups = new Map<RecordOperation, Prepared[]>();
  for (const record of batch.records) {
    const prepared = target.prepare(record);
    if ('status' in prepared) outcomes.push(prepared);
    else if (groups.has(record.op)) groups.get(record.op)!.push(prepared);
    else groups.set(record.op, [prepared]);
  }
  const parts: Part[] = [];
  for (const [op, records] of groups) parts.push(...target.parts(op, records));
  outcomes.push(
    ...(await keepProgress(
      parts,
      (part) => part.records.map((r) => r.key),
      (part) => target.write(part),
    )),
  );
  return outcomes;
}

/** One request's worth of records (a Bulk API job for a large upsert): unique match values. */
interface Part {
  readonly op: RecordOperation;
  readonly records: Prepared[];
  readonly bulk: boolean;
}

class Target {
  private readonly object: string;
  private readonly fields: Map<string, DescribeField>;
  /** Matching on `Id`: the match value is the record Id itself. */
  private readonly byId: boolean;
  private readonly matchField: DescribeField | undefined;

  constructor(
    batch: WriteBatch,
    describe: Describe,
    private readonly options: WriterOptions,
  ) {
    this.object = describe.name;
    this.fields = new Map(describe.fields.map((f) => [f.name.toLowerCase(), f]));
    this.byId = batch.matchField.toLowerCase() === 'id';
    this.matchField = this.fields.get(batch.matchField.toLowerCase());
    if (!this.matchField) {
      throw new ConnectorConfigError(
        `Salesforce ${this.object} has no field ${batch.matchField} to match on: match on an External ID field (or Id)${this.matchableList()}`,
      );
    }
    if (!this.byId && !isMatchable(this.matchField)) {
      throw new ConnectorConfigError(
        `Salesforce ${this.object}.${this.matchField.name} cannot be a match key: mark it External ID (and Unique) in Setup, or match on one of${this.matchableList()}`,
      );
    }
    const unknown = [...new Set(batch.records.flatMap((r) => Object.keys(r.fields)))].filter(
      (name) => !this.fields.has(name.toLowerCase()),
    );
    if (unknown.length > 0) {
      throw new ConnectorConfigError(
        `Salesforce ${this.object} has no field ${unknown.join(', ')} (or the integration user cannot see it): use the fields' API names, e.g. My_Field__c`,
      );
    }
  }

  private matchableList(): string {
    const names = [...this.fields.values()].filter(isMatchable).map((f) => f.name);
    return names.length > 0 ? ` ${names.join(', ')}` : '';
  }

  /** Checks and converts one record's values; a record that cannot be sent gets its outcome here. */
  prepare(record: OutboundRecord): Prepared | RecordOutcome {
    const field = this.matchField!;
    let match: JsonValue = record.match;
    if (match === null || match === '') {
      return {
        key: record.key,
        status: 'rejected',
        reason: `no value for the match field ${field.name}`,
        field: field.name,
      };
    }
    if (this.byId) {
      if (typeof match !== 'string' || !/^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/.test(match)) {
        return {
          key: record.key,
          status: 'rejected',
          reason: `${String(match)} is not a Salesforce record Id`,
          field: field.name,
        };
      }
    } else {
      const coerced = coerce(field, match);
      if (!coerced.ok) return { key: record.key, status: 'rejected', reason: coerced.reason, field: field.name };
      match = coerced.value;
    }
    const fields: Record<string, JsonValue> = {};
    for (const [name, value] of Object.entries(record.fields)) {
      const described = this.fields.get(name.toLowerCase())!;
      const coerced = coerce(described, value);
      if (!coerced.ok) return { key: record.key, status: 'rejected', reason: coerced.reason, field: described.name };
      fields[described.name] = coerced.value;
    }
    return { key: record.key, match, fields };
  }

  /**
   * The requests of one operation: rounds of distinct match values (the first record of each
   * value in the first round, the second in the next…, so the batch's order holds), each cut into
   * collections of 200 — or one Bulk API job for an upsert round above `bulk_threshold`.
   */
  parts(op: RecordOperation, records: Prepared[]): Part[] {
    const rounds: Prepared[][] = [];
    const seen = new Map<string, number>();
    for (const r of records) {
      const key = this.byId ? String(r.match) : this.lookupKey(r.match);
      const round = seen.get(key) ?? 0;
      seen.set(key, round + 1);
      if (rounds[round]) rounds[round].push(r);
      else rounds[round] = [r];
    }
    const parts: Part[] = [];
    for (const round of rounds) {
      if (op === 'upsert' && !this.byId && round.length > this.options.bulkThreshold) {
        parts.push({ op, records: round, bulk: true });
      } else for (const chunk of chunks(round, COLLECTION_MAX_RECORDS)) parts.push({ op, records: chunk, bulk: false });
    }
    return parts;
  }

  write(part: Part): Promise<RecordOutcome[]> {
    const records = part.records;
    switch (part.op) {
      case 'upsert':
        if (part.bulk) return this.bulkUpsert(records);
        return this.byId ? this.update(records) : this.upsert(records);
      case 'update':
        return this.update(records);
      case 'insert':
        return this.insert(records);
      case 'delete':
        return this.delete(records);
    }
  }

  private record(r: Prepared): CollectionRecord {
    return { attributes: { type: this.object }, ...r.fields };
  }

  private async upsert(records: Prepared[]): Promise<RecordOutcome[]> {
    const field = this.matchField!.name;
    const outcomes: RecordOutcome[] = [];
    for (const chunk of chunks(records, COLLECTION_MAX_RECORDS)) {
      const results = await this.options.client.upsert(
        this.object,
        field,
        chunk.map((r) => ({ ...this.record(r), [field]: r.match })),
      );
      chunk.forEach((r, i) => {
        outcomes.push(outcome(r.key, results[i]!, results[i]!.created ? 'created' : 'updated'));
      });
    }
    return outcomes;
  }

  private async bulkUpsert(records: Prepared[]): Promise<RecordOutcome[]> {
    const results = await this.options.bulk.upsert(
      this.object,
      this.matchField!.name,
      records.map((r) => ({ key: r.key, match: csvValue(r.match), fields: r.fields })),
    );
    return records.map((r) => bulkOutcome(r.key, results.get(r.key)));
  }

  private async update(records: Prepared[]): Promise<RecordOutcome[]> {
    const { found, outcomes } = await this.resolveIds(records, 'update', (r) => ({
      key: r.key,
      status: 'rejected',
      reason: `no ${this.object} with ${this.matchField!.name} = ${String(r.match)} (update mode never creates)`,
      field: this.matchField!.name,
    }));
    for (const chunk of chunks(found, COLLECTION_MAX_RECORDS)) {
      const results = await this.options.client.update(
        this.object,
        chunk.map(({ record, id }) => ({ ...this.record(record), id })),
      );
      chunk.forEach(({ record }, i) => {
        outcomes.push(outcome(record.key, results[i]!, 'updated'));
      });
    }
    return outcomes;
  }

  private async insert(records: Prepared[]): Promise<RecordOutcome[]> {
    if (this.byId) {
      throw new ConnectorConfigError(
        `Salesforce assigns record Ids: insert mode cannot match on Id; match ${this.object} on an External ID field`,
      );
    }
    const field = this.matchField!.name;
    const existing = await this.lookup(records.map((r) => r.match));
    const outcomes: RecordOutcome[] = [];
    const fresh: Prepared[] = [];
    for (const r of records) {
      const ids = existing.get(this.lookupKey(r.match)) ?? [];
      if (ids.length > 0) {
        outcomes.push({
          key: r.key,
          status: 'rejected',
          reason: `${this.object} ${ids[0]} already has ${field} = ${String(r.match)} (insert mode never updates)`,
          field,
        });
      } else fresh.push(r);
    }
    for (const chunk of chunks(fresh, COLLECTION_MAX_RECORDS)) {
      let results: RecordResult[];
      try {
        results = await this.options.client.create(
          this.object,
          chunk.map((r) => ({ ...this.record(r), [field]: r.match })),
        );
      } catch (error) {
        if (!(error instanceof UnconfirmedWriteError)) throw error;
        outcomes.push(...(await this.reconcileCreate(chunk, error)));
        continue;
      }
      chunk.forEach((r, i) => {
        outcomes.push(outcome(r.key, results[i]!, 'created'));
      });
    }
    return outcomes;
  }

  /**
   * A create that may have committed (timed out, connection dropped, 5xx): never sent again
   * blindly. The records are looked up by their match value — found, they were created by that
   * call (none existed a moment before: insert looked first); not found, they come back as
   * `retry` after Salesforce's own 10-minute call timeout, when the lost call has ended one way or
   * the other and the retry's lookup sees it. What this cannot tell apart when the match field is
   * not Unique: a record someone else created with the same value in between (see
   * docs/destinations/salesforce.md#insert-and-timeouts).
   */
  private async reconcileCreate(records: Prepared[], error: UnconfirmedWriteError): Promise<RecordOutcome[]> {
    let found: Map<string, string[]>;
    try {
      found = await this.lookup(records.map((r) => r.match));
    } catch (lookupError) {
      return records.map((r) => ({
        key: r.key,
        status: 'retry' as const,
        reason: `${error.message}; looking the records up failed too (${errorMessage(lookupError)})`,
        afterMs: UNCONFIRMED_RETRY_MS,
      }));
    }
    return records.map((r): RecordOutcome => {
      const ids = found.get(this.lookupKey(r.match)) ?? [];
      if (ids.length > 0) return { key: r.key, status: 'ok', action: 'created', destinationId: ids[0]! };
      return {
        key: r.key,
        status: 'retry',
        reason: `${error.message}; no ${this.object} with ${this.matchField!.name} = ${String(r.match)} yet, so it is tried again once Salesforce's call timeout has passed`,
        afterMs: UNCONFIRMED_RETRY_MS,
      };
    });
  }

  private async delete(records: Prepared[]): Promise<RecordOutcome[]> {
    const { found, outcomes } = await this.resolveIds(records, 'delete', (r) => ({
      key: r.key,
      status: 'ok',
      action: 'deleted',
    }));
    for (const chunk of chunks(found, COLLECTION_MAX_RECORDS)) {
      const results = await this.options.client.delete(
        this.object,
        chunk.map(({ id }) => id),
      );
      chunk.forEach(({ record, id }, i) => {
        const result = results[i]!;
        const gone = !result.success && result.errors.some((e) => e.statusCode === 'ENTITY_IS_DELETED');
        outcomes.push(
          gone
            ? { key: record.key, status: 'ok', action: 'deleted', destinationId: id }
            : outcome(record.key, result, 'deleted'),
        );
      });
    }
    return outcomes;
  }

  /**
   * Record Ids of the records: the match value itself when matching on Id, else a SOQL lookup.
   * Not found → `missing`; several records with one value → refused (which one is meant?).
   */
  private async resolveIds(
    records: Prepared[],
    what: string,
    missing: (r: Prepared) => RecordOutcome,
  ): Promise<{ found: { record: Prepared; id: string }[]; outcomes: RecordOutcome[] }> {
    if (this.byId) return { found: records.map((record) => ({ record, id: String(record.match) })), outcomes: [] };
    const ids = await this.lookup(records.map((r) => r.match));
    const found: { record: Prepared; id: string }[] = [];
    const outcomes: RecordOutcome[] = [];
    for (const r of records) {
      const matched = ids.get(this.lookupKey(r.match)) ?? [];
      if (matched.length === 0) outcomes.push(missing(r));
      else if (matched.length > 1) {
        outcomes.push({
          key: r.key,
          status: 'rejected',
          reason: `${matched.length} ${this.object} records have ${this.matchField!.name} = ${String(r.match)} (${matched.join(', ')}): nothing to ${what} until one is left; mark the field Unique`,
          field: this.matchField!.name,
        });
      } else found.push({ record: r, id: matched[0]! });
    }
    return { found, outcomes };
  }

  /** SOQL compares text case-insensitively: so does the lookup. */
  private lookupKey(value: JsonValue): string {
    const text = String(value);
    return isTextType(this.matchField!) ? text.toLowerCase() : text;
  }

  /** `SELECT Id, Field FROM Object WHERE Field IN (...)`, in lists short enough for one URL. */
  private async lookup(values: readonly JsonValue[]): Promise<Map<string, string[]>> {
    const field = this.matchField!;
    const literals = [...new Set(values.map((v) => soqlLiteral(field, v)))];
    const found = new Map<string, string[]>();
    let list: string[] = [];
    let size = 0;
    const run = async () => {
      if (list.length === 0) return;
      const rows = await this.options.client.query(
        `SELECT Id, ${field.name} FROM ${this.object} WHERE ${field.name} IN (${list.join(', ')})`,
      );
      for (const row of rows) {
        const key = this.lookupKey(row[field.name] ?? null);
        if (typeof row.Id !== 'string') continue;
        if (found.has(key)) found.get(key)!.push(row.Id);
        else found.set(key, [row.Id]);
      }
      list = [];
      size = 0;
    };
    for (const literal of literals) {
      if (size + literal.length > MAX_LOOKUP_CHARS || list.length >= COLLECTION_MAX_RECORDS) await run();
      list.push(literal);
      size += literal.length + 2;
    }
    await run();
    return found;
  }
}

/** A SOQL literal: quoted, with `\` and `'` escaped, for text fields; bare for numbers. */
export function soqlLiteral(field: DescribeField, value: JsonValue): string {
  if (!isTextType(field) && typeof value === 'number') return String(value);
  const escaped = String(value).replace(/[\\'"\n\r\t\b\f]/g, (c) => {
    const map: Record<string, string> = { '\n': 'n', '\r': 'r', '\t': 't', '\b': 'b', '\f': 'f' };
    return `\\${map[c] ?? c}`;
  });
  return `'${escaped}'`;
}

function outcome(key: string, result: RecordResult, action: 'created' | 'updated' | 'deleted'): RecordOutcome {
  if (result.success) {
    return { key, status: 'ok', action, ...(result.id ? { destinationId: result.id } : {}) };
  }
  return failure(key, result.errors);
}

export function failure(key: string, errors: readonly RecordError[]): RecordOutcome {
  const first = errors[0];
  if (!first) return { key, status: 'rejected', reason: 'Salesforce refused the record without saying why' };
  const reason = errors
    .map((e) => `${e.statusCode}: ${e.message}`)
    .join('; ')
    .slice(0, 500);
  if (RETRYABLE.has(first.statusCode)) return { key, status: 'retry', reason, afterMs: RETRY_AFTER_MS };
  const field = first.fields[0];
  return field ? { key, status: 'rejected', reason, field } : { key, status: 'rejected', reason };
}

function bulkOutcome(key: string, result: BulkOutcome | undefined): RecordOutcome {
  if (!result) return { key, status: 'retry', reason: 'the Bulk API job reported nothing for this record' };
  switch (result.status) {
    case 'ok':
      return {
        key,
        status: 'ok',
        action: result.created ? 'created' : 'updated',
        ...(result.id ? { destinationId: result.id } : {}),
      };
    case 'failed':
      return failure(key, result.errors);
    case 'retry':
      return {
        key,
        status: 'retry',
        reason: result.reason,
        ...(result.afterMs !== undefined ? { afterMs: result.afterMs } : {}),
      };
  }
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
