import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake Meta Graph API (Marketing API, Customer File Custom Audiences) on 127.0.0.1 and a free
 * port, written from Meta's documentation:
 *
 * - `POST /{version}/{custom_audience_id}/users` adds people and `DELETE` (same parameters)
 *   removes them; the parameter `payload` is `{schema, data}`, as JSON or as the form-encoded
 *   JSON text of the reference's example; "only a maximum of 10000 at a time"
 *   (https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users). The
 *   answer is `{audience_id, session_id, num_received, num_invalid_entries, invalid_entry_samples}`
 *   (fields of the upload session, https://developers.facebook.com/docs/marketing-api/reference/custom-audience-session).
 * - `schema` is a single key (EMAIL_SHA256, PHONE_SHA256, …) or a list of multi-key names
 *   (EMAIL, PHONE, FN, LN, FI, CT, ST, ZIP, COUNTRY, DOBY, DOBM, DOBD, GEN, MADID, EXTERN_ID —
 *   the SDK's CustomAudience.Schema.MultiKeySchema); every row has one value per key.
 * - Hashing required for every key but EXTERN_ID and MADID
 *   (https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#hash):
 *   a value that is not 64 lowercase hex digits is refused. Inferred: Meta would count such rows
 *   as invalid entries; the fake refuses the whole request with error 100 so a raw identifier can
 *   never be stored, and keeps what it saw in `unhashedSeen()` — proof, for the tests, that none
 *   reached it.
 * - Auth: the `access_token` parameter (or `Authorization: Bearer`, Inferred); a wrong or revoked
 *   token is `{"error":{"message":"Error validating access token…","type":"OAuthException","code":190}}`
 *   (https://developers.facebook.com/docs/graph-api/guides/error-handling). Inferred: answered 400
 *   as the Graph API answers its errors.
 * - Throttling: error code 17, subcode 2446079, "User request limit reached" (or 80003, the
 *   custom_audience Business Use Case limit) with an `X-Business-Use-Case-Usage` header whose
 *   `estimated_time_to_regain_access` is in minutes
 *   (https://developers.facebook.com/docs/marketing-api/overview/rate-limiting). Inferred: HTTP 400.
 * - An unknown audience: code 100, subcode 33, "Unsupported post request. Object with ID '…' does
 *   not exist, cannot be loaded due to missing permissions, or does not support this operation".
 */

export interface MetaAudiencesFakeOptions {
  readonly token: string;
  /** Audience ids that exist; default ['23851234567890123']. */
  readonly audiences?: readonly string[];
  /** Requests allowed per rolling window (all routes), then error 80003; default none. */
  readonly window?: { readonly max: number; readonly ms: number };
  /** The business id that keys `X-Business-Use-Case-Usage`. */
  readonly businessId?: string;
}

export interface MetaFakeRequest {
  readonly method: string;
  readonly path: string;
  readonly at: number;
  /** The parsed `payload` of a /users call. */
  readonly payload?: { schema: unknown; data: unknown };
  status: number;
}

export interface MetaAudiencesFake {
  readonly url: string;
  readonly requests: readonly MetaFakeRequest[];
  /** The people in an audience (`audience:<id>`), keyed as Meta matches them: the EMAIL hash, else PHONE, else EXTERN_ID. */
  members(object: string): ReadonlySet<string>;
  /** The full rows stored for an audience, schema key → value. */
  rows(object: string): readonly Readonly<Record<string, string>>[];
  /** Values that arrived unhashed in a hashed column (must stay empty). */
  unhashedSeen(): readonly string[];
  requestTimes(): number[];
  /** Answers the next `n` requests with Meta's throttling error (code 17 by default). */
  throttleNext(n: number, code?: 17 | 80003, minutesToRegain?: number): void;
  /** Lets `skip` /users requests through, then throttles the `n` after them. */
  throttleAfter(skip: number, n: number): void;
  revoke(): void;
  restore(): void;
  stop(): Promise<void>;
}

const HASH = /^[0-9a-f]{64}$/;
const MULTI_KEYS = new Set([
  'EMAIL',
  'PHONE',
  'FN',
  'LN',
  'FI',
  'CT',
  'ST',
  'ZIP',
  'COUNTRY',
  'DOBY',
  'DOBM',
  'DOBD',
  'GEN',
  'MADID',
  'EXTERN_ID',
]);
const SINGLE_KEYS = new Map([
  ['EMAIL_SHA256', 'EMAIL'],
  ['PHONE_SHA256', 'PHONE'],
  ['MOBILE_ADVERTISER_ID', 'MADID'],
]);
const UNHASHED_KEYS = new Set(['EXTERN_ID', 'MADID']);
const MAX_ROWS = 10_000;

export async function startMetaAudiencesFake(options: MetaAudiencesFakeOptions): Promise<MetaAudiencesFake> {
  const audiences = new Map<string, Map<string, Record<string, string>>>();
  for (const id of options.audiences ?? ['23851234567890123']) audiences.set(id, new Map());
  const requests: MetaFakeRequest[] = [];
  const unhashed: string[] = [];
  let revoked = false;
  let throttle = { skip: 0, count: 0, code: 17 as 17 | 80003, minutes: 1 };
  const businessId = options.businessId ?? '1234567890';

  const usageHeader = (callCount: number, minutes: number) =>
    JSON.stringify({
      [businessId]: [
        {
          type: 'custom_audience',
          call_count: callCount,
          total_cputime: 10,
          total_time: 10,
          estimated_time_to_regain_access: minutes,
        },
      ],
    });

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const graphError = (
    res: ServerResponse,
    status: number,
    error: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) => send(res, status, { error: { ...error, fbtrace_id: randomBytes(8).toString('hex') } }, headers);

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  function parsePayload(text: string, contentType: string, query: URLSearchParams): unknown {
    if (contentType.includes('application/json') && text) {
      const body = JSON.parse(text) as { payload?: unknown };
      return typeof body.payload === 'string' ? JSON.parse(body.payload) : body.payload;
    }
    const form = new URLSearchParams(text);
    const raw = form.get('payload') ?? query.get('payload');
    return raw ? JSON.parse(raw) : undefined;
  }

  const memberKey = (row: Record<string, string>) => row.EMAIL ?? row.PHONE ?? row.EXTERN_ID ?? JSON.stringify(row);

  async function handle(req: IncomingMessage, res: ServerResponse, entry: MetaFakeRequest) {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const bodyText = await readBody(req);
    const segments = url.pathname.split('/').filter(Boolean);
    const [version, node, edge] = segments;
    if (!version || !/^v\d+\.\d+$/.test(version)) {
      return graphError(res, 400, { message: 'Unknown path components', type: 'OAuthException', code: 2500 });
    }
    const form = new URLSearchParams(req.headers['content-type']?.includes('json') ? '' : bodyText);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const token = url.searchParams.get('access_token') ?? form.get('access_token') ?? bearer;
    if (!token) {
      return graphError(res, 400, {
        message: 'An active access token must be used to query information about the current user.',
        type: 'OAuthException',
        code: 2500,
      });
    }
    if (revoked || token !== options.token) {
      return graphError(res, 400, {
        message:
          'Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.',
        type: 'OAuthException',
        code: 190,
        error_subcode: 460,
      });
    }
    if (options.window) {
      const since = Date.now() - options.window.ms;
      const recent = requests.filter((r) => r.at >= since && r !== entry).length;
      if (recent >= options.window.max) {
        return graphError(
          res,
          400,
          {
            message: 'There have been too many calls to this ad-account. Wait a bit and try again.',
            type: 'OAuthException',
            code: 80003,
            is_transient: true,
          },
          { 'x-business-use-case-usage': usageHeader(100, 1) },
        );
      }
    }
    if (node === 'me' && !edge && req.method === 'GET') return send(res, 200, { id: '100000000000001' });
    if (!node || edge !== 'users' || (req.method !== 'POST' && req.method !== 'DELETE')) {
      return graphError(res, 400, { message: 'Unknown path components', type: 'OAuthException', code: 2500 });
    }
    if (throttle.skip > 0) throttle.skip--;
    else if (throttle.count > 0) {
      throttle.count--;
      const message =
        throttle.code === 17
          ? 'User request limit reached'
          : 'There have been too many calls to this ad-account. Wait a bit and try again.';
      return graphError(
        res,
        400,
        {
          message,
          type: 'OAuthException',
          code: throttle.code,
          ...(throttle.code === 17 ? { error_subcode: 2446079 } : {}),
          is_transient: true,
        },
        { 'x-business-use-case-usage': usageHeader(100, throttle.minutes) },
      );
    }
    const audience = audiences.get(node);
    if (!audience) {
      return graphError(res, 400, {
        message: `Unsupported ${req.method === 'POST' ? 'post' : 'delete'} request. Object with ID '${node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
        type: 'GraphMethodException',
        code: 100,
        error_subcode: 33,
      });
    }
    let payload: { schema?: unknown; data?: unknown } | undefined;
    try {
      payload = parsePayload(bodyText, req.headers['content-type'] ?? '', url.searchParams) as typeof payload;
    } catch {
      return graphError(res, 400, {
        message: '(#100) param payload must be a JSON object',
        type: 'OAuthException',
        code: 100,
      });
    }
    (entry as { payload?: unknown }).payload = payload;
    if (!payload || typeof payload !== 'object') {
      return graphError(res, 400, {
        message: '(#100) The parameter payload is required',
        type: 'OAuthException',
        code: 100,
      });
    }
    const rawSchema = payload.schema;
    const schema: string[] | undefined =
      typeof rawSchema === 'string' && SINGLE_KEYS.has(rawSchema)
        ? [SINGLE_KEYS.get(rawSchema)!]
        : Array.isArray(rawSchema) &&
            rawSchema.length > 0 &&
            rawSchema.every((k) => typeof k === 'string' && MULTI_KEYS.has(k))
          ? (rawSchema as string[])
          : undefined;
    if (!schema || new Set(schema).size !== schema.length) {
      return graphError(res, 400, { message: '(#100) Invalid schema', type: 'OAuthException', code: 100 });
    }
    const data = payload.data;
    if (!Array.isArray(data) || data.length === 0) {
      return graphError(res, 400, {
        message: '(#100) The parameter data is required',
        type: 'OAuthException',
        code: 100,
      });
    }
    if (data.length > MAX_ROWS) {
      return graphError(res, 400, {
        message: `(#100) Too many users in one request: at most ${MAX_ROWS}`,
        type: 'OAuthException',
        code: 100,
      });
    }
    const rows: Record<string, string>[] = [];
    for (const item of data) {
      const cells = typeof rawSchema === 'string' ? [item] : item;
      if (!Array.isArray(cells) || cells.length !== schema.length) {
        return graphError(res, 400, {
          message: '(#100) Number of keys in each row must match the number of keys in the schema',
          type: 'OAuthException',
          code: 100,
        });
      }
      const row: Record<string, string> = {};
      for (let i = 0; i < schema.length; i++) {
        const key = schema[i]!;
        const value = cells[i];
        if (typeof value !== 'string' || value === '') {
          return graphError(res, 400, {
            message: `(#100) ${key} values must be strings`,
            type: 'OAuthException',
            code: 100,
          });
        }
        if (!UNHASHED_KEYS.has(key) && !HASH.test(value)) {
          unhashed.push(value);
          return graphError(res, 400, {
            message: `(#100) Invalid parameter: ${key} must be hashed with SHA-256 (64 lowercase hex characters)`,
            type: 'OAuthException',
            code: 100,
            error_user_title: 'Data not hashed',
          });
        }
        row[key] = value;
      }
      rows.push(row);
    }
    for (const row of rows) {
      const key = memberKey(row);
      if (req.method === 'POST') audience.set(key, row);
      else audience.delete(key);
    }
    return send(res, 200, {
      audience_id: node,
      session_id: String(Date.now()),
      num_received: rows.length,
      num_invalid_entries: 0,
      invalid_entry_samples: {},
    });
  }

  const server = createServer((req, res) => {
    const entry: MetaFakeRequest = {
      method: req.method ?? 'GET',
      path: new URL(req.url ?? '/', 'http://x').pathname,
      at: Date.now(),
      status: 0,
    };
    requests.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
    });
    handle(req, res, entry).catch((error) => {
      if (!res.headersSent)
        send(res, 500, { error: { message: String(error), type: 'FacebookApiException', code: 1 } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;

  const audienceOf = (object: string) => {
    const id = /^audience:(\d+)$/.exec(object)?.[1];
    const audience = id ? audiences.get(id) : undefined;
    if (!audience) throw new Error(`the fake has no audience ${object}`);
    return audience;
  };

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    members: (object) => new Set(audienceOf(object).keys()),
    rows: (object) => [...audienceOf(object).values()],
    unhashedSeen: () => unhashed,
    requestTimes: () => requests.map((r) => r.at),
    throttleNext(n, code = 17, minutesToRegain = 1) {
      throttle = { skip: 0, count: n, code, minutes: minutesToRegain };
    },
    throttleAfter(skip, n) {
      throttle = { skip, count: n, code: 17, minutes: 1 };
    },
    revoke() {
      revoked = true;
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
