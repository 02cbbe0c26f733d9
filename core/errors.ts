/**
 * The small error hierarchy of Backflow. Every error sets `name` so logs and the CLI can tell
 * them apart without `instanceof` across bundles.
 */

/** Base class: an error a user can meet, with a message that says what happened and what to do. */
export class BackflowError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackflowError';
  }
}

/** One problem found in a config file, located at file:line:column and a key path. */
export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly path: string;
  readonly message: string;
}

export function formatIssue(issue: ConfigIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.column}`;
  return issue.path ? `${where} ${issue.path}: ${issue.message}` : `${where} ${issue.message}`;
}

/** The config (backflow.yml) is invalid. Holds every issue found, not only the first. */
export class ConfigFileError extends BackflowError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    const lines = issues.map((i) => `  ${formatIssue(i)}`).join('\n');
    super(`Invalid config (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines}`);
    this.name = 'ConfigFileError';
    this.issues = issues;
  }
}

/** Credentials were refused by a source or destination. Retrying will not help until they change. */
export class AuthError extends BackflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuthError';
  }
}

/** The whole batch was refused for rate limiting; `retryAfterMs` is the vendor's hint when given. */
export class RateLimitedError extends BackflowError {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryAfterMs?: number) {
    super(message);
    this.name = 'RateLimitedError';
    this.retryAfterMs = retryAfterMs;
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
 * The queue refused some messages for their content (SQS: `InvalidMessageContents` and other
 * sender faults). `refused` are their indexes in the call; the others were sent.
 */
export class MessagesRefusedError extends BackflowError {
  readonly refused: readonly number[];
  constructor(message: string, refused: readonly number[]) {
    super(message);
    this.name = 'MessagesRefusedError';
    this.refused = refused;
  }
}

/** A connector's options or the destination object are wrong: retrying will not help. */
export class ConnectorConfigError extends BackflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectorConfigError';
  }
}

/** A run stopped on purpose before sending anything: schema drift, a guardrail, a held lock. */
export class RunStoppedError extends BackflowError {
  readonly reason: 'schema_drift' | 'guardrail' | 'locked';
  constructor(reason: 'schema_drift' | 'guardrail' | 'locked', message: string) {
    super(message);
    this.name = 'RunStoppedError';
    this.reason = reason;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
