import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoPacer } from '#core/aws/dynamo-pacer';
import { DynamoStateStore } from '#core/aws/dynamo-state-store';
import { type LaneUrls, SqsLaneQueue } from '#core/aws/sqs-lane-queue';
import type { EmbeddedStore } from '#core/embedded/store';
import type { Pacer } from '#core/pacing';
import type { LaneQueue, StateStore } from '#core/ports';
import { ensureLane, type LocalAws, queueDepth, startLocalAws } from './local-aws.ts';
import { withProcessClaims } from './process-claims.ts';

export interface LocalMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly receiveCount: number;
  readonly sentAt: number;
  readonly firstReceiveAt: number;
}

/**
 * What the local runtime needs of its backend: the ports the handlers use, plus the receiving side
 * of the lanes that Lambda's SQS pollers play on AWS.
 */
export interface LocalBackend {
  readonly kind: 'embedded' | 'emulators';
  readonly state: StateStore;
  readonly queue: LaneQueue;
  readonly pacer: Pacer;
  receive(lane: string, max: number): Promise<LocalMessage[]>;
  delete(lane: string, receiptHandles: readonly string[]): Promise<void>;
  /** Visible + in flight + delayed messages of the lane. */
  depth(lane: string): Promise<number>;
  deadLetterDepth(lane: string): Promise<number>;
  /** The bodies on the lane's dead-letter queue (they stay there). */
  deadLetters(lane: string): Promise<string[]>;
  /** Moves the lane's dead letters back onto it; resolves their bodies. */
  redrive(lane: string): Promise<string[]>;
  stop(): Promise<void>;
}

export interface LaneSpec {
  readonly name: string;
  readonly maxReceives: number;
}

/** The embedded store (core/embedded): lanes, state and pacing in this process. */
export async function embeddedBackend(
  store: EmbeddedStore,
  lanes: readonly LaneSpec[],
  visibilityTimeoutSeconds: number,
): Promise<LocalBackend> {
  const { queue } = store;
  for (const lane of lanes) {
    queue.ensureLane(lane.name, { maxReceives: lane.maxReceives, visibilityTimeoutSeconds });
    // The store has one owner, and it is this process: whatever was in flight belonged to a dead one.
    await queue.releaseInFlight(lane.name);
  }
  return {
    kind: 'embedded',
    state: store.state,
    queue,
    pacer: store.pacer,
    receive: (lane, max) => queue.receive(lane, max),
    delete: (lane, handles) => queue.delete(lane, handles),
    depth: async (lane) => queue.depth(lane).total,
    deadLetterDepth: async (lane) => queue.deadLetterDepth(lane).total,
    deadLetters: async (lane) => queue.deadLetters(lane),
    redrive: (lane) => queue.redrive(lane),
    stop: () => store.close(),
  };
}

/**
 * dynalite and fauxqs on 127.0.0.1 (the AWS SDK's HTTP in between, as on AWS): the bench's
 * "AWS-like" mode. fauxqs keeps queues in memory, so dead letters are saved to
 * `<stateDir>/dead-letters/<lane>.jsonl` when the runtime stops and restored when it starts.
 */
export async function emulatorBackend(
  stateDir: string | undefined,
  lanes: readonly LaneSpec[],
  visibilityTimeoutSeconds: number,
): Promise<LocalBackend & { readonly aws: LocalAws }> {
  const aws = await startLocalAws(stateDir && path.join(stateDir, 'emulators'));
  const urls = new Map<string, LaneUrls>();
  for (const lane of lanes) {
    urls.set(lane.name, await ensureLane(aws.sqs, lane.name, lane.maxReceives, visibilityTimeoutSeconds));
  }
  const urlsOf = (lane: string) => {
    const found = urls.get(lane);
    if (!found) throw new Error(`no local lane for destination ${lane}`);
    return found;
  };
  const deadLetterDir = stateDir && path.join(stateDir, 'emulators', 'dead-letters');
  const readDeadLetters = async (lane: string) => {
    const bodies: string[] = [];
    for (;;) {
      const out = await aws.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: urlsOf(lane).deadLetterUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: 60,
        }),
      );
      if (!out.Messages?.length) return bodies;
      bodies.push(...out.Messages.map((m) => m.Body!));
    }
  };
  if (deadLetterDir && existsSync(deadLetterDir)) {
    for (const [lane, lu] of urls) {
      const file = path.join(deadLetterDir, `${lane}.jsonl`);
      if (!existsSync(file)) continue;
      const bodies = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      for (let i = 0; i < bodies.length; i += 10) {
        await aws.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: lu.deadLetterUrl,
            Entries: bodies.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: body })),
          }),
        );
      }
    }
  }
  return {
    kind: 'emulators',
    aws,
    state: withProcessClaims(new DynamoStateStore(aws.dynamodb, aws.table)),
    queue: new SqsLaneQueue(aws.sqs, urlsOf),
    pacer: new DynamoPacer(aws.dynamodb, aws.table),
    async receive(lane, max) {
      const out = await aws.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: urlsOf(lane).queueUrl,
          MaxNumberOfMessages: max,
          WaitTimeSeconds: 0,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      return (out.Messages ?? []).map((m) => ({
        messageId: m.MessageId!,
        receiptHandle: m.ReceiptHandle!,
        body: m.Body!,
        receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '1'),
        sentAt: Number(m.Attributes?.SentTimestamp ?? Date.now()),
        firstReceiveAt: Number(m.Attributes?.ApproximateFirstReceiveTimestamp ?? Date.now()),
      }));
    },
    async delete(lane, handles) {
      if (handles.length === 0) return;
      await aws.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: urlsOf(lane).queueUrl,
          Entries: handles.map((h, i) => ({ Id: String(i), ReceiptHandle: h })),
        }),
      );
    },
    depth: async (lane) => (await queueDepth(aws.sqs, urlsOf(lane).queueUrl)).total,
    deadLetterDepth: async (lane) => (await queueDepth(aws.sqs, urlsOf(lane).deadLetterUrl)).total,
    deadLetters: readDeadLetters,
    redrive: (lane) => moveAll(aws.sqs, urlsOf(lane).deadLetterUrl, urlsOf(lane).queueUrl),
    async stop() {
      if (deadLetterDir) {
        mkdirSync(deadLetterDir, { recursive: true });
        for (const lane of urls.keys()) {
          const file = path.join(deadLetterDir, `${lane}.jsonl`);
          const bodies = await readDeadLetters(lane);
          if (bodies.length > 0) writeFileSync(file, `${bodies.join('\n')}\n`);
          else rmSync(file, { force: true });
        }
      }
      await aws.stop();
    },
  };
}

/** Receives every message of `from`, sends it to `to`, then deletes it from `from`. */
async function moveAll(sqs: SQSClient, from: string, to: string): Promise<string[]> {
  const moved: string[] = [];
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
    moved.push(...messages.map((m) => m.Body!));
  }
}
