import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSEvent } from 'aws-lambda';
import { catalogue } from '#connectors/registry';
import type { DestinationConnection } from '#connectors/sdk/destination';
import { DynamoPacer } from '#core/aws/dynamo-pacer';
import { DynamoStateStore } from '#core/aws/dynamo-state-store';
import { type LaneUrls, SqsLaneQueue } from '#core/aws/sqs-lane-queue';
import type { Config } from '#core/config/load';
import { connectDestination, paceOfLane } from '#core/connect';
import { decodeMessage, type LaneMessage } from '#core/lane-message';
import {
  type Clock,
  emptyCounters,
  type LaneQueue,
  type Metrics,
  noMetrics,
  type RunCounters,
  type RunRecord,
  type Secrets,
  type StateStore,
  systemClock,
} from '#core/ports';
import { LocalSecrets } from '#core/secrets';
import { createExportHandler } from '#functions/export';
import { createPlanHandler, type PlanResult } from '#functions/plan';
import type { Environment, PlanEvent } from '#functions/shared/environment';
import { ensureLane, type LocalAws, queueDepth, startLocalAws } from './local-aws.ts';
import { withProcessClaims } from './process-claims.ts';

export interface LocalRuntimeOptions {
  readonly config: Config;
  /** Where dynalite keeps state; default `<project>/.backflow`. `false` keeps it in memory. */
  readonly stateDir?: string | false;
  readonly secrets?: Secrets;
  readonly metrics?: Metrics;
  /** Caps retry and backoff delays (tests use 0 or 1 second). */
  readonly maxDelaySeconds?: number;
  readonly visibilityTimeoutSeconds?: number;
  /** The plan's remaining-time clock, as Lambda's `getRemainingTimeInMillis` (tests shorten it). */
  readonly planBudgetMs?: () => number;
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT';
  readonly onProgress?: (event: ProgressEvent) => void;
  /** Fault injection for tests: wrap the state store or a lane's destination connection. */
  readonly wrapState?: (state: StateStore) => StateStore;
  readonly wrapDestination?: (lane: string, connection: DestinationConnection) => DestinationConnection;
  /**
   * Pollers per lane (default 1): each one plays a concurrent export invocation that receives up
   * to 10 messages at a time, as Lambda's SQS pollers do up to the lane's maximum concurrency.
   */
  readonly exportConcurrency?: number;
  /** The engine's clock (retry budgets, claims); tests move it by hand. */
  readonly clock?: Clock;
  /** How long an export holds its claim on the keys it delivers (default 25 s, plus a margin). */
  readonly claimLeaseMs?: number;
}

export type ProgressEvent =
  | { readonly type: 'plan'; readonly syncId: string; readonly result: PlanResult }
  | {
      readonly type: 'export';
      readonly lane: string;
      readonly messages: number;
      readonly failed: number;
      readonly pending: number;
    };

export interface SyncSummary {
  readonly syncId: string;
  readonly status: 'succeeded' | 'failed' | 'stopped' | 'nothing to do';
  readonly reason?: string | undefined;
  readonly run?: RunRecord | undefined;
  readonly deadLetteredMessages: number;
  readonly durationMs: number;
  /** What the plan did beyond the ordinary (a lock taken over, an interrupted run healed). */
  readonly notices?: readonly string[];
}

export interface RedriveSummary {
  readonly lane: string;
  /** Messages moved from the dead-letter queue back to the lane. */
  readonly moved: number;
  readonly records: number;
  readonly runs: { syncId: string; runId: string; records: number }[];
  /** What the export added to those runs' counters while delivering them. */
  readonly delta: Partial<RunCounters>;
  /** Messages back in the dead-letter queue afterwards. */
  readonly deadLettered: number;
}

export interface RunOptions {
  readonly full?: boolean;
  readonly force?: boolean;
}

/**
 * Plays the Lambda service on one machine: the very plan and export handlers, against dynalite
 * and fauxqs on 127.0.0.1, with SQS-shaped events, `batchItemFailures` and DLQ redrive.
 */
export class LocalRuntime {
  private readonly continuations: PlanEvent[] = [];
  private readonly connections = new Map<string, Promise<DestinationConnection>>();
  private readonly planHandler;
  private readonly exportHandlers = new Map<string, ReturnType<typeof createExportHandler>>();
  /** fauxqs keeps queues in memory: dead letters are saved here between local runs. */
  private deadLetterDir: string | undefined;

  private constructor(
    readonly options: LocalRuntimeOptions,
    readonly aws: LocalAws,
    readonly lanes: ReadonlyMap<string, LaneUrls>,
    readonly state: StateStore,
    readonly queue: LaneQueue,
    readonly environment: Environment,
  ) {
    this.planHandler = createPlanHandler(() => this.environment);
  }

