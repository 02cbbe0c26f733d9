import 'aws-sdk-client-mock-vitest/extend';
import { rmSync } from 'node:fs';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import {
  GetQueueAttributesCommand,
  type GetQueueAttributesCommandInput,
  SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemoteClients } from '#cli/remote';
import type { UiServer } from '#cli/ui/server';
import { call, startServer, uiProject } from './helpers.ts';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const region = 'eu-west-1';
const LANE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/backflow-crm';
const DLQ = 'https://sqs.eu-west-1.amazonaws.com/123456789012/backflow-crm-dlq';

/** `backflow ui --remote`: the stack's runs and dead letters, on AWS SDK clients mocked with aws-sdk-client-mock. */
describe('backflow ui --remote', () => {
  const clients: RemoteClients = {
    cloudformation: new CloudFormationClient({ region, credentials }),
    dynamodb: new DynamoDBClient({ region, credentials }),
    sqs: new SQSClient({ region, credentials }),
    lambda: new LambdaClient({ region, credentials }),
  };
  const cloudformation = mockClient(clients.cloudformation);
  const dynamodb = mockClient(clients.dynamodb);
  const sqs = mockClient(clients.sqs);
  let dir: string;
  let server: UiServer;

  beforeAll(async () => {
    dir = await uiProject();
    cloudformation.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: 'Staging',
          StackStatus: 'UPDATE_COMPLETE',
          CreationTime: new Date(),
          Outputs: [
            { OutputKey: 'StateTableName', OutputValue: 'backflow-state' },
            { OutputKey: 'PlanFunctionName', OutputValue: 'backflow-plan' },
            { OutputKey: 'Lanes', OutputValue: JSON.stringify({ crm: { queueUrl: LANE, deadLetterUrl: DLQ } }) },
          ],
        },
      ],
    });
    dynamodb.on(QueryCommand).resolves({ Items: [] });
    sqs.on(GetQueueAttributesCommand).callsFake((input: GetQueueAttributesCommandInput) => {
      if (input.AttributeNames?.includes('QueueArn')) {
        return { Attributes: { QueueArn: `arn:aws:sqs:eu-west-1:123456789012:${input.QueueUrl!.split('/').pop()}` } };
      }
      return {
        Attributes: {
          ApproximateNumberOfMessages: input.QueueUrl === DLQ ? '4' : '0',
          ApproximateNumberOfMessagesNotVisible: '0',
          ApproximateNumberOfMessagesDelayed: '0',
        },
      };
    });
    sqs.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-1' });
    server = await startServer(dir, {
      remote: true,
      allowActions: true,
      remoteArgs: ['--stack', 'Staging'],
      remoteClients: () => clients,
    });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs, rejections and dead letters come from the stack', async () => {
    const runs = await call(server, '/api/runs?sync=customers-to-crm');
    expect(runs.status).toBe(200);
    expect(runs.body).toMatchObject({ where: 'stack Staging', syncs: [{ syncId: 'customers-to-crm', runs: [] }] });
    expect(cloudformation).toHaveReceivedCommandWith(DescribeStacksCommand, { StackName: 'Staging' });
    const rejections = await call(server, '/api/syncs/customers-to-crm/rejections');
    expect(rejections.body).toMatchObject({ sync: 'customers-to-crm', total: 0, rejections: [] });
    expect(dynamodb).toHaveReceivedCommandWith(QueryCommand, { TableName: 'backflow-state' });
    const dead = await call(server, '/api/deadletters');
    expect(dead.body).toEqual({ where: 'stack Staging', lanes: [{ destination: 'crm', count: 4, messages: [] }] });
  });

  it('with --allow-actions, redrive starts a message move task from the DLQ to the lane', async () => {
    const redrive = await call(server, '/api/deadletters/crm/redrive', { body: {} });
    expect(redrive.status).toBe(200);
    expect(redrive.body).toMatchObject({ destination: 'crm', stack: 'Staging', moving: 4, taskHandle: 'task-1' });
    expect(sqs).toHaveReceivedCommandWith(StartMessageMoveTaskCommand, {
      SourceArn: 'arn:aws:sqs:eu-west-1:123456789012:backflow-crm-dlq',
      DestinationArn: 'arn:aws:sqs:eu-west-1:123456789012:backflow-crm',
    });
  });
});
