import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context, SQSEvent } from 'aws-lambda';
import { catalogue } from '#connectors/registry';
import type { DestinationConnection } from '#connectors/sdk/destination';
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
import type { LocalAws } from './local-aws.ts';
import { embeddedBackend, emulatorBackend, type LaneSpec, type LocalBackend } from './local-lanes.ts';
import { embeddedDir, openLocalStore } from './local-state.ts';

export interface LocalRuntimeOptions {
  readonly config: Config;
  /**
   * Where state and lanes persist; default `<project>/.backflow`. `false`: a temporary directory,
   * removed when the runtime stops.
   */
  readonly stateDir?: string | false;
  /**
   * `embedded` (default): state, lanes and pacing in this process, on the embedded store
   * (core/embedded) under `<stateDir>/state`. `emulators`: dynalite and fauxqs on 127.0.0.1 behind
   * the AWS SDK, as the AWS adapters run (the bench's "AWS-like" mode), under `<stateDir>/emulators`.
   */
  readonly backend?: 'embedded' | 'emulators';
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
 * Plays the Lambda service on one machine: the very plan and export handlers, with SQS-shaped
 * events, `batchItemFailures` and DLQ redrive, against the embedded store (state, lanes and pacing
 * in this process; see core/embedded) or, as `backend: 'emulators'`, dynalite and fauxqs on
 * 127.0.0.1. As on AWS, the lanes' exporters deliver while the plan is still reading.
 */
export class LocalRuntime {
  private readonly continuations: PlanEvent[] = [];
  private readonly connections = new Map<string, Promise<DestinationConnection>>();
  private readonly planHandler;
  private readonly exportHandlers = new Map<string, ReturnType<typeof createExportHandler>>();
  /** Plans under way: pollers wait for more messages while any is. */
  private planning = 0;
  /** Pollers waiting for a message to be sent (or a plan to end). */
  private waiting: (() => void)[] = [];
  private temporaryDir: string | undefined;

  private constructor(
    readonly options: LocalRuntimeOptions,
    readonly backend: LocalBackend,
    readonly laneNames: readonly string[],
    readonly state: StateStore,
    readonly queue: LaneQueue,
    readonly environment: Environment,
  ) {
    this.planHandler = createPlanHandler(() => this.environment);
  }

  /** The emulators, when the runtime runs on them (`backend: 'emulators'`). */
  get aws(): LocalAws | undefined {
    return (this.backend as { aws?: LocalAws }).aws;
  }

