import * as z from 'zod';
import { type DestinationObject, defineDestinationManifest } from '#connectors/sdk/destination';
import { klaviyoLimits } from './limits.ts';

/** Klaviyo's API host; `base_url` overrides it (a proxy, a test fake). */
export const KLAVIYO_API_URL = 'https://a.klaviyo.com';

/**
 * The API revision every request pins in its `revision` header ("API endpoint revision (format:
 * YYYY-MM-DD[.suffix])", required). The request and answer shapes used here are those of
 * 2025-01-15: https://developers.klaviyo.com/en/v2025-01-15/reference/bulk_import_profiles
 */
export const KLAVIYO_REVISION = '2025-01-15';

/** Klaviyo's profiles. */
export const PROFILES = 'profiles';

/** Membership objects: `list:<list id>`. */
export const LIST_PREFIX = 'list:';

/**
 * The identifiers a profile is matched on: "email", "phone_number" (E.164) or "external_id";
 * the bulk import and Create or Update Profile upsert by them.
 * https://developers.klaviyo.com/en/docs/use_klaviyos_bulk_profile_import_api
 */
export const MATCH_KEYS = ['email', 'external_id', 'phone_number'] as const;

const options = z.strictObject({
  /** API base URL. */
  base_url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).default(KLAVIYO_API_URL),
  /** Secret: a private API key (`pk_…`), sent as `Authorization: Klaviyo-API-Key <key>`. */
  api_key: z
    .string()
    .min(1)
    .regex(/^\S+$/, 'expected the key without spaces or line breaks (check for a trailing newline)'),
  /** Per request, including reading the answer. */
  timeout_ms: z.number().int().min(1_000).max(120_000).default(30_000),
  /**
   * How long a write waits for its import job to finish (polling it, paced) before handing the
   * records back to the lane; the retry reads the same job's result instead of importing again.
   */
  job_wait_ms: z.number().int().min(0).max(600_000).default(20_000),
});

/**
 * Profiles, upserted by email, external_id or phone_number. No mirror: Klaviyo documents no bulk
 * delete of profiles. Its only deletion is the Data Privacy API's Request Profile Deletion
 * (`POST /api/data-privacy-deletion-jobs`, one identifier per call, 60/m, scope
 * `data-privacy:write`), a GDPR erasure that "cannot be undone" — not what leaving a model means.
 * https://developers.klaviyo.com/en/v2025-01-15/reference/request_profile_deletion
 * https://developers.klaviyo.com/en/reference/data_privacy_api_overview
 */
const KLAVIYO_OBJECTS: readonly DestinationObject[] = [
  {
    name: PROFILES,
    description: 'Profiles; upserted by email, external_id or phone_number with bulk import jobs',
    matchKeys: [...MATCH_KEYS],
  },
  {
    name: `${LIST_PREFIX}<listId>`,
    description:
      'Membership of a list: entering adds the profile (found by email, external_id or phone_number), leaving removes it from the list; the profile stays',
    matchKeys: [...MATCH_KEYS],
    onDelete: 'remove',
  },
];

/**
 * Klaviyo profiles, written with Bulk Import Profiles jobs (create, poll, read import errors), and
 * with Create or Update Profile for a record that clears a field (the bulk import cannot).
 * docs/destinations/klaviyo.md
 */
export const klaviyoDestinationManifest = defineDestinationManifest({
  type: 'klaviyo',
  title: 'Klaviyo',
  optionsSchema: options,
  secretKeys: ['api_key'],
  // `mirror` is for list membership (leaving removes from the list); on `profiles` a delete is
  // rejected per record (no bulk delete, see above).
  modes: ['upsert', 'mirror'],
  limits: klaviyoLimits,
  objects: KLAVIYO_OBJECTS,
  /**
   * JSON:API attributes take JSON values; custom properties keep their type, and a date is
   * stored as a date when sent as ISO 8601 text (Klaviyo's profile properties guide).
   * https://developers.klaviyo.com/en/docs/use_klaviyos_bulk_profile_import_api
   * Phone numbers must be E.164.
   */
  formats: { phone: 'e164' },
});
