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
  /**
   * The newest version of this record put on the dead-letter queue. While it is newer than
   * `version`, a redrive could still deliver it: the next run re-sends the current payload (at a
   * newer version), so the redriven one is skipped as stale instead of overwriting it.
   */
  readonly pending?: number | undefined;
}

export type RecordStateWrite = Omit<RecordState, 'dirty' | 'pending'> & {
  /**
   * The delivery started after the record was flagged dirty (it read the flag), so it may clear
   * it. A flag set while a delivery was already under way survives that delivery's write.
   */
  readonly clearsDirty?: boolean | undefined;
};

/**
 * What a claim on records found. A claim lets one version of a record at a time be written to the
 * destination: without it, two deliveries of one key (a redrive next to a newer run, a retry next
 * to the next run's message) race, and the destination can end up with the older payload while
 * the state records the newer one.
 */
export interface ClaimResult {
  /** Claimed for this version: write them, then `putRecords` (which releases the claim). */
  readonly claimed: string[];
  /** A newer version is already stored: this delivery is stale and must be dropped. */
  readonly stale: string[];
  /** Another version is being delivered right now: try again once its claim has ended. */
  readonly busy: { key: string; until: number }[];
}

/**
 * `planning` → `exporting` → `succeeded` | `failed`. `stopped`: a guardrail, schema drift or a held
 * lock ended the run before anything was sent. `interrupted`: the invocation that planned it died
 * (killed, timed out, out of memory); the next run takes over and heals what it left.
 */
export type RunStatus = 'planning' | 'exporting' | 'succeeded' | 'failed' | 'stopped' | 'interrupted';

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
  /** Records put on the dead-letter queue once their retry budget was spent. */
  deadLettered: number;
  /** Messages put on the dead-letter queue (each holds one or more records). */
  messagesDeadLettered: number;
  stale: number;
  superseded: number;
  /** Records given back to the lane with a delay because the lane's pace was spent. */
  paced: number;
  /** Records given back to the lane with a delay because the destination answered 429. */
  throttled: number;
  /** Records given back because another delivery of the same key was in flight. */
  deferred: number;
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
  messagesDeadLettered: 0,
  stale: 0,
  superseded: 0,
  paced: 0,
  throttled: 0,
  deferred: 0,
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
  /** When its last message was handled and it closed (succeeded or failed); cleared on a redrive. */
  readonly finishedAt?: string | undefined;
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
  /**
   * The `resume` of the page at `after` (sources that keep results, e.g. Snowflake's query id and
   * row offset): the continuation reads that result on instead of running the model again.
   */
  readonly resume?: string | undefined;
}

export interface LockResult {
  readonly acquired: boolean;
  /** The lock found in place, when it belonged to another owner. */
  readonly previous?: { readonly owner: string; readonly until: number } | undefined;
}

export interface StateStore {
  /** Atomically increments and returns the sync's run sequence. */
  nextSequence(syncId: string): Promise<number>;
  /**
   * Conditional put of the sync's plan lock with a lease of `ttlMs`: succeeds if free, expired, or
   * already ours (then the lease is renewed). `force` takes it whoever holds it. Resolves whether
   * it was taken and the lock it replaced, if any (a holder that died leaves an expired lease).
   */
  acquireLock(syncId: string, owner: string, ttlMs: number, force?: boolean): Promise<LockResult>;
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
  putRecords(syncId: string, states: readonly RecordStateWrite[], now?: number): Promise<{ superseded: string[] }>;
  /**
   * Claims keys for delivering `version` until `until` (epoch ms): a claim is granted when no other
   * version holds an unexpired one (a store may also refuse it as stale when a newer version is
   * stored; the caller reads the state after claiming and drops what is older in any case).
   * `putRecords` releases the claims it writes over; `releaseClaims` releases the rest.
   */
  claimRecords(
    syncId: string,
    keys: readonly string[],
    version: number,
    now: number,
    until: number,
  ): Promise<ClaimResult>;
  releaseClaims(syncId: string, keys: readonly string[], version: number): Promise<void>;
  /** Notes that `version` of these records (those that have a state) went to the dead-letter queue. */
  /**
   * The records of `version` went to the dead-letter queue: `pending` is set on their states. A key
   * with no state yet (never delivered) gets a placeholder — status `deleted` at version 0, with
   * its match value from `matches` — so that a mirror run that finds the key gone from the model
   * queues a delete at a newer version, and the redriven add is then skipped as stale.
   */
  markDeadLettered(
    syncId: string,
    keys: readonly string[],
    version: number,
    matches?: ReadonlyMap<string, JsonValue>,
  ): Promise<void>;
  /** Every record state of a sync (all buckets). */
  listRecords(syncId: string): AsyncIterable<RecordState>;

  putRun(run: RunRecord): Promise<void>;
  /** Adds to the run's counters atomically; resolves the run as it stands after the addition. */
  addToRun(syncId: string, runId: string, counters: Partial<RunCounters>): Promise<RunRecord | undefined>;
  updateRun(
    syncId: string,
    runId: string,
    fields: { status?: RunStatus; error?: string | null; plannedAt?: string; finishedAt?: string | null },
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
