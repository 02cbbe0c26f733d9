import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake Google Ads API (REST) for Customer Match, and Google's OAuth 2.0 token endpoint, on
 * 127.0.0.1 and a free port, written from Google's documentation:
 *
 * - `POST /token` (form): `grant_type=refresh_token`, `client_id`, `client_secret`,
 *   `refresh_token` → `{access_token, expires_in, scope, token_type: "Bearer"}`; a revoked refresh
 *   token → 400 `{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}`
 *   (https://developers.google.com/identity/protocols/oauth2/web-server#offline).
 * - Every API call needs `Authorization: Bearer <access token>` and `developer-token`; and
 *   `login-customer-id` when the fake is told the credentials reach the account through a manager
 *   (https://developers.google.com/google-ads/api/rest/auth). Refusals are google.rpc.Status JSON
 *   `{"error": {code, message, status, details: [GoogleAdsFailure]}}`
 *   (https://developers.google.com/google-ads/api/rest/common/error): 401 UNAUTHENTICATED,
 *   403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED with `quotaErrorDetails.retryDelay`
 *   (https://developers.google.com/google-ads/api/docs/best-practices/quotas).
 * - `POST /{v}/customers/{c}/offlineUserDataJobs:create` `{job: {type: "CUSTOMER_MATCH_USER_LIST",
 *   customerMatchUserListMetadata: {userList, consent?}}}` → `{resourceName}`;
 *   `POST /{v}/customers/{c}/offlineUserDataJobs/{id}:addOperations` `{operations: [{create|remove:
 *   {userIdentifiers}}|{removeAll: true}], enablePartialFailure}` → `{partialFailureError?}`;
 *   `POST …:run` → a long-running Operation; `POST /{v}/customers/{c}/googleAds:search` `{query}`
 *   reads `offline_user_data_job` status (PENDING → RUNNING → SUCCESS)
 *   (https://developers.google.com/google-ads/api/rest/reference/rest/v21/customers.offlineUserDataJobs).
 * - At most 100,000 identifiers per addOperations request and 20 per UserData, else
 *   TOO_MANY_USER_IDENTIFIERS (Customer Match considerations,
 *   https://developers.google.com/google-ads/api/docs/remarketing/audience-segments/customer-match/get-started).
 * - hashedEmail, hashedPhoneNumber, hashedFirstName and hashedLastName must be SHA-256 hex: else
 *   the operation fails with `offlineUserDataJobError: INVALID_SHA256_FORMAT` (a partial failure
 *   at its index with `enablePartialFailure`, the whole request otherwise). The fake keeps every
 *   such value in `unhashedSeen()`: proof, for the tests, that no raw identifier reached it.
 *   countryCode is a 2-letter code and postalCode present, unhashed (OfflineUserAddressInfo).
 * - Inferred: operations can be added only while the job is PENDING (`JOB_NOT_PENDING` is the
 *   fake's name); a job runs once; a job applies its operations when it succeeds, after
 *   `pollsUntilDone` status reads.
 */

export interface GoogleCustomerMatchFakeOptions {
  readonly customerId: string;
  readonly developerToken: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly refreshToken: string;
  /** User list ids of the account; default ['1234567890']. */
  readonly userLists?: readonly string[];
  /** Require this `login-customer-id` header (a manager account). */
  readonly loginCustomerId?: string;
  /** Status reads of a running job before it succeeds; default 1. */
  readonly pollsUntilDone?: number;
}

export interface GoogleFakeRequest {
  readonly method: string;
  readonly path: string;
  readonly at: number;
  readonly body: unknown;
  readonly headers: Readonly<Record<string, string | undefined>>;
  status: number;
}

interface Job {
  readonly id: string;
  readonly userList: string;
  readonly consent?: unknown;
  status: 'PENDING' | 'RUNNING' | 'SUCCESS' | 'FAILED';
  polls: number;
  readonly operations: { kind: 'create' | 'remove' | 'removeAll'; identifiers: Identifier[] }[];
}

type Identifier = Record<string, unknown>;

export interface GoogleCustomerMatchFake {
  readonly url: string;
  readonly tokenUrl: string;
  readonly requests: readonly GoogleFakeRequest[];
  /** The people of a list (`customer_match:<id>`), keyed by hashedEmail, else hashedPhoneNumber, else address, else thirdPartyUserId. */
  members(object: string): ReadonlySet<string>;
  /** The jobs, in creation order. */
  jobs(): readonly { id: string; userList: string; status: string; operations: number; consent?: unknown }[];
  unhashedSeen(): readonly string[];
  requestTimes(): number[];
  /** Answers the next `n` API requests (not the token endpoint) with 429 RESOURCE_EXHAUSTED. */
  throttleNext(n: number, retryDelaySeconds?: number): void;
  /** Lets `skip` API requests through, then throttles the `n` after them. */
  throttleAfter(skip: number, n: number): void;
  /** Makes the next job fail when it runs (`failureReason`). */
  failNextJob(reason: string): void;
  revoke(): void;
  restore(): void;
  stop(): Promise<void>;
}

const HASH = /^[0-9a-f]{64}$/;
const MAX_IDENTIFIERS = 100_000;
const MAX_PER_USER = 20;
const VERSION = /^v\d+$/;

export async function startGoogleCustomerMatchFake(
  options: GoogleCustomerMatchFakeOptions,
): Promise<GoogleCustomerMatchFake> {
  const lists = new Map<string, Map<string, Identifier[]>>();
  for (const id of options.userLists ?? ['1234567890']) lists.set(id, new Map());
  const jobs: Job[] = [];
  const requests: GoogleFakeRequest[] = [];
  const unhashed: string[] = [];
  const accessTokens = new Set<string>();
  let revoked = false;
  let throttle = { skip: 0, count: 0, delay: 30 };
  let failNext: string | undefined;
  let version = 'v21';

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify(body));
  };
  const requestId = () => randomBytes(8).toString('base64url');
  const failure = (errors: unknown[]) => ({
    '@type': `type.googleapis.com/google.ads.googleads.${version}.errors.GoogleAdsFailure`,
    errors,
    requestId: requestId(),
  });
  const rpcError = (res: ServerResponse, code: number, status: string, message: string, errors: unknown[] = []) =>
    send(res, code, { error: { code, message, status, details: errors.length ? [failure(errors)] : [] } });

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  const memberKey = (identifiers: Identifier[]) => {
    const find = (k: string) => identifiers.find((i) => k in i)?.[k];
    const address = find('addressInfo') as Record<string, string> | undefined;
    return (
      (find('hashedEmail') as string | undefined) ??
      (find('hashedPhoneNumber') as string | undefined) ??
      (address
        ? `${address.hashedFirstName}|${address.hashedLastName}|${address.countryCode}|${address.postalCode}`
        : undefined) ??
      String(find('thirdPartyUserId'))
    );
  };
  const sameIdentifier = (a: Identifier, b: Identifier) => JSON.stringify(a) === JSON.stringify(b);

  function apply(job: Job) {
    const list = lists.get(job.userList)!;
    for (const op of job.operations) {
      if (op.kind === 'removeAll') list.clear();
      else if (op.kind === 'create') list.set(memberKey(op.identifiers), op.identifiers);
      else {
        for (const [key, identifiers] of list) {
          if (identifiers.some((i) => op.identifiers.some((j) => sameIdentifier(i, j)))) list.delete(key);
        }
      }
    }
  }

  /** Checks one UserIdentifier; returns the error of the documented enum, or undefined. */
  function checkIdentifier(identifier: unknown): { code: Record<string, string>; message: string } | undefined {
    if (!identifier || typeof identifier !== 'object')
      return { code: { fieldError: 'REQUIRED' }, message: 'The required field was not present.' };
    const keys = Object.keys(identifier).filter((k) => k !== 'userIdentifierSource');
    if (keys.length !== 1)
      return { code: { requestError: 'INVALID_INPUT' }, message: 'A UserIdentifier has exactly one identifier.' };
    const i = identifier as Record<string, unknown>;
    const bad = (value: unknown) => {
      if (typeof value === 'string' && HASH.test(value)) return false;
      unhashed.push(String(value));
      return true;
    };
    const sha = {
      code: { offlineUserDataJobError: 'INVALID_SHA256_FORMAT' },
      message: 'The SHA256 encoded value is malformed.',
    };
    if ('hashedEmail' in i) return bad(i.hashedEmail) ? sha : undefined;
    if ('hashedPhoneNumber' in i) return bad(i.hashedPhoneNumber) ? sha : undefined;
    if ('thirdPartyUserId' in i)
      return typeof i.thirdPartyUserId === 'string' && i.thirdPartyUserId
        ? undefined
        : { code: { fieldError: 'REQUIRED' }, message: 'The required field was not present.' };
    if ('addressInfo' in i) {
      const a = (i.addressInfo ?? {}) as Record<string, unknown>;
      if (bad(a.hashedFirstName) || bad(a.hashedLastName)) return sha;
      if (typeof a.countryCode !== 'string' || !/^[A-Z]{2}$/.test(a.countryCode)) {
        return { code: { offlineUserDataJobError: 'INVALID_COUNTRY_CODE' }, message: 'The country code is invalid.' };
      }
      if (typeof a.postalCode !== 'string' || !a.postalCode) {
        // Inferred name: Customer Match needs all four address parts.
        return {
          code: { offlineUserDataJobError: 'INCOMPLETE_ADDRESS' },
          message: 'An address needs first name, last name, country code and postal code.',
        };
      }
      return undefined;
    }
    return { code: { requestError: 'INVALID_INPUT' }, message: 'Unsupported identifier.' };
  }

  async function handleToken(res: ServerResponse, text: string) {
    const form = new URLSearchParams(text);
    if (form.get('grant_type') !== 'refresh_token') {
      return send(res, 400, { error: 'unsupported_grant_type', error_description: 'Invalid grant_type' });
    }
    if (form.get('client_id') !== options.clientId || form.get('client_secret') !== options.clientSecret) {
      return send(res, 401, { error: 'invalid_client', error_description: 'Unauthorized' });
    }
    if (revoked || form.get('refresh_token') !== options.refreshToken) {
      return send(res, 400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
    }
    const token = `ya29.${randomBytes(24).toString('base64url')}`;
    accessTokens.add(token);
    return send(res, 200, {
      access_token: token,
      expires_in: 3599,
      scope: 'https://www.googleapis.com/auth/adwords',
      token_type: 'Bearer',
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse, text: string) {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/token' && req.method === 'POST') return handleToken(res, text);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (revoked || !bearer || !accessTokens.has(bearer)) {
      return rpcError(
        res,
        401,
        'UNAUTHENTICATED',
        'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
        [{ errorCode: { authenticationError: 'OAUTH_TOKEN_INVALID' }, message: 'Oauth token is invalid.' }],
      );
    }
    if (req.headers['developer-token'] !== options.developerToken) {
      return rpcError(res, 401, 'UNAUTHENTICATED', 'Request is missing required authentication credential.', [
        { errorCode: { authenticationError: 'DEVELOPER_TOKEN_INVALID' }, message: 'The developer token is not valid.' },
      ]);
    }
    if (options.loginCustomerId && req.headers['login-customer-id'] !== options.loginCustomerId) {
      return rpcError(res, 403, 'PERMISSION_DENIED', 'The caller does not have permission', [
        {
          errorCode: { authorizationError: 'USER_PERMISSION_DENIED' },
          message:
            "User doesn't have permission to access customer. Note: If you're accessing a client customer, the manager's customer id must be set in the 'login-customer-id' header.",
        },
      ]);
    }
    if (throttle.skip > 0) throttle.skip--;
    else if (throttle.count > 0) {
      throttle.count--;
      return rpcError(res, 429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).', [
        {
          errorCode: { quotaError: 'RESOURCE_TEMPORARILY_EXHAUSTED' },
          message: `Too many requests. Retry in ${throttle.delay} seconds.`,
          details: {
            quotaErrorDetails: {
              rateScope: 'ACCOUNT',
              rateName: 'Number of operations',
              retryDelay: `${throttle.delay}s`,
            },
          },
        },
      ]);
    }
    const match = /^\/(v\d+)\/customers\/(\d+)\/(.+)$/.exec(url.pathname);
    if (!match || !VERSION.test(match[1]!) || req.method !== 'POST') {
      return rpcError(res, 404, 'NOT_FOUND', 'The requested URL was not found on this server.');
    }
    version = match[1]!;
    const [, , customer, rest] = match;
    if (customer !== options.customerId) {
      return rpcError(res, 403, 'PERMISSION_DENIED', 'The caller does not have permission', [
        {
          errorCode: { authorizationError: 'USER_PERMISSION_DENIED' },
          message: "User doesn't have permission to access customer.",
        },
      ]);
    }
    let body: Record<string, unknown>;
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      return rpcError(res, 400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.');
    }
    if (rest === 'offlineUserDataJobs:create') {
      const job = body.job as
        | { type?: string; customerMatchUserListMetadata?: { userList?: string; consent?: unknown } }
        | undefined;
      if (job?.type !== 'CUSTOMER_MATCH_USER_LIST') {
        return rpcError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [
          {
            errorCode: { offlineUserDataJobError: 'INVALID_USER_LIST_TYPE' },
            message: 'Job type is not CUSTOMER_MATCH_USER_LIST.',
          },
        ]);
      }
      const listId = new RegExp(`^customers/${customer}/userLists/(\\d+)$`).exec(
        job.customerMatchUserListMetadata?.userList ?? '',
      )?.[1];
      if (!listId || !lists.has(listId)) {
        return rpcError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [
          {
            errorCode: { offlineUserDataJobError: 'INVALID_USER_LIST_ID' },
            message: 'The user list ID provided for the job is invalid.',
          },
        ]);
      }
      const id = String(4_000_000_000 + jobs.length + 1);
      jobs.push({
        id,
        userList: listId,
        consent: job.customerMatchUserListMetadata?.consent,
        status: 'PENDING',
        polls: 0,
        operations: [],
      });
      return send(res, 200, { resourceName: `customers/${customer}/offlineUserDataJobs/${id}` });
    }
    const jobCall = /^offlineUserDataJobs\/(\d+):(addOperations|run)$/.exec(rest!);
    if (jobCall) {
      const job = jobs.find((j) => j.id === jobCall[1]);
      if (!job) {
        return rpcError(res, 404, 'NOT_FOUND', 'Requested entity was not found.', [
          { errorCode: { mutateError: 'RESOURCE_NOT_FOUND' }, message: 'The requested resource was not found.' },
        ]);
      }
      if (job.status !== 'PENDING') {
        return rpcError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [
          {
            errorCode: { offlineUserDataJobError: 'JOB_NOT_PENDING' },
            message: 'The job is not in the PENDING state.',
          },
        ]);
      }
      if (jobCall[2] === 'run') {
        job.status = 'RUNNING';
        if (job.operations.length === 0) {
          job.status = 'FAILED';
        }
        return send(res, 200, {
          name: `customers/${customer}/operations/${job.id}`,
          metadata: {
            '@type': `type.googleapis.com/google.ads.googleads.${version}.resources.OfflineUserDataJobMetadata`,
          },
        });
      }
      const operations = body.operations;
      if (!Array.isArray(operations) || operations.length === 0) {
        return rpcError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [
          {
            errorCode: { fieldError: 'REQUIRED' },
            message: 'The required field was not present.',
            location: { fieldPathElements: [{ fieldName: 'operations' }] },
          },
        ]);
      }
      let total = 0;
      for (const op of operations as Record<string, { userIdentifiers?: unknown[] }>[]) {
        total += (op.create ?? op.remove)?.userIdentifiers?.length ?? 0;
      }
      if (total > MAX_IDENTIFIERS) {
        return rpcError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [
          {
            errorCode: { offlineUserDataJobError: 'TOO_MANY_USER_IDENTIFIERS' },
            message: 'Maximum number of user identifiers allowed per request is 100,000 and per operation is 20.',
          },
        ]);
      }
      const partial = body.enablePartialFailure === true;
      const errors: unknown[] = [];
      const good: Job['operations'] = [];
      operations.forEach((op: Record<string, unknown>, index: number) => {
        const location = (field: string) => ({
          fieldPathElements: [{ fieldName: 'operations', index }, { fieldName: field }],
        });
        if (op.removeAll === true) {
          good.push({ kind: 'removeAll', identifiers: [] });
          return;
        }
        const kind = 'create' in op ? 'create' : 'remove' in op ? 'remove' : undefined;
        const data = kind ? (op[kind] as { userIdentifiers?: unknown }) : undefined;
        if (!kind || !data || !Array.isArray(data.userIdentifiers) || data.userIdentifiers.length === 0) {
          errors.push({
            errorCode: { fieldError: 'REQUIRED' },
            message: 'The required field was not present.',
            location: location(kind ?? 'operation'),
          });
          return;
        }
        if (data.userIdentifiers.length > MAX_PER_USER) {
          errors.push({
            errorCode: { offlineUserDataJobError: 'TOO_MANY_USER_IDENTIFIERS' },
            message: 'Maximum number of user identifiers allowed per request is 100,000 and per operation is 20.',
            location: location(kind),
          });
          return;
        }
        for (const identifier of data.userIdentifiers) {
          const problem = checkIdentifier(identifier);
          if (problem) {
            errors.push({ errorCode: problem.code, message: problem.message, location: location(kind) });
            return;
          }
        }
        good.push({ kind, identifiers: data.userIdentifiers as Identifier[] });
      });
      if (errors.length > 0 && !partial)
        return rpcError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', errors);
      job.operations.push(...good);
      return send(
        res,
        200,
        errors.length
          ? {
              partialFailureError: {
                code: 3,
                message: 'Multiple errors in ‘details’. First error: …',
                details: [failure(errors)],
              },
            }
          : {},
      );
    }
    if (rest === 'googleAds:search') {
      const query = String(body.query ?? '');
      if (/FROM\s+customer\b/i.test(query))
        return send(res, 200, {
          results: [{ customer: { resourceName: `customers/${customer}`, id: customer } }],
          fieldMask: 'customer.id',
          requestId: requestId(),
        });
      const name = /offline_user_data_job\.resource_name\s*=\s*'customers\/\d+\/offlineUserDataJobs\/(\d+)'/.exec(
        query,
      )?.[1];
      if (!/FROM\s+offline_user_data_job/i.test(query) || !name) {
        return rpcError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [
          {
            errorCode: { queryError: 'PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE' },
            message: 'The fake reads offline_user_data_job by resource_name only.',
          },
        ]);
      }
      const job = jobs.find((j) => j.id === name);
      if (job?.status === 'RUNNING') {
        job.polls++;
        if (job.polls >= (options.pollsUntilDone ?? 1)) {
          if (failNext !== undefined) {
            job.status = 'FAILED';
          } else {
            apply(job);
            job.status = 'SUCCESS';
          }
        }
      }
      const reason = job?.status === 'FAILED' ? (failNext ?? 'INTERNAL_ERROR') : undefined;
      if (job?.status === 'FAILED') failNext = undefined;
      return send(res, 200, {
        results: job
          ? [
              {
                offlineUserDataJob: {
                  resourceName: `customers/${customer}/offlineUserDataJobs/${job.id}`,
                  id: job.id,
                  type: 'CUSTOMER_MATCH_USER_LIST',
                  status: job.status,
                  ...(reason ? { failureReason: reason } : {}),
                },
              },
            ]
          : [],
        fieldMask: 'offlineUserDataJob.resourceName,offlineUserDataJob.status,offlineUserDataJob.failureReason',
        requestId: requestId(),
      });
    }
    return rpcError(res, 404, 'NOT_FOUND', 'The requested URL was not found on this server.');
  }

  const server = createServer(async (req, res) => {
    const text = await readBody(req);
    let parsed: unknown = text;
    try {
      parsed = text && req.headers['content-type']?.includes('json') ? JSON.parse(text) : text;
    } catch {
      // kept as text
    }
    const entry: GoogleFakeRequest = {
      method: req.method ?? 'GET',
      path: new URL(req.url ?? '/', 'http://x').pathname,
      at: Date.now(),
      body: parsed,
      headers: {
        'developer-token': req.headers['developer-token'] as string | undefined,
        'login-customer-id': req.headers['login-customer-id'] as string | undefined,
      },
      status: 0,
    };
    requests.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
    });
    handle(req, res, text).catch((error) => {
      if (!res.headersSent) rpcError(res, 500, 'INTERNAL', String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;

  const listOf = (object: string) => {
    const id = /^customer_match:(\d+)$/.exec(object)?.[1];
    const list = id ? lists.get(id) : undefined;
    if (!list) throw new Error(`the fake has no user list ${object}`);
    return list;
  };

  return {
    url: `http://127.0.0.1:${port}`,
    tokenUrl: `http://127.0.0.1:${port}/token`,
    requests,
    members: (object) => new Set(listOf(object).keys()),
    jobs: () =>
      jobs.map((j) => ({
        id: j.id,
        userList: j.userList,
        status: j.status,
        operations: j.operations.length,
        consent: j.consent,
      })),
    unhashedSeen: () => unhashed,
    requestTimes: () => requests.map((r) => r.at),
    throttleNext(n, retryDelaySeconds = 30) {
      throttle = { skip: 0, count: n, delay: retryDelaySeconds };
    },
    throttleAfter(skip, n) {
      throttle = { skip, count: n, delay: 30 };
    },
    failNextJob(reason) {
      failNext = reason;
    },
    revoke() {
      revoked = true;
      accessTokens.clear();
    },
    restore() {
      revoked = false;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
