/**
 * The errors a connector throws, part of the connector contract: the engine tells them apart to
 * decide what happens to a batch (docs/connectors.md). Every error sets `name` so logs and the CLI
 * can tell them apart without `instanceof` across bundles. Core re-exports them from
 * `core/errors.ts`: one class per error, so `instanceof` holds everywhere in a process.
 */

/** Base class: an error a user can meet, with a message that says what happened and what to do. */
export class BackflowError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackflowError';
  }
}

/** Credentials were refused by a source or destination. Retrying will not help until they change. */
export class AuthError extends BackflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuthError';
  }
}

/**
 * The whole batch was refused for rate limiting; `retryAfterMs` is the vendor's hint when given.
 * `paced` when it was the lane's own pace (no request was sent), not the vendor's answer.
 * `slowsLane: false` for a wait that says nothing about the request rate (a locked record, a
 * migration in progress): the records wait, the lane's pace stays.
 */
export class RateLimitedError extends BackflowError {
  readonly retryAfterMs: number | undefined;
  readonly paced: boolean;
  readonly slowsLane: boolean;
  constructor(message: string, retryAfterMs?: number, options: { paced?: boolean; slowsLane?: boolean } = {}) {
    super(message);
    this.name = 'RateLimitedError';
    this.retryAfterMs = retryAfterMs;
    this.paced = options.paced === true;
    this.slowsLane = options.slowsLane ?? !this.paced;
  }
}

/** A whole-batch failure that may pass on retry (network, 5xx, timeouts). */
export class TransientError extends BackflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/**
 * A call that creates something (not idempotent) failed after it may have reached the vendor: a
 * timeout, a dropped connection or a 5xx. It is never retried blindly — the connector reconciles
 * first (looks the records up by their match key) or leaves the records to the engine's retry.
 */
export class UnconfirmedWriteError extends TransientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnconfirmedWriteError';
  }
}

/** A connector's options or the destination object are wrong: retrying will not help. */
export class ConnectorConfigError extends BackflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectorConfigError';
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
