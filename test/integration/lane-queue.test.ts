import { ReceiveMessageCommand, type SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLane, type LocalAws, queueDepth, startLocalAws } from '#cli/local-aws';
import { SqsLaneQueue } from '#core/aws/sqs-lane-queue';
import { MessagesRefusedError } from '#core/errors';
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

  it('carries any text a warehouse holds, -0 included, in bodies SQS accepts', async () => {
    const lane = await ensureLane(aws.sqs, 'text', 2, 1);
    const texts = new SqsLaneQueue(aws.sqs, () => lane);
    const nasty = 'thumbs 👍 \uFFFE\uFFFF lone \uD800 rtl \u202Eabc ctl \u0000\u0001\u001F\u007F é 漢字';
    const sent: LaneMessage = {
      ...message(1),
      records: [{ key: 'k👍', op: 'upsert', match: nasty, fields: { t: nasty, z: -0 } }],
    };
    await texts.send('text', [sent]);
    const out = await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: lane.queueUrl, MaxNumberOfMessages: 1 }));
    const body = out.Messages![0]!.Body!;
    expect(body).toMatch(/^[\x20-\x7e]*$/);
    const record = decodeMessage(body).records[0]!;
    expect(record).toMatchObject({ key: 'k👍', match: nasty, fields: { t: nasty } });
    expect(Object.is(record.fields.z, -0)).toBe(true);
  });

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
