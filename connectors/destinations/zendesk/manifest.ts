import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { zendeskLimits } from './limits.ts';

const secretString = z
  .string()
  .min(1)
  .regex(/^[\x21-\x7e]+$/, 'expected printable ASCII without spaces or line breaks (check for a trailing newline)');

/**
 * Options of `type: zendesk`. Cross-field rules (one way to authenticate, a subdomain or a
 * base_url) are checked by `resolveConnection` at connect time: the config loader needs a plain
 * object schema to make the secret keys optional in the file.
 */
export const zendeskOptions = z.strictObject({
  /** `acme` for https://acme.zendesk.com. */
  subdomain: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/i, 'expected the subdomain only, e.g. "acme" for https://acme.zendesk.com')
    .optional(),
  /** Overrides https://{subdomain}.zendesk.com: a host-mapped domain, a proxy, tests. */
  base_url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  /** Email of the agent or admin who owns the API token (`{email}/token:{api_token}`). */
  email: z.email().optional(),
  /** Secret: a Zendesk API token (Admin Center → Apps and integrations → Zendesk API). */
  api_token: secretString.optional(),
  /** Secret: an OAuth access token (`read` and `write` scopes), sent as a bearer token. */
  oauth_token: secretString.optional(),
  /** How long one write waits for its Zendesk job before handing its records back for a later retry. */
  job_timeout_ms: z.number().int().min(1000).max(600_000).default(20_000),
  /** Per HTTP request, including reading the response. */
  timeout_ms: z.number().int().min(1000).max(120_000).default(30_000),
});

export type ZendeskOptions = z.output<typeof zendeskOptions>;

/** The match keys Zendesk can find a user by in its bulk endpoints. */
export const MATCH_KEYS = ['external_id', 'email'] as const;
export type MatchKey = (typeof MATCH_KEYS)[number];

/** The object Backflow writes: Zendesk Support users. */
export const USERS = 'users';

/**
 * Zendesk Support users: upserted in bulk jobs of up to 100, custom user fields mapped as
 * `user_fields.<key>`, soft-deleted in mirror mode. See docs/destinations/zendesk.md.
 */
export const zendeskDestinationManifest = defineDestinationManifest({
  type: 'zendesk',
  title: 'Zendesk Support',
  optionsSchema: zendeskOptions,
  secretKeys: ['api_token', 'oauth_token'],
  modes: ['upsert', 'update', 'insert', 'mirror'],
  limits: zendeskLimits,
  objects: [
    {
      name: USERS,
      description: 'End users, agents and admins of Zendesk Support',
      matchKeys: MATCH_KEYS,
      // destroy_many soft-deletes: the user moves to Deleted users until permanently deleted.
      onDelete: 'delete',
    },
  ],
  formats: {
    // Date user fields take YYYY-MM-DD; checkbox fields booleans; multiselect fields and tags arrays.
    date: 'iso',
    timestamp: 'iso',
    boolean: 'boolean',
    array: 'json',
    // Phone numbers normalized to E.164 (+15551234567), one form per number across sources.
    phone: 'e164',
  },
});
