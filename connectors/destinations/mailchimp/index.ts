import { z } from 'zod';
import { defineDestination } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#core/errors';
import { apiBaseUrl, createMailchimpClient, type MergeField } from './client.ts';
import { MATCH_FIELD, memberFields, resolveTarget } from './fields.ts';
import { mailchimpLimits } from './limits.ts';
import { writeAudience } from './members.ts';

/** Audience ids are short alphanumeric strings (`a1b2c3d4e5`). */
const LIST_ID = /^[A-Za-z0-9]{1,32}$/;

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
export const mailchimpDestination = defineDestination({
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
  async connect(opts) {
    const baseUrl = opts.base_url ?? apiBaseUrl(opts.api_key);
    if (!baseUrl) {
      throw new ConnectorConfigError(
        'mailchimp: the api_key has no data-centre suffix (it ends like "-us21"): copy the whole key, or set base_url',
      );
    }
    const client = createMailchimpClient({ apiKey: opts.api_key, baseUrl, timeoutMs: opts.timeout_ms });
    const mergeFieldsOf = new Map<string, Promise<MergeField[]>>();
    const load = (listId: string, fresh = false): Promise<MergeField[]> => {
      let fields = mergeFieldsOf.get(listId);
      if (!fields || fresh) {
        fields = client.mergeFields(listId);
        mergeFieldsOf.set(listId, fields);
        const loading = fields;
        loading.catch(() => {
          if (mergeFieldsOf.get(listId) === loading) mergeFieldsOf.delete(listId);
        });
      }
      return fields;
    };

    return {
      async check() {
        await client.ping();
      },
      async fields(object) {
        return memberFields(await load(audienceId(object), true));
      },
      async write(batch) {
        if (batch.records.length === 0) return [];
        const listId = audienceId(batch.object);
        if (batch.matchField !== MATCH_FIELD) {
          throw new ConnectorConfigError(
            `mailchimp matches members by email address only: set \`match: { ${MATCH_FIELD}: <email column> }\` (not ${batch.matchField})`,
          );
        }
        const names = [...new Set(batch.records.flatMap((r) => Object.keys(r.fields)))];
        let mergeFields = await load(listId);
        if (names.some((n) => !resolveTarget(n, mergeFields))) mergeFields = await load(listId, true);
        const unknown = names.filter((n) => !resolveTarget(n, mergeFields));
        if (unknown.length > 0) {
          throw new ConnectorConfigError(
            `mailchimp audience ${listId} has no merge field ${unknown.join(', ')}; map to status, tags or one of its merge tags: ${mergeFields.map((f) => f.tag).join(', ') || '(none)'}`,
          );
        }
        return writeAudience({ client, listId, mergeFields, status: opts.status }, batch.records);
      },
      async close() {},
    };
  },
});

function audienceId(object: string): string {
  if (!LIST_ID.test(object)) {
    throw new ConnectorConfigError(
      `mailchimp: object "${object}" is not an audience id; use the id from Audience → Settings → Audience name and defaults (e.g. a1b2c3d4e5)`,
    );
  }
  return object;
}
