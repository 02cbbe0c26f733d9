/**
 * The small error hierarchy of Backflow. Every error sets `name` so logs and the CLI can tell
 * them apart without `instanceof` across bundles. The errors connectors throw are part of the
 * connector contract and live in the SDK (`connectors/sdk/errors.ts`); they are re-exported here,
 * the same classes, so `instanceof` holds whichever module a caller imports them from.
 */
import { BackflowError } from '#connectors/sdk/errors';

export {
  AuthError,
  BackflowError,
  ConnectorConfigError,
  errorMessage,
  RateLimitedError,
  TransientError,
  UnconfirmedWriteError,
} from '#connectors/sdk/errors';

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

/** A run stopped on purpose before sending anything: schema drift, a guardrail, a held lock. */
export class RunStoppedError extends BackflowError {
  readonly reason: 'schema_drift' | 'guardrail' | 'locked';
  constructor(reason: 'schema_drift' | 'guardrail' | 'locked', message: string) {
    super(message);
    this.name = 'RunStoppedError';
    this.reason = reason;
  }
}
