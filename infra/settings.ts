import { Duration } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

/** Memory and timeout of one Lambda function. */
export interface FunctionSizing {
  readonly memoryMiB: number;
  readonly timeout: Duration;
}

/**
 * The plan function streams rows page by page and hands over to a fresh invocation 90 s before
 * its timeout (functions/plan.ts), so the longest timeout Lambda allows costs nothing extra.
 */
export const PLAN_FUNCTION: FunctionSizing = { memoryMiB: 1024, timeout: Duration.minutes(15) };

/**
 * The export function delivers at most 10 messages (destination batches) per invocation and
 * never sleeps for long: a throttled batch goes back to the queue with a delay.
 */
export const EXPORT_FUNCTION: FunctionSizing = { memoryMiB: 512, timeout: Duration.minutes(2) };

/** How long function logs are kept. */
export const LOG_RETENTION = RetentionDays.ONE_MONTH;
