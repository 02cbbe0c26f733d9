import { ArnFormat, Duration, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Config } from '#core/config/load';
import type { PlanEvent } from '#functions/shared/environment';
import { planEntry } from '../bundles.ts';
import { type FunctionSizing, PLAN_FUNCTION } from '../settings.ts';
import { BackflowFunction } from './BackflowFunction.ts';
import type { Lane } from './Lane.ts';

export interface PlannerProps {
  readonly config: Config;
  readonly table: ITable;
  /** The lanes, by destination name. */
  readonly lanes: ReadonlyMap<string, Lane>;
  /** The deployed config file bundled with the plan function. */
  readonly configFile: string;
  readonly sizing?: FunctionSizing;
  /**
   * Time zone of cron schedules. backflow.yml has no key for it yet, so schedules run in UTC.
   * @default UTC
   */
  readonly timeZone?: TimeZone;
}

/** The schedules of one sync. */
export interface SyncSchedules {
  readonly syncId: string;
  readonly incremental?: Schedule;
  readonly fullResync?: Schedule;
}

/**
 * The plan function and its EventBridge Scheduler schedules: one per sync from `schedule`
 * (payload `{syncId}`), one more from `full_resync` (payload `{syncId, full: true}`). A disabled
 * sync keeps its schedules, turned off.
 */
export class Planner extends Construct {
  readonly plan: BackflowFunction;
  readonly functionName: string;
  readonly schedules: readonly SyncSchedules[];
  /**
   * Where EventBridge Scheduler puts a scheduled start it could not deliver after its retries (the
   * plan function throttled or missing): a run that never started is alarmed, not lost silently.
   */
  readonly scheduleDeadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: PlannerProps) {
    super(scope, id);
    const { config } = props;
    const stack = Stack.of(this);
    const syncs = Object.values(config.syncs);
    const laneNames = new Set(syncs.map((s) => s.destination));
    const lanes = [...props.lanes.values()].filter((lane) => laneNames.has(lane.name));
    // Named up front so the function can be allowed to invoke itself: a grant on its own ARN
    // attribute would make the function depend on its own policy.
    this.functionName = `${stack.stackName.slice(0, 59)}-plan`;

    this.plan = new BackflowFunction(this, 'Plan', {
      entry: planEntry(config),
      functionName: this.functionName,
      description: 'Backflow: plans sync runs (extract, diff, enqueue on the lanes)',
      sizing: props.sizing ?? PLAN_FUNCTION,
      configFile: props.configFile,
      environment: {
        BACKFLOW_TABLE: props.table.tableName,
        BACKFLOW_LANES: stack.toJsonString(Object.fromEntries(lanes.map((lane) => [lane.name, lane.urls]))),
      },
    });
    const fn = this.plan.function;
    props.table.grantReadWriteData(fn);
    for (const lane of lanes) lane.queue.grantSendMessages(fn);
    const sources = new Set(syncs.map((s) => config.models[s.model]?.source));
    this.plan.grantSecrets(
      Object.values(config.sources).flatMap((source) =>
        sources.has(source.name) && source.secret ? [source.secret] : [],
      ),
    );
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: [
          stack.formatArn({
            service: 'lambda',
            resource: 'function',
            resourceName: this.functionName,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );

    // The role EventBridge Scheduler assumes to invoke the plan function, for this account's schedules only.
    const schedulerRole = new Role(this, 'SchedulerRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: 'Backflow: lets EventBridge Scheduler start plan runs',
    });
    const planLogicalId = stack.getLogicalId(fn.node.defaultChild as CfnFunction);
    Validations.of(schedulerRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${planLogicalId}.Arn>:*]`,
      reason:
        'The scheduler target grant (LambdaInvoke, Function.grantInvoke) allows the plan function and its qualified versions and aliases (`<function ARN>:*`); the wildcard is a version qualifier of that one function, never another resource.',
    });

    this.scheduleDeadLetterQueue = new Queue(this, 'ScheduleDeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.scheduleDeadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        "It is a dead-letter queue: EventBridge Scheduler's, for schedule targets (cdk-nag recognises only SQS redrive policies as DLQs).",
    });
    const schedule = (syncId: string, kind: string, expression: string, event: PlanEvent, enabled: boolean) =>
      new Schedule(this, `${kind}-${syncId}`, {
        description: `Backflow sync ${syncId}: ${event.full ? 'full resync' : 'plan'} ${expression}`,
        schedule: ScheduleExpression.expression(
          expression,
          props.config.syncs[syncId]?.timezone
            ? TimeZone.of(props.config.syncs[syncId].timezone)
            : (props.timeZone ?? TimeZone.ETC_UTC),
        ),
        // A start Scheduler cannot deliver is retried for an hour (a later start would plan anyway),
        // then dead-lettered, where an alarm sees it.
        target: new LambdaInvoke(fn, {
          input: ScheduleTargetInput.fromObject(event),
          role: schedulerRole,
          deadLetterQueue: this.scheduleDeadLetterQueue,
          maxEventAge: Duration.hours(1),
          retryAttempts: 20,
        }),
        enabled,
      });
    this.schedules = syncs.map((sync) => ({
      syncId: sync.id,
      incremental: sync.schedule
        ? schedule(sync.id, 'Schedule', sync.schedule, { syncId: sync.id }, sync.enabled)
        : undefined,
      fullResync: sync.full_resync
        ? schedule(sync.id, 'FullResync', sync.full_resync, { syncId: sync.id, full: true }, sync.enabled)
        : undefined,
    }));
  }
}
