import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { webhookLimits } from './limits.ts';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.ts';

/** Header carrying the run tag (`backflow:<sync>:<run>`) when the engine gives one. */
export const TAG_HEADER = 'X-Backflow-Tag';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers Backflow sets itself: `headers` cannot override them. */
const RESERVED_HEADERS = new Set(
  [
    'content-type',
    'content-length',
    'host',
    'user-agent',
    TIMESTAMP_HEADER,
    SIGNATURE_HEADER,
    IDEMPOTENCY_HEADER,
    TAG_HEADER,
  ].map((h) => h.toLowerCase()),
);

const secretString = z
  .string()
  .min(1)
  .regex(/^[\x21-\x7e]+$/, 'expected printable ASCII without spaces or line breaks (check for a trailing newline)');

const options = z.strictObject({
  /** The receiving endpoint. Only the origin ever appears in errors: a path or query may carry a token. */
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).refine((u) => {
    const parsed = new URL(u);
    return parsed.username === '' && parsed.password === '';
  }, 'credentials in the URL are not supported: use the bearer_token secret or an Authorization header'),
  /** Extra request headers (values may use ${ENV_VAR}); Backflow's own headers cannot be overridden. */
  headers: z
    .record(z.string(), z.string())
    .superRefine((headers, ctx) => {
      for (const [name, value] of Object.entries(headers)) {
        if (!HEADER_NAME.test(name)) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: `"${name}" is not a valid HTTP header name`,
          });
        } else if (RESERVED_HEADERS.has(name.toLowerCase())) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: `"${name}" is set by Backflow and cannot be overridden`,
          });
        }
        if (/[\r\n\0]/.test(value)) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: 'a header value cannot contain line breaks',
          });
        }
      }
    })
    .optional(),
  /** Per attempt, including reading the response. */
  timeout_ms: z.number().int().min(100).max(900_000).default(10_000),
  /** Attempts within one write on network errors, timeouts, 408 and 5xx. */
  max_attempts: z.number().int().min(1).max(10).default(3),
  /** Secret: HMAC-SHA256 key of `X-Backflow-Signature`. */
  signing_secret: secretString.optional(),
  /** Secret: sent as `Authorization: Bearer <token>`. */
  bearer_token: secretString.optional(),
});

/**
 * POSTs each batch as JSON to the user's endpoint, signed with HMAC-SHA256.
 * The request and response contracts are in docs/destinations/webhook.md.
 */
export const webhookDestinationManifest = defineDestinationManifest({
  type: 'webhook',
  optionsSchema: options,
  secretKeys: ['signing_secret', 'bearer_token'],
  modes: ['upsert', 'update', 'insert', 'mirror'],
  limits: webhookLimits,
});
