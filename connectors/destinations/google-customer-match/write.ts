import { type OutboundRecord, type RecordOutcome, unfinished, type WriteBatch } from '#connectors/sdk/destination';
import { ConnectorConfigError, TransientError, UnconfirmedWriteError } from '#connectors/sdk/errors';
import { type IdentifierKind, isSha256Hex, normalizeIdentifier, sha256Hex } from '#connectors/sdk/identifiers';
import type { JsonValue } from '#connectors/sdk/types';
import { adsErrors, type GoogleClient } from './client.ts';
import { MAX_IDENTIFIERS_PER_USER } from './limits.ts';
import { CUSTOMER_MATCH_OBJECT, GOOGLE_IDENTIFIER_FIELDS } from './manifest.ts';

export function userListId(object: string): string {
  const match = CUSTOMER_MATCH_OBJECT.exec(object);
  if (!match) {
    throw new ConnectorConfigError(
      `Google Customer Match writes to objects named customer_match:<user_list_id> (digits), not "${object}"`,
    );
  }
  return match[1]!;
}

/** A UserIdentifier (REST JSON): exactly one of these. */
type UserIdentifier =
  | { hashedEmail: string }
  | { hashedPhoneNumber: string }
  | { thirdPartyUserId: string }
  | { addressInfo: { hashedFirstName: string; hashedLastName: string; countryCode: string; postalCode: string } };

const KNOWN = new Set<string>([...GOOGLE_IDENTIFIER_FIELDS, 'zip']);
const ADDRESS = ['first_name', 'last_name', 'country', 'postal_code'] as const;

/** Hashed (or kept) value of one hashed identifier; a value already hashed is sent as it is. */
function hashed(kind: IdentifierKind, text: string): { value: string } | { reason: string } {
  if (isSha256Hex(text)) return { value: text.trim().toLowerCase() };
  const normalized = normalizeIdentifier(kind, text, 'google');
  return normalized.ok ? { value: sha256Hex(normalized.value) } : { reason: normalized.reason };
}

/**
 * A record's UserData identifiers, or the reason it cannot be sent (naming the field, never its
 * value). An address is sent only whole: "first name, last name, country code, and postal code"
 * are all required for address matching.
 */
export function identifiersOf(
  record: OutboundRecord,
  matchField: string,
): { identifiers: UserIdentifier[] } | { reason: string; field: string } {
  const values = new Map<string, string>();
  const entries: [string, JsonValue | undefined][] = [[matchField, record.match], ...Object.entries(record.fields)];
  for (const [field, value] of entries) {
    if (value === null || value === undefined || value === '') continue;
    if (typeof value !== 'string' && typeof value !== 'number') return { reason: `${field} is not text`, field };
    values.set(field === 'zip' ? 'postal_code' : field, String(value));
  }
  const identifiers: UserIdentifier[] = [];
  const email = values.get('email');
  if (email !== undefined) {
    const h = hashed('email', email);
    if ('reason' in h) return { reason: h.reason, field: 'email' };
    identifiers.push({ hashedEmail: h.value });
  }
  const phone = values.get('phone');
  if (phone !== undefined) {
    const h = hashed('phone', phone);
    if ('reason' in h) return { reason: h.reason, field: 'phone' };
    identifiers.push({ hashedPhoneNumber: h.value });
  }
  const present = ADDRESS.filter((k) => values.has(k));
  if (present.length > 0) {
    const missing = ADDRESS.filter((k) => !values.has(k));
    if (missing.length > 0) {
      return {
        reason: `an address needs first_name, last_name, country and postal_code: ${missing.join(', ')} missing`,
        field: missing[0]!,
      };
    }
    const first = hashed('first_name', values.get('first_name')!);
    if ('reason' in first) return { reason: first.reason, field: 'first_name' };
    const last = hashed('last_name', values.get('last_name')!);
    if ('reason' in last) return { reason: last.reason, field: 'last_name' };
    const country = normalizeIdentifier('country', values.get('country')!, 'google');
    if (!country.ok) return { reason: country.reason, field: 'country' };
    const postal = normalizeIdentifier('postal_code', values.get('postal_code')!, 'google');
    if (!postal.ok) return { reason: postal.reason, field: 'postal_code' };
    identifiers.push({
      addressInfo: {
        hashedFirstName: first.value,
        hashedLastName: last.value,
        countryCode: country.value,
        postalCode: postal.value,
      },
    });
  }
  const external = values.get('external_id');
  if (external !== undefined) {
    const id = normalizeIdentifier('external_id', external, 'google');
    if (!id.ok) return { reason: id.reason, field: 'external_id' };
    identifiers.push({ thirdPartyUserId: id.value });
  }
  if (identifiers.length === 0)
    return { reason: `no identifier: ${matchField} and the other identifier fields are empty`, field: matchField };
  if (identifiers.length > MAX_IDENTIFIERS_PER_USER)
    return { reason: 'more than 20 identifiers for one person', field: matchField };
  return { identifiers };
}

interface Pending {
  readonly record: OutboundRecord;
  readonly operation:
    | { create: { userIdentifiers: UserIdentifier[] } }
    | { remove: { userIdentifiers: UserIdentifier[] } };
  readonly count: number;
}

export interface WriteSettings {
  readonly identifiersPerRequest: number;
  readonly jobWaitMs: number;
  readonly pollIntervalMs: number;
  readonly consent?: { adUserData?: string; adPersonalization?: string };
}

const okOf = (record: OutboundRecord): RecordOutcome => ({
  key: record.key,
  status: 'ok',
  action: record.op === 'delete' ? 'deleted' : 'created',
});

