/** Node network error codes a database driver surfaces when the server cannot be reached: retryable. */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/**
 * The `code` of a driver error (`28P01`, `ER_ACCESS_DENIED_ERROR`, `ECONNREFUSED`…), looking into
 * the first error of an AggregateError (Node reports a refused dual-stack connect that way).
 */
export function driverErrorCode(error: unknown): string {
  const own = (error as { code?: unknown } | null)?.code;
  if (typeof own === 'string') return own;
  if (error instanceof AggregateError) return driverErrorCode(error.errors[0]);
  return '';
}
