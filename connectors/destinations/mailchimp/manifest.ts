import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { mailchimpLimits } from './limits.ts';

/** The only match key: Mailchimp identifies a member by email address (its MD5 is the member id). */
export const MATCH_FIELD = 'email_address';

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
   * The subscription status Backflow sends with each member whose record maps no `status`. Mailchimp's
   * batch subscribe has no `status_if_new`: with `update_existing` it applies to members already in
   * the audience too (it refuses to re-subscribe people who unsubscribed). No default on purpose:
   * `subscribed` only for people who opted in to email marketing, else `transactional`.
   * See docs/destinations/mailchimp.md#subscription-status.
   */
  status: z.enum(['subscribed', 'pending', 'transactional', 'unsubscribed'], {
    error:
      'set status to subscribed (people who opted in), pending (send a confirmation email), transactional or unsubscribed',
  }),
  /** Per attempt: a 500-member batch can take tens of seconds. */
  timeout_ms: z.number().int().min(1000).max(120_000).default(60_000),
});

/**
 * Mailchimp audiences (lists): members are added or updated by email address in batches of up to
 * 500 (`POST /lists/{list_id}`), merge fields by tag, tags member by member, and archived in mirror
 * mode. The object of a sync is the audience id. The guide is docs/destinations/mailchimp.md.
 *
 * Modes: `upsert` (`update_existing: true`), `insert` (`update_existing: false`: Mailchimp refuses
 * members already in the audience) and `mirror` (upsert, and archive members that left the model).
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
  ],
  customObjects: true,
  // Merge fields are typed by the audience; fields.ts turns each value into its field's form (dates
  // YYYY-MM-DD, birthdays MM/DD, numbers, address objects). https://mailchimp.com/developer/marketing/docs/merge-fields/
  formats: { date: 'iso', timestamp: 'iso', boolean: 'string', array: 'json', object: 'json', number: 'number' },
});
