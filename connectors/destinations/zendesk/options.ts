import { ConnectorConfigError } from '#connectors/sdk/errors';
import type { ZendeskOptions } from './manifest.ts';

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
