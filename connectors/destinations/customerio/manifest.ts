import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { customerioLimits } from './limits.ts';

/** The object Backflow writes: Customer.io people (the Track API's "person" entities). */
export const PEOPLE = 'people';

/** Identifiers a sync may match on (`identifiers` of a person action holds exactly one). */
export const MATCH_KEYS = ['id', 'email'] as const;
export type MatchKey = (typeof MATCH_KEYS)[number];

/**
 * Track API server addresses: "The only difference in our US and European Union (EU) regions is the
 * subdomain" (https://docs.customer.io/integrations/api/track/).
 */
export const REGION_URLS = {
  us: 'https://track.customer.io',
  eu: 'https://track-eu.customer.io',
} as const;

const credential = (what: string) =>
  z
    .string()
    .min(1)
    .regex(
      /^[\x21-\x7e]+$/,
      `${what}: expected printable ASCII without spaces or line breaks (check for a trailing newline)`,
    );

const options = z.strictObject({
  /** The workspace's data centre (Account settings > Privacy shows it): `us` (default) or `eu`. */
  region: z.enum(['us', 'eu']).default('us'),
  /** Overrides the region's address (a proxy, tests). */
  base_url: z
    .url({ protocol: /^https?$/, error: 'expected an http(s) URL such as https://track.customer.io' })
    .refine((value) => {
      const url = new URL(value);
      return url.username === '' && url.password === '';
    }, 'credentials in the URL are not supported: use site_id and the api_key secret')
    .optional(),
  /** The workspace's Site ID (Settings > API Credentials > Track API Keys): the Basic auth user name. */
  site_id: credential('site_id'),
  /** Secret: the Track API key paired with the Site ID: the Basic auth password. */
  api_key: credential('api_key'),
  /** Per attempt, including reading the answer. */
  timeout_ms: z.number().int().min(1000).max(120_000).default(30_000),
});

/**
 * Customer.io people through the Track API v2: `POST /api/v2/batch` with `person` actions —
 * `identify` to create or update, `delete` in mirror mode. The guide is docs/destinations/customerio.md.
 *
 * Modes: `upsert` (identify creates a person no one has the identifier of), `update` (identify with
 * `"_update": true`: "update only existing people and prevent accidental profile creation. If no
 * person matches the identifiers, the request does nothing"), `mirror` (upsert, and delete people
 * who left the model). Not `insert`: identify has no create-only switch, and the Track API cannot
 * look people up (that is the App API, another key and 10 requests a second).
 */
export const customerioDestinationManifest = defineDestinationManifest({
  type: 'customerio',
  title: 'Customer.io',
  optionsSchema: options,
  secretKeys: ['api_key'],
  modes: ['upsert', 'update', 'mirror'],
  limits: customerioLimits,
  objects: [
    {
      name: PEOPLE,
      description: 'People and their attributes (any attribute name is accepted)',
      matchKeys: MATCH_KEYS,
      onDelete: 'delete',
    },
  ],
  // Attributes take any JSON value. Timestamps are sent as Unix seconds, the form Customer.io's own
  // timestamps take (`created_at`, `timestamp`: "format": "unix timestamp" in the Track API
  // reference) and the one its segments compare as dates; dates stay YYYY-MM-DD text (inferred:
  // no documented date-only form).
  formats: {
    date: 'iso',
    timestamp: 'epoch-s',
    boolean: 'boolean',
    array: 'json',
    object: 'json',
    number: 'number',
    phone: 'e164',
  },
});
