import { createPrivateKey, type KeyObject, sign } from 'node:crypto';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#connectors/sdk/errors';
import { createHttpClient } from '#connectors/sdk/http';
import type { RequestPace } from '#connectors/sdk/types';

/**
 * OAuth 2.0 for server-to-server integrations, the two flows Salesforce recommends now that the
 * username-password flow is being retired:
 * - client credentials: the external client app's consumer key and secret are exchanged for a token
 *   that runs as the app's integration user
 *   (https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm);
 * - JWT bearer: a JWT signed RS256 with the key whose certificate the app holds, `iss` the consumer
 *   key, `sub` the username, `aud` the login server, `exp` within 3 minutes
 *   (https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm).
 * Both POST to `/services/oauth2/token`; the answer carries `access_token` and `instance_url` (the
 * org's API host) but no expiry: a session lasts until the org's timeout, so an API call answered
 * `401 INVALID_SESSION_ID` asks for a new token once.
 */

export const TOKEN_PATH = '/services/oauth2/token';
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** "The validity must be the expiration time of the assertion within 3 minutes". */
const JWT_LIFETIME_SECONDS = 180;

export type Credentials =
  | { readonly flow: 'client_credentials'; readonly clientId: string; readonly clientSecret: string }
  | {
      readonly flow: 'jwt_bearer';
      readonly clientId: string;
      readonly username: string;
      readonly privateKey: KeyObject;
      readonly audience: string;
    };

export interface Session {
  readonly accessToken: string;
  /** `https://MyDomainName.my.salesforce.com`: where the REST API of this org answers. */
  readonly instanceUrl: string;
  /**
   * The Id of the user the session runs as, from the answer's identity URL
   * (`https://login.salesforce.com/id/{orgId}/{userId}`): it is the `createdById` of the Bulk API
   * jobs this session creates.
   */
  readonly userId?: string;
}

/**
 * The generic login hosts. The client credentials flow is refused there: Salesforce's help page
 * for the flow has the token request posted to the org's My Domain
 * (https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm),
 * and the generic hosts answer `400 invalid_grant: request not supported on this domain`
 * (Inferred from reports, e.g. https://github.com/pozil/pub-sub-api-node-client/issues/58: the
 * help page does not quote the error).
 */
export const GENERIC_LOGIN_HOSTS = new Set(['login.salesforce.com', 'test.salesforce.com']);
/** The JWT bearer flow's default login server (production orgs). */
export const DEFAULT_JWT_LOGIN_URL = 'https://login.salesforce.com';

/** Why a login URL cannot serve the client credentials flow, or undefined when it can. */
export function clientCredentialsLoginProblem(loginUrl: string | undefined): string | undefined {
  const myDomain =
    "set login_url to the org's My Domain URL (Setup → My Domain, e.g. https://acme.my.salesforce.com, or https://acme--uat.sandbox.my.salesforce.com for a sandbox)";
  if (loginUrl === undefined) return `the client credentials flow needs login_url: ${myDomain}`;
  const host = new URL(loginUrl).hostname.toLowerCase();
  if (GENERIC_LOGIN_HOSTS.has(host)) {
    return `login_url ${new URL(loginUrl).origin} does not serve the client credentials flow (Salesforce answers "request not supported on this domain"): ${myDomain}`;
  }
  return undefined;
}

/** Reads a PEM private key, accepting the `\n` escapes a JSON secret often carries. */
export function readPrivateKey(pem: string): KeyObject {
  try {
    return createPrivateKey(pem.includes('\\n') ? pem.replace(/\\n/g, '\n') : pem);
  } catch (error) {
    throw new ConnectorConfigError(
      `salesforce: private_key is not a PEM private key (${(error as Error).message}); put the key whose certificate the external client app holds`,
    );
  }
}

/**
 * `aud` of the JWT: `https://login.salesforce.com` for production orgs, `https://test.salesforce.com`
 * for sandboxes (also when logging in through a sandbox's My Domain), else the login URL itself
 * (an Experience Cloud site).
 */
export function defaultAudience(loginUrl: string): string {
  const host = new URL(loginUrl).hostname;
  if (host === 'test.salesforce.com' || host.endsWith('.sandbox.my.salesforce.com'))
    return 'https://test.salesforce.com';
  if (host === 'login.salesforce.com' || host.endsWith('.my.salesforce.com')) return 'https://login.salesforce.com';
  return new URL(loginUrl).origin;
}

