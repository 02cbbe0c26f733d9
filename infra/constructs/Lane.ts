import { Annotations, CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { DestinationLimits } from '#connectors/sdk/destination';
import type { LaneUrls } from '#core/aws/sqs-lane-queue';
import type { DestinationConfig } from '#core/config/load';
import { exportEntry } from '../bundles.ts';
import { type LaneEventSource, laneEventSource } from '../lane-settings.ts';
import { EXPORT_FUNCTION, type FunctionSizing } from '../settings.ts';
import { BackflowFunction } from './BackflowFunction.ts';

export interface LaneProps {
  readonly destination: DestinationConfig;
  /** The destination connector's documented limits. */
  readonly limits: DestinationLimits;
  readonly table: ITable;
  /** The deployed config file bundled with the export function. */
  readonly configFile: string;
  readonly sizing?: FunctionSizing;
}

/** How long SQS keeps a dead-lettered batch: the longest it allows, to leave time to redrive. */
const DEAD_LETTER_RETENTION = Duration.days(14);

/**
 * One lane per destination (DESIGN.md §1): an SQS queue of destination-sized batches, its
 * dead-letter queue after `lane.max_receives` receives, and the export function that delivers
 * them, fed by an SQS event source sized from the destination's documented limits.
 */
export class Lane extends Construct {
  readonly name: string;
  /** Receives of a message before SQS moves it to the dead-letter queue. */
  readonly maxReceives: number;
  /** How long failing records are retried before the exporter dead-letters them. */
  readonly retryBudgetSeconds: number;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly exporter: BackflowFunction;
  readonly eventSource: LaneEventSource;

  constructor(scope: Construct, id: string, props: LaneProps) {
    super(scope, id);
    const { destination } = props;
    const sizing = props.sizing ?? EXPORT_FUNCTION;
    this.name = destination.name;
    this.maxReceives = destination.lane.max_receives;
    this.retryBudgetSeconds = destination.lane.retry_budget_seconds;
    this.eventSource = laneEventSource(props.limits, destination.lane);
    if (this.eventSource.note) {
      Annotations.of(this).addWarningV2(
        'backflow:lane-concurrency',
        `destination ${this.name}: ${this.eventSource.note}`,
      );
    }

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: DEAD_LETTER_RETENTION,
    });
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Lambda's guidance: at least 6 × the function timeout plus the batching window, so a
      // batch still in flight after throttled retries is not handed to a second exporter.
      // https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
      visibilityTimeout: Duration.seconds(6 * sizing.timeout.toSeconds() + this.eventSource.maxBatchingWindowSeconds),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: this.maxReceives },
    });

    this.exporter = new BackflowFunction(this, 'Export', {
      entry: exportEntry(destination.type),
      description: `Backflow: delivers lane ${this.name} to its ${destination.type} destination`,
      sizing,
      configFile: props.configFile,
      environment: {
        BACKFLOW_TABLE: props.table.tableName,
        BACKFLOW_LANE: this.name,
        BACKFLOW_LANES: Stack.of(this).toJsonString({ [this.name]: this.urls }),
      },
    });
    const fn = this.exporter.function;
    props.table.grantReadWriteData(fn);
    // Retryable records go back on the lane with a delay; exhausted ones straight to the DLQ.
    this.queue.grantSendMessages(fn);
    this.deadLetterQueue.grantSendMessages(fn);
    if (destination.secret) this.exporter.grantSecrets([destination.secret]);
    const { batchSize, maxBatchingWindowSeconds, maxConcurrency } = this.eventSource;
    fn.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize,
        maxBatchingWindow: maxBatchingWindowSeconds > 0 ? Duration.seconds(maxBatchingWindowSeconds) : undefined,
        maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );
    new CfnOutput(this, 'QueueUrl', { description: `Lane ${this.name}: queue URL`, value: this.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueArn', {
      description: `Lane ${this.name}: dead-letter queue ARN (redrive with aws sqs start-message-move-task)`,
      value: this.deadLetterQueue.queueArn,
    });
  }

  /** The URLs the functions find the lane by (BACKFLOW_LANES). */
  get urls(): LaneUrls {
    return { queueUrl: this.queue.queueUrl, deadLetterUrl: this.deadLetterQueue.queueUrl };
  }
}
