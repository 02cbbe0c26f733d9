import type { DestinationLimits } from '#connectors/sdk/destination';

/** sObject Collections: "The list can contain up to 200 objects" (upsert, create, update, delete). */
export const COLLECTION_MAX_RECORDS = 200;

export const COLLECTIONS_UPSERT_DOC =
  'https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm';
export const API_LIMITS_DOC =
  'https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm';

/** Salesforce's API allocation window: a rolling 24 hours. */
export const ALLOCATION_WINDOW_MS = 24 * 60 * 60 * 1000;
/**
 * The base allocation of an org with API access included (Enterprise Edition; Professional
 * Edition with the API add-on), before the amount per user licence and purchased add-ons.
 * Developer Edition orgs get 15,000 (`lane.requests_per_second: 0.15` stays within it).
 */
export const BASE_DAILY_ALLOCATION = 100_000;

/**
 * Salesforce meters an org, not a client: a rolling 24-hour allocation of API requests (a base of
 * 100,000 plus an amount per user licence and purchased add-ons; the org's real figure is in
 * Setup → Company Information), refused beyond it with `403 REQUEST_LIMIT_EXCEEDED`; and at most
 * 25 *long-running* requests (20 s or more) at once in production orgs and sandboxes (5 in
 * Developer Edition and trials) — shorter requests are not limited. There is no per-second rate.
 *
 * The lane is paced in requests per second, every request counted (logins, describes, lookups,
 * job polls, writes): 1 request/s is 86,400 requests in 24 hours, the base allocation
 * (100,000 / 86,400 s ≈ 1.16/s) less ~14 % for `check()`, `fields()` and the org's other
 * integrations. A lane running flat out all day stays inside the smallest production allocation;
 * an org with more licences can raise `lane.requests_per_second`.
 */
export const salesforceLimits: DestinationLimits = {
  batchSize: { value: COLLECTION_MAX_RECORDS, doc: COLLECTIONS_UPSERT_DOC },
  requestsPerSecond: { value: 1, doc: API_LIMITS_DOC },
  concurrency: { value: 25, doc: API_LIMITS_DOC },
  dailyQuota: { value: BASE_DAILY_ALLOCATION, doc: API_LIMITS_DOC },
};
