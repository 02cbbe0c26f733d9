import { AuthError, ConnectorConfigError } from '#connectors/sdk/errors';
import { createHttpClient, HttpError, type HttpRequest } from '#connectors/sdk/http';
import type { JsonValue, RequestPace } from '#connectors/sdk/types';
import { MAX_BATCH_BYTES } from './limits.ts';

/**
 * The Track API calls Backflow makes, on the shared HTTP client: every request takes its slot from
 * the lane's pace; HTTP Basic authentication, "your Site ID as the user name and your secret key as
 * the password" (https://docs.customer.io/integrations/api/track/#section/Authentication); 401 read
 * here so the message can say what to check; 429 into RateLimitedError by the shared client (the
 * Track API documents no rate-limit header; a `Retry-After`, if sent, is honoured).
 *
 * `/api/v2/batch` with person `identify` and `delete` actions is idempotent, so a timeout or a 5xx
 * is retried: identify sets attributes on the person its identifier names (sending it twice leaves
 * the same person; events, which would be recorded twice, are never sent), and deleting a person
 * already deleted deletes nothing more.
 * https://docs.customer.io/integrations/api/track/#tag/track_v2/operation/batch
 */

/** One action of a batch: a person, one identifier, an action and, for identify, attributes. */
export interface PersonAction {
  readonly type: 'person';
  readonly identifiers: Readonly<Record<string, string>>;
  readonly action: 'identify' | 'delete';
  readonly attributes?: Readonly<Record<string, JsonValue>>;
}

/** One entry of a 207's `errors`: "`batch_index` … the 0-indexed position of the failing object". */
export interface BatchError {
  readonly batch_index?: number;
  readonly reason?: string;
  readonly field?: string;
  readonly message?: string;
}

/** What `/api/v2/batch` answered: 200 (every action accepted) or 207 (the listed ones refused). */
export interface BatchAnswer {
  readonly status: number;
  readonly errors: readonly BatchError[];
}

/** `GET /api/v1/accounts/region`: the region and Track API URL of the credentials' workspace. */
export interface RegionAnswer {
  readonly url?: string;
  readonly region?: string;
  readonly environment_id?: number;
}

export interface CustomerioClientOptions {
  readonly baseUrl: string;
  readonly siteId: string;
  readonly apiKey: string;
  readonly timeoutMs: number;
  /** The lane's pace: every request takes a slot. */
  readonly pace?: RequestPace;
}

/** The body `/api/v2/batch` is sent, as the shared client serializes it. */
export function batchBody(actions: readonly PersonAction[]): string {
  return JSON.stringify({ batch: actions });
}

export function createCustomerioClient(options: CustomerioClientOptions) {
  const basic = Buffer.from(`${options.siteId}:${options.apiKey}`).toString('base64');
  const http = createHttpClient({
    baseUrl: options.baseUrl,
    vendor: 'Customer.io',
    headers: { authorization: `Basic ${basic}` },
    secrets: [options.apiKey, basic],
    timeoutMs: options.timeoutMs,
    pace: options.pace,
    refusal: ({ status, where, snippet }) => {
      if (status === 401 || status === 403) {
        return new AuthError(
          `${where} refused the credentials (${status}: ${snippet}): check site_id and the api_key secret (Customer.io: Settings > API Credentials > Track API Keys), and that region matches the workspace's data centre (a US workspace's keys fail on the EU address)`,
        );
      }
      return undefined;
    },
  });

  /** The shared client's request; a redirect or another unexpected status is a configuration problem. */
  const send = async <T>(request: HttpRequest) => {
    try {
      return await http.request<T>(request);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      const moved = error.status >= 300 && error.status < 400;
      throw new ConnectorConfigError(
        `${error.message}${
          moved
            ? `: Customer.io redirects an EU workspace's requests sent to the US address; set region: eu (or base_url ${REGION_HINT})`
            : ''
        }`,
      );
    }
  };

  return {
    redact: http.redact,

    /**
     * `POST /api/v2/batch`. A 207 lists the actions it refused (`batch_index`), "all other requests
     * are accepted"; a 400 ("The entire request was malformed or invalid") is a configuration error.
     */
    async batch(actions: readonly PersonAction[]): Promise<BatchAnswer> {
      const bytes = Buffer.byteLength(batchBody(actions));
      if (bytes > MAX_BATCH_BYTES)
        throw new RangeError(`a /api/v2/batch body of ${bytes} bytes exceeds ${MAX_BATCH_BYTES}`);
      const response = await send<unknown>({
        method: 'POST',
        path: '/api/v2/batch',
        json: { batch: actions },
        idempotent: true,
        accept: [207, 400],
      });
      if (response.status === 400) {
        throw new ConnectorConfigError(
          `Customer.io POST /api/v2/batch refused the whole request (400: ${http.redact(describe(errorsOf(response.body)))})`,
        );
      }
      return { status: response.status, errors: response.status === 207 ? errorsOf(response.body) : [] };
    },

    /** `GET /api/v1/accounts/region`: checks the credentials and says which region they belong to. */
    async region(): Promise<RegionAnswer> {
      const response = await send<unknown>({ method: 'GET', path: '/api/v1/accounts/region' });
      const body = response.body;
      return body !== null && typeof body === 'object' ? (body as RegionAnswer) : {};
    },
  };
}

const REGION_HINT = 'https://track-eu.customer.io';

export type CustomerioClient = ReturnType<typeof createCustomerioClient>;

/** The `errors` entries of an answer. */
export function errorsOf(body: unknown): BatchError[] {
  if (body === null || typeof body !== 'object') return [];
  const errors = (body as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return [];
  return errors.flatMap((e): BatchError[] => {
    if (e === null || typeof e !== 'object') return typeof e === 'string' ? [{ message: e }] : [];
    const { batch_index, reason, field, message } = e as Record<string, unknown>;
    return [
      {
        ...(typeof batch_index === 'number' && Number.isInteger(batch_index) && batch_index >= 0 && { batch_index }),
        ...(typeof reason === 'string' && { reason }),
        ...(typeof field === 'string' && { field }),
        ...(typeof message === 'string' && { message }),
      },
    ];
  });
}

/** `reason: field: message`, for outcomes and errors. */
export function describe(errors: readonly BatchError[]): string {
  if (errors.length === 0) return 'no error given';
  return errors
    .map((e) => [e.reason, e.field, e.message].filter((part) => part !== undefined && part !== '').join(': '))
    .join('; ');
}
