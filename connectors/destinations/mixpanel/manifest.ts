import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { mixpanelLimits } from './limits.ts';

/** The object Backflow writes: Mixpanel user profiles. */
export const PROFILES = 'profiles';
/** Profiles are identified by `$distinct_id`, the only key `/engage` takes. */
export const MATCH_KEY = '$distinct_id';

/**
 * The Ingestion API host of each data residency: "Standard Server: api.mixpanel.com EU Residency
 * Server: api-eu.mixpanel.com India Residency Server: api-in.mixpanel.com"
 * (https://docs.mixpanel.com/reference/overview).
 */
export const REGION_URLS = {
  us: 'https://api.mixpanel.com',
  eu: 'https://api-eu.mixpanel.com',
  in: 'https://api-in.mixpanel.com',
} as const;

const printable = (what: string) =>
  z
    .string()
    .min(1)
    .regex(
      /^[\x21-\x7e]+$/,
      `expected the ${what} as printable ASCII without spaces or line breaks (check for a trailing newline)`,
    );

const options = z.strictObject({
  /** The project's data residency: `us` (default), `eu` or `in`. */
  region: z.enum(['us', 'eu', 'in']).default('us'),
  /** Overrides the regional host (a proxy, tests). */
  base_url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  /** Secret: the project token, sent in every update object as `$token`. */
  project_token: printable('project token'),
  /**
   * Optional secret: a service account (username and secret) of the project, sent as HTTP Basic
   * auth with `project_id`; the token alone is enough for `/engage`.
   */
  service_account_username: printable('service account username').optional(),
  service_account_secret: printable('service account secret').optional(),
  /** The project id, required with a service account. */
  project_id: z
    .union([z.string().regex(/^\d+$/, 'expected the numeric project id'), z.number().int().positive()])
    .optional(),
  /** Per attempt, including reading the answer. */
  timeout_ms: z.number().int().min(1000).max(120_000).default(30_000),
});

export type MixpanelOptions = z.output<typeof options>;

/**
 * The service account of the options, or why it is incomplete: username, secret and project id
 * go together (the options are checked here, not by refinements: the config loader makes secret
 * keys optional with \`.partial()\`, which zod refuses on a refined object).
 */
export function serviceAccountOf(
  opts: Pick<MixpanelOptions, 'service_account_username' | 'service_account_secret' | 'project_id'>,
): { username: string; secret: string; projectId: string } | string | undefined {
  const { service_account_username: username, service_account_secret: secret, project_id: projectId } = opts;
  if (username === undefined && secret === undefined) return undefined;
  if (username === undefined) return 'service_account_username is required with service_account_secret';
  if (secret === undefined) return 'service_account_secret is required with service_account_username';
  if (projectId === undefined) return 'project_id is required with a service account';
  return { username, secret, projectId: String(projectId) };
}

/** The Ingestion API host of the options: `base_url`, else the region's host. */
export function baseUrlOf(opts: Pick<MixpanelOptions, 'base_url' | 'region'>): string {
  return opts.base_url ?? REGION_URLS[opts.region];
}

/**
 * Mixpanel user profiles through `POST /engage` (`$set`, `$unset`, `$delete`), by `$distinct_id`.
 * The guide is docs/destinations/mixpanel.md.
 *
 * Modes: `upsert` ("If the profile does not exist, it creates it with these properties. If it does
 * exist, it sets the properties to these values") and `mirror` (upsert, and `$delete` profiles that
 * left the model). Not `update` nor `insert`: `/engage` has no create-only or update-only switch,
 * and the ingestion token cannot read profiles to check first.
 */
export const mixpanelDestinationManifest = defineDestinationManifest({
  type: 'mixpanel',
  title: 'Mixpanel',
  optionsSchema: options,
  secretKeys: ['project_token', 'service_account_username', 'service_account_secret'],
  modes: ['upsert', 'mirror'],
  limits: mixpanelLimits,
  objects: [
    {
      name: PROFILES,
      description: 'User profiles: reserved properties ($email, $name, $phone, …) and any custom property by name',
      matchKeys: [MATCH_KEY],
      onDelete: 'delete',
    },
  ],
  // Properties are JSON: strings, numbers, booleans, lists (JSON arrays); dates as ISO text in UTC
  // (https://docs.mixpanel.com/docs/data-structure/property-reference/data-type). Phone numbers need
  // a leading "+" (reserved-properties page).
  formats: {
    date: 'iso',
    timestamp: 'iso',
    boolean: 'boolean',
    array: 'json',
    object: 'json',
    number: 'number',
    phone: 'e164',
  },
});