  static async start(options: LocalRuntimeOptions): Promise<LocalRuntime> {
    const { config } = options;
    const temporaryDir =
      options.stateDir === false ? mkdtempSync(path.join(os.tmpdir(), 'backflow-runtime-')) : undefined;
    const stateDir =
      temporaryDir ??
      (typeof options.stateDir === 'string' ? options.stateDir : path.join(config.projectDir, '.backflow'));
    const visibility = options.visibilityTimeoutSeconds ?? 30;
    const lanes: LaneSpec[] = Object.entries(config.destinations).map(([name, destination]) => ({
      name,
      maxReceives: destination.lane.max_receives,
    }));
    let backend: LocalBackend;
    try {
      backend =
        options.backend === 'emulators'
          ? await emulatorBackend(temporaryDir ? undefined : stateDir, lanes, visibility)
          : await embeddedBackend(await openLocalStore(stateDir, { exclusive: true }), lanes, visibility);
    } catch (error) {
      if (temporaryDir) rmSync(temporaryDir, { recursive: true, force: true });
      throw error;
    }
    const state = options.wrapState ? options.wrapState(backend.state) : backend.state;
    let runtime: LocalRuntime | undefined;
    // Every message sent wakes the pollers waiting for one: an exporter starts on the plan's first.
    const notifying: LaneQueue = {
      send: async (lane, messages, delaySeconds) => {
        await backend.queue.send(lane, messages, delaySeconds);
        runtime?.wake();
      },
      sendToDeadLetter: (lane, messages) => backend.queue.sendToDeadLetter(lane, messages),
      retryLater: (lane, receipt, seconds) => backend.queue.retryLater(lane, receipt, seconds),
    };
    const queue = capDelays(notifying, options.maxDelaySeconds);
    const secrets = options.secrets ?? new LocalSecrets(path.join(config.projectDir, '.backflow', 'secrets.json'));
    const logger = new Logger({ serviceName: 'backflow', logLevel: options.logLevel ?? 'SILENT' });
    const environment: Environment = {
      connectors: catalogue,
      config,
      state,
      pacer: backend.pacer,
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
    runtime = new LocalRuntime(
      options,
      backend,
      lanes.map((l) => l.name),
      state,
      queue,
      environment,
    );
    runtime.temporaryDir = temporaryDir;
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

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  /** Waits for a message to be sent or a plan to end, at most `ms`. */
  private async idle(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiting.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Messages on a lane's dead-letter queue. */
  deadLetterDepth(lane: string): Promise<number> {
    return this.backend.deadLetterDepth(lane);
  }

  /**
   * Runs syncs end to end: the lanes' exporters deliver while the plans read (each plan continuing
   * as needed), until every lane is empty once the last plan is done.
   */
  async run(syncIds: readonly string[], options: RunOptions = {}): Promise<SyncSummary[]> {
    const started = new Map<string, number>();
    const results = new Map<string, PlanResult>();
    const notices = new Map<string, string[]>();
    const deadLetterBefore = new Map<string, number>();
    for (const lane of new Set(syncIds.map((id) => this.options.config.syncs[id]!.destination))) {
      deadLetterBefore.set(lane, await this.backend.deadLetterDepth(lane));
    }
    const healed = new Map<string, string[]>();
    for (const syncId of syncIds) healed.set(syncId, await this.healInterrupted(syncId));
    this.planning++;
    const draining = this.drain();
    try {
      for (const syncId of syncIds) {
        started.set(syncId, Date.now());
        // A run that did not finish (the process stopped, or its export failed): a full re-diff
        // re-queues whatever state says was not delivered.
        const [last] = await this.state.listRuns(syncId, 1);
        const healing = last !== undefined && ['planning', 'exporting', 'failed', 'interrupted'].includes(last.status);
        const result = await this.plan({ syncId, full: options.full === true || healing, force: options.force });
        results.set(syncId, result);
        notices.set(syncId, [...(healed.get(syncId) ?? []), ...(result.notices ?? [])]);
      }
    } finally {
      this.planning--;
      this.wake();
    }
    await draining;
    const summaries: SyncSummary[] = [];
    for (const syncId of syncIds) {
      const result = results.get(syncId)!;
      const lane = this.options.config.syncs[syncId]!.destination;
      // Messages SQS itself dead-lettered (an export that kept dying): the engine never saw them.
      const deadLettered = (await this.backend.deadLetterDepth(lane)) - (deadLetterBefore.get(lane) ?? 0);
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
   * A run still `exporting` when a new process starts was cut short with the process that ran it.
   * It is marked interrupted; the run that follows re-reads everything (a full re-diff) and re-sends
   * what the state says was not delivered. (Its messages still on the lane are delivered too: those
   * older than what the new run delivers are dropped as stale.)
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
    if (!this.laneNames.includes(lane)) throw new Error(`no local lane for destination ${lane}`);
    const bodies = await this.backend.redrive(lane);
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
      deadLettered: await this.backend.deadLetterDepth(lane),
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

  /**
   * Polls every lane and invokes its export handler until no message is left (delayed ones
   * included) and no plan is under way.
   */
  async drain(): Promise<void> {
    await Promise.all(this.laneNames.map((lane) => this.drainLane(lane)));
  }

  private async drainLane(lane: string): Promise<void> {
    const pollers = Math.max(1, Math.floor(this.options.exportConcurrency ?? 1));
    await Promise.all(Array.from({ length: pollers }, () => this.pollLane(lane)));
  }

  /** One poller: delivers until the lane is empty (in flight and delayed messages included) and no plan runs. */
  private async pollLane(lane: string): Promise<void> {
    for (;;) {
      const delivered = await this.deliverOnce(lane);
      if (delivered > 0) continue;
      if (this.planning === 0 && (await this.backend.depth(lane)) === 0) return;
      await this.idle(100);
    }
  }

  /** One poll of a lane: receive up to 10 messages, invoke export, delete what succeeded. */
  async deliverOnce(lane: string): Promise<number> {
    const messages = await this.backend.receive(lane, 10);
    if (messages.length === 0) return 0;
    const event: SQSEvent = {
      Records: messages.map((m) => ({
        messageId: m.messageId,
        receiptHandle: m.receiptHandle,
        body: m.body,
        attributes: {
          ApproximateReceiveCount: String(m.receiveCount),
          SentTimestamp: String(m.sentAt),
          SenderId: 'local',
          ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt),
        },
        messageAttributes: {},
        md5OfBody: '',
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
    await this.backend.delete(
      lane,
      done.map((r) => r.receiptHandle),
    );
    if (this.options.onProgress) {
      const pending = await this.backend.depth(lane);
      this.options.onProgress({ type: 'export', lane, messages: messages.length, failed: failed.size, pending });
    }
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

  /** Reads every message of a lane's DLQ (they stay there). */
  async deadLetters(lane: string): Promise<string[]> {
    return this.backend.deadLetters(lane);
  }

  async stop(): Promise<void> {
    for (const connection of this.connections.values()) {
      await connection.then((c) => c.close()).catch(() => {});
    }
    await this.backend.stop();
    if (this.temporaryDir) rmSync(this.temporaryDir, { recursive: true, force: true });
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

export { embeddedDir };
