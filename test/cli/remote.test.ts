import 'aws-sdk-client-mock-vitest/extend';
import { rmSync } from 'node:fs';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  GetQueueAttributesCommand,
  type GetQueueAttributesCommandInput,
  SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '#cli/app';
import { memoryIo } from '#cli/io';
import type { RemoteClients, RemoteOptions } from '#cli/remote';
import { bucketOf } from '#core/aws/dynamo-state-store';
import { initProject } from './helpers.ts';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const region = 'eu-west-1';
const LANE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/backflow-crm';
const DLQ = 'https://sqs.eu-west-1.amazonaws.com/123456789012/backflow-crm-dlq';
const arnOf = (url: string) => `arn:aws:sqs:eu-west-1:123456789012:${url.split('/').pop()}`;

const OUTPUTS = [
  { OutputKey: 'StateTableName', OutputValue: 'backflow-state' },
  { OutputKey: 'PlanFunctionName', OutputValue: 'backflow-plan' },
  { OutputKey: 'Lanes', OutputValue: JSON.stringify({ crm: { queueUrl: LANE, deadLetterUrl: DLQ } }) },
];

/** `--remote` commands in-process, on AWS SDK clients mocked with aws-sdk-client-mock. */
describe('backflow --remote', () => {
  const clients: RemoteClients = {
    cloudformation: new CloudFormationClient({ region, credentials }),
    dynamodb: new DynamoDBClient({ region, credentials }),
    sqs: new SQSClient({ region, credentials }),
    lambda: new LambdaClient({ region, credentials }),
  };
  const cloudformation = mockClient(clients.cloudformation);
  const dynamodb = mockClient(clients.dynamodb);
  const sqs = mockClient(clients.sqs);
  const lambda = mockClient(clients.lambda);
  let dir: string;
  let options: RemoteOptions | undefined;
  let depths: Record<string, number>;

  const cli = async (...argv: string[]) => {
    const io = memoryIo({ cwd: dir });
    const code = await runCli(argv, {
      io,
      remoteClients: (o) => {
        options = o;
        return clients;
      },
    });
    return { code, stdout: io.stdout, stderr: io.stderr };
  };

  beforeAll(async () => {
    dir = await initProject();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    for (const mock of [cloudformation, dynamodb, sqs, lambda]) mock.reset();
    options = undefined;
    depths = { [LANE]: 12, [DLQ]: 4 };
    cloudformation.on(DescribeStacksCommand).resolves({
      Stacks: [{ StackName: 'Backflow', StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date(), Outputs: OUTPUTS }],
    });
    sqs.on(GetQueueAttributesCommand).callsFake((input: GetQueueAttributesCommandInput) => {
      if (input.AttributeNames?.includes('QueueArn')) return { Attributes: { QueueArn: arnOf(input.QueueUrl!) } };
      return {
        Attributes: {
          ApproximateNumberOfMessages: String(depths[input.QueueUrl!] ?? 0),
          ApproximateNumberOfMessagesNotVisible: input.QueueUrl === LANE ? '3' : '0',
          ApproximateNumberOfMessagesDelayed: input.QueueUrl === LANE ? '1' : '0',
        },
      };
    });
  });

  it('status reads the runs from the state table and the depths from the lane and its DLQ', async () => {
    dynamodb.on(QueryCommand).callsFake((input: QueryCommandInput) => {
      if (input.ExpressionAttributeValues?.[':pk']?.S !== 'sync#customers-to-crm') return { Items: [] };
      return {
        Items: [
          marshall({
            pk: 'sync#customers-to-crm',
            sk: 'run#0000000012',
            runId: '0000000012',
            seq: 12,
            status: 'failed',
            full: false,
            startedAt: '2026-03-01T10:00:00.000Z',
            error: '2 message(s) dead-lettered on lane crm',
            c_extracted: 300,
            c_queued: 300,
            c_created: 280,
            c_deadLettered: 20,
          }),
          marshall({
            pk: 'sync#customers-to-crm',
            sk: 'run#0000000011',
            runId: '0000000011',
            seq: 11,
            status: 'succeeded',
            full: true,
            startedAt: '2026-03-01T09:45:00.000Z',
            c_extracted: 50,
            c_updated: 50,
          }),
        ],
      };
    });
    const result = await cli('status', '--remote', '--json', '--stack', 'BackflowProd', '--region', 'eu-west-1');
    expect(result.code).toBe(0);
    expect(options).toEqual({ stack: 'BackflowProd', region: 'eu-west-1', profile: undefined });
    expect(cloudformation).toHaveReceivedCommandWith(DescribeStacksCommand, { StackName: 'BackflowProd' });
    expect(dynamodb).toHaveReceivedCommandWith(QueryCommand, {
      TableName: 'backflow-state',
      ScanIndexForward: false,
      Limit: 5,
    });
    const status = JSON.parse(result.stdout);
    expect(status.where).toBe('stack BackflowProd');
    expect(status.syncs[0]).toMatchObject({
      syncId: 'customers-to-crm',
      runs: [
        { runId: '0000000012', status: 'failed', counters: { extracted: 300, created: 280, deadLettered: 20 } },
        { runId: '0000000011', status: 'succeeded', full: true, counters: { updated: 50 } },
      ],
      lastError: { runId: '0000000012', error: '2 message(s) dead-lettered on lane crm' },
    });
    expect(status.lanes).toEqual([{ destination: 'crm', queued: 12, inFlight: 3, delayed: 1, deadLetters: 4 }]);

    const human = await cli('status', '--remote', '--stack', 'BackflowProd');
    expect(human.stdout).toMatch(/0000000012 {2}failed {5}2026-03-01 10:00:00Z {2}incremental +300 +0 +300 +280/);
    expect(human.stdout).toMatch(/last error \(run 0000000012\): 2 message\(s\) dead-lettered on lane crm/);
    expect(human.stdout).toMatch(/crm +12 +3 +1 +4 {2}backflow redrive crm --remote --stack BackflowProd/);
  });

  it('rejections lists the refused records of every bucket, newest first', async () => {
    const item = (key: string, updatedAt: string, reason: string) =>
      marshall({ pk: `customers-to-crm#${bucketOf(key)}`, sk: key, v: 3, s: 'rejected', r: reason, u: updatedAt });
    dynamodb.on(QueryCommand).callsFake((input: QueryCommandInput) => {
      const pk = input.ExpressionAttributeValues?.[':pk']?.S;
      const items = [
        item('7', '2026-03-01T10:00:00.000Z', 'email: is not a valid address'),
        item('9', '2026-03-01T11:00:00.000Z', 'plan: unknown value'),
        marshall({
          pk: `customers-to-crm#${bucketOf('8')}`,
          sk: '8',
          v: 3,
          s: 'ok',
          h: 'x',
          u: '2026-03-01T12:00:00Z',
        }),
      ].filter((i) => i.pk?.S === pk);
      return { Items: items };
    });
    const result = await cli('rejections', 'customers-to-crm', '--remote', '--json');
    expect(result.code).toBe(0);
    expect(dynamodb).toHaveReceivedCommandTimes(QueryCommand, 64);
    expect(JSON.parse(result.stdout)).toEqual({
      sync: 'customers-to-crm',
      total: 2,
      records: 3,
      rejections: [
        { key: '9', reason: 'plan: unknown value', rejectedAt: '2026-03-01T11:00:00.000Z', runId: '0000000003' },
        {
          key: '7',
          reason: 'email: is not a valid address',
          rejectedAt: '2026-03-01T10:00:00.000Z',
          runId: '0000000003',
        },
      ],
    });
  });

  it('redrive starts a message move task from the DLQ back to the lane', async () => {
    sqs.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-1' });
    const result = await cli('redrive', 'crm', '--remote');
    expect(result.code).toBe(0);
    expect(sqs).toHaveReceivedCommandExactlyOnceWith(StartMessageMoveTaskCommand, {
      SourceArn: arnOf(DLQ),
      DestinationArn: arnOf(LANE),
    });
    expect(result.stdout).toMatch(/moving ~4 message\(s\) from the dead-letter queue of crm back to its lane/);

    sqs.resetHistory();
    depths[DLQ] = 0;
    const empty = await cli('redrive', 'crm', '--remote', '--json');
    expect(empty.code).toBe(0);
    expect(JSON.parse(empty.stdout)).toEqual({ destination: 'crm', stack: 'Backflow', moving: 0 });
    expect(sqs).not.toHaveReceivedCommand(StartMessageMoveTaskCommand);
  });

  it('trigger invokes the plan function asynchronously with the sync id', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    const result = await cli('trigger', 'customers-to-crm', '--remote', '--full');
    expect(result.code).toBe(0);
    expect(lambda).toHaveReceivedCommandWith(InvokeCommand, { FunctionName: 'backflow-plan', InvocationType: 'Event' });
    const payload = lambda.commandCalls(InvokeCommand)[0]!.args[0].input.Payload as Uint8Array;
    expect(JSON.parse(new TextDecoder().decode(payload))).toEqual({ syncId: 'customers-to-crm', full: true });
    expect(result.stdout).toMatch(/triggered customers-to-crm \(full read\) on backflow-plan/);
  });

  it('says what is wrong with the stack or the AWS call, with exit code 1', async () => {
    cloudformation.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: 'Backflow',
          StackStatus: 'CREATE_COMPLETE',
          CreationTime: new Date(),
          Outputs: OUTPUTS.slice(0, 2),
        },
      ],
    });
    const noLanes = await cli('redrive', 'crm', '--remote');
    expect(noLanes.code).toBe(1);
    expect(noLanes.stderr).toMatch(/stack Backflow has no output Lanes \(outputs: StateTableName, PlanFunctionName\)/);

    cloudformation.on(DescribeStacksCommand).rejects(new Error('Stack with id Nope does not exist'));
    const missing = await cli('trigger', 'customers-to-crm', '--remote', '--stack', 'Nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/stack Nope not found in this account and region: deploy it .* --stack NAME/);

    cloudformation.on(DescribeStacksCommand).resolves({
      Stacks: [{ StackName: 'Backflow', StackStatus: 'CREATE_COMPLETE', CreationTime: new Date(), Outputs: OUTPUTS }],
    });
    const denied = Object.assign(
      new Error('User: arn:aws:iam::1:user/x is not authorized to perform: dynamodb:Query'),
      {
        name: 'AccessDeniedException',
      },
    );
    dynamodb.on(QueryCommand).rejects(denied);
    const status = await cli('status', '--remote');
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/cannot read the state table: User: .* dynamodb:Query \(your AWS identity lacks/);
    expect(lambda).not.toHaveReceivedCommand(InvokeCommand);
  });
});
