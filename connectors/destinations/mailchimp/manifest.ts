import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { mailchimpLimits } from './limits.ts';

/** The only match key: Mailchimp identifies a member by email address (its MD5 is the member id). */
export const MATCH_FIELD = 'email_address';

/** Membership objects: a tag of the `list_id` audience by name, or one of its static segments by id. */
export const TAG_PREFIX = 'tag:';
export const SEGMENT_PREFIX = 'segment:';

const options = z.strictObject({
  /**
   * API root. Default: the data centre of the key (`…-us21` → https://us21.api.mailchimp.com/3.0);
   * set it for a proxy or a test server.
   */
  base_url: z
    .url({
      protocol: /^https?$/,
      error: 'expected an http:// or https:// URL, e.g. https://us21.api.mailchimp.com/3.0',
    })
    .refine((u) => {
      const parsed = new URL(u);
      return parsed.username === '' && parsed.password === '';
    }, 'credentials in the URL are not supported: use the api_key secret')
    .optional(),
  /** Secret: a Mailchimp API key (Account → Extras → API keys), ending in its data centre (`-us21`). */
  api_key: z
    .string()
    .min(1)
    .regex(/^[\x21-\x7e]+$/, 'expected printable ASCII without spaces or line breaks (check for a trailing newline)'),
  /**
   * The subscription status of members NEW to the audience (sent as `status_if_new`). Members
   * already in the audience keep their status: Backflow never changes it unless the sync maps a
   * `status` column or `overwrite_status` is set. No default on purpose: `subscribed` only for
   * people who opted in to email marketing, `pending` to send them a confirmation email, else
   * `transactional`. See docs/destinations/mailchimp.md#subscription-status.
   */
  status: z.enum(['subscribed', 'pending', 'transactional', 'unsubscribed'], {
    error:
      'set status (of new members) to subscribed (people who opted in), pending (send a confirmation email), transactional or unsubscribed',
  }),
  /**
   * Also give `status` to members already in the audience (sends `status` with every member):
   * subscribers who opted in are then changed to `status` at their next change. Only for an
   * audience whose consent the warehouse owns. Default false.
   */
  overwrite_status: z.boolean().default(false),
  /**
   * The audience of membership objects (`tag:<name>`, `segment:<id>`): required for them, unused
   * by audience syncs (their object is the audience id).
   */
  list_id: z
    .string()
    .regex(/^[A-Za-z0-9]{1,32}$/, 'expected an audience id, e.g. a1b2c3d4e5')
    .optional(),
  /** `tag:<name>` of a tag the audience does not have yet: create it (default), or refuse the sync. */
  create_tags: z.boolean().default(true),
  /**
   * A member entering a tag or segment who is not in the audience: refused (default), or added to
   * the audience first (with `status` as the status of new members) and then tagged.
   */
  add_missing_members: z.boolean().default(false),
  /** Per attempt: a 500-member batch can take tens of seconds. */
  timeout_ms: z.number().int().min(1000).max(120_000).default(60_000),
});

/**
 * Mailchimp audiences (lists): members are added or updated by email address in batches of up to
 * 500 (`POST /lists/{list_id}`), with their merge fields (by tag) and tags, and archived in mirror
 * mode. The object of a sync is the audience id. The guide is docs/destinations/mailchimp.md.
 *
 * Modes: `upsert` (`update_existing: true`; existing members keep their status), `insert`
 * (`update_existing: false`: Mailchimp refuses members already in the audience) and `mirror` (upsert, and archive members that left the model).
 * Not `update`: batch subscribe cannot leave unknown addresses out.
 */
export const mailchimpDestinationManifest = defineDestinationManifest({
  type: 'mailchimp',
  title: 'Mailchimp',
  optionsSchema: options,
  secretKeys: ['api_key'],
  modes: ['upsert', 'insert', 'mirror'],
  limits: mailchimpLimits,
  objects: [
    {
      name: '<list_id>',
      description: 'An audience, named by its id (Audience → Settings → Audience name and defaults), e.g. a1b2c3d4e5',
      matchKeys: [MATCH_FIELD],
      onDelete: 'archive',
    },
    {
      name: 'tag:<name>',
      description:
        'Membership: the members of a tag of the list_id audience (enter = tagged, leave = untagged); mirror mode',
      matchKeys: [MATCH_FIELD],
      // The member leaves the tag and stays in the audience.
      onDelete: 'remove',
    },
    {
      name: 'segment:<id>',
      description: 'Membership: the members of a static segment of the list_id audience, by segment id; mirror mode',
      matchKeys: [MATCH_FIELD],
      // As for tags: removed from the segment, never from the audience.
      onDelete: 'remove',
    },
  ],
  customObjects: true,
  // Merge fields are typed by the audience; fields.ts turns each value into its field's form (dates
  // YYYY-MM-DD, birthdays MM/DD, numbers, address objects). https://mailchimp.com/developer/marketing/docs/merge-fields/
  formats: { date: 'iso', timestamp: 'iso', boolean: 'string', array: 'json', object: 'json', number: 'number' },
});
