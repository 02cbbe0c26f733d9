import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectorConfigError, UnconfirmedWriteError } from '#connectors/sdk/errors';
import type { JsonValue } from '#connectors/sdk/types';
import type { RecordError, SalesforceClient } from './client.ts';
import { parseCsv, toCsv } from './csv.ts';

/**
 * Bulk API 2.0 ingest jobs, for batches above `bulk_threshold`
 * (https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/bulk_api_2_0_ingest.htm):
 * create a job, upload the CSV, mark it `UploadComplete`, poll its state, then read
 * `successfulResults/` and `failedResults/`.
 *
 * The trade-off inside a Lambda: a job runs asynchronously, often for longer than an invocation
 * should wait. The connection polls for `bulk_poll_ms`; if the job has not finished, every record
 * comes back as `retry`, and the job's id is remembered (in memory, by the CSV's fingerprint) so
 * the retry of the same records reads that job instead of loading them again. A cold container
 * has forgotten it and loads them in a new job: harmless for an upsert by external ID, which is
 * idempotent — the only reason bulk is used for upserts alone.
 *
 * A step that may have reached Salesforce without an answer is not sent again blindly:
 * - creating the job (a POST): the org's jobs are listed (Get All Jobs) and an `Open` job of this
 *   object, operation and external ID field, created by this session's user since just before
 *   the call, is the one the lost call created — it is used. Several such jobs (another writer
 *   on the same user) are left alone and the records come back for a retry: an `Open` job is
 *   never processed ("If you don't make this request [UploadComplete], processing of your data
 *   does not start", close_job.htm);
 * - uploading the CSV (a PUT, not resent): the job is aborted — it was never closed, so nothing
 *   of it was processed — and the records come back for a retry;
 * - closing the upload (UploadComplete): the job's state is read; past `Open`, the close went
 *   through and the job is waited for, else it is aborted.
 */

export interface BulkRecord {
  readonly key: string;
  /** The external ID value, as written in the CSV. */
  readonly match: string;
  readonly fields: Readonly<Record<string, JsonValue>>;
}

export type BulkOutcome =
  | { readonly status: 'ok'; readonly created: boolean; readonly id: string }
  | { readonly status: 'failed'; readonly errors: readonly RecordError[] }
  | { readonly status: 'retry'; readonly reason: string; readonly afterMs?: number };

/**
 * Jobs created this long before the create call was sent still count as its own: clock skew
 * between Backflow and Salesforce. Inferred: Salesforce documents no clock bound.
 */
const CLOCK_SKEW_MS = 60_000;

/** How soon a record of an unfinished job is tried again. */
export const UNFINISHED_JOB_RETRY_MS = 30_000;
const TERMINAL = new Set(['JobComplete', 'Failed', 'Aborted']);

interface JobInfo {
  readonly id?: string;
  readonly state?: string;
  readonly errorMessage?: string;
  readonly object?: string;
  readonly operation?: string;
  readonly externalIdFieldName?: string;
  readonly createdById?: string;
  readonly createdDate?: string;
}

interface JobList {
  readonly done?: boolean;
  readonly nextRecordsUrl?: string | null;
  readonly records?: JobInfo[];
}