  static async start(options: LocalRuntimeOptions): Promise<LocalRuntime> {
    const { config } = options;
    const stateDir =
      options.stateDir === false ? undefined : (options.stateDir ?? path.join(config.projectDir, '.backflow'));
    const aws = await startLocalAws(stateDir);
    const visibility = options.visibilityTimeoutSeconds ?? 30;
    const lanes = new Map<string, LaneUrls>();
    for (const [name, destination] of Object.entries(config.destinations)) {
      lanes.set(name, await ensureLane(aws.sqs, name, destination.lane.max_receives, visibility));
    }
    const baseState = withProcessClaims(new DynamoStateStore(aws.dynamodb, aws.table));
    const state = options.wrapState ? options.wrapState(baseState) : baseState;
    const queue = capDelays(
      new SqsLaneQueue(aws.sqs, (lane) => {
        const urls = lanes.get(lane);
        if (!urls) throw new Error(`no local lane for destination ${lane}`);
        return urls;
      }),
      options.maxDelaySeconds,
    );
    const secrets = options.secrets ?? new LocalSecrets(path.join(config.projectDir, '.backflow', 'secrets.json'));
    const logger = new Logger({ serviceName: 'backflow', logLevel: options.logLevel ?? 'SILENT' });
    let runtime: LocalRuntime | undefined;
    const environment: Environment = {
      connectors: catalogue,
      config,
      state,
      pacer: new DynamoPacer(aws.dynamodb, aws.table),
      queue,
      secrets,
      clock: options.clock ?? systemClock,
      metrics: options.metrics ?? noMetrics,
      logger,
      async continuePlan(event) {
        runtime!.continuations.push(event);
      },
      destination(lane) {
        return runtime!.destination(lane);
      },
    };
    runtime = new LocalRuntime(options, aws, lanes, state, queue, environment);
    runtime.deadLetterDir = stateDir && path.join(stateDir, 'dead-letters');
    await runtime.restoreDeadLetters();
    return runtime;
  }

  private destination(lane: string): Promise<DestinationConnection> {
    let connection = this.connections.get(lane);
    if (!connection) {
      const pace = paceOfLane(catalogue, this.options.config, lane, this.environment.pacer);
      connection = connectDestination(
        catalogue,
        this.options.config,
        lane,
        this.environment.secrets,
        undefined,
        pace,
        'write',
      ).then((c) => (this.options.wrapDestination ? this.options.wrapDestination(lane, c) : c));
      connection.catch(() => this.connections.delete(lane));
      this.connections.set(lane, connection);
    }
    return connection;
  }

  /** Runs syncs end to end: plan (continuing as needed), then drain their lanes. */
  async run(syncIds: readonly string[], options: RunOptions = {}): Promise<SyncSummary[]> {
    const started = new Map<string, number>();
    const results = new Map<string, PlanResult>();
    const notices = new Map<string, string[]>();
    const deadLetterBefore = new Map<string, number>();
    for (const lane of new Set(syncIds.map((id) => this.options.config.syncs[id]!.destination))) {
      deadLetterBefore.set(lane, (await queueDepth(this.aws.sqs, this.lanes.get(lane)!.deadLetterUrl)).total);
    }
    for (const syncId of syncIds) {
      started.set(syncId, Date.now());
      const healed = await this.healInterrupted(syncId);
      // Queues are in memory locally: if the last run did not finish, its messages may be gone with
      // the process that held them; a full re-diff re-queues whatever state says was not delivered.
      const [last] = await this.state.listRuns(syncId, 1);
      const healing = last !== undefined && ['planning', 'exporting', 'failed', 'interrupted'].includes(last.status);
      const result = await this.plan({ syncId, full: options.full === true || healing, force: options.force });
      results.set(syncId, result);
      notices.set(syncId, [...healed, ...(result.notices ?? [])]);
    }
    await this.drain();
    const summaries: SyncSummary[] = [];
    for (const syncId of syncIds) {
      const result = results.get(syncId)!;
      const lane = this.options.config.syncs[syncId]!.destination;
      // Messages SQS itself dead-lettered (an export that kept dying): the engine never saw them.
      const deadLettered =
        (await queueDepth(this.aws.sqs, this.lanes.get(lane)!.deadLetterUrl)).total - (deadLetterBefore.get(lane) ?? 0);
      let run = result.runId ? await this.state.getRun(syncId, result.runId) : undefined;
      let status: SyncSummary['status'] = result.status === 'stopped' ? 'stopped' : 'succeeded';
      if (run && result.status !== 'stopped') {
        if (run.status === 'exporting') {
          await this.state.updateRun(syncId, run.runId, {
            status: 'failed',
            error: `${run.error ? `${run.error}; ` : ''}the export did not finish: ${run.counters.messages - run.counters.messagesDone} message(s) unaccounted for on lane ${lane}`,
          });
          run = await this.state.getRun(syncId, run.runId);
        }
        status = run?.status === 'succeeded' ? 'succeeded' : 'failed';
      }
      summaries.push({
        syncId,
        status,
        reason: result.reason,
        run,
        deadLetteredMessages: Math.max(0, deadLettered),
        durationMs: Date.now() - started.get(syncId)!,
        notices: notices.get(syncId) ?? [],
      });
    }
    return summaries;
  }

