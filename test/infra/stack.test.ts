import { Annotations, Match } from 'aws-cdk-lib/assertions';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { CfnQueue } from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { syncDimensions } from '../../infra/constructs/BackflowMonitoring.ts';
import { resources, synthStack } from './stacks.ts';

const CONFIG = `
version: 1
sources:
  warehouse:
    type: duckdb
    path: ':memory:'
    secret: warehouse-creds
models:
  people:
    source: warehouse
    sql: select 1 as id, 'a@example.com' as email
    primary_key: id
segments:
  vip:
    model: people
    where: id > 0
    alarm_swing_percent: 35
  unused:
    model: people
    where: id < 0
destinations:
  hooks:
    type: webhook
    url: https://hooks.example.com/backflow
    secret: hooks-signing
    lane: { max_receives: 7 }
  crm:
    type: postgres
    connection: { host: db.example.com, database: crm, user: backflow }
    secret: crm-db
  tuned:
    type: webhook
    url: https://tuned.example.com/in
    lane: { requests_per_second: 3, concurrency: 25 }
  archive:
    type: duckdb
    path: archive.duckdb
    lane: { concurrency: 1 }
syncs:
  people-to-hooks:
    model: people
    destination: hooks
    object: contacts
    match: { email: email }
    schedule: rate(15 minutes)
    full_resync: cron(0 3 ? * SUN *)
  people-to-crm:
    model: people
    destination: crm
    object: people
    match: { id: id }
    schedule: cron(0 6 * * ? *)
    timezone: Europe/Paris
  people-to-tuned:
    model: people
    destination: tuned
    object: people
    match: { id: id }
  vip-to-hooks:
    segment: vip
    destination: hooks
    object: vip
    mode: mirror
    match: { email: email }
  people-to-archive:
    model: people
    destination: archive
    object: people
    match: { id: id }
    schedule: rate(1 hour)
    enabled: false
`;

const { stack, template } = synthStack(CONFIG, { alarmEmail: 'data-oncall@example.com' });
const idOf = (construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as CfnQueue | CfnFunction);
const lane = (name: string) => {
  const found = stack.lanes.get(name);
  if (!found) throw new Error(`no lane ${name}`);
  return {
    queue: idOf(found.queue),
    deadLetterQueue: idOf(found.deadLetterQueue),
    exporter: idOf(found.exporter.function),
  };
};
const planFunction = idOf(stack.planner.plan.function);
const functions = resources(template, 'AWS::Lambda::Function');
const alarms = Object.values(resources(template, 'AWS::CloudWatch::Alarm')).map((a) => a.Properties);
const [topicId] = Object.keys(resources(template, 'AWS::SNS::Topic'));

/** A CloudFormation value as text: Fn::Join joined, Ref and Fn::GetAtt written as <Id> and <Id.Attr>. */
function flat(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(flat).join(',');
  const v = value as Record<string, unknown>;
  if ('Fn::Join' in v) {
    const [separator, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(flat).join(separator);
  }
  if ('Ref' in v) return `<${String(v.Ref)}>`;
  if ('Fn::GetAtt' in v) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
  return JSON.stringify(value);
}

interface Statement {
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Effect: string;
}
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesOf = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]).map(flat);

