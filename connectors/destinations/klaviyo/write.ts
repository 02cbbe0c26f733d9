import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { keepProgress, type OutboundRecord, type RecordOutcome, type WriteBatch } from '#connectors/sdk/destination';
import type { JsonValue } from '#connectors/sdk/types';
import type { ImportError, ImportJob, KlaviyoClient, ProfileAttributes } from './client.ts';
import { objectOf, placeOf } from './fields.ts';
import { MAX_JOB_BYTES, MAX_JOB_PROFILES } from './limits.ts';

/**
 * Profiles are written two ways:
 *
 * - **Bulk Import Profiles jobs** for every record that sets values only: create the job (one
 *   request of up to 10,000 profiles / 5 MB), poll it (paced, backing off 0.5 s → 5 s) until it is
 *   `complete` or `cancelled`, then read its import errors: each refused profile comes back
 *   `rejected` with Klaviyo's code and detail, the others `ok`. A job still running after
 *   `job_wait_ms` hands its records back (`retry`) and is remembered by its payload's fingerprint,
 *   so the retry reads that job instead of importing again (a cold container imports again:
 *   harmless, the import is an upsert).
 * - **Create or Update Profile** (`POST /api/profile-import`), one call per record, for a record
 *   that clears a field: "The Bulk Import Profiles API does not support setting fields to null to
 *   clear them … To remove a field value from a profile, use the Update Profile endpoint with the
 *   field set to null, or the Create or Update Profile endpoint."
 *   https://developers.klaviyo.com/en/docs/use_klaviyos_bulk_profile_import_api
 *
 * The parts run in order under `keepProgress`: a failure after the first part keeps what was
 * written and gives the rest back.
 */

export interface WriteContext {
  readonly client: KlaviyoClient;
  readonly jobWaitMs: number;
  /** Jobs still running when their write gave up waiting: payload fingerprint → job id. */
  readonly pending: Map<string, string>;
}

/** How soon a record of an unfinished job is tried again. */
export const UNFINISHED_JOB_RETRY_MS = 30_000;
const DONE = new Set(['complete', 'cancelled']);

interface Prepared {
  readonly record: OutboundRecord;
  readonly attributes: ProfileAttributes;
  /** Custom properties to remove (set to null in the model). */
  readonly unset: readonly string[];
  /** True when a standard attribute or property is cleared: needs Create or Update Profile. */
  readonly clears: boolean;
}

type Part =
  | { readonly kind: 'job'; readonly items: readonly Prepared[] }
  | { readonly kind: 'one'; readonly item: Prepared };

/** JSON:API body bytes of one profile in a job (its share of the 5 MB). */
const profileBytes = (attributes: ProfileAttributes) =>
  Buffer.byteLength(JSON.stringify({ type: 'profile', attributes })) + 1;
/** The job envelope around the profiles. */
const ENVELOPE_BYTES = 200;

export async function writeProfiles(context: WriteContext, batch: WriteBatch): Promise<RecordOutcome[]> {
  objectOf(batch.object);
  const outcomes: RecordOutcome[] = [];
  const prepared: Prepared[] = [];
  for (const record of batch.records) {
    if (record.op === 'delete') {
      outcomes.push({
        key: record.key,
        status: 'rejected',
        reason:
          'Klaviyo profiles are not deleted: Klaviyo documents no bulk delete (only a GDPR erasure per profile); use mode upsert for profiles, mirror for list:<id>',
      });
      continue;
    }
    const made = prepare(batch.matchField, record);
    if ('status' in made) outcomes.push(made);
    else prepared.push(made);
  }

  const parts: Part[] = [];
  let chunk: Prepared[] = [];
  let bytes = ENVELOPE_BYTES;
  for (const item of prepared.filter((p) => !p.clears)) {
    const size = profileBytes(item.attributes);
    if (chunk.length > 0 && (chunk.length >= MAX_JOB_PROFILES || bytes + size > MAX_JOB_BYTES)) {
      parts.push({ kind: 'job', items: chunk });
      chunk = [];
      bytes = ENVELOPE_BYTES;
    }
    chunk.push(item);
    bytes += size;
  }
  if (chunk.length > 0) parts.push({ kind: 'job', items: chunk });
  for (const item of prepared.filter((p) => p.clears)) parts.push({ kind: 'one', item });
  if (parts.length === 0) return outcomes;

  outcomes.push(
    ...(await keepProgress(
      parts,
      (part) => (part.kind === 'job' ? part.items.map((i) => i.record.key) : [part.item.record.key]),
      (part) => (part.kind === 'job' ? runJob(context, batch.matchField, part.items) : importOne(context, part.item)),
    )),
  );
  return outcomes;
}

