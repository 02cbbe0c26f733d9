import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * Intercom's REST rate limit: "Private apps have a default rate limit of 10,000 API calls per minute
 * per app and 25,000 API calls per minute per workspace", evenly distributed into 10-second windows
 * (≈1,666 calls per window, ≈166 per second); over it, `429` with `rate_limit_exceeded` and the
 * `X-RateLimit-Limit` / `X-RateLimit-Remaining` / `X-RateLimit-Reset` (epoch seconds) headers.
 */
export const RATE_LIMIT_DOC = 'https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting';
/** `POST /contacts/search`: "max 15 filters for each AND or OR group", at most 150 results per page. */
export const SEARCH_DOC =
  'https://developers.intercom.com/docs/references/rest-api/api.intercom.io/contacts/searchcontacts';
/** Intercom has no bulk contact endpoint: `POST /contacts` and `PUT /contacts/{id}` take one contact each. */
export const CONTACTS_DOC = 'https://developers.intercom.com/docs/references/rest-api/api.intercom.io/contacts';

/** Calls per minute of one private app (the workspace shares 25,000 among all its apps). */
export const APP_CALLS_PER_MINUTE = 10_000;
/** Values per search: one `IN` filter, kept within the documented 15 filters of a group. */
export const SEARCH_CHUNK = 15;
/** Largest `pagination.per_page` the search endpoint accepts. */
export const SEARCH_PER_PAGE = 150;

/** Records per write(): each costs its own create/update call, so batches stay small. */
const BATCH_SIZE = 10;
/**
 * Calls one batch can make at worst: one search per 15 records, then for each record a create that
 * may answer 409 (a contact the search index did not show yet) followed by an update.
 */
export const WORST_CALLS_PER_BATCH = Math.ceil(BATCH_SIZE / SEARCH_CHUNK) + 2 * BATCH_SIZE;

/**
 * The lane's pacer takes one token per write() call, i.e. per batch, not per HTTP call. So the
 * declared rate is in batches per second, sized so that batches × worst-case calls per batch stays
 * under the app's limit: 7 × 21 = 147 calls/s ≤ 10,000 / 60 ≈ 166 calls/s (≈1,470 per 10-second
 * window of ≈1,666). A usual batch (one search, one update per record) makes 11 calls. A lane that
 * sets a smaller `batch_size` may raise `requests_per_second` in proportion.
 */
const BATCHES_PER_SECOND = Math.floor(APP_CALLS_PER_MINUTE / 60 / WORST_CALLS_PER_BATCH);

export const intercomLimits: DestinationLimits = {
  batchSize: { value: BATCH_SIZE, doc: CONTACTS_DOC },
  requestsPerSecond: { value: BATCHES_PER_SECOND, doc: RATE_LIMIT_DOC },
  // Intercom documents no concurrency cap, only the per-minute rate: a few exporters are enough
  // to keep 7 batches/s going with ~3 round trips per batch, and the pacer is shared by all of them.
  concurrency: { value: 5, doc: RATE_LIMIT_DOC },
};