/** Every statement of the policies attached to a function's role. */
function statementsOf(functionId: string): Statement[] {
  const role = (functions[functionId]!.Properties.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0];
  return Object.values(resources(template, 'AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === role))
    .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}
const secretsReadBy = (functionId: string) =>
  statementsOf(functionId)
    .filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'))
    .flatMap(resourcesOf)
    .map((arn) => arn.replace(/^.*:secret:/, ''))
    .sort();

interface AlarmMetric {
  readonly name?: string;
  readonly namespace?: string;
  readonly dimensions: Record<string, string>;
  readonly period?: number;
  readonly expression?: string;
}
function metricsOf(alarm: Record<string, unknown>): AlarmMetric[] {
  return (alarm.Metrics as Record<string, unknown>[]).map((m) => {
    if (m.Expression) return { expression: String(m.Expression), dimensions: {} };
    const stat = m.MetricStat as { Metric: Record<string, unknown>; Period: number };
    const dimensions = Object.fromEntries(
      ((stat.Metric.Dimensions ?? []) as { Name: string; Value: unknown }[]).map((d) => [d.Name, flat(d.Value)]),
    );
    return {
      name: String(stat.Metric.MetricName),
      namespace: String(stat.Metric.Namespace),
      dimensions,
      period: stat.Period,
    };
  });
}
/** The alarms watching a metric with the given dimension value. */
function alarmsOn(metricName: string, dimension: string, value: string) {
  return alarms.filter((a) => metricsOf(a).some((m) => m.name === metricName && m.dimensions[dimension] === value));
}

describe('state table', () => {
  it('is on-demand, recoverable, encrypted, expires items on expiresAt, and is retained', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ]),
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      },
    });
  });
});

describe('outputs', () => {
  it('name the table, the plan function and every lane, as the CLI --remote commands read them', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs)).toEqual(expect.arrayContaining(['StateTableName', 'PlanFunctionName', 'Lanes']));
    const lanes = JSON.stringify(outputs.Lanes!.Value);
    for (const name of ['archive', 'crm', 'hooks', 'tuned']) expect(lanes).toContain(`\\"${name}\\":{\\"queueUrl\\":`);
  });
});

describe('lanes', () => {
  const queues = resources(template, 'AWS::SQS::Queue');

  it('has one queue and one dead-letter queue per destination, and one for scheduled starts', () => {
    expect([...stack.lanes.keys()].sort()).toEqual(['archive', 'crm', 'hooks', 'tuned']);
    expect(Object.keys(queues)).toHaveLength(9);
    for (const name of stack.lanes.keys()) {
      const { queue, deadLetterQueue } = lane(name);
      expect(queues[queue]!.Properties.RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [deadLetterQueue, 'Arn'] },
        maxReceiveCount: name === 'hooks' ? 7 : 5,
      });
      expect(queues[deadLetterQueue]!.Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    }
  });

  it('encrypts every queue and refuses requests without TLS', () => {
    const policies = Object.values(resources(template, 'AWS::SQS::QueuePolicy'));
    for (const [id, queue] of Object.entries(queues)) {
      expect(queue.Properties.SqsManagedSseEnabled, id).toBe(true);
      const denies = policies
        .filter((p) => (p.Properties.Queues as { Ref: string }[]).some((q) => q.Ref === id))
        .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement)
        .filter((s) => s.Effect === 'Deny');
      expect(denies, id).toContainEqual(
        expect.objectContaining({ Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });

  it('keeps a message invisible for at least 6 × the export timeout plus the batching window', () => {
    const mappings = Object.values(resources(template, 'AWS::Lambda::EventSourceMapping'));
    for (const name of stack.lanes.keys()) {
      const { queue, exporter } = lane(name);
      const mapping = mappings.find((m) => (m.Properties.FunctionName as { Ref: string }).Ref === exporter)!;
      const timeout = functions[exporter]!.Properties.Timeout as number;
      const window = (mapping.Properties.MaximumBatchingWindowInSeconds as number | undefined) ?? 0;
      expect(queues[queue]!.Properties.VisibilityTimeout, name).toBeGreaterThanOrEqual(6 * timeout + window);
    }
  });

  const eventSource = (name: string) => {
    const { queue, exporter } = lane(name);
    return {
      EventSourceArn: { 'Fn::GetAtt': [queue, 'Arn'] },
      FunctionName: { Ref: exporter },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    };
  };

  it('sizes the event source from the connector limits: webhook 10 req/s, concurrency 4', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ...eventSource('hooks'),
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 1,
      ScalingConfig: { MaximumConcurrency: 4 },
    });
  });

  it('gives a destination without a documented rate no batching window and the default concurrency', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ...eventSource('crm'),
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: Match.absent(),
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });

  it('takes requests_per_second and concurrency from the lane overrides', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ...eventSource('tuned'),
      BatchSize: 3,
      MaximumBatchingWindowInSeconds: 1,
      ScalingConfig: { MaximumConcurrency: 25 },
    });
  });

  it('raises a lane concurrency of 1 to the SQS minimum of 2, with a warning', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ...eventSource('archive'),
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    Annotations.fromStack(stack).hasWarning(
      '*',
      Match.stringLikeRegexp('destination archive: concurrency 1 .* using 2'),
    );
  });

  it('tells each export function its lane, the table and the queue URLs', () => {
    for (const name of stack.lanes.keys()) {
      const { queue, deadLetterQueue, exporter } = lane(name);
      const variables = (functions[exporter]!.Properties.Environment as { Variables: Record<string, unknown> })
        .Variables;
      expect(variables.BACKFLOW_LANE).toBe(name);
      expect(variables.BACKFLOW_CONFIG).toBe('backflow.yml');
      expect(variables.BACKFLOW_TABLE).toEqual({ Ref: idOf(stack.state.table) });
      expect(JSON.parse(flat(variables.BACKFLOW_LANES))).toEqual({
        [name]: { queueUrl: `<${queue}>`, deadLetterUrl: `<${deadLetterQueue}>` },
      });
    }
  });
});

