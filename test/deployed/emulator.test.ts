import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ResourceNotFoundException as FunctionNotFound, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  GetSecretValueCommand,
  ResourceNotFoundException as SecretNotFound,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeployedQueue, LambdaEmulator } from './lambda.ts';
import type { Template } from './template.ts';

/**
 * The emulation itself, on a function written here and a template written by hand: what the
 * scenarios of deployed.test.ts rely on Lambda to do must hold first.
 */

const HANDLER = `
let invocations = 0;
let ticks = 0;
setInterval(() => ticks++, 10);
export const handler = async (event, context) => {
  invocations++;
  if (event.Records) {
    const batchItemFailures = [];
    for (const record of event.Records) {
      const body = JSON.parse(record.body);
      if (body.hang) await new Promise(() => {});
      if (body.fail) batchItemFailures.push({ itemIdentifier: record.messageId });
    }
    return { batchItemFailures };
  }
  if (event.secret) {
    // GetSecretValue as the SDK sends it, signed (in name) with the function's own credentials.
    const response = await fetch(process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'secretsmanager.GetSecretValue',
        authorization: 'AWS4-HMAC-SHA256 Credential=' + process.env.AWS_ACCESS_KEY_ID + '/20260101/us-east-1/secretsmanager/aws4_request',
      },
      body: JSON.stringify({ SecretId: event.secret }),
    });
    return { status: response.status, body: await response.json() };
  }
  if (event.sleepMs) await new Promise((resolve) => setTimeout(resolve, event.sleepMs));
  if (event.fail) throw new TypeError('asked to fail');
  console.log('hello', 'from', context.functionName);
  return {
    invocations,
    ticks,
    pid: process.pid,
    cwd: process.cwd(),
    remaining: context.getRemainingTimeInMillis(),
    requestId: context.awsRequestId,
    env: {
      name: process.env.AWS_LAMBDA_FUNCTION_NAME,
      queue: process.env.QUEUE,
      tz: process.env.TZ,
      memory: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      region: process.env.AWS_REGION,
    },
  };
};
`;

const TEMPLATE: Template = {
  Resources: {
    Table: {
      Type: 'AWS::DynamoDB::Table',
      Properties: {
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      },
    },
    DeadLetters: { Type: 'AWS::SQS::Queue', Properties: { MessageRetentionPeriod: 1209600 } },
    Queue: {
      Type: 'AWS::SQS::Queue',
      Properties: {
        VisibilityTimeout: 2,
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': ['DeadLetters', 'Arn'] }, maxReceiveCount: 2 },
      },
    },
    Role: { Type: 'AWS::IAM::Role', Properties: { AssumeRolePolicyDocument: {} } },
    Policy: {
      Type: 'AWS::IAM::Policy',
      Properties: {
        Roles: [{ Ref: 'Role' }],
        PolicyDocument: {
          Statement: [
            {
              Effect: 'Allow',
              Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
              Resource: { 'Fn::GetAtt': ['Queue', 'Arn'] },
            },
            {
              Effect: 'Allow',
              Action: 'secretsmanager:GetSecretValue',
              Resource: {
                'Fn::Join': [
                  '',
                  ['arn:aws:secretsmanager:us-east-1:', { Ref: 'AWS::AccountId' }, ':secret:present-??????'],
                ],
              },
            },
          ],
        },
      },
    },
    Fn: {
      Type: 'AWS::Lambda::Function',
      Properties: {
        Role: { 'Fn::GetAtt': ['Role', 'Arn'] },
        Handler: 'index.handler',
        Runtime: 'nodejs22.x',
        MemorySize: 256,
        Timeout: 2,
        Environment: { Variables: { QUEUE: { Ref: 'Queue' } } },
      },
    },
    Mapping: {
      Type: 'AWS::Lambda::EventSourceMapping',
      Properties: {
        FunctionName: { Ref: 'Fn' },
        EventSourceArn: { 'Fn::GetAtt': ['Queue', 'Arn'] },
        BatchSize: 10,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: 2 },
      },
    },
  },
};

interface Echo {
  invocations: number;
  ticks: number;
  pid: number;
  cwd: string;
  remaining: number;
  requestId: string;
  env: Record<string, string>;
}

