import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * "You can add an unlimited number of records for an audience, but only a maximum of 10000 at a
 * time." — the `/{custom_audience_id}/users` edge, for adding and removing alike.
 */
export const USERS_EDGE_DOC = 'https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users';

/**
 * Marketing API rate limiting: Custom Audience calls count against the `custom_audience` Business
 * Use Case limit of the ad account, reported in `X-Business-Use-Case-Usage`; throttling answers
 * error code 17 (subcode 2446079, "User request limit reached"), 613 (subcode 1487742, "There have
 * been too many calls from this ad-account") or 80003 (the custom_audience BUC). The hourly budget
 * is a formula of the access tier: development (Limited) access gets the basic quota, 5,000 + 40 ×
 * active custom audiences an hour; Full (Advanced) access 190,000 + 40 × active custom audiences.
 */
export const RATE_LIMIT_DOC = 'https://developers.facebook.com/docs/marketing-api/overview/rate-limiting';

/** Rows per `/users` request. */
export const MAX_ROWS_PER_REQUEST = 10_000;

/**
 * Meta's limits. The pace is the lowest tier's custom_audience budget — 5,000 calls an hour is
 * 1.39 a second — less a margin for `check` and other apps of the ad account: 1 request a second,
 * each carrying up to 10,000 people, so a lane adds or removes up to 36 million people an hour.
 * Full access can raise a lane's `requests_per_second`.
 */
export const metaAudiencesLimits: DestinationLimits = {
  batchSize: { value: MAX_ROWS_PER_REQUEST, doc: USERS_EDGE_DOC },
  requestsPerSecond: { value: 1, doc: RATE_LIMIT_DOC },
};