describe('plan function and schedules', () => {
  const schedules = Object.values(resources(template, 'AWS::Scheduler::Schedule')).map((s) => s.Properties);
  const scheduleOf = (payload: object) =>
    schedules.filter((s) => JSON.stringify(payload) === flat((s.Target as { Input: unknown }).Input));

  it('has one schedule per scheduled sync, with its expression and {syncId}', () => {
    const expected = {
      'people-to-hooks': 'rate(15 minutes)',
      'people-to-crm': 'cron(0 6 * * ? *)',
      'people-to-archive': 'rate(1 hour)',
    };
    for (const [syncId, expression] of Object.entries(expected)) {
      const found = scheduleOf({ syncId });
      expect(found, syncId).toHaveLength(1);
      expect(found[0]).toMatchObject({
        ScheduleExpression: expression,
        // A sync's `timezone` applies to its schedules; UTC otherwise.
        ScheduleExpressionTimezone: syncId === 'people-to-crm' ? 'Europe/Paris' : 'Etc/UTC',
        Target: { Arn: { 'Fn::GetAtt': [planFunction, 'Arn'] } },
      });
    }
    expect(scheduleOf({ syncId: 'people-to-tuned' })).toHaveLength(0);
  });

  it('adds the full_resync schedule with {syncId, full: true}', () => {
    expect(schedules).toHaveLength(4);
    expect(scheduleOf({ syncId: 'people-to-hooks', full: true })).toEqual([
      expect.objectContaining({ ScheduleExpression: 'cron(0 3 ? * SUN *)', State: 'ENABLED' }),
    ]);
  });

  it('refuses a cron EventBridge would refuse, naming the sync', () => {
    const bad = CONFIG.replace('cron(0 6 * * ? *)', 'cron(0 6 * * * *)');
    expect(() => synthStack(bad)).toThrow(/syncs\.people-to-crm\.schedule: exactly one of day-of-month/);
  });

  it('keeps the schedule of a disabled sync, turned off', () => {
    expect(scheduleOf({ syncId: 'people-to-archive' })[0]!.State).toBe('DISABLED');
    expect(scheduleOf({ syncId: 'people-to-hooks' })[0]!.State).toBe('ENABLED');
  });

  it('lets the plan function invoke itself by the name it is given, without a circular reference', () => {
    const name = functions[planFunction]!.Properties.FunctionName;
    expect(name).toBe('Test-plan');
    const invoke = statementsOf(planFunction).filter((s) => actionsOf(s).includes('lambda:InvokeFunction'));
    expect(invoke.flatMap(resourcesOf)).toEqual([
      'arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:function:Test-plan',
    ]);
  });

  it('gives the plan function the table and the lanes its syncs use', () => {
    const variables = (functions[planFunction]!.Properties.Environment as { Variables: Record<string, unknown> })
      .Variables;
    expect(variables.BACKFLOW_TABLE).toEqual({ Ref: idOf(stack.state.table) });
    expect(Object.keys(JSON.parse(flat(variables.BACKFLOW_LANES))).sort()).toEqual([
      'archive',
      'crm',
      'hooks',
      'tuned',
    ]);
    const sendsTo = statementsOf(planFunction)
      .filter((s) => actionsOf(s).includes('sqs:SendMessage'))
      .flatMap(resourcesOf)
      .sort();
    expect(sendsTo).toEqual(['archive', 'crm', 'hooks', 'tuned'].map((name) => `<${lane(name).queue}.Arn>`).sort());
  });
});

