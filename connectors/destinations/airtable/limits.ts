import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * "Airtable enforces a rate limit of 5 requests per second (per base) … Additionally, there is a
 * limit of 50 requests per second for all traffic using personal access tokens from a given user
 * or service account. If you exceed this rate, you will receive a 429 status code and must wait 30
 * seconds before subsequent requests will succeed."
 */
export const RATE_LIMIT_DOC = 'https://support.airtable.com/docs/managing-api-call-limits-in-airtable';
/** Create, update (and upsert) and delete take "up to 10 records" per request. */
export const RECORDS_DOC = 'https://airtable.com/developers/web/api/update-multiple-records';

/** Records per create, update, upsert or delete request. */
export const MAX_RECORDS = 10;
/** The documented limit, in its own window: 5 requests per second per base. */
export const DOCUMENTED_RATE = { requests: 5, windowMs: 1_000 } as const;
/** The documented lock-out after a 429: "must wait 30 seconds". */
export const LOCKOUT_MS = 30_000;

/**
 * The lane's pace: 4 requests a second. The pacer lets at most rate + 1 requests into any second
 * (docs/connectors.md, Pacing), so 4 keeps every second within Airtable's 5 per base, and the 30 s
 * lock-out a sixth request would cost is never earned. Field discovery and the lookups of update,
 * insert reconciliation and mirror take slots too. Lower `lane.requests_per_second` when other
 * integrations write to the same base: the limit is the base's, shared by every token.
 */
export const airtableLimits: DestinationLimits = {
  batchSize: { value: MAX_RECORDS, doc: RECORDS_DOC },
  requestsPerSecond: { value: 4, doc: RATE_LIMIT_DOC },
};