  /**
   * Queues live in this process's memory: a run still `exporting` when a new process starts lost
   * its messages with the process that held them. It is marked interrupted; the run that follows
   * re-reads everything (a full re-diff) and re-sends what the state says was not delivered.
   */
  private async healInterrupted(syncId: string): Promise<string[]> {
    const notices: string[] = [];
    for (const run of await this.state.listRuns(syncId, 5)) {
      if (run.status !== 'exporting') continue;
      await this.state.updateRun(syncId, run.runId, {
        status: 'interrupted',
        error:
          'the local process stopped before its export finished; the next run re-reads the model in full and re-sends what was not delivered',
      });
      notices.push(
        `run ${run.runId} had been interrupted while exporting; this run re-reads the model in full to heal it`,
      );
    }
    return notices;
  }

  /**
   * Moves a lane's dead letters back onto it and delivers them. The exporter reopens their runs
   * and closes them again with what happened; newer versions already delivered are not overwritten.
   */
  async redrive(lane: string): Promise<RedriveSummary> {
    const urls = this.lanes.get(lane);
    if (!urls) throw new Error(`no local lane for destination ${lane}`);
    const bodies = await moveAll(this.aws.sqs, urls.deadLetterUrl, urls.queueUrl);
    const runs = new Map<string, { syncId: string; runId: string; records: number }>();
    for (const body of bodies) {
      try {
        const message = decodeMessage(body);
        const id = `${message.syncId}/${message.runId}`;
        const entry = runs.get(id) ?? { syncId: message.syncId, runId: message.runId, records: 0 };
        entry.records += message.records.length;
        runs.set(id, entry);
      } catch {
        // Not a Backflow message: the export handler reports it.
      }
    }
    const before = new Map<string, RunCounters>();
    for (const [id, r] of runs)
      before.set(id, (await this.state.getRun(r.syncId, r.runId))?.counters ?? emptyCounters());
    await this.drainLane(lane);
    const delta: Partial<Record<keyof RunCounters, number>> = {};
    for (const [id, r] of runs) {
      const after = (await this.state.getRun(r.syncId, r.runId))?.counters ?? emptyCounters();
      for (const name of Object.keys(after) as (keyof RunCounters)[]) {
        delta[name] = (delta[name] ?? 0) + after[name] - before.get(id)![name];
      }
    }
    return {
      lane,
      moved: bodies.length,
      records: [...runs.values()].reduce((sum, r) => sum + r.records, 0),
      runs: [...runs.values()],
      delta,
      deadLettered: (await queueDepth(this.aws.sqs, urls.deadLetterUrl)).total,
    };
  }

  /** Invokes the plan handler, and again for each continuation it asks for. */
  async plan(event: PlanEvent): Promise<PlanResult> {
    const started = Date.now();
    const budget = this.options.planBudgetMs ?? (() => 15 * 60 * 1000 - (Date.now() - started));
    const context = { getRemainingTimeInMillis: budget } as Pick<Context, 'getRemainingTimeInMillis'>;
    let result = await this.planHandler(event, context);
    this.options.onProgress?.({ type: 'plan', syncId: event.syncId, result });
    for (let next = this.continuations.shift(); next; next = this.continuations.shift()) {
      result = await this.planHandler(next, context);
      this.options.onProgress?.({ type: 'plan', syncId: next.syncId, result });
    }
    return result;
  }

  /** Polls every lane and invokes its export handler until no message is left (delayed ones included). */
  async drain(): Promise<void> {
    await Promise.all([...this.lanes.keys()].map((lane) => this.drainLane(lane)));
  }

  private async drainLane(lane: string): Promise<void> {
    const pollers = Math.max(1, Math.floor(this.options.exportConcurrency ?? 1));
    await Promise.all(Array.from({ length: pollers }, () => this.pollLane(lane)));
  }

