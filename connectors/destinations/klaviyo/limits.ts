import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * Bulk Import Profiles (`POST /api/profile-bulk-import-jobs`): "Accepts up to 10,000 profiles per
 * request. The maximum allowed payload size is 5MB." Rate limits: burst 10/s, steady 150/m.
 * https://developers.klaviyo.com/en/v2025-01-15/reference/bulk_import_profiles
 */
export const BULK_IMPORT_DOC = 'https://developers.klaviyo.com/en/v2025-01-15/reference/bulk_import_profiles';

/**
 * "All new API endpoints are rate limited on a per-account basis, and use a fixed-window rate
 * limiting algorithm with two distinct windows: burst (1-second window) and steady (1-minute
 * window)"; private key integrations share one quota per account.
 * https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling
 */
export const RATE_LIMITS_DOC = 'https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling';

/** Profiles per job (Bulk Import Profiles reference). */
export const MAX_JOB_PROFILES = 10_000;
/** Bytes per job request body (Bulk Import Profiles reference: 5 MB). */
export const MAX_JOB_BYTES = 5 * 1024 * 1024;

/**
 * The steady limit of the bulk import endpoints (create, get job, get import errors: each
 * "burst 10/s, steady 150/m"), in Klaviyo's own window: what the pace must never exceed.
 */
export const DOCUMENTED_STEADY = { requests: 150, windowMs: 60_000 } as const;
/** Their burst limit, in its 1-second window. */
export const DOCUMENTED_BURST = { requests: 10, windowMs: 1_000 } as const;

/**
 * Klaviyo's limits. The lane's pace counts every request — job creates, job polls, import-error
 * pages, the synchronous `profile-import` calls that clear nulls, and list membership calls — so
 * the declared rate is the steady rate of the slowest endpoint used (150 a minute, 2.5 a second),
 * rounded down to 2 a second (120 a minute), which leaves 30 a minute for `check()` and field
 * discovery that share the account's quota.
 */
export const klaviyoLimits: DestinationLimits = {
  batchSize: { value: MAX_JOB_PROFILES, doc: BULK_IMPORT_DOC },
  requestsPerSecond: { value: 2, doc: RATE_LIMITS_DOC },
  maxRequestBytes: { value: MAX_JOB_BYTES, doc: BULK_IMPORT_DOC },
};
