import type { Checkpoint } from '#connectors/sdk/source';
import type { JsonValue } from '#connectors/sdk/types';
import type { LaneMessage } from './lane-message.ts';

/** What was last delivered for one record of one sync. */
export interface RecordState {
  readonly key: string;
  /** Hash of the payload delivered (or refused); absent after a delete. */
  readonly hash?: string | undefined;
  /** Run sequence number that wrote this state. */
  readonly version: number;
  readonly status: 'ok' | 'rejected' | 'deleted';
  readonly reason?: string | undefined;
  readonly destinationId?: string | undefined;
  /** The match value last sent: a mirror delete needs it once the row has left the model. */
  readonly match?: JsonValue | undefined;
  readonly updatedAt: string;
  /** Set when an older write may have landed after a newer one: the next run re-sends. */
  readonly dirty?: boolean | undefined;
}

export type RecordStateWrite = Omit<RecordState, 'dirty'>;

export type RunStatus = 'planning' | 'exporting' | 'succeeded' | 'failed' | 'stopped';

/** Counters of one run; export adds to them as lanes drain. */
export interface RunCounters {
  extracted: number;
  invalid: number;
  unchanged: number;
  queued: number;
  deletesQueued: number;
  messages: number;
  created: number;
  updated: number;
  deleted: number;
  rejected: number;
  retried: number;
  deadLettered: number;
  stale: number;
  superseded: number;
  /** Records given back to the lane with a delay because the lane's pace was spent. */
  paced: number;
  /** Records given back to the lane with a delay because the destination answered 429. */
  throttled: number;
  /** Messages fully handled by export (delivered, refused or dead-lettered). */
  messagesDone: number;
}

export const emptyCounters = (): RunCounters => ({
  extracted: 0,
  invalid: 0,
  unchanged: 0,
  queued: 0,
  deletesQueued: 0,
  messages: 0,
  created: 0,
  updated: 0,
  deleted: 0,
  rejected: 0,
  retried: 0,
  deadLettered: 0,
  stale: 0,
  superseded: 0,
  paced: 0,
  throttled: 0,
  messagesDone: 0,
});

export interface RunRecord {
  readonly syncId: string;
  readonly runId: string;
  readonly sequence: number;
  readonly status: RunStatus;
  readonly full: boolean;
  readonly startedAt: string;
  readonly plannedAt?: string | undefined;
  readonly error?: string | undefined;
  /** First invalid rows with their reasons (capped). */
  readonly invalidSamples: readonly { key: string; reason: string }[];
  readonly counters: RunCounters;
}

/** Where a run that ran out of time stands, so a fresh invocation can carry on. */
export interface PlanProgress {
  readonly runId: string;
  readonly sequence: number;
  readonly full: boolean;
  readonly force: boolean;
  readonly after?: Checkpoint | undefined;
  /** For a full read of a cursor model: the cursor to store once the read completes. */
  readonly watermark?: Checkpoint | undefined;
}

export interface StateStore {
  /** Atomically increments and returns the sync's run sequence. */
  nextSequence(syncId: string): Promise<number>;
  /** Conditional put: succeeds if free, expired, or already ours. */
  acquireLock(syncId: string, owner: string, ttlMs: number): Promise<boolean>;
  releaseLock(syncId: string, owner: string): Promise<void>;

  getCursor(syncId: string): Promise<Checkpoint | undefined>;
  putCursor(syncId: string, cursor: Checkpoint): Promise<void>;

  /** Normalized types of the model's columns the last time the sync planned (schema drift). */
  getModelSchema(syncId: string): Promise<Record<string, string> | undefined>;
  putModelSchema(syncId: string, schema: Record<string, string>): Promise<void>;

  getProgress(syncId: string): Promise<PlanProgress | undefined>;
  putProgress(syncId: string, progress: PlanProgress): Promise<void>;
  clearProgress(syncId: string): Promise<void>;

  /** Batched reads (100 keys a call). */
  getRecords(syncId: string, keys: readonly string[]): Promise<Map<string, RecordState>>;
  /**
   * Writes each state unless a newer version is stored. Returns the keys whose write lost to a
   * newer version; those are marked dirty so the next run re-sends them.
   */
  putRecords(syncId: string, states: readonly RecordStateWrite[]): Promise<{ superseded: string[] }>;
  /** Every record state of a sync (all buckets). */
  listRecords(syncId: string): AsyncIterable<RecordState>;

  putRun(run: RunRecord): Promise<void>;
  /** Adds to the run's counters atomically; resolves the run as it stands after the addition. */
  addToRun(syncId: string, runId: string, counters: Partial<RunCounters>): Promise<RunRecord | undefined>;
  updateRun(
    syncId: string,
    runId: string,
    fields: { status?: RunStatus; error?: string; plannedAt?: string },
  ): Promise<void>;
  addInvalidSamples(syncId: string, runId: string, samples: readonly { key: string; reason: string }[]): Promise<void>;
  getRun(syncId: string, runId: string): Promise<RunRecord | undefined>;
  listRuns(syncId: string, limit: number): Promise<RunRecord[]>;
}

/** One SQS lane per destination (queue + DLQ). */
export interface LaneQueue {
  /** Sends messages, at most 10 and 1 MiB per call; resolves once SQS has them durably. */
  send(lane: string, messages: readonly LaneMessage[], delaySeconds?: number): Promise<void>;
  /** Puts messages straight on the lane's dead-letter queue. */
  sendToDeadLetter(lane: string, messages: readonly LaneMessage[]): Promise<void>;
  /** Makes a received message visible again after `seconds` (backoff for failed batches). */
  retryLater(lane: string, receiptHandle: string, seconds: number): Promise<void>;
}

export interface Clock {
  now(): Date;
}

/** CloudWatch metrics in namespace `Backflow` (see docs/deploy.md for names and dimensions). */
export interface Metrics {
  count(name: string, value: number, dimensions: Readonly<Record<string, string>>): void;
  milliseconds(name: string, value: number, dimensions: Readonly<Record<string, string>>): void;
}

/** Resolves a secret name to its JSON object. */
export interface Secrets {
  get(name: string): Promise<Record<string, unknown>>;
}

export const systemClock: Clock = { now: () => new Date() };
export const noMetrics: Metrics = { count: () => {}, milliseconds: () => {} };
