import type { DestinationLimits } from '#connectors/sdk/destination';

/** "Up to 500 members may be added or updated with each API call." */
export const BATCH_SUBSCRIBE_DOC =
  'https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/';
/**
 * API limits: "each user account is permitted up to 10 simultaneous connections" across all its
 * keys and apps; the 11th is answered 429. No request rate and no rate-limit headers are
 * published.
 */
export const FUNDAMENTALS_DOC = 'https://mailchimp.com/developer/marketing/docs/fundamentals/#api-limits';
/** Error glossary: problem-details bodies, 401 API Key Invalid, 403 Forbidden/User Disabled, 429. */
export const ERRORS_DOC = 'https://mailchimp.com/developer/marketing/docs/errors/';
/** Merge fields: `count` pages go up to 1,000 items. */
export const MERGE_FIELDS_DOC = 'https://mailchimp.com/developer/marketing/api/list-merges/list-merge-fields/';

/**
 * `members_to_add` and `members_to_remove` of one `POST /lists/{list_id}/segments/{segment_id}`:
 * "A maximum of 500 members can be sent" in each (BatchAddOrRemoveMembersListsRequest in
 * github.com/mailchimp/mailchimp-marketing-typescript-sdk).
 */
export const SEGMENT_MEMBERS_DOC =
  'https://mailchimp.com/developer/marketing/api/list-segments/batch-add-or-remove-members/';
export const MAX_SEGMENT_CHANGES = 500;

/** Members per `POST /lists/{list_id}` call. */
export const MAX_BATCH_MEMBERS = 500;
/** Largest `count` of a collection page (merge fields, tags). */
export const MAX_PAGE_SIZE = 1000;

/**
 * What Mailchimp documents is a cap on connections, not on a rate: 10 simultaneous connections per
 * user. `concurrency: 10` holds it (each exporter of a lane makes its requests one after another,
 * so a lane never holds more than its concurrency in flight).
 *
 * Mailchimp publishes no request rate. The lane's pace counts every request — batch subscribes,
 * member look-ups, archives, merge-field pages — and Backflow paces a lane at 9 requests a second:
 * 10 connections whose requests last at least a second each (a 500-member batch does) can carry
 * 10 a second, and one slot a second is left for the `check()`/`fields()` calls and other apps
 * sharing the account. This is Backflow's reading of the connection cap, not a published figure.
 * A lane's `requests_per_second` and `concurrency` override both (lower them when other apps use
 * the same account).
 */
export const mailchimpLimits: DestinationLimits = {
  batchSize: { value: MAX_BATCH_MEMBERS, doc: BATCH_SUBSCRIBE_DOC },
  requestsPerSecond: { value: 9, doc: FUNDAMENTALS_DOC },
  concurrency: { value: 10, doc: FUNDAMENTALS_DOC },
};

/**
 * Wait after a 429 (or a bare 403 under load): the cap is on connections held at once, so it
 * clears as soon as one of the account's requests in flight finishes; Mailchimp sends no
 * `Retry-After` to say more.
 */
export const THROTTLE_WAIT_MS = 2_000;
