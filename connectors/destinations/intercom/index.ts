import { z } from 'zod';
import { defineDestination } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#core/errors';
import { createIntercomClient, REGION_URLS } from './client.ts';
import { contactFields, MATCH_FIELDS } from './fields.ts';
import { intercomLimits } from './limits.ts';
import { writeContacts } from './write.ts';

/** A recent stable REST API version; `Intercom-Version` pins the contract this connector was written for. */
export const DEFAULT_API_VERSION = '2.11';

const options = z.strictObject({
  /** Where the workspace is hosted: `us` (default), `eu` or `au`. */
  region: z.enum(['us', 'eu', 'au']).default('us'),
  /** Overrides the regional host (a proxy, tests). */
  base_url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  /** Sent as `Intercom-Version`. */
  api_version: z
    .string()
    .regex(/^(\d+\.\d+|Unstable|Preview)$/, 'expected an Intercom API version such as "2.11"')
    .default(DEFAULT_API_VERSION),
  /** Role of the contacts Backflow creates. */
  role: z.enum(['user', 'lead']).default('user'),
  /** One-contact calls in flight at once within a batch. */
  request_concurrency: z.number().int().min(1).max(10).default(5),
  /** Per call, including reading the response. */
  timeout_ms: z.number().int().min(1000).max(120_000).default(30_000),
  /** Secret: the app's access token, sent as `Authorization: Bearer <token>`. */
  access_token: z
    .string()
    .min(1)
    .regex(/^[\x21-\x7e]+$/, 'expected printable ASCII without spaces or line breaks (check for a trailing newline)'),
});

export type IntercomOptions = z.output<typeof options>;

/** The API host of the options: `base_url`, else the region's host. */
export function baseUrlOf(opts: Pick<IntercomOptions, 'base_url' | 'region'>): string {
  return opts.base_url ?? REGION_URLS[opts.region];
}

/**
 * Intercom contacts (users and leads), created or updated one by one by `external_id` or `email`,
 * archived in mirror mode. See docs/destinations/intercom.md.
 */
export const intercomDestination = defineDestination({
  type: 'intercom',
  title: 'Intercom',
  optionsSchema: options,
  secretKeys: ['access_token'],
  modes: ['upsert', 'update', 'insert', 'mirror'],
  limits: intercomLimits,
  objects: [
    {
      name: 'contacts',
      description: 'Users and leads; custom data attributes are written under custom_attributes',
      matchKeys: MATCH_FIELDS,
      onDelete: 'archive',
    },
  ],
  // Intercom takes dates as Unix timestamps in seconds (`signed_up_at`, custom date attributes).
  formats: { timestamp: 'epoch-s' },
  async connect(opts) {
    const client = createIntercomClient({
      baseUrl: baseUrlOf(opts),
      accessToken: opts.access_token,
      apiVersion: opts.api_version,
      timeoutMs: opts.timeout_ms,
    });
    const contactsOnly = (object: string) => {
      if (object !== 'contacts') {
        throw new ConnectorConfigError(`Intercom has no object "${object}": this destination writes "contacts"`);
      }
    };
    return {
      async check() {
        await client.me();
      },
      async fields(object) {
        contactsOnly(object);
        return contactFields(await client.contactAttributes());
      },
      write(batch) {
        if (batch.records.length === 0) return Promise.resolve([]);
        return writeContacts(client, batch, { role: opts.role, concurrency: opts.request_concurrency });
      },
      async close() {},
    };
  },
});