/**
 * Writes one batch as one offline user data job: create the job, add the operations (entered
 * members `create`, members that left `remove`; Inferred from the proto, where each operation is
 * create or remove, that one job takes both) in requests of at most `identifiersPerRequest`
 * identifiers, run it, then poll its status for up to `jobWaitMs`.
 *
 * Partial progress: when an addOperations request fails (a rate limit, say) after others were
 * accepted, the job is still run with what it holds — those records are delivered — and the rest
 * come back `retry` (throttled for a rate limit). A job's partial failures reject their records
 * with Google's message. If the job cannot be run, every record comes back `retry`: the job is
 * abandoned and never runs, so nothing of it was applied.
 */
export async function writeBatch(
  client: GoogleClient,
  batch: WriteBatch,
  settings: WriteSettings,
): Promise<RecordOutcome[]> {
  const list = client.userListResource(userListId(batch.object));
  for (const field of [batch.matchField, ...new Set(batch.records.flatMap((r) => Object.keys(r.fields)))]) {
    if (!KNOWN.has(field)) {
      throw new ConnectorConfigError(
        `Google Customer Match takes the identifier fields ${GOOGLE_IDENTIFIER_FIELDS.join(', ')}; "${field}" is none of them: map the column to one of these names`,
      );
    }
  }
  const rejected: RecordOutcome[] = [];
  const pending: Pending[] = [];
  for (const record of batch.records) {
    if (record.op !== 'upsert' && record.op !== 'delete') {
      rejected.push({
        key: record.key,
        status: 'rejected',
        reason: `Google Customer Match cannot ${record.op}: only upsert (add) and delete (remove)`,
      });
      continue;
    }
    const result = identifiersOf(record, batch.matchField);
    if ('reason' in result) {
      rejected.push({ key: record.key, status: 'rejected', reason: result.reason, field: result.field });
      continue;
    }
    const userData = { userIdentifiers: result.identifiers };
    pending.push({
      record,
      operation: record.op === 'delete' ? { remove: userData } : { create: userData },
      count: result.identifiers.length,
    });
  }
  if (pending.length === 0) return rejected;

  // 1. The job. A failure here is the whole batch's: nothing was added to any job.
  let job: string;
  try {
    job = await client.createJob(list, settings.consent);
  } catch (error) {
    if (error instanceof UnconfirmedWriteError) {
      throw new TransientError(`${error.message}; an empty job it may have created is abandoned (never run)`);
    }
    throw error;
  }

  // 2. The operations, in requests of at most identifiersPerRequest identifiers.
  const chunks: Pending[][] = [];
  let current: Pending[] = [];
  let size = 0;
  for (const item of pending) {
    if (current.length > 0 && size + item.count > settings.identifiersPerRequest) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(item);
    size += item.count;
  }
  if (current.length > 0) chunks.push(current);

  const accepted: Pending[] = [];
  const outcomes: RecordOutcome[] = [];
  let stopped: { rest: Pending[]; error: unknown } | undefined;
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i]!;
    let response: Awaited<ReturnType<GoogleClient['addOperations']>>;
    try {
      response = await client.addOperations(
        job,
        chunk.map((p) => p.operation),
      );
    } catch (error) {
      if (accepted.length === 0 && i === 0) throw error;
      stopped = { rest: chunks.slice(i).flat(), error };
      break;
    }
    const failed = new Map<number, string>();
    for (const error of adsErrors(response.partialFailureError)) {
      const index = error.location?.fieldPathElements?.find((e) => e.fieldName === 'operations')?.index;
      if (index === undefined) continue;
      const code = Object.entries(error.errorCode ?? {})
        .map(([k, v]) => `${k}.${v}`)
        .join(',');
      failed.set(index, `Google Ads refused it${code ? ` (${code})` : ''}: ${error.message ?? ''}`.trim());
    }
    chunk.forEach((item, index) => {
      const reason = failed.get(index);
      if (reason !== undefined) outcomes.push({ key: item.record.key, status: 'rejected', reason });
      else accepted.push(item);
    });
  }

  if (stopped && accepted.length === 0) {
    // Nothing of the job was accepted: the batch's failure, for the engine (the empty job is abandoned).
    const rest = unfinished(
      stopped.rest.map((p) => p.record.key),
      stopped.error,
    );
    return [...outcomes, ...rest, ...rejected];
  }

  // 3. Run the job with what it holds.
  if (accepted.length > 0) {
    try {
      await client.run(job);
    } catch (error) {
      const keys = [...accepted, ...(stopped?.rest ?? [])].map((p) => p.record.key);
      if (outcomes.length === 0 && rejected.length === 0 && !stopped) throw error;
      return [...outcomes, ...unfinished(keys, error), ...rejected];
    }
    // 4. Its outcome, for a while: jobs "may take 6 hours or more to complete".
    const deadline = Date.now() + settings.jobWaitMs;
    let status = 'RUNNING';
    let failureReason: string | undefined;
    while (settings.jobWaitMs > 0) {
      try {
        ({ status, failureReason } = await client.jobStatus(job));
      } catch {
        break; // The job runs whether we watch it or not.
      }
      if (status === 'SUCCESS' || status === 'FAILED' || Date.now() + settings.pollIntervalMs > deadline) break;
      await client.sleep(settings.pollIntervalMs);
    }
    if (status === 'FAILED') {
      const reason = `Google Ads job ${job} failed${failureReason ? `: ${failureReason}` : ''}`;
      for (const item of accepted) outcomes.push({ key: item.record.key, status: 'retry', reason });
    } else {
      for (const item of accepted) outcomes.push(okOf(item.record));
    }
  }
  if (stopped)
    outcomes.push(
      ...unfinished(
        stopped.rest.map((p) => p.record.key),
        stopped.error,
      ),
    );
  return [...outcomes, ...rejected];
}
