import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { googleCustomerMatchLimits, MAX_IDENTIFIERS_PER_REQUEST } from './limits.ts';

export const GOOGLE_ADS_API_URL = 'https://googleads.googleapis.com';
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
export const DEFAULT_API_VERSION = 'v21';

/** Membership objects: `customer_match:<user_list_id>`, a Customer Match user list. */
export const CUSTOMER_MATCH_OBJECT = /^customer_match:(\d+)$/;

/** Identifier fields a record may carry; an address needs all four of its parts. */
export const GOOGLE_IDENTIFIER_FIELDS = [
  'email',
  'phone',
  'first_name',
  'last_name',
  'country',
  'postal_code',
  'external_id',
] as const;
export const GOOGLE_MATCH_KEYS = ['email', 'phone', 'external_id'] as const;

const customerId = z
  .string()
  .regex(/^\d{3}-?\d{3}-?\d{4}$/, 'expected a Google Ads customer id like 123-456-7890')
  .transform((id) => id.replaceAll('-', ''));
const secret = (what: string) =>
  z.string().min(1).regex(/^\S+$/, `expected the ${what} without spaces or line breaks (check for a trailing newline)`);
const consentStatus = z.enum(['GRANTED', 'DENIED', 'UNSPECIFIED']);

const options = z.strictObject({
  /** Google Ads API host. */
  base_url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).default(GOOGLE_ADS_API_URL),
  /** Google Ads API version, e.g. v21. */
  api_version: z
    .string()
    .regex(/^v\d+$/, 'expected a Google Ads API version like v21')
    .default(DEFAULT_API_VERSION),
  /** OAuth 2.0 token endpoint (a test server, a proxy). */
  token_url: z.url({ protocol: /^https?$/ }).default(GOOGLE_TOKEN_URL),
  /** The account that owns the user lists (digits, dashes allowed). */
  customer_id: customerId,
  /** The manager account the credentials reach the account through, sent as `login-customer-id`. */
  login_customer_id: customerId.optional(),
  /** Secret: the developer token (API Center of the manager account). */
  developer_token: secret('developer token'),
  /** Secret: the OAuth client id. */
  client_id: secret('client id'),
  /** Secret: the OAuth client secret. */
  client_secret: secret('client secret'),
  /** Secret: a refresh token with the https://www.googleapis.com/auth/adwords scope. */
  refresh_token: secret('refresh token'),
  /**
   * The EU user consent of everyone the sync uploads (customerMatchUserListMetadata.consent),
   * required for people in the EEA: https://www.google.com/about/company/user-consent-policy
   */
  consent: z
    .strictObject({ ad_user_data: consentStatus.optional(), ad_personalization: consentStatus.optional() })
    .optional(),
  /** Identifiers per AddOfflineUserDataJobOperations request (at most Google's 100,000). */
  identifiers_per_request: z
    .number()
    .int()
    .min(1)
    .max(MAX_IDENTIFIERS_PER_REQUEST)
    .default(MAX_IDENTIFIERS_PER_REQUEST),
  /** How long a write polls for its job's outcome once run; a job still running then is left to finish. */
  job_wait_ms: z.number().int().min(0).max(120_000).default(20_000),
  /** Between polls of a running job. */
  poll_interval_ms: z.number().int().min(0).max(60_000).default(2_000),
  /** Per request, including reading the answer. */
  timeout_ms: z.number().int().min(1_000).max(120_000).default(60_000),
});

/**
 * Google Ads Customer Match: a segment's members are added to a Customer Match user list and
 * removed when they leave it, through an offline user data job per write
 * (`offlineUserDataJobs:create` → `:addOperations` → `:run` → polls with `googleAds:search`), as
 * SHA-256 hashes of identifiers normalised by Google's rules (connectors/sdk/identifiers.ts);
 * values already hashed are sent as they are. docs/destinations/google-customer-match.md
 */
export const googleCustomerMatchDestinationManifest = defineDestinationManifest({
  type: 'google_customer_match',
  title: 'Google Ads Customer Match',
  optionsSchema: options,
  secretKeys: ['developer_token', 'client_id', 'client_secret', 'refresh_token'],
  modes: ['upsert', 'mirror'],
  limits: googleCustomerMatchLimits,
  objects: [
    {
      name: 'customer_match:<user_list_id>',
      description: 'A Customer Match user list, by its id (Tools → Audience manager), e.g. customer_match:1234567890',
      matchKeys: [...GOOGLE_MATCH_KEYS],
      // A member that left is removed from the list.
      onDelete: 'remove',
    },
  ],
  customObjects: true,
});