  /** One poller: delivers until the lane is empty, in flight and delayed messages included. */
  private async pollLane(lane: string): Promise<void> {
    const urls = this.lanes.get(lane)!;
    for (;;) {
      const delivered = await this.deliverOnce(lane);
      if (delivered > 0) continue;
      const depth = await queueDepth(this.aws.sqs, urls.queueUrl);
      if (depth.total === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** One poll of a lane: receive up to 10 messages, invoke export, delete what succeeded. */
  async deliverOnce(lane: string): Promise<number> {
    const urls = this.lanes.get(lane)!;
    const out = await this.aws.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: urls.queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) return 0;
    const event: SQSEvent = {
      Records: messages.map((m) => ({
        messageId: m.MessageId!,
        receiptHandle: m.ReceiptHandle!,
        body: m.Body!,
        attributes: {
          ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
          SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
          SenderId: 'local',
          ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: m.MD5OfBody ?? '',
        eventSource: 'aws:sqs',
        eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:backflow-${lane}`,
        awsRegion: 'us-east-1',
      })),
    };
    // As Lambda would: the invocation's remaining time bounds how long its claims last.
    const remaining = this.options.claimLeaseMs ?? 25_000;
    const response = await this.exportHandler(lane)(event, { getRemainingTimeInMillis: () => remaining });
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    const done = event.Records.filter((r) => !failed.has(r.messageId));
    if (done.length > 0) {
      await this.aws.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: urls.queueUrl,
          Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
        }),
      );
    }
    const pending = (await queueDepth(this.aws.sqs, urls.queueUrl)).total;
    this.options.onProgress?.({ type: 'export', lane, messages: messages.length, failed: failed.size, pending });
    return messages.length;
  }

  private exportHandler(lane: string) {
    let handler = this.exportHandlers.get(lane);
    if (!handler) {
      handler = createExportHandler(
        () => this.environment,
        () => lane,
      );
      this.exportHandlers.set(lane, handler);
    }
    return handler;
  }

  /** Sends messages straight onto a lane (tests: out-of-order delivery). */
  async enqueue(lane: string, messages: readonly LaneMessage[]): Promise<void> {
    await this.queue.send(lane, messages);
  }

  /** Reads every message of a lane's DLQ (they stay there: the visibility timeout hides them briefly). */
  async deadLetters(lane: string): Promise<string[]> {
    const url = this.lanes.get(lane)!.deadLetterUrl;
    const bodies: string[] = [];
    for (;;) {
      const out = await this.aws.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: 60,
        }),
      );
      if (!out.Messages?.length) return bodies;
      bodies.push(...out.Messages.map((m) => m.Body!));
    }
  }

  private async saveDeadLetters(): Promise<void> {
    if (!this.deadLetterDir) return;
    mkdirSync(this.deadLetterDir, { recursive: true });
    for (const lane of this.lanes.keys()) {
      const file = path.join(this.deadLetterDir, `${lane}.jsonl`);
      const bodies = await this.deadLetters(lane);
      if (bodies.length > 0) writeFileSync(file, `${bodies.join('\n')}\n`);
      else rmSync(file, { force: true });
    }
  }

  private async restoreDeadLetters(): Promise<void> {
    if (!this.deadLetterDir || !existsSync(this.deadLetterDir)) return;
    for (const [lane, urls] of this.lanes) {
      const file = path.join(this.deadLetterDir, `${lane}.jsonl`);
      if (!existsSync(file)) continue;
      const bodies = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      for (let i = 0; i < bodies.length; i += 10) {
        await this.aws.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: urls.deadLetterUrl,
            Entries: bodies.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: body })),
          }),
        );
      }
    }
  }

  async stop(): Promise<void> {
    await this.saveDeadLetters();
    for (const connection of this.connections.values()) {
      await connection.then((c) => c.close()).catch(() => {});
    }
    await this.aws.stop();
  }
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

/** Locally, retry delays may be capped so a demo or a test does not wait out a vendor's backoff. */
function capDelays(queue: LaneQueue, maxDelaySeconds: number | undefined): LaneQueue {
  if (maxDelaySeconds === undefined) return queue;
  const cap = (seconds: number | undefined) => (seconds === undefined ? undefined : Math.min(seconds, maxDelaySeconds));
  return {
    send: (lane, messages, delaySeconds) => queue.send(lane, messages, cap(delaySeconds)),
    sendToDeadLetter: (lane, messages) => queue.sendToDeadLetter(lane, messages),
    retryLater: (lane, receipt, seconds) => queue.retryLater(lane, receipt, cap(seconds) ?? 0),
  };
}
