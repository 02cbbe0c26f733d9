import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import dynalite from 'dynalite';
import type { LaneUrls } from '#core/aws/sqs-lane-queue';
import { BackflowError } from '#core/errors';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const region = 'us-east-1';

/** DynamoDB (dynalite, persisted) and SQS (fauxqs, in memory) emulators bound to 127.0.0.1. */
export interface LocalAws {
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly table: string;
  stop(): Promise<void>;
}

export async function startLocalAws(stateDir: string | undefined, table = 'backflow-state'): Promise<LocalAws> {
  const dynamo = await startLocalDynamo(stateDir, table);
  // fauxqs is loaded on demand: commands that only read the state do without it.
  const { buildApp } = await import('fauxqs');
  const sqsApp = buildApp({ logger: false });
  try {
    await sqsApp.listen({ port: 0, host: '127.0.0.1' });
  } catch (error) {
    await dynamo.stop();
    throw error;
  }
  const sqsPort = (sqsApp.server.address() as AddressInfo).port;
  const sqs = new SQSClient({ region, credentials, endpoint: `http://127.0.0.1:${sqsPort}` });
  return {
    dynamodb: dynamo.dynamodb,
    sqs,
    table,
    async stop() {
      sqs.destroy();
      await sqsApp.close();
      await dynamo.stop();
    },
  };
}

/** The DynamoDB emulator alone (dynalite, persisted under `stateDir` when given). */
export async function startLocalDynamo(
  stateDir: string | undefined,
  table = 'backflow-state',
): Promise<Omit<LocalAws, 'sqs'>> {
  if (stateDir) {
    mkdirSync(stateDir, { recursive: true });
    await assertStateFree(path.join(stateDir, 'dynamodb'));
  }
  const dynamo = dynalite({ createTableMs: 0, ...(stateDir ? { path: path.join(stateDir, 'dynamodb') } : {}) });
  await new Promise<void>((resolve, reject) => {
    dynamo.once('error', reject);
    dynamo.listen(0, '127.0.0.1', () => resolve());
  });
  const dynamoPort = (dynamo.address() as AddressInfo).port;
  const dynamodb = new DynamoDBClient({ region, credentials, endpoint: `http://127.0.0.1:${dynamoPort}` });
  await ensureTable(dynamodb, table);
  return {
    dynamodb,
    table,
    async stop() {
      dynamodb.destroy();
      await new Promise<void>((resolve) => dynamo.close(() => resolve()));
    },
  };
}

/** The state table as the CDK stack creates it: pk/sk strings, on demand. */
export async function ensureTable(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: table }));
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
    await createTable(client, table);
  }
  // dynalite answers "resource not found" to every call on a table still CREATING, even with
  // createTableMs 0 (it flips to ACTIVE on a timer): wait for ACTIVE, as the AWS waiter would.
  for (let attempt = 0; attempt < 200; attempt++) {
    const out = await client.send(new DescribeTableCommand({ TableName: table }));
    if (out.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`the local state table ${table} did not become ACTIVE`);
}

async function createTable(client: DynamoDBClient, table: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
}

/** A lane: its queue redrives to its DLQ after `maxReceives` receives, as on AWS. */
export async function ensureLane(
  sqs: SQSClient,
  name: string,
  maxReceives: number,
  visibilityTimeoutSeconds: number,
): Promise<LaneUrls> {
  const dlq = await sqs.send(
    new CreateQueueCommand({ QueueName: `backflow-${name}-dlq`, Attributes: { MessageRetentionPeriod: '1209600' } }),
  );
  const dlqArn = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `backflow-${name}`,
      Attributes: {
        VisibilityTimeout: String(visibilityTimeoutSeconds),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: dlqArn.Attributes?.QueueArn,
          maxReceiveCount: maxReceives,
        }),
      },
    }),
  );
  return { queueUrl: queue.QueueUrl!, deadLetterUrl: dlq.QueueUrl! };
}

/** Visible + in flight + delayed messages of a queue. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<{ total: number; visible: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  const a = out.Attributes ?? {};
  const visible = Number(a.ApproximateNumberOfMessages ?? 0);
  return {
    visible,
    total:
      visible +
      Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
      Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

interface LevelLike {
  open(): Promise<void>;
  close(): Promise<void>;
}

/**
 * LevelDB lets one process open a database. dynalite opens it lazily and, when another process
 * holds it, crashes on the first request; opening it first turns that into an error that says why.
 */
async function assertStateFree(dir: string): Promise<void> {
  const requireFromDynalite = createRequire(createRequire(import.meta.url).resolve('dynalite'));
  const { Level } = requireFromDynalite('level') as { Level: new (dir: string) => LevelLike };
  const probe = new Level(dir);
  try {
    await probe.open();
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new BackflowError(
        `the local state in ${path.dirname(dir)} is in use by another backflow process (a run still going?): wait for it to finish and try again`,
        { cause: error },
      );
    }
    throw error;
  } finally {
    await probe.close().catch(() => {});
  }
}
