import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * Customer Match considerations: "The operations collection for each
 * AddOfflineUserDataJobOperationsRequest can contain at most 100,000 identifiers across all of
 * the UserData objects"; a UserData holds at most 20 identifiers (UserDataError
 * TOO_MANY_USER_IDENTIFIERS: "Maximum number of user identifiers allowed per request is 100,000
 * and per operation is 20"); "create a single job containing all of the operations for a user
 * list", and do not run jobs that modify the same list concurrently (CONCURRENT_MODIFICATION).
 */
export const CUSTOMER_MATCH_DOC =
  'https://developers.google.com/google-ads/api/docs/remarketing/audience-segments/customer-match/get-started';

/**
 * Access levels: a Basic access developer token has 15,000 operations a day; Standard access is
 * unlimited. Google publishes no fixed request rate: it answers RESOURCE_EXHAUSTED (429) with a
 * `retryDelay` when a token or account goes too fast.
 */
export const ACCESS_LEVELS_DOC = 'https://developers.google.com/google-ads/api/docs/api-policy/access-levels';
export const RATE_LIMITS_DOC = 'https://developers.google.com/google-ads/api/docs/best-practices/quotas';

/** Identifiers per AddOfflineUserDataJobOperations request. */
export const MAX_IDENTIFIERS_PER_REQUEST = 100_000;
/** Identifiers per UserData (one person). */
export const MAX_IDENTIFIERS_PER_USER = 20;

/**
 * Google's limits. A write is one job (create, add operations, run, polls), so the records of a
 * write are one job's: 10,000 people (up to 40,000 identifiers, within one request). Inferred: one
 * request a second keeps a lane far from RESOURCE_EXHAUSTED; concurrency 1 keeps two jobs of a
 * lane from modifying the same list at once.
 */
export const googleCustomerMatchLimits: DestinationLimits = {
  batchSize: { value: 10_000, doc: CUSTOMER_MATCH_DOC },
  requestsPerSecond: { value: 1, doc: RATE_LIMITS_DOC },
  concurrency: { value: 1, doc: CUSTOMER_MATCH_DOC },
  dailyQuota: { value: 15_000, doc: ACCESS_LEVELS_DOC },
};