/** The signed assertion of the JWT bearer flow: `base64url(header).base64url(claims).base64url(RS256)`. */
export function jwtAssertion(
  credentials: Extract<Credentials, { flow: 'jwt_bearer' }>,
  nowMs: number = Date.now(),
): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${encode({ alg: 'RS256' })}.${encode({
    iss: credentials.clientId,
    sub: credentials.username,
    aud: credentials.audience,
    exp: Math.floor(nowMs / 1000) + JWT_LIFETIME_SECONDS,
  })}`;
  const signature = sign('sha256', Buffer.from(unsigned), credentials.privateKey).toString('base64url');
  return `${unsigned}.${signature}`;
}

interface TokenAnswer {
  readonly access_token?: unknown;
  readonly instance_url?: unknown;
  readonly id?: unknown;
  readonly error?: unknown;
  readonly error_description?: unknown;
}

/** Asks the login server for a session; a refusal is an AuthError that says what to check. */
export async function requestSession(
  loginUrl: string,
  credentials: Credentials,
  options: { readonly timeoutMs?: number; readonly fetch?: typeof fetch; readonly pace?: RequestPace } = {},
): Promise<Session> {
  const form = new URLSearchParams();
  let secret: string;
  if (credentials.flow === 'client_credentials') {
    form.set('grant_type', 'client_credentials');
    form.set('client_id', credentials.clientId);
    form.set('client_secret', credentials.clientSecret);
    secret = credentials.clientSecret;
  } else {
    secret = jwtAssertion(credentials);
    form.set('grant_type', JWT_BEARER_GRANT);
    form.set('assertion', secret);
  }
  const http = createHttpClient({
    baseUrl: loginUrl,
    vendor: 'Salesforce login',
    secrets: [secret],
    timeoutMs: options.timeoutMs,
    fetch: options.fetch,
    // A login is a request like any other: Salesforce counts it, the lane paces it.
    pace: options.pace,
  });
  const response = await http.request<TokenAnswer>({
    method: 'POST',
    path: TOKEN_PATH,
    // Asking for a token twice creates nothing that matters: a timed-out login is sent again.
    idempotent: true,
    body: form.toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    // OAuth errors are 400 (RFC 6749 §5.2), some servers use 401/403: all read as refusals below.
    accept: [400, 401, 403],
  });
  const answer = typeof response.body === 'object' && response.body !== null ? response.body : {};
  if (response.status === 200 && typeof answer.access_token === 'string' && typeof answer.instance_url === 'string') {
    const userId = typeof answer.id === 'string' ? /\/id\/[^/]+\/([^/?]+)/.exec(answer.id)?.[1] : undefined;
    return {
      accessToken: answer.access_token,
      instanceUrl: answer.instance_url,
      ...(userId ? { userId } : {}),
    };
  }
  const code = typeof answer.error === 'string' ? answer.error : `HTTP ${response.status}`;
  const description = http.redact(typeof answer.error_description === 'string' ? answer.error_description : '');
  const said = `${code}${description ? `: ${description}` : ''}`;
  if (credentials.flow === 'client_credentials' && /not supported on this domain/i.test(description)) {
    throw new ConnectorConfigError(
      `Salesforce login at ${new URL(loginUrl).origin} refused the client credentials flow (${said}): set login_url to the org's My Domain URL (Setup → My Domain, e.g. https://acme.my.salesforce.com)`,
    );
  }
  if (code === 'rate_limit_exceeded') {
    throw new RateLimitedError(
      `Salesforce login at ${new URL(loginUrl).origin} is rate limiting token requests (${said})`,
      60_000,
    );
  }
  throw new AuthError(
    `Salesforce login at ${new URL(loginUrl).origin} refused the ${credentials.flow.replace('_', ' ')} flow (${said}): ${hint(credentials)}`,
  );
}

function hint(credentials: Credentials): string {
  return credentials.flow === 'client_credentials'
    ? "check client_id and the client_secret secret, that the external client app enables the client credentials flow with a run-as user, and that login_url is the org's My Domain URL"
    : 'check client_id, username, the private_key secret (its certificate must be uploaded to the app), that the user is pre-authorized for the app, and login_url (https://test.salesforce.com for sandboxes)';
}