describe('permissions', () => {
  it('lets each function read exactly the secrets its syncs name', () => {
    expect(secretsReadBy(planFunction)).toEqual(['warehouse-creds-??????']);
    expect(secretsReadBy(lane('hooks').exporter)).toEqual(['hooks-signing-??????']);
    expect(secretsReadBy(lane('crm').exporter)).toEqual(['crm-db-??????']);
    expect(secretsReadBy(lane('tuned').exporter)).toEqual([]);
  });

  it('lets a function that reads secrets decrypt them with a customer managed key, through Secrets Manager only', () => {
    const decrypt = statementsOf(planFunction).filter((st) => actionsOf(st).includes('kms:Decrypt'));
    expect(decrypt).toHaveLength(1);
    expect(JSON.stringify((decrypt[0] as unknown as { Condition: unknown }).Condition)).toContain('kms:ViaService');
    expect(statementsOf(lane('tuned').exporter).some((st) => actionsOf(st).includes('kms:Decrypt'))).toBe(false);
  });

  it('grants no Secrets Manager, DynamoDB or SQS action on a wildcard resource', () => {
    const statements = Object.values(resources(template, 'AWS::IAM::Policy')).flatMap(
      (p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
    );
    const scoped = statements.filter((s) => actionsOf(s).some((a) => /^(secretsmanager|dynamodb|sqs):/.test(a)));
    expect(scoped.length).toBeGreaterThan(10);
    for (const statement of scoped) {
      for (const resource of resourcesOf(statement)) expect(resource, actionsOf(statement).join()).not.toContain('*');
    }
  });
});

describe('functions', () => {
  it('run Node.js 22.x or newer on arm64', () => {
    expect(Object.keys(functions)).toHaveLength(5);
    for (const [id, fn] of Object.entries(functions)) {
      const version = /^nodejs(\d+)\.x$/.exec(String(fn.Properties.Runtime));
      expect(Number(version?.[1]), id).toBeGreaterThanOrEqual(22);
      expect(fn.Properties.Architectures, id).toEqual(['arm64']);
      expect(fn.Properties.Handler, id).toBe('index.handler');
    }
  });

  it('may re-trigger themselves: batches given back to a lane, plans continued, are not cut after 16 hops', () => {
    for (const [id, fn] of Object.entries(functions)) expect(fn.Properties.RecursiveLoop, id).toBe('Allow');
  });

  it('log to their own log group with a retention period', () => {
    const groups = resources(template, 'AWS::Logs::LogGroup');
    for (const [id, fn] of Object.entries(functions)) {
      const group = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(groups[group]?.Properties.RetentionInDays, id).toBeGreaterThan(0);
    }
    expect(Object.keys(groups)).toHaveLength(Object.keys(functions).length);
  });
});

describe('alarms', () => {
  it('all notify the one alarm topic, when they fire and when they are over', () => {
    expect(alarms.length).toBeGreaterThan(0);
    for (const alarm of alarms) {
      expect(alarm.AlarmActions, String(alarm.AlarmName)).toEqual([{ Ref: topicId }]);
      expect(alarm.OKActions, String(alarm.AlarmName)).toEqual([{ Ref: topicId }]);
      expect(alarm.ActionsEnabled).toBe(true);
    }
  });

  it('fire on any error or throttle Lambda counts for each function: timeouts, out of memory and init failures included', () => {
    for (const fn of [planFunction, ...[...stack.lanes.keys()].map((name) => lane(name).exporter)]) {
      for (const metric of ['Errors', 'Throttles']) {
        const found = alarmsOn(metric, 'FunctionName', `<${fn}>`);
        expect(found, `${metric} of ${fn}`).toEqual([
          expect.objectContaining({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' }),
        ]);
      }
    }
  });

  it('fire when a lane handles records queued more than an hour ago (stuck paced or throttled)', () => {
    for (const name of stack.lanes.keys()) {
      const found = alarmsOn('RecordAgeSeconds', 'lane', name);
      expect(found, name).toEqual([
        expect.objectContaining({ Threshold: 3600, ComparisonOperator: 'GreaterThanThreshold' }),
      ]);
      expect(String(found[0]!.AlarmDescription)).toMatch(/stuck behind its pace or the destination's 429s/);
    }
  });

  it('fire when a scheduled start could not be delivered, after Scheduler retried it for an hour', () => {
    const dlq = stack.getLogicalId(stack.planner.scheduleDeadLetterQueue.node.defaultChild as CfnQueue);
    expect(alarmsOn('ApproximateNumberOfMessagesVisible', 'QueueName', `<${dlq}.QueueName>`)).toHaveLength(1);
    for (const schedule of Object.values(resources(template, 'AWS::Scheduler::Schedule'))) {
      const target = schedule.Properties.Target as Record<string, unknown>;
      expect(target.DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': [dlq, 'Arn'] } });
      expect(target.RetryPolicy).toEqual({ MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 20 });
    }
  });

  it('fire when a dead-letter queue holds any message', () => {
    for (const name of stack.lanes.keys()) {
      const found = alarmsOn(
        'ApproximateNumberOfMessagesVisible',
        'QueueName',
        `<${lane(name).deadLetterQueue}.QueueName>`,
      );
      expect(found, name).toEqual([
        expect.objectContaining({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' }),
      ]);
    }
  });

  it('fire when the oldest message of a lane is older than an hour', () => {
    for (const name of stack.lanes.keys()) {
      const found = alarmsOn('ApproximateAgeOfOldestMessage', 'QueueName', `<${lane(name).queue}.QueueName>`);
      expect(found, name).toEqual([
        expect.objectContaining({ Threshold: 3600, ComparisonOperator: 'GreaterThanThreshold' }),
      ]);
    }
  });

  it('fire on a lane export error rate above 10% for 15 minutes', () => {
    for (const name of stack.lanes.keys()) {
      const [alarm, ...more] = alarmsOn('ExportErrors', 'lane', name);
      expect(more, name).toEqual([]);
      expect(alarm).toMatchObject({ Threshold: 10, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 3 });
      const metrics = metricsOf(alarm!);
      expect(metrics.find((m) => m.expression)?.expression).toContain('/ received');
      expect(metrics.find((m) => m.name === 'NumberOfMessagesReceived')?.dimensions.QueueName).toBe(
        `<${lane(name).queue}.QueueName>`,
      );
    }
  });

  it('fire on any failed plan of a sync', () => {
    for (const sync of ['people-to-hooks', 'people-to-crm', 'people-to-tuned', 'people-to-archive']) {
      expect(alarmsOn('PlanFailures', 'sync', sync), sync).toEqual([
        expect.objectContaining({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' }),
      ]);
    }
  });

  it('fire when a sync rejects more than 5% of what it delivers', () => {
    for (const sync of ['people-to-hooks', 'people-to-crm', 'people-to-tuned', 'people-to-archive']) {
      const found = alarmsOn('RecordsRejected', 'sync', sync);
      expect(found, sync).toEqual([
        expect.objectContaining({ Threshold: 5, ComparisonOperator: 'GreaterThanThreshold' }),
      ]);
      expect(
        metricsOf(found[0]!)
          .map((m) => m.name ?? 'expression')
          .sort(),
      ).toEqual(['RecordsCreated', 'RecordsDeleted', 'RecordsRejected', 'RecordsUpdated', 'expression']);
    }
  });

  it('fire when a scheduled sync has no successful run in 3 × its interval, missing data breaching', () => {
    const window = (sync: string) => {
      const [alarm, ...more] = alarmsOn('RunsPlanned', 'sync', sync);
      expect(more).toEqual([]);
      expect(alarm).toMatchObject({
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
      });
      expect(alarm!.DatapointsToAlarm).toBe(alarm!.EvaluationPeriods);
      // Exactly the dimensions the plan function emits RunsPlanned with (see metrics-contract.test.ts).
      expect(metricsOf(alarm!)[0]!.dimensions).toEqual(syncDimensions(sync));
      return (alarm!.EvaluationPeriods as number) * metricsOf(alarm!)[0]!.period!;
    };
    expect(window('people-to-hooks')).toBe(3 * 15 * 60);
    expect(window('people-to-crm')).toBe(3 * 24 * 3600);
    // No schedule, or a schedule turned off: nothing to be late for.
    expect(alarmsOn('RunsPlanned', 'sync', 'people-to-tuned')).toEqual([]);
    expect(alarmsOn('RunsPlanned', 'sync', 'people-to-archive')).toEqual([]);
  });

  it('publish to a KMS-encrypted, TLS-only topic CloudWatch may use, with the e-mail subscribed', () => {
    const [keyId] = Object.keys(resources(template, 'AWS::KMS::Key'));
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'data-oncall@example.com',
      TopicArn: { Ref: topicId },
    });
  });
});

describe('segment alarms', () => {
  it('watch the swing of each segment a sync reads, at its own threshold; a segment no sync reads has none', () => {
    const swing = alarmsOn('SegmentSwingPercent', 'segment', 'vip');
    expect(swing).toHaveLength(1);
    expect(swing[0]).toMatchObject({ Threshold: 35, ComparisonOperator: 'GreaterThanThreshold' });
    expect(String(swing[0]!.AlarmDescription)).toMatch(/Segment vip: its size moved more than 35%/);
    expect(alarmsOn('SegmentSwingPercent', 'segment', 'unused')).toHaveLength(0);
  });
});

describe('dashboard', () => {
  it('shows the record counters per sync and the queues, errors and 429s per lane', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const body = flat(Object.values(resources(template, 'AWS::CloudWatch::Dashboard'))[0]!.Properties.DashboardBody);
    for (const metric of [
      'RecordsExtracted',
      'RecordsInvalid',
      'RecordsUnchanged',
      'RecordsQueued',
      'RecordsCreated',
      'RecordsUpdated',
      'RecordsDeleted',
      'RecordsRejected',
      'RunDuration',
      'ApproximateNumberOfMessagesVisible',
      'ApproximateAgeOfOldestMessage',
      'ExportErrors',
      'DestinationThrottles',
      'Throttles',
      'Duration',
    ]) {
      expect(body, metric).toContain(`"${metric}"`);
    }
    for (const sync of ['people-to-hooks', 'people-to-crm', 'people-to-tuned', 'people-to-archive']) {
      expect(body).toContain(`"sync","${sync}"`);
    }
    for (const name of stack.lanes.keys()) expect(body).toContain(`"lane","${name}"`);
  });
});

describe('cdk-nag', () => {
  it('finds nothing unacknowledged in the AwsSolutions pack', () => {
    const report = new AwsSolutionsChecks().validateScope(stack);
    expect(report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.description}`)).toEqual([]);
  });
});
