import { Annotations, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import {
  type CustomMetricGroup,
  DefaultDashboardFactory,
  type MetricFactory,
  MetricStatistic,
  type MetricWithAlarmSupport,
  MonitoringFacade,
  SnsAlarmActionStrategy,
} from 'cdk-monitoring-constructs';
import { Construct } from 'constructs';
import type { Config, ResolvedSync } from '#core/config/load';
import { METRICS } from '#core/metrics';
import { scheduleIntervalSeconds, stalenessWindow } from '../schedule-interval.ts';
import { ALARM_THRESHOLDS, type AlarmThresholds } from '../thresholds.ts';
import type { Lane } from './Lane.ts';
import type { Planner } from './Planner.ts';

/** The CloudWatch namespace the functions emit their EMF metrics to (functions/shared/aws-environment.ts). */
export const METRICS_NAMESPACE = 'Backflow';

/**
 * Powertools adds a `service` dimension (its serviceName) to every metric, and CloudWatch matches
 * a metric on all its dimensions: an alarm on `{sync}` alone would watch a metric nobody emits.
 */
export const METRICS_SERVICE = 'backflow';

/** The dimensions of a per-sync metric. */
export const syncDimensions = (syncId: string) => ({ service: METRICS_SERVICE, sync: syncId });
export const segmentDimensions = (segment: string) => ({ service: METRICS_SERVICE, segment });

/** The dimensions of a per-lane metric. */
export const laneDimensions = (lane: string) => ({ service: METRICS_SERVICE, lane });

export interface BackflowMonitoringProps {
  readonly config: Config;
  readonly lanes: readonly Lane[];
  readonly planner: Planner;
  readonly thresholds?: AlarmThresholds;
  /** Subscribed to the alarm topic when set (it must confirm the subscription e-mail). */
  readonly alarmEmail?: string;
}

/**
 * One CloudWatch dashboard and every alarm of a deployment, built with cdk-monitoring-constructs:
 * per sync, the record counters, run duration, plan failures, rejection rate and staleness; per
 * lane, the queues (depth, oldest message, dead letters), the export function, export errors and
 * the destination's 429s. All alarms notify one KMS-encrypted SNS topic.
 */
export class BackflowMonitoring extends Construct {
  readonly topic: Topic;
  readonly facade: MonitoringFacade;

  constructor(scope: Construct, id: string, props: BackflowMonitoringProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const thresholds = props.thresholds ?? ALARM_THRESHOLDS;

    // CloudWatch can publish to an encrypted topic only with a customer managed key whose policy
    // lets it use the key (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger).
    const key = new Key(this, 'AlarmTopicKey', {
      description: `Encrypts the alarm notifications of ${stack.stackName}`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    key.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );
    this.topic = new Topic(this, 'AlarmTopic', {
      displayName: `Backflow alarms (${stack.stackName})`,
      masterKey: key,
      enforceSSL: true,
    });
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: {
            'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*' }),
          },
        },
      }),
    );
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    this.facade = new MonitoringFacade(this, 'Facade', {
      metricFactoryDefaults: { namespace: METRICS_NAMESPACE },
      alarmFactoryDefaults: {
        alarmNamePrefix: stack.stackName,
        actionsEnabled: true,
        // OK actions too: whoever was paged learns when it is over.
        action: new SnsAlarmActionStrategy({ onAlarmTopic: this.topic, onOkTopic: this.topic }),
        datapointsToAlarm: 1,
      },
      dashboardFactory: new DefaultDashboardFactory(this, 'Dashboards', {
        dashboardNamePrefix: stack.stackName,
        createDashboard: true,
        createSummaryDashboard: false,
        createAlarmDashboard: false,
      }),
    });
    const metrics = this.facade.createMetricFactory();

    this.facade.addLargeHeader(`Backflow: ${stack.stackName}`);
    for (const sync of Object.values(props.config.syncs)) this.monitorSync(sync, metrics, thresholds);
    for (const lane of props.lanes) this.monitorLane(lane, metrics, thresholds);
    // Segments some sync reads: their size, and an alarm on a sudden swing between two runs.
    const synced = new Set(Object.values(props.config.syncs).flatMap((s) => (s.segment ? [s.segment] : [])));
    for (const [name, segment] of Object.entries(props.config.segments ?? {})) {
      if (synced.has(name)) this.monitorSegment(name, segment.alarm_swing_percent, metrics);
    }
    this.facade.monitorSqsQueue({
      queue: props.planner.scheduleDeadLetterQueue,
      humanReadableName: 'Scheduled starts that could not be delivered',
      alarmFriendlyName: 'ScheduleDeadLetters',
      addQueueMaxSizeAlarm: {
        Critical: {
          maxMessageCount: 0,
          treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
          alarmDescriptionOverride:
            'EventBridge Scheduler could not start the plan function for an hour of retries (throttled, missing, or not allowed): a scheduled run did not happen. The message in the queue names the sync.',
        },
      },
    });
    this.facade.monitorLambdaFunction({
      lambdaFunction: props.planner.plan.function,
      humanReadableName: 'Plan function',
      alarmFriendlyName: 'Plan',
      ...functionAlarms('the plan function', thresholds),
    });
  }

  private monitorSegment(name: string, swingPercent: number, metrics: MetricFactory): void {
    const dimensions = segmentDimensions(name);
    this.facade.monitorCustom({
      humanReadableName: `Segment ${name}`,
      alarmFriendlyName: `Segment-${name}`,
      metricGroups: [
        {
          title: 'Members',
          metrics: [metrics.createMetric(METRICS.segmentSize, MetricStatistic.MAX, 'Members', dimensions)],
        },
        {
          title: 'Change since the previous run (%)',
          metrics: [
            {
              metric: metrics.createMetric(METRICS.segmentSwing, MetricStatistic.MAX, 'Swing (%)', dimensions),
              alarmFriendlyName: 'Swing',
              addAlarm: {
                Warning: {
                  threshold: swingPercent,
                  comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
                  treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
                  period: Duration.minutes(5),
                  additionalDescription: `Segment ${name}: its size moved more than ${swingPercent}% between two runs of a sync. Check the model and the segment's rules (\`backflow segments ${name}\`) before the next membership sync adds or removes that many; the sync's max_delete_ratio guardrail stops a run that would remove too many.`,
                },
              },
            },
          ],
        },
      ],
    });
  }

  private monitorSync(sync: ResolvedSync, metrics: MetricFactory, thresholds: AlarmThresholds): void {
    const dimensions = syncDimensions(sync.id);
    const count = (name: string, label: string) => metrics.createMetric(name, MetricStatistic.SUM, label, dimensions);
    // Periods without a counter mean zero of it: FILL, so one missing counter does not void the rate.
    const delivered = 'FILL(c, 0) + FILL(u, 0) + FILL(d, 0) + FILL(r, 0)';
    const rejectionRate = metrics.createMetricMath(
      `IF(${delivered} > 0, 100 * FILL(r, 0) / (${delivered}), 0)`,
      {
        c: count(METRICS.recordsCreated, 'created'),
        u: count(METRICS.recordsUpdated, 'updated'),
        d: count(METRICS.recordsDeleted, 'deleted'),
        r: count(METRICS.recordsRejected, 'rejected'),
      },
      'Rejected (% of delivered)',
    );
    const groups: CustomMetricGroup[] = [
      {
        title: 'Records read',
        metrics: [
          count(METRICS.recordsExtracted, 'Extracted'),
          count(METRICS.recordsInvalid, 'Invalid'),
          count(METRICS.recordsUnchanged, 'Unchanged'),
          count(METRICS.recordsQueued, 'Queued'),
        ],
      },
      {
        title: 'Records exported',
        metrics: [
          count(METRICS.recordsCreated, 'Created'),
          count(METRICS.recordsUpdated, 'Updated'),
          count(METRICS.recordsDeleted, 'Deleted'),
          count(METRICS.recordsRejected, 'Rejected'),
          count(METRICS.recordsRetried, 'Retried'),
          count(METRICS.recordsDeadLettered, 'Dead-lettered'),
        ],
      },
      {
        title: 'Rejection rate',
        metrics: [
          {
            metric: rejectionRate,
            alarmFriendlyName: 'RejectionRate',
            addAlarm: {
              Warning: {
                threshold: thresholds.rejectionRatePercent,
                comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
                treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
                period: thresholds.rejectionRatePeriod,
                additionalDescription: `Sync ${sync.id}: the destination refused more than ${thresholds.rejectionRatePercent}% of the records delivered. The run reports list each refused record with its reason.`,
              },
            },
          },
        ],
      },
      {
        title: 'Runs',
        metrics: [
          this.staleness(sync, count(METRICS.runsPlanned, 'Planned'), thresholds),
          count(METRICS.runsStopped, 'Stopped'),
          {
            metric: count(METRICS.planFailures, 'Failed'),
            alarmFriendlyName: 'PlanFailures',
            addAlarm: {
              Critical: {
                threshold: thresholds.planFailures,
                comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
                period: thresholds.planFailuresPeriod,
                additionalDescription: `Sync ${sync.id}: the plan function failed. Its log group has the error; the next scheduled run retries.`,
              },
            },
          },
        ],
      },
      {
        title: 'Run duration',
        metrics: [
          metrics.createMetric(METRICS.runDuration, MetricStatistic.AVERAGE, 'Average', dimensions),
          metrics.createMetric(METRICS.runDuration, MetricStatistic.MAX, 'Longest', dimensions),
        ],
      },
    ];
    this.facade.monitorCustom({
      humanReadableName: `Sync ${sync.id}`,
      alarmFriendlyName: `Sync-${sync.id}`,
      description: `Model **${sync.model}** → destination **${sync.destination}** (${sync.object}, ${sync.mode})${sync.schedule ? `, ${sync.schedule}` : ', no schedule'}`,
      metricGroups: groups,
    });
  }

  /** RunsPlanned, with the "no successful run in N × the schedule interval" alarm when scheduled. */
  private staleness(sync: ResolvedSync, runsPlanned: MetricWithAlarmSupport, thresholds: AlarmThresholds) {
    if (!sync.schedule || !sync.enabled) return runsPlanned;
    const interval = scheduleIntervalSeconds(sync.schedule);
    if (interval === undefined) {
      Annotations.of(this).addWarningV2(
        'backflow:staleness',
        `sync ${sync.id}: cannot tell the interval of ${sync.schedule}; it gets no staleness alarm`,
      );
      return runsPlanned;
    }
    const window = stalenessWindow(interval, thresholds.staleAfterIntervals);
    if (window.capped) {
      Annotations.of(this).addWarningV2(
        'backflow:staleness',
        `sync ${sync.id}: ${thresholds.staleAfterIntervals} × the interval of ${sync.schedule} is longer than CloudWatch evaluates; its staleness alarm fires after ${(window.periods * window.periodSeconds) / 86_400} days without a run`,
      );
    }
    return {
      metric: runsPlanned,
      alarmFriendlyName: 'Stale',
      addAlarm: {
        Critical: {
          threshold: 1,
          comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
          // No datapoint is exactly what a sync that stopped running looks like.
          treatMissingDataOverride: TreatMissingData.BREACHING,
          period: Duration.seconds(window.periodSeconds),
          evaluationPeriods: window.periods,
          datapointsToAlarm: window.periods,
          additionalDescription: `Sync ${sync.id}: no successful plan in ${window.periods} periods of ${Duration.seconds(window.periodSeconds).toHumanString()} (schedule ${sync.schedule}). Check the plan function's logs and the PlanFailures and RunsStopped metrics.`,
        },
      },
    };
  }

  private monitorLane(lane: Lane, metrics: MetricFactory, thresholds: AlarmThresholds): void {
    const dimensions = laneDimensions(lane.name);
    this.facade.monitorSqsQueueWithDlq({
      queue: lane.queue,
      deadLetterQueue: lane.deadLetterQueue,
      humanReadableName: `Lane ${lane.name}: queue`,
      alarmFriendlyName: `Lane-${lane.name}`,
      addQueueMaxMessageAgeAlarm: {
        Warning: {
          maxAgeInSeconds: thresholds.oldestMessageAge.toSeconds(),
          // SQS stops reporting a queue that stays empty and idle: no data means nothing waits.
          treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
          alarmDescriptionOverride: `Lane ${lane.name}: a batch has waited more than ${thresholds.oldestMessageAge.toHumanString()} to be delivered. The destination is slow, throttling or failing: see the lane's export errors and 429s.`,
        },
      },
      addDeadLetterQueueMaxSizeAlarm: {
        Critical: {
          maxMessageCount: thresholds.deadLetterMessages,
          treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
          alarmDescriptionOverride: `Lane ${lane.name}: records reached the dead-letter queue: they kept failing for the lane's retry budget (${lane.retryBudgetSeconds} s), or their export did not complete in ${lane.maxReceives} receives. Their run is closed failed with the reason (backflow status --remote). Fix the cause (export function logs), then redrive them (docs/deploy.md#redrive-a-dead-letter-queue).`,
        },
      },
    });
    const errors = metrics.createMetric(METRICS.exportErrors, MetricStatistic.SUM, 'Export errors', dimensions);
    const received = lane.queue.metricNumberOfMessagesReceived({ statistic: MetricStatistic.SUM, label: 'Received' });
    const errorRate = metrics.createMetricMath(
      'IF(received > 0, 100 * FILL(errors, 0) / received, 0)',
      { errors, received },
      'Failed batches (% of received)',
    );
    this.facade.monitorCustom({
      humanReadableName: `Lane ${lane.name}: delivery`,
      alarmFriendlyName: `Lane-${lane.name}`,
      metricGroups: [
        {
          title: 'Export errors and destination 429s',
          metrics: [
            errors,
            metrics.createMetric(METRICS.destinationThrottles, MetricStatistic.SUM, 'Destination 429s', dimensions),
          ],
        },
        {
          title: 'Age of the records delivered (since queued)',
          metrics: [
            {
              metric: metrics.createMetric(
                METRICS.recordAge,
                MetricStatistic.MAX,
                'Oldest record handled (s)',
                dimensions,
              ),
              alarmFriendlyName: 'RecordAge',
              addAlarm: {
                Warning: {
                  threshold: thresholds.recordAge.toSeconds(),
                  comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
                  treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
                  period: Duration.minutes(5),
                  additionalDescription: `Lane ${lane.name}: records handled by the export function were queued more than ${thresholds.recordAge.toHumanString()} ago. The lane is stuck behind its pace or the destination's 429s, or failing and retrying (records are given back as new messages, so the queue's oldest-message age does not show it). See the lane's 429s and export errors.`,
                },
              },
            },
          ],
        },
        {
          title: 'Export error rate',
          metrics: [
            {
              metric: errorRate,
              alarmFriendlyName: 'ExportErrorRate',
              addAlarm: {
                Warning: {
                  threshold: thresholds.exportErrorRatePercent,
                  comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
                  treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
                  period: thresholds.exportErrorRatePeriod,
                  evaluationPeriods: thresholds.exportErrorRatePeriods,
                  datapointsToAlarm: thresholds.exportErrorRatePeriods,
                  additionalDescription: `Lane ${lane.name}: more than ${thresholds.exportErrorRatePercent}% of the batches received failed as a whole (the destination down, 5xx, refused credentials). They are retried with backoff for the lane's retry budget, then dead-lettered; the export function's logs say why.`,
                },
              },
            },
          ],
        },
      ],
    });
    this.facade.monitorLambdaFunction({
      lambdaFunction: lane.exporter.function,
      humanReadableName: `Lane ${lane.name}: export function`,
      alarmFriendlyName: `Lane-${lane.name}-Export`,
      ...functionAlarms(`the export function of lane ${lane.name}`, thresholds),
    });
  }
}

/**
 * Alarms on what Lambda itself counts for a function: `Errors` covers what the handler cannot
 * report — init failures, timeouts, out-of-memory kills — and `Throttles` invocations refused for
 * lack of concurrency. The `Iterator` widget is for stream sources, not SQS: left out.
 */
function functionAlarms(what: string, thresholds: AlarmThresholds) {
  return {
    isIterator: false,
    addFaultCountAlarm: {
      Critical: {
        maxErrorCount: thresholds.functionErrors,
        period: thresholds.functionErrorsPeriod,
        treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
        alarmDescriptionOverride: `${what} failed (an error, a timeout, running out of memory, or failing to start): its log group has the error.`,
      },
    },
    addThrottlesCountAlarm: {
      Warning: {
        maxErrorCount: thresholds.functionThrottles,
        period: thresholds.functionErrorsPeriod,
        treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
        alarmDescriptionOverride: `Lambda throttled ${what}: the account or the function ran out of concurrency. Raise the account's concurrency limit, or lower the lanes' concurrency.`,
      },
    },
  };
}
