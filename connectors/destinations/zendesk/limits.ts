import type { DestinationLimits } from '#connectors/sdk/destination';

/** Users API: `create_or_update_many`, `create_many`, `update_many`, `destroy_many` and `show_many`. */
export const USERS_DOC = 'https://developer.zendesk.com/api-reference/ticketing/users/users/';
/** Account-wide rate limits by plan, the `Retry-After` header of a 429, and the job limit. */
export const RATE_LIMITS_DOC = 'https://developer.zendesk.com/api-reference/introduction/rate-limits/';
/** Job statuses: `queued`, `working`, `completed`, `failed` (and `killed`), with per-record `results`. */
export const JOB_STATUSES_DOC = 'https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/';
/** User fields (custom fields of the user profile), listed with cursor pagination. */
export const USER_FIELDS_DOC = 'https://developer.zendesk.com/api-reference/ticketing/users/user_fields/';

/** "Accepts an array of up to 100 user objects" (and up to 100 ids for `show_many` / `destroy_many`). */
export const MAX_USERS_PER_REQUEST = 100;

/** Team's "Support and Help Center API requests per minute" (the lowest current plan). */
export const TEAM_REQUESTS_PER_MINUTE = 200;

/**
 * Zendesk Support limits (re-checked against the pages above):
 *
 * - Batch: the bulk user endpoints take up to 100 users per request.
 * - Rate: "Support and Help Center API requests per minute": 200 on Team, 400 on Growth and
 *   Professional, 700 on Enterprise, 2,500 on Enterprise Plus or with the High Volume API add-on
 *   (RATE_LIMITS_DOC, "Zendesk Suite plan limits" / "Zendesk Support plan limits"), per account:
 *   every integration and app of the account shares it. The lane paces every request — the
 *   queueing request, each job-status poll, the `show_many` lookups, field discovery — so the rate
 *   is declared in requests: Team's 200/min is 3.33/s, of which 2.5/s (150/min, 75 %) is
 *   Backflow's, leaving a quarter for check()/fields() of other runs and the account's other
 *   integrations. On a larger plan raise `lane.requests_per_second` (about 5 on Growth and
 *   Professional, 8 on Enterprise, 30 on Enterprise Plus / High Volume).
 * - Concurrency: an account has at most 30 jobs queued or running at once ("Job limit"); a write
 *   waits for its job, so parallel writes are parallel jobs. Past it, Zendesk answers 429.
 */
export const zendeskLimits: DestinationLimits = {
  batchSize: { value: MAX_USERS_PER_REQUEST, doc: `${USERS_DOC}#create-or-update-many-users` },
  requestsPerSecond: { value: 2.5, doc: `${RATE_LIMITS_DOC}#zendesk-support-plan-limits` },
  concurrency: { value: 30, doc: `${RATE_LIMITS_DOC}#job-limit` },
};
