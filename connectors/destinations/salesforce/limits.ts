import type { DestinationLimits } from '#connectors/sdk/destination';

/** sObject Collections: "The list can contain up to 200 objects" (upsert, create, update, delete). */
export const COLLECTION_MAX_RECORDS = 200;

export const COLLECTIONS_UPSERT_DOC =
  'https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm';
export const API_LIMITS_DOC =
  'https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm';

/**
 * Salesforce has no per-second rate: it meters a rolling 24-hour allocation per org (a base of
 * 100,000 requests plus an amount per user licence and purchased add-ons; `dailyQuota` is that
 * base, the org's real figure is in Setup → Company Information) and refuses calls beyond it with
 * `403 REQUEST_LIMIT_EXCEEDED`. It also caps *long-running* requests (20 s or more) at 25 at once
 * in production orgs and sandboxes (5 in Developer Edition and trial orgs); shorter requests are
 * not limited. `requestsPerSecond` is therefore left to the lane (`lane.requests_per_second`),
 * sized from the org's remaining allocation (see docs/destinations/salesforce.md#limits).
 */
export const salesforceLimits: DestinationLimits = {
  batchSize: { value: COLLECTION_MAX_RECORDS, doc: COLLECTIONS_UPSERT_DOC },
  concurrency: { value: 25, doc: API_LIMITS_DOC },
  dailyQuota: { value: 100_000, doc: API_LIMITS_DOC },
};
