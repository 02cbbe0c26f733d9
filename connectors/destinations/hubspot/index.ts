import { z } from 'zod';
import { defineDestination } from '#connectors/sdk/destination';
import { createHubSpotClient } from './client.ts';
import { discoverFields, HUBSPOT_OBJECTS } from './fields.ts';
import { hubspotLimits } from './limits.ts';
import { writeBatch } from './write.ts';

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
});

/**
 * HubSpot CRM: contacts, companies and custom objects, written with the CRM v3 batch endpoints
 * (upsert by email or by a unique property, create, update, archive for mirror), fields from the
 * properties API, per-record errors from HubSpot's answers. docs/destinations/hubspot.md
 * https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
 */
export const hubspotDestination = defineDestination({
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
  async connect(opts) {
    const client = createHubSpotClient({
      baseUrl: opts.base_url,
      accessToken: opts.access_token,
      timeoutMs: opts.timeout_ms,
    });
    return {
      async check() {
        await client.accountDetails();
      },
      fields: (object) => discoverFields(client, object),
      async write(batch) {
        if (batch.records.length === 0) return [];
        return writeBatch(client, batch);
      },
      async close() {},
    };
  },
});
