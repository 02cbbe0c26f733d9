import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { ensureLane, queueDepth, startLocalAws } from '#cli/local-aws';
import { SqsLaneQueue } from '#core/aws/sqs-lane-queue';
import { openEmbeddedStore } from '#core/embedded/store';
import { laneQueueContract } from './lane-queue.contract.ts';

laneQueueContract('SQS adapter on fauxqs', async () => {
  const aws = await startLocalAws(undefined);
  const sqs: SQSClient = aws.sqs;
  return {
    async lane(name, maxReceives, visibility) {
      const urls = await ensureLane(sqs, name, maxReceives, visibility);
      return {
        queue: new SqsLaneQueue(sqs, () => urls),
        async receive(max, visibilitySeconds) {
          const out = await sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: urls.queueUrl,
              MaxNumberOfMessages: max,
              VisibilityTimeout: visibilitySeconds,
              MessageSystemAttributeNames: ['All'],
            }),
          );
          return (out.Messages ?? []).map((m) => ({
            receiptHandle: m.ReceiptHandle!,
            body: m.Body!,
            receiveCount: Number(m.Attributes?.ApproximateReceiveCount),
          }));
        },
        async delete(handles) {
          await sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: urls.queueUrl,
              Entries: handles.map((h, i) => ({ Id: String(i), ReceiptHandle: h })),
            }),
          );
        },
        depth: async () => (await queueDepth(sqs, urls.queueUrl)).total,
        deadLetterDepth: async () => (await queueDepth(sqs, urls.deadLetterUrl)).total,
        async redrive() {
          let moved = 0;
          for (;;) {
            const out = await sqs.send(
              new ReceiveMessageCommand({
                QueueUrl: urls.deadLetterUrl,
                MaxNumberOfMessages: 10,
                VisibilityTimeout: 60,
              }),
            );
            const messages = out.Messages ?? [];
            if (messages.length === 0) return moved;
            await sqs.send(
              new SendMessageBatchCommand({
                QueueUrl: urls.queueUrl,
                Entries: messages.map((m, i) => ({ Id: String(i), MessageBody: m.Body! })),
              }),
            );
            await sqs.send(
              new DeleteMessageBatchCommand({
                QueueUrl: urls.deadLetterUrl,
                Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
              }),
            );
            moved += messages.length;
          }
        },
      };
    },
    close: () => aws.stop(),
  };
});

laneQueueContract('embedded store (LMDB)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-contract-'));
  const store = openEmbeddedStore(dir, { exclusive: true });
  const { queue } = store;
  return {
    async lane(name, maxReceives, visibilityTimeoutSeconds) {
      queue.ensureLane(name, { maxReceives, visibilityTimeoutSeconds });
      return {
        queue,
        receive: (max, visibility) => queue.receive(name, max, visibility),
        delete: (handles) => queue.delete(name, handles),
        depth: async () => queue.depth(name).total,
        deadLetterDepth: async () => queue.deadLetterDepth(name).total,
        redrive: async () => (await queue.redrive(name)).length,
      };
    },
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
