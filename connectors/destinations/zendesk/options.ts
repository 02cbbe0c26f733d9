import { z } from 'zod';
import { ConnectorConfigError } from '#core/errors';

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

export interface ZendeskConnection {
  readonly baseUrl: string;
  readonly authorization: string;
  /** Values no error may quote. */
  readonly secrets: readonly string[];
}

/**
 * Picks the base URL and the Authorization header. API tokens use Basic auth with
 * `{email}/token` as the user name; OAuth tokens are bearer tokens.
 * See https://developer.zendesk.com/api-reference/introduction/security-and-auth/
 */
export function resolveConnection(options: ZendeskOptions): ZendeskConnection {
  const baseUrl = options.base_url ?? (options.subdomain ? `https://${options.subdomain}.zendesk.com` : undefined);
  if (!baseUrl) {
    throw new ConnectorConfigError(
      'zendesk: set `subdomain` (e.g. acme for https://acme.zendesk.com) or `base_url` in the destination',
    );
  }
  if (options.api_token && options.oauth_token) {
    throw new ConnectorConfigError('zendesk: the secret holds both api_token and oauth_token: keep one of them');
  }
  if (options.oauth_token) {
    return { baseUrl, authorization: `Bearer ${options.oauth_token}`, secrets: [options.oauth_token] };
  }
  if (options.api_token) {
    if (!options.email) {
      throw new ConnectorConfigError(
        'zendesk: an api_token needs `email`, the address of the agent who created it (sent as {email}/token)',
      );
    }
    const basic = Buffer.from(`${options.email}/token:${options.api_token}`).toString('base64');
    return { baseUrl, authorization: `Basic ${basic}`, secrets: [options.api_token, basic] };
  }
  throw new ConnectorConfigError(
    'zendesk: no credentials: put `api_token` (with `email` in the destination) or `oauth_token` in the secret',
  );
}
