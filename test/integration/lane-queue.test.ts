import type { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLane, type LocalAws, queueDepth, startLocalAws } from '#cli/local-aws';
import { SqsLaneQueue } from '#core/aws/sqs-lane-queue';
import { MessagesRefusedError } from '#core/errors';
import type { LaneMessage } from '#core/lane-message';

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

// The port's shared semantics are pinned by test/contract/lane-queue.test.ts for both adapters.
describe('SQS lanes on fauxqs', () => {
  let aws: LocalAws;
  beforeAll(async () => {
    aws = await startLocalAws(undefined);
  });
  afterAll(async () => aws.stop());

  it('names the messages SQS refuses for their content and sends the others', async () => {
    const lane = await ensureLane(aws.sqs, 'refusing', 2, 1);
    // fauxqs refuses raw characters outside the Basic Multilingual Plane: a client that writes one
    // into a body plays a message SQS refuses for its content.
    const client = Object.create(aws.sqs) as SQSClient;
    client.send = ((command: SendMessageBatchCommand) => {
      for (const entry of command.input.Entries ?? []) {
        if (entry.MessageBody?.includes('REFUSE')) entry.MessageBody += ' raw 👍';
      }
      return aws.sqs.send(command);
    }) as SQSClient['send'];
    const refusing = new SqsLaneQueue(client, () => lane);
    const bad = { ...message(1), records: [{ ...message(1).records[0]!, key: 'REFUSE' }] };
    const error = await refusing.send('refusing', [message(0), bad, message(2)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MessagesRefusedError);
    expect((error as MessagesRefusedError).refused).toEqual([1]);
    expect((error as Error).message).toMatch(/SQS refused 1 message\(s\)/);
    expect((await queueDepth(aws.sqs, lane.queueUrl)).total).toBe(2);
  });
});
