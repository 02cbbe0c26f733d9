import type { DestinationLimits } from '#connectors/sdk/destination';

/** Users API: `create_or_update_many`, `create_many`, `update_many`, `destroy_many` and `show_many`. */
export const USERS_DOC = 'https://developer.zendesk.com/api-reference/ticketing/users/users/';
/** Account-wide rate limits by plan, the `Retry-After` header of a 429, and the job limit. */
export const RATE_LIMITS_DOC = 'https://developer.zendesk.com/api-reference/introduction/rate-limits/';
/** Job statuses: `queued`, `working`, `completed`, `failed`, with per-record `results`. */
export const JOB_STATUSES_DOC = 'https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/';
/** User fields (custom fields of the user profile), listed with cursor pagination. */
export const USER_FIELDS_DOC = 'https://developer.zendesk.com/api-reference/ticketing/users/user_fields/';

/** "Accepts an array of up to 100 user objects" (and up to 100 ids for `show_many` / `destroy_many`). */
export const MAX_USERS_PER_REQUEST = 100;

/**
 * Zendesk Support limits (re-checked against the pages above):
 *
 * - Batch: the bulk user endpoints take up to 100 users per request.
 * - Rate: 200 requests/min on Team, 400 on Growth and Professional, 700 on Enterprise, 2,500 with
 *   the High Volume API add-on or Enterprise Plus, account-wide, across every integration. One
 *   `write` is one job-queueing request plus one or two job-status polls (more for a slow job), so
 *   one write per second stays under the lowest plan's 3.3 requests per second. Raise
 *   `lane.requests_per_second` on a larger plan (e.g. 3 on Enterprise, 10 with High Volume).
 * - Concurrency: an account has at most 30 jobs queued or running at once ("Job limit"); a write
 *   waits for its job, so parallel writes are parallel jobs. Past it, Zendesk answers 429.
 */
export const zendeskLimits: DestinationLimits = {
  batchSize: { value: MAX_USERS_PER_REQUEST, doc: `${USERS_DOC}#create-or-update-many-users` },
  requestsPerSecond: { value: 1, doc: RATE_LIMITS_DOC },
  concurrency: { value: 30, doc: `${RATE_LIMITS_DOC}#job-limit` },
};
