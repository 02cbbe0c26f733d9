import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * "Object API batch endpoints are limited to 100 inputs per request" (create, update, upsert,
 * read, archive alike).
 */
const OBJECTS_GUIDE = 'https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis#limits';

/**
 * Rate limits of private apps (legacy private apps and privately distributed apps), per account:
 * Free and Starter 100 requests per rolling 10 seconds and 250,000 a day; Professional 190 / 10 s
 * and 650,000 a day; Enterprise 190 / 10 s and 1,000,000 a day; the API limit increase pack raises
 * the burst to 250 / 10 s (https://developers.hubspot.com/changelog/increasing-our-api-limits).
 * The daily count resets at midnight in the account's time zone.
 */
const USAGE_GUIDELINES = 'https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines';

/** Records per request: every batch endpoint takes at most this many inputs. */
export const MAX_BATCH_INPUTS = 100;

/**
 * HubSpot's limits. The pace is the lowest tier's (100 requests per rolling 10 s) less a margin
 * for `check()` and field discovery, which share the budget: a rolling window forgives no burst.
 * An upsert or an insert is one request per write; an update or a mirror archive is two (a read
 * by the match field, then the write by record ID), so their lanes on Free and Starter accounts
 * should set `requests_per_second: 4`. Professional and Enterprise accounts (190 / 10 s) can
 * raise an upsert lane to 18. The daily quota is the lowest tier's too.
 */
export const hubspotLimits: DestinationLimits = {
  batchSize: { value: MAX_BATCH_INPUTS, doc: OBJECTS_GUIDE },
  requestsPerSecond: { value: 9, doc: USAGE_GUIDELINES },
  dailyQuota: { value: 250_000, doc: USAGE_GUIDELINES },
};