let taskRoot: string;
let emulator: LambdaEmulator;
let name: string;
let queue: DeployedQueue;
let deadLetters: DeployedQueue;

beforeAll(async () => {
  taskRoot = mkdtempSync(path.join(os.tmpdir(), 'backflow-emulator-task-'));
  writeFileSync(path.join(taskRoot, 'index.mjs'), HANDLER);
  emulator = await LambdaEmulator.start({
    synthesized: { stackName: 'EmulatorTest', template: TEMPLATE, packages: new Map([['Fn', taskRoot]]) },
    secrets: { present: { token: 'x' }, other: { token: 'y' } },
    node: process.execPath,
    asyncRetryDelaysMs: [100, 100],
  });
  name = emulator.functions.get('Fn')!.name;
  queue = emulator.queues.get('Queue')!;
  deadLetters = emulator.queues.get('DeadLetters')!;
}, 60_000);

afterAll(async () => {
  await emulator?.stop();
  rmSync(taskRoot, { recursive: true, force: true });
});

async function bodies(target: DeployedQueue): Promise<string[]> {
  const out = await emulator.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: target.fauxqsUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 30 }),
  );
  return (out.Messages ?? []).map((m) => m.Body!).sort();
}

describe('the Lambda emulation', () => {
  it('runs the handler in its task root with the template’s resolved environment and Lambda’s own variables', async () => {
    const invocation = await emulator.invoke(name, {});
    expect(invocation.outcome?.ok, JSON.stringify(invocation.outcome)).toBe(true);
    const echo = (invocation.outcome as { value: Echo }).value;
    expect(echo.cwd).toBe(taskRoot);
    expect(echo.env).toEqual({ name, queue: queue.url, tz: ':UTC', memory: '256', region: 'us-east-1' });
    expect(echo.requestId).toBe(invocation.requestId);
    expect(echo.remaining).toBeGreaterThan(0);
    expect(echo.remaining).toBeLessThanOrEqual(2000);
    // console.* is written in Lambda's text format, tagged with the request id.
    expect(invocation.logs).toContainEqual(
      expect.stringMatching(new RegExp(`\\t${invocation.requestId}\\tINFO\\thello from ${name}$`)),
    );
  });

  it('reuses a warm environment, frozen between invocations', async () => {
    const first = await emulator.invoke(name, {});
    await sleep(1000);
    const second = await emulator.invoke(name, {});
    const [a, b] = [first, second].map((i) => (i.outcome as { value: Echo }).value);
    expect(second.coldStart).toBe(false);
    expect(b!.pid).toBe(a!.pid);
    expect(b!.invocations).toBe(a!.invocations + 1);
    // A 10 ms interval ran about 100 times a second while thawed; frozen, it did not run.
    expect(b!.ticks - a!.ticks).toBeLessThan(20);
  });

  it('kills an invocation at the function’s timeout, and starts the next one cold', async () => {
    const timedOut = await emulator.invoke(name, { sleepMs: 5000 });
    expect(timedOut.outcome).toMatchObject({
      ok: false,
      kind: 'timeout',
      error: {
        errorType: 'Sandbox.Timedout',
        errorMessage: expect.stringContaining('Task timed out after 2.00 seconds'),
      },
    });
    expect(timedOut.endedAt! - timedOut.startedAt).toBeLessThan(3000);
    const next = await emulator.invoke(name, {});
    expect(next.coldStart).toBe(true);
  });

  it('retries a failed asynchronous invocation twice', async () => {
    emulator.invokeAsync(name, { fail: true, tag: 'async' });
    await emulator.waitForIdle(20_000);
    const attempts = emulator.invocations.filter((i) => (i.event as { tag?: string }).tag === 'async');
    expect(attempts.map((i) => [i.attempt, i.outcome])).toEqual(
      [0, 1, 2].map((attempt) => [
        attempt,
        {
          ok: false,
          kind: 'function',
          error: expect.objectContaining({ errorType: 'TypeError', errorMessage: 'asked to fail' }),
        },
      ]),
    );
  });

  it('deletes only the messages a batch did not report failed; the others are dead-lettered after maxReceiveCount', async () => {
    await emulator.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.fauxqsUrl,
        Entries: [
          { Id: '0', MessageBody: JSON.stringify({ n: 1 }) },
          { Id: '1', MessageBody: JSON.stringify({ n: 2, fail: true }) },
        ],
      }),
    );
    await emulator.waitForIdle(30_000);
    expect(await bodies(deadLetters)).toEqual([JSON.stringify({ n: 2, fail: true })]);
    const received = emulator.invocations
      .filter((i) => i.trigger === 'sqs')
      .flatMap(
        (i) => (i.event as { Records: { body: string; attributes: { ApproximateReceiveCount: string } }[] }).Records,
      )
      .map((r) => [r.body, r.attributes.ApproximateReceiveCount]);
    // Message 1 was received once; message 2 twice (maxReceiveCount), then moved by SQS.
    expect(received.filter(([body]) => body === JSON.stringify({ n: 1 }))).toEqual([[JSON.stringify({ n: 1 }), '1']]);
    expect(received.filter(([body]) => body !== JSON.stringify({ n: 1 })).map(([, count]) => count)).toEqual([
      '1',
      '2',
    ]);
  }, 40_000);

  it('leaves the batch of a timed-out invocation to the visibility timeout, then to the redrive policy', async () => {
    await emulator.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.fauxqsUrl,
        Entries: [{ Id: '0', MessageBody: JSON.stringify({ hang: true }) }],
      }),
    );
    await emulator.waitForIdle(30_000);
    expect(await bodies(deadLetters)).toEqual([JSON.stringify({ hang: true })]);
    const hung = emulator.invocations.filter((i) => JSON.stringify(i.event).includes('hang'));
    expect(hung.map((i) => i.outcome)).toEqual([
      expect.objectContaining({ kind: 'timeout' }),
      expect.objectContaining({ kind: 'timeout' }),
    ]);
  }, 40_000);

  it('refuses a call the function’s role does not allow, as IAM does', async () => {
    const allowed = await emulator.invoke(name, { secret: 'present' });
    expect((allowed.outcome as { value: unknown }).value).toMatchObject({ status: 200, body: { Name: 'present' } });
    const refused = await emulator.invoke(name, { secret: 'other' });
    expect((refused.outcome as { value: unknown }).value).toMatchObject({
      status: 400,
      body: {
        __type: 'AccessDeniedException',
        message: expect.stringContaining('is not authorized to perform: secretsmanager:GetSecretValue'),
      },
    });
    expect(emulator.accessDenied).toEqual([
      expect.objectContaining({
        functionName: name,
        action: 'secretsmanager:GetSecretValue',
        resource: expect.stringContaining(':secret:other-'),
      }),
    ]);
  });

  it('answers the Invoke and GetSecretValue calls of the AWS SDK as AWS does', async () => {
    const credentials = { accessKeyId: 'a', secretAccessKey: 'b' };
    const lambda = new LambdaClient({ region: 'us-east-1', credentials, endpoint: emulator.endpoints.lambda });
    const secrets = new SecretsManagerClient({
      region: 'us-east-1',
      credentials,
      endpoint: emulator.endpoints.secretsManager,
    });
    try {
      const out = await lambda.send(new InvokeCommand({ FunctionName: name, Payload: Buffer.from('{}') }));
      expect(out.StatusCode).toBe(200);
      expect(JSON.parse(Buffer.from(out.Payload!).toString('utf8'))).toMatchObject({ env: { name } });
      const failed = await lambda.send(
        new InvokeCommand({ FunctionName: name, Payload: Buffer.from('{"fail":true}') }),
      );
      expect(failed.FunctionError).toBe('Unhandled');
      await expect(
        lambda.send(new InvokeCommand({ FunctionName: 'nope', Payload: Buffer.from('{}') })),
      ).rejects.toThrow(FunctionNotFound);
      const secret = await secrets.send(new GetSecretValueCommand({ SecretId: 'present' }));
      expect(JSON.parse(secret.SecretString!)).toEqual({ token: 'x' });
      await expect(secrets.send(new GetSecretValueCommand({ SecretId: 'absent' }))).rejects.toThrow(SecretNotFound);
    } finally {
      lambda.destroy();
      secrets.destroy();
    }
  });
});
