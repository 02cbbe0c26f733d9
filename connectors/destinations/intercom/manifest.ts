import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { intercomLimits } from './limits.ts';

/** The fields a contact can be matched on: both are unique among users in a workspace. */
export const MATCH_FIELDS = ['external_id', 'email'] as const;
export type MatchField = (typeof MATCH_FIELDS)[number];

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

/**
 * Intercom contacts (users and leads), created or updated one by one by `external_id` or `email`,
 * archived in mirror mode. See docs/destinations/intercom.md.
 */
export const intercomDestinationManifest = defineDestinationManifest({
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
});
