import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { LocalRuntime } from '#cli/local-runtime';

/**
 * Moves every dead letter of the lanes back onto them and drains them: what `backflow redrive`
 * does locally (cli/commands/redrive.ts). Plug-in point: once `LocalRuntime.redrive(lane)` is on
 * main, this becomes a call to it for each lane.
 */
export async function redriveLanes(runtime: LocalRuntime, lanes: readonly string[]): Promise<number> {
  let moved = 0;
  for (const lane of lanes) {
    const urls = runtime.lanes.get(lane);
    if (!urls) throw new Error(`the local runtime has no lane ${lane}`);
    moved += await moveAll(runtime, urls.deadLetterUrl, urls.queueUrl);
  }
  await runtime.drain();
  return moved;
}

/** Receives every message of `from`, sends it to `to`, then deletes it from `from`. */
async function moveAll(runtime: LocalRuntime, from: string, to: string): Promise<number> {
  const { sqs } = runtime.aws;
  let moved = 0;
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: from, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) return moved;
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: to,
        Entries: messages.map((m, i) => ({ Id: String(i), MessageBody: m.Body! })),
      }),
    );
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: from,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
    moved += messages.length;
  }
}
