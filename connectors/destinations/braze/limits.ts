import type { DestinationLimits } from '#connectors/sdk/destination';

/** `/users/track`: request shape, per-request object maximum and the Monthly Active Users plans' cap. */
export const TRACK_DOC = 'https://www.braze.com/docs/api/endpoints/user_data/post_user_track/';
/** `/users/delete`: up to 50 identifiers per request. */
export const DELETE_DOC = 'https://www.braze.com/docs/api/endpoints/user_data/post_user_delete/';
/**
 * `/v2/subscription/status/set`: "batch update the subscription state of up to 50 users"; one
 * request may carry several subscription groups; "5,000 requests per minute shared across the
 * /subscription/status/set and /v2/subscription/status/set endpoint".
 */
export const SUBSCRIPTION_SET_DOC =
  'https://www.braze.com/docs/api/endpoints/subscription_groups/post_update_user_subscription_group_status_v2/';
/** `/subscription/status/get`: up to 50 users per request; the default limit (250,000 requests an hour). */
export const SUBSCRIPTION_GET_DOC =
  'https://www.braze.com/docs/api/endpoints/subscription_groups/get_list_user_subscription_group_status/';
/** Users in one `/v2/subscription/status/set` (and one `/subscription/status/get`) request. */
export const MAX_SUBSCRIPTION_USERS = 50;
/** The set endpoints' documented limit, in its own window. */
export const SUBSCRIPTION_RATE_LIMIT = { requests: 5000, windowMs: 60_000 } as const;

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
 *   "up to 50 updates combined" per `/users/track` request. A lane may raise `batch_size` to 75 for
 *   upserts on other plans; the connector still splits anything larger into requests of 75
 *   attributes or 50 deletions.
 * - Requests per second: the lane's schedule counts every request (`/users/track`,
 *   `/users/delete`, `GET /custom_attributes` for field discovery), so the rate must fit every
 *   endpoint a lane calls. `/users/track`: 3,000 requests per three seconds (1,000/s);
 *   `/users/delete`: 20,000 requests per minute (333/s), shared with `/users/identify`,
 *   `/users/alias/*` and `/users/merge`. 300/s stays under both with a 10% margin for the
 *   deletes' shared bucket and the check and discovery calls; at 50 records a request that is
 *   15,000 records a second, far above what the lane's concurrency reaches, so the rate never
 *   limits a sync in practice. `/custom_attributes` (1,000 per hour, its own bucket) is called
 *   once per object and connection, and its 429 does not slow the lane.
 * - No documented concurrency limit: the lane default applies.
 */
export const brazeLimits: DestinationLimits = {
  batchSize: { value: 50, doc: DELETE_DOC },
  requestsPerSecond: { value: 300, doc: RATE_LIMITS_DOC },
};

/** `/users/track`'s documented limit, in its own window: the lowest tier's (conformance test). */
export const TRACK_RATE_LIMIT = { requests: 3000, windowMs: 3000 } as const;
