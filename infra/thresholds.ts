import { Duration } from 'aws-cdk-lib';

/**
 * Every alarm threshold of a Backflow deployment, as data: change a number here, redeploy, and
 * the alarm and its dashboard annotation follow. docs/deploy.md#alarms explains each one.
 */
export interface AlarmThresholds {
  /** A lane's dead-letter queue holds more messages than this (0: any message alarms). */
  readonly deadLetterMessages: number;
  /** The oldest message on a lane queue has waited longer than this. */
  readonly oldestMessageAge: Duration;
  /** Share of a lane's received messages whose whole batch failed, in percent, per period. */
  readonly exportErrorRatePercent: number;
  readonly exportErrorRatePeriod: Duration;
  /** Consecutive periods above the rate before the export error alarm fires. */
  readonly exportErrorRatePeriods: number;
  /** Plan invocations of one sync that failed (threw), per period. */
  readonly planFailures: number;
  readonly planFailuresPeriod: Duration;
  /** Share of a sync's delivered records the destination refused, in percent, per period. */
  readonly rejectionRatePercent: number;
  readonly rejectionRatePeriod: Duration;
  /** A scheduled sync alarms when it has no successful plan in this many schedule intervals. */
  readonly staleAfterIntervals: number;
  /** A function alarms on more failed invocations than this, as Lambda counts them (errors, timeouts, OOM, init), per period. */
  readonly functionErrors: number;
  readonly functionErrorsPeriod: Duration;
  /** A function alarms on more throttled invocations than this, per period. */
  readonly functionThrottles: number;
  /** Records handled by a lane's export function were queued longer ago than this. */
  readonly recordAge: Duration;
}

export const ALARM_THRESHOLDS: AlarmThresholds = {
  deadLetterMessages: 0,
  oldestMessageAge: Duration.hours(1),
  exportErrorRatePercent: 10,
  exportErrorRatePeriod: Duration.minutes(5),
  exportErrorRatePeriods: 3,
  planFailures: 1,
  planFailuresPeriod: Duration.minutes(15),
  rejectionRatePercent: 5,
  rejectionRatePeriod: Duration.hours(1),
  staleAfterIntervals: 3,
  functionErrors: 0,
  functionErrorsPeriod: Duration.minutes(5),
  functionThrottles: 0,
  recordAge: Duration.hours(1),
};
