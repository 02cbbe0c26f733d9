import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { MAX_ROWS_PER_REQUEST, metaAudiencesLimits } from './limits.ts';

/** The Graph API host; `base_url` overrides it (a proxy, a test fake). */
export const GRAPH_API_URL = 'https://graph.facebook.com';

/** The Graph API version the connector was written against; `api_version` overrides it. */
export const DEFAULT_API_VERSION = 'v21.0';

/** Membership objects: `audience:<custom_audience_id>`, a Customer File Custom Audience. */
export const AUDIENCE_OBJECT = /^audience:(\d+)$/;

/** Identifier fields a record may carry (the match field is one of them). */
export const META_IDENTIFIER_FIELDS = [
  'email',
  'phone',
  'first_name',
  'last_name',
  'city',
  'state',
  'zip',
  'country',
  'date_of_birth',
  'gender',
  'external_id',
] as const;

/** Identifier fields that can be a sync's match key: each identifies a person on its own. */
export const META_MATCH_KEYS = ['email', 'phone', 'external_id'] as const;

const options = z.strictObject({
  /** Graph API host. */
  base_url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).default(GRAPH_API_URL),
  /** Graph API version, e.g. v21.0. */
  api_version: z
    .string()
    .regex(/^v\d+\.\d+$/, 'expected a Graph API version like v21.0')
    .default(DEFAULT_API_VERSION),
  /**
   * Secret: a system user access token with the `ads_management` permission on the ad account
   * that owns the audiences (Business Settings → System users → Generate new token).
   */
  access_token: z
    .string()
    .min(1)
    .regex(/^\S+$/, 'expected the token without spaces or line breaks (check for a trailing newline)'),
  /** People per request (at most Meta's 10,000). */
  rows_per_request: z.number().int().min(1).max(MAX_ROWS_PER_REQUEST).default(MAX_ROWS_PER_REQUEST),
  /** Per request, including reading the answer. */
  timeout_ms: z.number().int().min(1_000).max(120_000).default(60_000),
});

/**
 * Meta (Facebook) Customer File Custom Audiences: a segment's members are added to an audience
 * (`POST /{version}/{audience_id}/users`) and removed when they leave it (`DELETE`, same payload),
 * as SHA-256 hashes of their identifiers in Meta's multi-key schema (EMAIL, PHONE, FN, LN, CT,
 * ST, ZIP, COUNTRY, DOBY, DOBM, DOBD, GEN, EXTERN_ID), normalised by Meta's rules
 * (connectors/sdk/identifiers.ts). Values already hashed (64 hex digits) are sent as they are.
 * Raw identifiers never leave the connector. docs/destinations/meta-audiences.md
 * https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences
 */
export const metaAudiencesDestinationManifest = defineDestinationManifest({
  type: 'meta_audiences',
  title: 'Meta Custom Audiences',
  optionsSchema: options,
  secretKeys: ['access_token'],
  modes: ['upsert', 'mirror'],
  limits: metaAudiencesLimits,
  objects: [
    {
      name: 'audience:<custom_audience_id>',
      description:
        'A Customer File Custom Audience, by its id (Ads Manager → Audiences), e.g. audience:23851234567890123',
      matchKeys: [...META_MATCH_KEYS],
      // A member that left the segment is removed from the audience.
      onDelete: 'remove',
    },
  ],
  customObjects: true,
});
