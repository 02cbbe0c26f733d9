import { ChangeMessageVisibilityCommand, SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { MessagesRefusedError, TransientError } from '#core/errors';
import { encodeMessage, type LaneMessage, MAX_MESSAGE_BYTES } from '#core/lane-message';
import type { LaneQueue } from '#core/ports';

export interface LaneUrls {
  readonly queueUrl: string;
  readonly deadLetterUrl: string;
}

const MAX_ENTRIES = 10;
const SEND_ATTEMPTS = 4;

/** Lanes on SQS: SendMessageBatch of at most 10 entries and 1 MiB per call, failed entries resent. */
export class SqsLaneQueue implements LaneQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly lanes: (lane: string) => LaneUrls,
  ) {}

  async send(lane: string, messages: readonly LaneMessage[], delaySeconds?: number): Promise<void> {
    await this.sendBodies(this.lanes(lane).queueUrl, messages.map(encodeMessage), delaySeconds);
  }

  async sendToDeadLetter(lane: string, messages: readonly LaneMessage[]): Promise<void> {
    await this.sendBodies(this.lanes(lane).deadLetterUrl, messages.map(encodeMessage));
  }

  async retryLater(lane: string, receiptHandle: string, seconds: number): Promise<void> {
    await this.client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.lanes(lane).queueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: Math.max(0, Math.min(43_200, Math.round(seconds))),
      }),
    );
  }

  private async sendBodies(queueUrl: string, bodies: string[], delaySeconds?: number): Promise<void> {
    const refused: number[] = [];
    let reason = '';
    let offset = 0;
    for (const group of groupForBatch(bodies)) {
      let entries = group.map((body, i) => ({ Id: String(i), MessageBody: body, DelaySeconds: delaySeconds }));
      for (let attempt = 1; entries.length > 0; attempt++) {
        const out = await this.client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
        const failed = out.Failed ?? [];
        if (failed.length === 0) break;
        // Sender faults are about the message itself: sending it again will not help.
        for (const f of failed.filter((f) => f.SenderFault)) {
          refused.push(offset + Number(f.Id));
          reason = `${f.Code} ${f.Message ?? ''}`.trim();
        }
        const retry = new Set(failed.filter((f) => !f.SenderFault).map((f) => f.Id));
        if (retry.size > 0 && attempt >= SEND_ATTEMPTS) {
          const first = failed.find((f) => !f.SenderFault)!;
          throw new TransientError(
            `SQS failed ${retry.size} message(s) on ${queueUrl}: ${first.Code} ${first.Message ?? ''}`,
          );
        }
        entries = entries.filter((e) => retry.has(e.Id));
        if (entries.length > 0) await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
      }
      offset += group.length;
    }
    if (refused.length > 0) {
      throw new MessagesRefusedError(`SQS refused ${refused.length} message(s) on ${queueUrl}: ${reason}`, refused);
    }
  }
}

/** Splits message bodies into SendMessageBatch calls: ≤10 entries and ≤1 MiB in total each. */
export function groupForBatch(bodies: readonly string[]): string[][] {
  const groups: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const body of bodies) {
    const size = Buffer.byteLength(body);
    if (size > MAX_MESSAGE_BYTES) throw new Error(`a lane message of ${size} bytes exceeds the SQS limit of 1 MiB`);
    if (current.length > 0 && (current.length >= MAX_ENTRIES || bytes + size > MAX_MESSAGE_BYTES)) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(body);
    bytes += size;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}
