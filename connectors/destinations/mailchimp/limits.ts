import type { DestinationLimits } from '#connectors/sdk/destination';

/** "Up to 500 members may be added or updated with each API call." */
export const BATCH_SUBSCRIBE_DOC =
  'https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/';
/** API limits: each user may hold up to 10 simultaneous connections; there is no published request rate. */
export const FUNDAMENTALS_DOC = 'https://mailchimp.com/developer/marketing/docs/fundamentals/#api-limits';
/** Merge fields: `count` pages go up to 1,000 items. */
export const MERGE_FIELDS_DOC = 'https://mailchimp.com/developer/marketing/api/list-merges/list-merge-fields/';

/** Members per `POST /lists/{list_id}` call. */
export const MAX_BATCH_MEMBERS = 500;
/** Largest `count` of a collection page (merge fields, tags). */
export const MAX_PAGE_SIZE = 1000;

/**
 * Mailchimp limits each user to 10 simultaneous connections across all their keys and apps and
 * answers the 11th with 429 (`TooManyRequests`), without any rate-limit header. It publishes no
 * request rate: the 10 requests a second below is what 10 connections sustain at about one second
 * per batch call, so a lane at this pace stays under the connection cap. A lane's
 * `requests_per_second` and `concurrency` override both (lower them when other apps share the account).
 */
export const mailchimpLimits: DestinationLimits = {
  batchSize: { value: MAX_BATCH_MEMBERS, doc: BATCH_SUBSCRIBE_DOC },
  requestsPerSecond: { value: 10, doc: FUNDAMENTALS_DOC },
  concurrency: { value: 10, doc: FUNDAMENTALS_DOC },
};

/**
 * Wait after a 429: the cap is on connections held at once, so it clears as soon as one of the
 * account's requests in flight finishes; Mailchimp sends no `Retry-After` to say more.
 */
export const THROTTLE_WAIT_MS = 2_000;