/** Empty leaves a field as it is on update; `#N/A` sets it to null (datafiles_csv_valid_record_rows.htm). */
export function csvValue(value: JsonValue | undefined): string {
  if (value === undefined) return '';
  if (value === null || value === '') return '#N/A';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** `STATUS_CODE:message:Field1,Field2 --`, the `sf__Error` column of failed results. */
export function parseBulkError(text: string): RecordError {
  const match = /^([A-Z_]+):(.*?)(?::([A-Za-z0-9_,]*))?\s*--\s*$/s.exec(text.trim());
  if (match) {
    return {
      statusCode: match[1]!,
      message: match[2]!.trim(),
      fields: (match[3] ?? '').split(',').filter(Boolean),
    };
  }
  const colon = text.indexOf(':');
  return colon > 0 && /^[A-Z_]+$/.test(text.slice(0, colon))
    ? { statusCode: text.slice(0, colon), message: text.slice(colon + 1).trim(), fields: [] }
    : { statusCode: 'UNKNOWN', message: text.trim(), fields: [] };
}

export class BulkIngest {
  /** Jobs still running when their write gave up waiting: CSV fingerprint → job id. */
  private readonly pending = new Map<string, string>();

  constructor(
    private readonly client: SalesforceClient,
    private readonly pollMs: number,
  ) {}

  async upsert(
    object: string,
    externalIdField: string,
    records: readonly BulkRecord[],
  ): Promise<Map<string, BulkOutcome>> {
    const columns = [...new Set(records.flatMap((r) => Object.keys(r.fields)))].sort();
    const header = [externalIdField, ...columns];
    const csv = toCsv(
      header,
      records.map((r) => [r.match, ...columns.map((c) => csvValue(r.fields[c]))]),
    );
    const fingerprint = createHash('sha256').update(`${object}\0${externalIdField}\0${csv}`).digest('hex');
    let jobId = this.pending.get(fingerprint);
    if (!jobId) {
      jobId = await this.load(object, externalIdField, csv);
      this.pending.set(fingerprint, jobId);
    }
    const job = await this.wait(jobId);
    const outcomes = new Map<string, BulkOutcome>();
    if (!TERMINAL.has(job.state ?? '')) {
      for (const r of records) {
        outcomes.set(r.key, {
          status: 'retry',
          reason: `Bulk API job ${jobId} is still ${job.state ?? 'running'} after ${this.pollMs} ms (bulk_poll_ms); its results are read on the next attempt`,
          afterMs: UNFINISHED_JOB_RETRY_MS,
        });
      }
      return outcomes;
    }
    this.pending.delete(fingerprint);
    const byMatch = new Map<string, BulkRecord[]>();
    for (const r of records) {
      if (byMatch.has(r.match)) byMatch.get(r.match)!.push(r);
      else byMatch.set(r.match, [r]);
    }
    for (const row of await this.results(jobId, 'successfulResults')) {
      for (const r of byMatch.get(row[externalIdField] ?? '') ?? []) {
        outcomes.set(r.key, { status: 'ok', created: row.sf__Created === 'true', id: row.sf__Id ?? '' });
      }
    }
    for (const row of await this.results(jobId, 'failedResults')) {
      for (const r of byMatch.get(row[externalIdField] ?? '') ?? []) {
        outcomes.set(r.key, { status: 'failed', errors: [parseBulkError(row.sf__Error ?? '')] });
      }
    }
    for (const r of records) {
      if (outcomes.has(r.key)) continue;
      outcomes.set(r.key, {
        status: 'retry',
        reason: `Bulk API job ${jobId} ended ${job.state} without processing this record${job.errorMessage ? `: ${job.errorMessage}` : ''}`,
      });
    }
    return outcomes;
  }

  /** Creates the job, uploads the CSV and closes the upload; aborts the job if a step fails. */
  private async load(object: string, externalIdField: string, csv: string): Promise<string> {
    const jobId = await this.create(object, externalIdField);
    const abort = () =>
      this.client
        .api({ method: 'PATCH', path: `jobs/ingest/${jobId}`, json: { state: 'Aborted' }, write: true })
        .catch(() => {});
    try {
      await this.client.api({
        method: 'PUT',
        path: `jobs/ingest/${jobId}/batches`,
        body: csv,
        headers: { 'content-type': 'text/csv' },
        write: true,
        // Not resent after a timeout: whether a second upload adds to the first is not documented.
        idempotent: false,
      });
    } catch (error) {
      await abort();
      throw error;
    }
    try {
      await this.client.api({
        method: 'PATCH',
        path: `jobs/ingest/${jobId}`,
        json: { state: 'UploadComplete' },
        write: true,
      });
    } catch (error) {
      // The close may have gone through before the answer was lost: a job past Open is processing.
      const state = await this.client
        .api<JobInfo>({ path: `jobs/ingest/${jobId}` })
        .then((r) => r.body?.state)
        .catch(() => undefined);
      if (state !== undefined && state !== 'Open') return jobId;
      await abort();
      throw error;
    }
    return jobId;
  }

  /** Creates the job; after an unconfirmed create, finds the job that call made (see above). */
  private async create(object: string, externalIdField: string): Promise<string> {
    const sentAt = Date.now();
    let created: JobInfo | undefined;
    try {
      created = (
        await this.client.api<JobInfo>({
          method: 'POST',
          path: 'jobs/ingest',
          json: {
            object,
            externalIdFieldName: externalIdField,
            contentType: 'CSV',
            operation: 'upsert',
            lineEnding: 'LF',
          },
          write: true,
        })
      ).body;
    } catch (error) {
      if (!(error instanceof UnconfirmedWriteError)) throw error;
      const orphans = await this.openJobs(object, externalIdField, sentAt - CLOCK_SKEW_MS);
      if (orphans.length === 1) return orphans[0]!;
      throw new UnconfirmedWriteError(
        `${error.message}; ${orphans.length === 0 ? 'no Open job of this session was found' : `${orphans.length} Open jobs could be the one it created (${orphans.join(', ')})`}, so no job was loaded — an Open job is never processed`,
      );
    }
    const jobId = created?.id;
    if (typeof jobId !== 'string') throw new ConnectorConfigError('Salesforce created a Bulk API job without an id');
    return jobId;
  }

  /**
   * Open upsert jobs of this object and external ID field created by this session's user since
   * `since` (Get All Jobs, https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/get_all_jobs.htm).
   */
  private async openJobs(object: string, externalIdField: string, since: number): Promise<string[]> {
    const userId = await this.client.userId();
    if (userId === undefined) return [];
    const found: string[] = [];
    let path: string | undefined = 'jobs/ingest';
    for (let page = 0; path && page < 20; page++) {
      const list: JobList = (await this.client.api<JobList>({ path, query: { jobType: 'V2Ingest' } })).body ?? {};
      for (const job of list.records ?? []) {
        const createdAt = Date.parse(job.createdDate ?? '');
        if (
          typeof job.id === 'string' &&
          job.state === 'Open' &&
          job.operation === 'upsert' &&
          job.object?.toLowerCase() === object.toLowerCase() &&
          job.externalIdFieldName?.toLowerCase() === externalIdField.toLowerCase() &&
          // Ids compare on their first 15 characters (the 18-character form adds a checksum).
          job.createdById?.slice(0, 15) === userId.slice(0, 15) &&
          createdAt >= since
        )
          found.push(job.id);
      }
      path = list.done === false && typeof list.nextRecordsUrl === 'string' ? list.nextRecordsUrl : undefined;
    }
    return found;
  }

  /** Polls the job until it ends or `pollMs` passes, backing off from 0.5 s to 5 s. */
  private async wait(jobId: string): Promise<JobInfo> {
    const deadline = Date.now() + this.pollMs;
    for (let delay = 500; ; delay = Math.min(5_000, delay * 2)) {
      const job = (await this.client.api<JobInfo>({ path: `jobs/ingest/${jobId}` })).body ?? {};
      const left = deadline - Date.now();
      if (TERMINAL.has(job.state ?? '') || left <= 0) return job;
      await sleep(Math.min(delay, left));
    }
  }

  private async results(jobId: string, kind: 'successfulResults' | 'failedResults'): Promise<Record<string, string>[]> {
    const response = await this.client.api<unknown>({
      path: `jobs/ingest/${jobId}/${kind}/`,
      headers: { accept: 'text/csv' },
    });
    return typeof response.body === 'string' ? parseCsv(response.body) : [];
  }
}