/** The record as Klaviyo profile attributes, or its rejection when a field is not Klaviyo's. */
function prepare(matchField: string, record: OutboundRecord): Prepared | RecordOutcome {
  const match = placeOf(matchField);
  if (match?.in !== 'top' || !['email', 'phone_number', 'external_id'].includes(match.name)) {
    return {
      key: record.key,
      status: 'rejected',
      reason: `Klaviyo matches profiles on email, external_id or phone_number, not "${matchField}"`,
    };
  }
  if (record.match === null || record.match === '') {
    return { key: record.key, status: 'rejected', reason: `the match field ${matchField} is empty`, field: matchField };
  }
  const attributes: ProfileAttributes = {};
  const unset: string[] = [];
  let clears = false;
  for (const [field, value] of Object.entries(record.fields)) {
    if (field === matchField) continue;
    const place = placeOf(field);
    if (!place) {
      return {
        key: record.key,
        status: 'rejected',
        reason: `Klaviyo profiles have no field "${field}": map a standard attribute (email, first_name, location.city, …) or a custom property as properties.<name>`,
        field,
      };
    }
    if (place.in === 'top') attributes[place.name] = value;
    else if (place.in === 'location') {
      attributes.location = { ...attributes.location, [place.name]: value };
    } else if (value === null) unset.push(place.name);
    else attributes.properties = { ...attributes.properties, [place.name]: value };
    if (value === null) clears = true;
  }
  attributes[matchField] = record.match;
  return { record, attributes, unset, clears };
}

async function runJob(context: WriteContext, matchField: string, items: readonly Prepared[]): Promise<RecordOutcome[]> {
  const profiles = items.map((i) => i.attributes);
  const fingerprint = createHash('sha256').update(JSON.stringify(profiles)).digest('hex');
  let jobId = context.pending.get(fingerprint);
  if (!jobId) {
    jobId = (await context.client.createJob(profiles)).id;
    context.pending.set(fingerprint, jobId);
  }
  const job = await waitFor(context, jobId);
  if (!DONE.has(job.status)) {
    return items.map((i) => ({
      key: i.record.key,
      status: 'retry',
      reason: `Klaviyo bulk import job ${jobId} is still ${job.status || 'running'} after ${context.jobWaitMs} ms (job_wait_ms); its result is read on the next attempt`,
      afterMs: UNFINISHED_JOB_RETRY_MS,
    }));
  }
  context.pending.delete(fingerprint);
  if (job.status === 'cancelled') {
    return items.map((i) => ({
      key: i.record.key,
      status: 'retry',
      reason: `Klaviyo bulk import job ${jobId} was cancelled before it imported this profile`,
    }));
  }
  const refused = new Map<string, ImportError[]>();
  if ((job.failed_count ?? 1) > 0) {
    for (const error of await context.client.importErrors(jobId)) {
      const value = identifierOf(error.original_payload, matchField);
      if (value === undefined) continue;
      if (refused.has(value)) refused.get(value)!.push(error);
      else refused.set(value, [error]);
    }
  }
  return items.map((i): RecordOutcome => {
    const errors = refused.get(normalize(i.record.match));
    if (!errors) return { key: i.record.key, status: 'ok' };
    return {
      key: i.record.key,
      status: 'rejected',
      reason: errors.map(describe).join('; '),
      ...fieldOf(errors[0]!),
    };
  });
}

/** Polls the job until it is done or `jobWaitMs` passes, backing off from 0.5 s to 5 s. */
async function waitFor(context: WriteContext, jobId: string): Promise<ImportJob> {
  const deadline = Date.now() + context.jobWaitMs;
  for (let delay = 500; ; delay = Math.min(5_000, delay * 2)) {
    const left = deadline - Date.now();
    if (left > 0) await sleep(Math.min(delay, left));
    const job = await context.client.job(jobId);
    if (DONE.has(job.status) || Date.now() >= deadline) return job;
  }
}

async function importOne(context: WriteContext, item: Prepared): Promise<RecordOutcome[]> {
  const answer = await context.client.importProfile(item.attributes, item.unset);
  const key = item.record.key;
  if (answer.status === 200 || answer.status === 201) {
    return [
      {
        key,
        status: 'ok',
        action: answer.status === 201 ? 'created' : 'updated',
        ...(answer.id ? { destinationId: answer.id } : {}),
      },
    ];
  }
  const errors = answer.errors.length > 0 ? answer.errors : [{ code: String(answer.status), detail: 'refused' }];
  return [{ key, status: 'rejected', reason: errors.map(describe).join('; '), ...fieldOf(errors[0]!) }];
}

function describe(error: { code?: string; title?: string; detail?: string }): string {
  return `${error.code ?? 'error'}: ${error.detail ?? error.title ?? 'refused'}`;
}

/** `source.pointer` (`/data/attributes/email`) as the destination field it names. */
function fieldOf(error: { source?: { pointer?: string } }): { field?: string } {
  const pointer = error.source?.pointer ?? '';
  const match = /\/attributes\/(.+)$/.exec(pointer);
  return match ? { field: match[1]!.replaceAll('/', '.') } : {};
}

const normalize = (value: JsonValue | undefined): string =>
  typeof value === 'string' ? value.trim().toLowerCase() : JSON.stringify(value ?? null);

/**
 * The match identifier of a refused profile, from the error's `original_payload` (the profile as
 * sent). Inferred: the payload is the profile's attributes, or a profile resource holding them.
 */
function identifierOf(
  payload: Readonly<Record<string, unknown>> | null | undefined,
  matchField: string,
): string | undefined {
  if (!payload) return undefined;
  const attributes = (payload.attributes as Record<string, unknown> | undefined) ?? payload;
  const value = attributes[matchField];
  return value === undefined ? undefined : normalize(value as JsonValue);
}
