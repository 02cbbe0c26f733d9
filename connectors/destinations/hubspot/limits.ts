import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * "Object API batch endpoints are limited to 100 inputs per request" (create, update, upsert,
 * read, archive alike).
 */
const OBJECTS_GUIDE = 'https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis#limits';

/**
 * HubSpot's rate limits (API usage guidelines; the private apps page gives the same table). The
 * burst limit is counted per app, in a rolling 10 seconds; the daily limit per account, shared by
 * every private app of the account, and reset at midnight in the account's time zone:
 *
 * | Tier                     | Per 10 seconds       | Per day                                  |
 * | ------------------------ | -------------------- | ---------------------------------------- |
 * | Free and Starter         | 100 / private app    | 250,000 / account                        |
 * | Professional             | 190 / private app    | 625,000 / account                        |
 * | Enterprise               | 190 / private app    | 1,000,000 / account                      |
 * | API limit increase       | 200 / private app    | +1,000,000 / account per increase (≤ 2)  |
 *
 * https://developers.hubspot.com/docs/apps/legacy-apps/private-apps/overview#private-app-limits
 * (The 2024 changelog, https://developers.hubspot.com/changelog/increasing-our-api-limits, gave
 * Professional 650,000 a day and the increase pack 250 / 10 s; the reference pages are followed.)
 */
const USAGE_GUIDELINES = 'https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines';

/** Records per request: every batch endpoint takes at most this many inputs. */
export const MAX_BATCH_INPUTS = 100;

/** The lowest tier's burst limit, in HubSpot's own window: what the pace must never exceed. */
export const DOCUMENTED_BURST = { requests: 100, windowMs: 10_000 } as const;

/**
 * HubSpot's limits. The lane's pace counts every request — writes, the `batch/read` lookups of
 * update, insert reconciliation and mirror, archives, and the field discovery before the first
 * write of an object — so the declared rate is the lowest tier's request rate (100 per rolling
 * 10 s per app, 10 a second) less one a second for the calls outside the lane's pace (`check()`,
 * `backflow fields`) that count against the same app's window: a rolling window forgives no burst.
 * Professional and Enterprise (190 / 10 s) can raise a lane to 18. The daily quota is the lowest
 * tier's, per account.
 */
export const hubspotLimits: DestinationLimits = {
  batchSize: { value: MAX_BATCH_INPUTS, doc: OBJECTS_GUIDE },
  requestsPerSecond: { value: 9, doc: USAGE_GUIDELINES },
  dailyQuota: { value: 250_000, doc: USAGE_GUIDELINES },
};
