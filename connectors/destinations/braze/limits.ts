import type { DestinationLimits } from '#connectors/sdk/destination';

/** `/users/track`: request shape, per-request object maximum and the Monthly Active Users plans' cap. */
export const TRACK_DOC = 'https://www.braze.com/docs/api/endpoints/user_data/post_user_track/';
/** `/users/delete`: up to 50 identifiers per request. */
export const DELETE_DOC = 'https://www.braze.com/docs/api/endpoints/user_data/post_user_delete/';
/** Rate limits per workspace, and the `X-RateLimit-*` headers every answer carries. */
export const RATE_LIMITS_DOC = 'https://www.braze.com/docs/api/api_limits/';

/**
 * Objects in one `/users/track` request: "up to 75 total objects combined across attributes,
 * events, and purchases" (Backflow sends attributes only).
 */
export const MAX_TRACK_OBJECTS = 75;

/** Identifiers in one `/users/delete` request ("Up to 50 `external_ids`, … can be included"). */
export const MAX_DELETE_IDS = 50;

/**
 * What Braze allows, per workspace (https://www.braze.com/docs/api/api_limits/).
 *
 * - Batch size 50, although `/users/track` takes 75 objects: `/users/delete` takes 50 ids, and
 *   workspaces on the Monthly Active Users plans (CY 24-25, Universal, Web, Mobile MAU) may batch
 *   "up to 50 updates combined" per `/users/track` request. At 50 every write is exactly one
 *   request whatever the operation and the plan, so the lane's pace is the request rate. A lane may
 *   raise `batch_size` to 75 for upserts on other plans; the connector still splits anything larger
 *   into requests of 75 attributes or 50 deletions.
 * - 3,000 `/users/track` requests per three seconds: 1,000 per second. `/users/delete` shares
 *   20,000 requests per minute with `/users/identify` and `/users/alias/*`; mirror deletions above
 *   that pace are answered 429 and redelivered after `X-RateLimit-Reset`.
 * - No documented concurrency limit: the lane default applies.
 */
export const brazeLimits: DestinationLimits = {
  batchSize: { value: 50, doc: DELETE_DOC },
  requestsPerSecond: { value: 1000, doc: RATE_LIMITS_DOC },
};
