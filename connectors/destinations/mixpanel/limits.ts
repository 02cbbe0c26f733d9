import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * "The User Profile API imposes limits on the total number profile updates that can be sent per
 * request to 2000 as well as limit each individual update in the request to a maximum of 1 MB."
 */
export const PROFILE_LIMITS_DOC = 'https://docs.mixpanel.com/reference/user-profile-limits';
/**
 * Ingestion API: "2GB of uncompressed JSON/minute or ~30k events per second, measured on a rolling
 * 1 minute basis", per project; "Getting a 429 response code from our API means that you have
 * reached our rate-limit."
 */
export const RATE_LIMITS_DOC = 'https://docs.mixpanel.com/reference/rate-limits';
/**
 * The 429 body (`{"code": 429, "error": "Project exceeded rate limits. Please retry the request
 * with exponential backoff.", "status": "Too Many Requests"}`), no documented `Retry-After`, and
 * "Start with a 2-second backoff".
 */
export const RATE_LIMIT_ERROR_DOC = 'https://docs.mixpanel.com/troubleshooting/errors/429-rate-limit-exceeded';
/** `POST /engage#profile-set`, `#profile-unset`, `#profile-delete`, `strict=1`, `ip=0`. */
export const PROFILE_SET_DOC = 'https://docs.mixpanel.com/reference/profile-set';
/**
 * The OpenAPI spec of the Ingestion API (github.com/mixpanel/docs, openapi/ingestion.openapi.yaml):
 * its 413 example is "request exceeds max limit of 2097152 bytes".
 */
export const INGESTION_OPENAPI_DOC = 'https://github.com/mixpanel/docs/blob/main/openapi/ingestion.openapi.yaml';

/** Profile updates in one `/engage` request. */
export const MAX_UPDATES = 2000;
/**
 * One update object's JSON ("a maximum of 1 MB"). Inferred: 1 MB = 2^20 bytes, as the 2 MB request
 * cap is written 2097152 bytes.
 */
export const MAX_UPDATE_BYTES = 1_048_576;
/**
 * One request body. Inferred for `/engage`: the user-profile limits page names no request cap; the
 * Ingestion API's documented 413 ("request exceeds max limit of 2097152 bytes") is the cap of its
 * other batch endpoints, and the connector keeps every `/engage` request under it too.
 */
export const MAX_REQUEST_BYTES = 2_097_152;

/** The documented rate: ~30,000 updates a second on a rolling minute, per project. */
export const UPDATES_PER_SECOND = 30_000;

/**
 * - Batch size 2,000: a record with both set and cleared properties takes two updates (`$set` and
 *   `$unset`), so the connector splits a batch into requests of at most 2,000 updates and
 *   2,097,152 bytes.
 * - Requests per second 10: Mixpanel limits updates (~30,000 a second) and bytes (2 GB a minute),
 *   not requests. At most 2,000 updates and 2 MiB a request, 10 requests a second stay under both
 *   (20,000 updates a second, 1.2 GB a minute) whatever the batches hold, with a third of the
 *   budget left for other writers to the project and for `check`.
 * - No documented concurrency limit: the lane default applies.
 */
export const mixpanelLimits: DestinationLimits = {
  batchSize: { value: MAX_UPDATES, doc: PROFILE_LIMITS_DOC },
  requestsPerSecond: { value: 10, doc: RATE_LIMITS_DOC },
  maxRequestBytes: { value: MAX_REQUEST_BYTES, doc: INGESTION_OPENAPI_DOC },
};

/**
 * The documented limit in requests, for the conformance test: ~30,000 updates a second on a rolling
 * minute is 900 full requests (2,000 updates) a minute.
 */
export const DOCUMENTED_REQUEST_LIMIT = {
  requests: (UPDATES_PER_SECOND * 60) / MAX_UPDATES,
  windowMs: 60_000,
} as const;
