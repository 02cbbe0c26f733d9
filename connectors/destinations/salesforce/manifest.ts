import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { salesforceLimits } from './limits.ts';

const secretString = z
  .string()
  .min(1)
  .regex(/^[\x21-\x7e]+$/, 'expected printable ASCII without spaces or line breaks (check for a trailing newline)');

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' });

// No cross-field refinements: the config loader makes secret keys optional with `.partial()`,
// which zod refuses on refined schemas; `credentialsOf` checks the combination at connect time.
const options = z.strictObject({
  /**
   * Token endpoint host: the org's My Domain URL (`https://acme.my.salesforce.com`), which the
   * client credentials flow requires — so there is no default for it. The JWT bearer flow also
   * takes `https://login.salesforce.com` (its default when unset) or `https://test.salesforce.com`
   * (sandboxes).
   */
  login_url: httpUrl.optional(),
  /** Consumer key of the external client app (connected app). */
  client_id: z.string().min(1),
  /** Secret: consumer secret, for the client credentials flow. */
  client_secret: secretString.optional(),
  /** Secret: PEM private key whose certificate the app holds, for the JWT bearer flow. */
  private_key: z.string().min(1).optional(),
  /** JWT bearer flow: username of the integration user (the JWT's `sub`). */
  username: z.string().min(1).optional(),
  /** JWT bearer flow: the JWT's `aud`; by default derived from login_url. */
  jwt_audience: httpUrl.optional(),
  /** REST API version, e.g. `62.0` (sObject Collections upsert needs 46.0 or later). */
  api_version: z
    .string()
    .regex(/^\d{2,3}\.0$/, 'expected a version like 62.0')
    .refine((v) => Number(v) >= 46, 'sObject Collections upsert needs API version 46.0 or later')
    .default('62.0'),
  /** Replaces the org's `instance_url` from the token answer (proxies, tests). */
  base_url: httpUrl.optional(),
  /** Upserts of more records than this in one batch go through a Bulk API 2.0 job. */
  bulk_threshold: z.number().int().min(1).default(2_000),
  /** How long one write waits for a Bulk API job before giving its records back for a retry. */
  bulk_poll_ms: z.number().int().min(0).max(600_000).default(20_000),
  /** Share (0–1] of the org's daily API allocation past which writes wait (`Sforce-Limit-Info`). */
  max_api_usage: z.number().gt(0).max(1).optional(),
  /** Per request. */
  timeout_ms: z.number().int().min(1_000).max(600_000).default(30_000),
  /** Campaign membership (`campaign:<CampaignId>`): whether members are Contacts or Leads. */
  member_object: z.enum(['Contact', 'Lead']).default('Contact'),
  /**
   * Campaign membership: the `Status` of a new CampaignMember, one of the campaign's member
   * statuses (Setup on the campaign: "Advanced Setup"); by default the campaign's default status.
   */
  campaign_member_status: z.string().min(1).max(765).optional(),
});

/** Membership objects: `campaign:<CampaignId>`, the CampaignMember records of one campaign. */
export const CAMPAIGN_PREFIX = 'campaign:';

export type SalesforceOptions = z.output<typeof options>;

/**
 * Salesforce: any sObject (Contact, Lead, Account, `My_Object__c`), upserted by an external ID
 * through sObject Collections (Bulk API 2.0 for large batches), updated or inserted, and deleted in
 * mirror mode. Setup, modes and limits: docs/destinations/salesforce.md.
 */
export const salesforceDestinationManifest = defineDestinationManifest({
  type: 'salesforce',
  title: 'Salesforce',
  optionsSchema: options,
  secretKeys: ['client_secret', 'private_key'],
  modes: ['upsert', 'update', 'insert', 'mirror'],
  limits: salesforceLimits,
  objects: [
    ...['Contact', 'Lead', 'Account'].map((name) => ({
      name,
      matchKeys: ['*unique'],
      onDelete: 'delete' as const,
    })),
    {
      name: `${CAMPAIGN_PREFIX}<CampaignId>`,
      description:
        'Membership of a campaign (CampaignMember records): entering adds the Contact (or Lead, option member_object) found by Email or an External ID field, leaving deletes its CampaignMember',
      matchKeys: ['*unique'],
      // Leaving deletes the CampaignMember; the Contact or Lead stays.
      onDelete: 'remove' as const,
    },
  ],
  customObjects: true,
  // Multi-select picklists take `a;b;c`; Salesforce has no JSON field type (long text takes it as text).
  formats: { array: 'semicolon', object: 'string' },
});
