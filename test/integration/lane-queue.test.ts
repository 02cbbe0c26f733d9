import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLane, type LocalAws, queueDepth, startLocalAws } from '#cli/local-aws';
import { SqsLaneQueue } from '#core/aws/sqs-lane-queue';
import { decodeMessage, type LaneMessage } from '#core/lane-message';

const message = (i: number, size = 10): LaneMessage => ({
  v: 1,
  syncId: 's',
  runId: '1',
  version: 1,
  object: 'o',
  matchField: 'id',
  fieldTypes: {},
  attempt: 0,
  records: [{ key: String(i), op: 'upsert', match: i, fields: { pad: 'x'.repeat(size) } }],
});

describe('SQS lanes on fauxqs', () => {
  let aws: LocalAws;
  let urls: { queueUrl: string; deadLetterUrl: string };
  let queue: SqsLaneQueue;
  beforeAll(async () => {
    aws = await startLocalAws(undefined);
    urls = await ensureLane(aws.sqs, 'crm', 2, 1);
    queue = new SqsLaneQueue(aws.sqs, () => urls);
  });
  afterAll(async () => aws.stop());

  it('sends many messages, large ones included, and they all arrive intact', async () => {
    const sent = [...Array.from({ length: 23 }, (_, i) => message(i)), message(100, 600_000), message(101, 600_000)];
    await queue.send('crm', sent);
    expect((await queueDepth(aws.sqs, urls.queueUrl)).total).toBe(25);
    const seen: string[] = [];
    for (;;) {
      const out = await aws.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: urls.queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 30 }),
      );
      if (!out.Messages?.length) break;
      for (const m of out.Messages) seen.push(decodeMessage(m.Body!).records[0]!.key);
    }
    expect(seen.sort()).toEqual(sent.map((m) => m.records[0]!.key).sort());
  });

  it('dead-letters a message after the lane maximum of receives', async () => {
    const lane = await ensureLane(aws.sqs, 'flaky', 2, 1);
    const flaky = new SqsLaneQueue(aws.sqs, () => lane);
    await flaky.send('flaky', [message(1)]);
    for (let receive = 0; receive < 2; receive++) {
      const out = await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: lane.queueUrl, MaxNumberOfMessages: 1 }));
      expect(out.Messages).toHaveLength(1);
      await flaky.retryLater('flaky', out.Messages![0]!.ReceiptHandle!, 0);
    }
    await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: lane.queueUrl, MaxNumberOfMessages: 1 }));
    expect((await queueDepth(aws.sqs, lane.deadLetterUrl)).total).toBe(1);
    expect((await queueDepth(aws.sqs, lane.queueUrl)).total).toBe(0);
  });
});
