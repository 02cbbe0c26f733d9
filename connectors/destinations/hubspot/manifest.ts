import * as z from 'zod';
import { type DestinationObject, defineDestinationManifest } from '#connectors/sdk/destination';
import { hubspotLimits } from './limits.ts';

/** HubSpot's API host; `base_url` overrides it (a proxy, a test fake, another HubSpot host). */
export const HUBSPOT_API_URL = 'https://api.hubapi.com';

const options = z.strictObject({
  /** API base URL. */
  base_url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).default(HUBSPOT_API_URL),
  /** Secret: a private app's access token (`pat-…`), sent as `Authorization: Bearer <token>`. */
  access_token: z
    .string()
    .min(1)
    .regex(/^\S+$/, 'expected the token without spaces or line breaks (check for a trailing newline)'),
  /** Per request, including reading the answer. */
  timeout_ms: z.number().int().min(1_000).max(120_000).default(30_000),
  /**
   * List membership (`list:<listId>`): a member with no HubSpot contact is created (upserted by
   * the match property) and added, instead of being rejected.
   */
  create_missing_contacts: z.boolean().default(false),
});

/** Membership objects: `list:<ILS list ID>`, a static list of contacts. */
export const LIST_PREFIX = 'list:';

/**
 * The standard objects the destination knows; custom objects are accepted by name or objectTypeId
 * (`2-123456`). Contacts match on `email` or any unique property; a company's `domain` is not
 * unique, so companies match on a property created with "unique values" (`hasUniqueValue`).
 * Mirror mode archives: the records go to the recycling bin, restorable for 90 days.
 */
const HUBSPOT_OBJECTS: readonly DestinationObject[] = [
  {
    name: 'contacts',
    description: 'People; upserted by email or by a unique property',
    matchKeys: ['email', '*unique'],
    onDelete: 'archive',
  },
  {
    name: 'companies',
    description: 'Organisations; upserted by a unique property (domain is not unique)',
    matchKeys: ['*unique'],
    onDelete: 'archive',
  },
  {
    name: `${LIST_PREFIX}<listId>`,
    description:
      'Membership of a static (MANUAL) contact list, by its ILS list ID: entering adds the contact (found by email or a unique property), leaving removes it from the list',
    matchKeys: ['email', '*unique'],
    // Leaving removes the membership; the contact stays.
    onDelete: 'remove',
  },
];

/**
 * HubSpot CRM: contacts, companies and custom objects, written with the CRM v3 batch endpoints
 * (upsert by email or by a unique property, create, update, archive for mirror), fields from the
 * properties API, per-record errors from HubSpot's answers. docs/destinations/hubspot.md
 * https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
 */
export const hubspotDestinationManifest = defineDestinationManifest({
  type: 'hubspot',
  title: 'HubSpot',
  optionsSchema: options,
  secretKeys: ['access_token'],
  modes: ['upsert', 'update', 'insert', 'mirror'],
  limits: hubspotLimits,
  objects: HUBSPOT_OBJECTS,
  customObjects: true,
  /**
   * Property values are strings: dates as midnight UTC in epoch ms, datetimes in epoch ms,
   * booleans "true"/"false", multiple checkboxes `;`-joined.
   * https://developers.hubspot.com/docs/faq/how-should-timestamps-be-formatted-for-hubspots-apis
   */
  formats: {
    date: 'epoch-ms-midnight',
    timestamp: 'epoch-ms',
    boolean: 'string',
    array: 'semicolon',
    object: 'string',
    number: 'string',
  },
});
