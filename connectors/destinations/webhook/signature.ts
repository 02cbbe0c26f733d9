import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Request signing of the webhook destination (docs/destinations/webhook.md, "Verifying the signature").
 * Exported so receivers and tests verify with the same code the docs describe.
 */

export const TIMESTAMP_HEADER = 'X-Backflow-Timestamp';
export const SIGNATURE_HEADER = 'X-Backflow-Signature';
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
/** Scheme prefix of the signature; a new scheme would get a new prefix, sent alongside. */
export const SIGNATURE_VERSION = 'v1';
/** How far a timestamp may drift from the receiver's clock before a request is refused. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

type Body = string | Uint8Array;

/** `v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed by the secret>`. */
export function sign(secret: string, timestamp: number | string, body: Body): string {
  const hmac = createHmac('sha256', secret).update(`${timestamp}.`);
  hmac.update(body);
  return `${SIGNATURE_VERSION}=${hmac.digest('hex')}`;
}

/** The `Idempotency-Key`: hex SHA-256 of the raw body, the same for every retry of the same batch. */
export function idempotencyKey(body: Body): string {
  return createHash('sha256').update(body).digest('hex');
}

export interface VerifyInput {
  /** The signing secret; several during a rotation (any one matching is enough). */
  readonly secret: string | readonly string[];
  /** Value of the `X-Backflow-Timestamp` header. */
  readonly timestamp: string | null | undefined;
  /** Value of the `X-Backflow-Signature` header. */
  readonly signature: string | null | undefined;
  /** The raw request body, exactly as received (not re-serialized JSON). */
  readonly body: Body;
  /** Defaults to 300 seconds. */
  readonly toleranceSeconds?: number;
  /** Unix seconds; defaults to the current time. */
  readonly nowSeconds?: number;
}

export type VerifyResult =
  | { readonly valid: true }
  | { readonly valid: false; readonly reason: 'missing' | 'malformed' | 'expired' | 'mismatch' };

/**
 * Checks a request's signature in constant time. The header may hold several comma-separated
 * `v1=` values; one match with one secret is enough.
 */
export function verify(input: VerifyInput): VerifyResult {
  const { timestamp, signature } = input;
  if (!timestamp || !signature) return { valid: false, reason: 'missing' };
  if (!/^\d{1,12}$/.test(timestamp)) return { valid: false, reason: 'malformed' };
  const now = input.nowSeconds ?? Math.floor(Date.now() / 1000);
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - Number(timestamp)) > tolerance) return { valid: false, reason: 'expired' };

  const prefix = `${SIGNATURE_VERSION}=`;
  const candidates = signature
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith(prefix))
    .map((s) => s.slice(prefix.length))
    .filter((hex) => /^[0-9a-f]{64}$/i.test(hex))
    .map((hex) => Buffer.from(hex, 'hex'));
  if (candidates.length === 0) return { valid: false, reason: 'malformed' };

  const secrets = typeof input.secret === 'string' ? [input.secret] : input.secret;
  for (const secret of secrets) {
    const expected = Buffer.from(sign(secret, timestamp, input.body).slice(prefix.length), 'hex');
    for (const candidate of candidates) {
      if (timingSafeEqual(expected, candidate)) return { valid: true };
    }
  }
  return { valid: false, reason: 'mismatch' };
}
