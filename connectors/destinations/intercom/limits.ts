import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * Intercom's REST rate limit: "Private apps have a default rate limit of 10,000 API calls per minute
 * per app and 25,000 API calls per minute per workspace" (every app of the workspace counts towards
 * the 25,000), and "we evenly distribute this into 10 second windows": 10,000 / 6 ≈ 1,666 calls per
 * 10-second window for one app. Over it, `429` with `rate_limit_exceeded` ("Exceeded rate limit of
 * 167 in 10_seconds" in the page's example of 1,000 a minute) and the `X-RateLimit-Limit` /
 * `X-RateLimit-Remaining` / `X-RateLimit-Reset` (epoch seconds) headers. Every REST call counts:
 * searches, creates, updates, archives, data-attribute discovery, `GET /me`.
 */
export const RATE_LIMIT_DOC = 'https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting';
/** `POST /contacts/search`: "max 15 filters for each AND or OR group", at most 150 results per page. */
export const SEARCH_DOC =
  'https://developers.intercom.com/docs/references/rest-api/api.intercom.io/contacts/searchcontacts';
/** Intercom has no bulk contact endpoint in 2.11: `POST /contacts` and `PUT /contacts/{id}` take one contact each. */
export const CONTACTS_DOC = 'https://developers.intercom.com/docs/references/rest-api/api.intercom.io/contacts';

/** Calls per minute of one private app (the workspace shares 25,000 among all its apps). */
export const APP_CALLS_PER_MINUTE = 10_000;
/** Intercom's window: the per-minute limit is enforced as one sixth per 10 seconds. */
export const WINDOW_MS = 10_000;
/** Calls one app may make in one 10-second window: 10,000 / 6, rounded down. */
export const CALLS_PER_WINDOW = Math.floor((APP_CALLS_PER_MINUTE * WINDOW_MS) / 60_000);

/**
 * The lane's pace, in HTTP requests per second (the SDK paces every request, not every write):
 * 150/s is 1,500 per 10-second window, 90 % of the app's 1,666. The 10 % left covers the calls no
 * lane paces — `backflow check` (`GET /me`), `backflow fields` and `validate --remote`
 * (`GET /data_attributes`) — and the pacer's own allowance of one request over the rate in a
 * second. Lower it with `lane.requests_per_second` when other apps of the workspace use the API
 * too: they share 25,000 calls a minute (≈416/s).
 */
export const REQUESTS_PER_SECOND = 150;
/** Values per search: one `IN` filter, kept within the documented 15 filters of a group. */
export const SEARCH_CHUNK = 15;
/** Largest `pagination.per_page` the search endpoint accepts. */
export const SEARCH_PER_PAGE = 150;

/**
 * Records per write(): one search finds them all (≤ 15), then one call each (two or three for a
 * contact the search did not show, or an archived one to bring back).
 */
const BATCH_SIZE = 10;

export const intercomLimits: DestinationLimits = {
  batchSize: { value: BATCH_SIZE, doc: CONTACTS_DOC },
  requestsPerSecond: { value: REQUESTS_PER_SECOND, doc: RATE_LIMIT_DOC },
  // Intercom documents no concurrency cap, only the per-minute rate, which the lane's pace keeps
  // whatever the number of exporters: a few keep the pace busy while each waits on round trips.
  concurrency: { value: 5, doc: RATE_LIMIT_DOC },
};
