import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * The Track API reference (Customer.io's own OpenAPI document, docs.customer.io/files/journeys-track.json):
 * server addresses per region, Basic authentication, "Rate Limits" and the payload size limits.
 */
export const TRACK_API_DOC = 'https://docs.customer.io/integrations/api/track/';
/** `POST /api/v2/batch`: "smaller than 500kb", each request within it "32kb or smaller"; 207 with `errors[].batch_index`. */
export const BATCH_DOC = 'https://docs.customer.io/integrations/api/track/#tag/track_v2/operation/batch';
/** The "Rate Limits" section of the Track API reference. */
export const RATE_LIMITS_DOC = 'https://docs.customer.io/integrations/api/track/#section/Rate-Limits';

/**
 * Bytes of one `/api/v2/batch` body: "Your batch request must be smaller than 500kb."
 * Inferred: "kb" read as 1,000 bytes (the smaller reading), so a body Backflow builds fits either way.
 */
export const MAX_BATCH_BYTES = 500_000;
/** Bytes of one action within a batch: "Each of the requests within the batch must also be 32kb or smaller." (same reading). */
export const MAX_ACTION_BYTES = 32_000;

/**
 * "Customer limits" of the Track API reference: a person's ID at most 150 bytes, an attribute name
 * 150 bytes, an attribute value 1000 bytes, at most 300 unique attributes per person or identify call.
 */
export const MAX_ID_BYTES = 150;
export const MAX_ATTRIBUTE_NAME_BYTES = 150;
export const MAX_ATTRIBUTE_VALUE_BYTES = 1000;
export const MAX_ATTRIBUTES = 300;

/**
 * The Track API's documented request rate, in its own window (the conformance test's yardstick).
 *
 * Customer.io's reference has said "100 requests per second" per workspace for the Track API (v1
 * and v2, live integrations and backfills alike) — the figure most integrations were built on — and
 * its current text says "1000 requests per second … not strictly enforced; consistently exceeding
 * it may lead to throttling or dropped data". Backflow holds to the lower figure: dropped data
 * is silent, and a 429 is only a slowdown.
 */
export const TRACK_RATE_LIMIT = { requests: 100, windowMs: 1000 } as const;

/**
 * What Customer.io allows, per workspace.
 *
 * - Batch size 100 people: `/api/v2/batch` caps bytes, not actions (500 KB a request, 32 KB an
 *   action). The connector splits a batch into as many requests as its bytes need, so a lane may
 *   raise `batch_size`; 100 actions of ordinary profiles (a few hundred bytes each) fit one request.
 * - Requests per second 90: the lower documented Track API rate (100/s) less a margin for `check`
 *   (`GET /api/v1/accounts/region`), which shares the workspace's budget. Field discovery makes no
 *   request. At up to 100 people a request that is 9,000 people a second.
 * - No documented concurrency limit: the lane default applies.
 */
export const customerioLimits: DestinationLimits = {
  batchSize: { value: 100, doc: BATCH_DOC },
  requestsPerSecond: { value: 90, doc: RATE_LIMITS_DOC },
};
