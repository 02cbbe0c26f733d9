import type { DestinationConnection, RecordOutcome } from '#connectors/sdk/destination';
import { RateLimitedError } from './errors.ts';
import type { LaneMessage, QueuedRecord } from './lane-message.ts';
import { METRICS } from './metrics.ts';
import type { Clock, LaneQueue, Metrics, RecordState, RecordStateWrite, RunCounters, StateStore } from './ports.ts';
import { finishRunIfDone, reopenRun } from './runs.ts';

export interface ExportDependencies {
  readonly state: StateStore;
  readonly queue: LaneQueue;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly destination: DestinationConnection;
}

export interface ExportOptions {
  /** Lane the message came from; retries go back on it. */
  readonly lane: string;
  /**
   * How long records may keep failing — whole-batch failures (connection refused, 5xx, auth) and
   * records the destination asked to retry — before they are dead-lettered. Default 30 minutes.
   */
  readonly retryBudgetMs?: number;
  /**
   * How long this invocation may hold its claim on the records it delivers. It must outlast the
   * longest delivery (on AWS: the invocation's remaining time); when it lapses, another delivery
   * of the same keys may start.
   */
  readonly claimLeaseMs?: number;
}

export interface ExportResult {
  readonly counters: Partial<RunCounters>;
}

/** SQS caps DelaySeconds at 15 minutes. */
const MAX_DELAY_SECONDS = 900;
export const DEFAULT_RETRY_BUDGET_MS = 30 * 60 * 1000;
export const DEFAULT_CLAIM_LEASE_MS = 60_000;

type Counters = Partial<RunCounters>;

/**
 * Delivers one lane message: drops what a newer run already delivered, claims the rest so no other
 * version of those keys is written meanwhile, writes them, records each outcome in state, and
 * gives back what must wait (the lane's pace, a 429, a key another delivery holds) with a delay.
 * Failures are retried with exponential backoff within the retry budget, then the records are
 * dead-lettered and counted on the run — the message itself always completes, so SQS's receive
 * count never decides. Only a failure of the state store or the queue is thrown (SQS redelivers).
 */
export async function exportMessage(
  received: LaneMessage,
  options: ExportOptions,
  deps: ExportDependencies,
): Promise<ExportResult> {
  const { state } = deps;
  const counters: Counters & { stale: number } = { stale: 0 };
  const message = received.deadLetteredAt ? await reopen(received, deps) : received;
  if (message.queuedAt !== undefined) {
    const age = Math.max(0, (deps.clock.now().getTime() - message.queuedAt) / 1000);
    deps.metrics.count(METRICS.recordAge, Math.round(age), { lane: options.lane });
  }
  // Claim first, then read: while the claim is held no other version of these keys is written, so
  // what is read is what the destination was last given.
  const now = deps.clock.now().getTime();
  const claim = await state.claimRecords(
    message.syncId,
    message.records.map((r) => r.key),
    message.version,
    now,
    now + (options.claimLeaseMs ?? DEFAULT_CLAIM_LEASE_MS),
  );
  counters.stale += claim.stale.length;
  if (claim.busy.length > 0) {
    // Another version of these keys is being written: wait for it rather than race it.
    const busy = new Set(claim.busy.map((b) => b.key));
    const until = Math.max(...claim.busy.map((b) => b.until));
    await giveBack(
      message,
      { records: message.records.filter((r) => busy.has(r.key)) },
      until - now,
      options,
      deps,
      counters,
      'deferred',
    );
  }
  const claimed = new Set(claim.claimed);
  const stored = await state.getRecords(message.syncId, claim.claimed);
  const records: QueuedRecord[] = [];
  const done: string[] = [];
  for (const record of message.records) {
    if (!claimed.has(record.key)) continue;
    if (isStale(record, stored.get(record.key), message.version)) {
      counters.stale++;
      done.push(record.key);
    } else records.push(record);
  }
  if (done.length > 0) await state.releaseClaims(message.syncId, done, message.version);
  if (records.length > 0) {
    const delivered = await deliver(message, records, options, deps, counters);
    const flagged = new Set(records.filter((r) => stored.get(r.key)?.dirty).map((r) => r.key));
    if (delivered) await applyOutcomes(message, records, delivered, flagged, options, deps, counters);
  }
  counters.messagesDone = 1;
  await finishRunIfDone(state, await state.addToRun(message.syncId, message.runId, counters));
  const dimensions = { sync: message.syncId };
  const recordMetrics = {
    created: METRICS.recordsCreated,
    updated: METRICS.recordsUpdated,
    deleted: METRICS.recordsDeleted,
    rejected: METRICS.recordsRejected,
    retried: METRICS.recordsRetried,
    deadLettered: METRICS.recordsDeadLettered,
  } as const;
  for (const [name, metric] of Object.entries(recordMetrics) as [keyof typeof recordMetrics, string][]) {
    const value = counters[name];
    if (value) deps.metrics.count(metric, value, dimensions);
  }
  return { counters };
}

/**
 * Dead-letters a whole message the export could not complete (its invocations kept dying, or the
 * state store failed): counted on its run like any dead letter, so the run closes `failed` with
 * the reason and a redrive reopens it. Called on the last receive SQS allows, instead of letting
 * SQS move the message where nothing would count it.
 */
export async function deadLetterUnfinished(
  message: LaneMessage,
  reason: string,
  options: Pick<ExportOptions, 'lane'>,
  deps: Pick<ExportDependencies, 'state' | 'queue' | 'clock' | 'metrics'>,
): Promise<void> {
  const now = deps.clock.now();
  await deps.queue.sendToDeadLetter(options.lane, [{ ...message, deadLetteredAt: now.toISOString() }]);
  await deps.state.markDeadLettered(
    message.syncId,
    message.records.map((r) => r.key),
    message.version,
    new Map(message.records.map((r) => [r.key, r.match])),
  );
  await deps.state.updateRun(message.syncId, message.runId, {
    error: `${message.records.length} record(s) dead-lettered on lane ${options.lane}: ${reason}`,
  });
  const run = await deps.state.addToRun(message.syncId, message.runId, {
    deadLettered: message.records.length,
    messagesDeadLettered: 1,
    messagesDone: 1,
  });
  await finishRunIfDone(deps.state, run);
  deps.metrics.count(METRICS.recordsDeadLettered, message.records.length, { sync: message.syncId });
}

/** A redriven message: its run is open again and its records get a fresh retry budget. */
async function reopen(message: LaneMessage, deps: ExportDependencies): Promise<LaneMessage> {
  await reopenRun(deps.state, message.syncId, message.runId, message.records.length);
  return {
    ...message,
    deadLetteredAt: undefined,
    failures: undefined,
    failingSince: undefined,
    attempt: 0,
    throttles: 0,
    queuedAt: deps.clock.now().getTime(),
  };
}

/** A 429 storm longer than this many give-backs counts as a failure (and spends the retry budget). */
const MAX_THROTTLES = 50;

/**
 * Gives back records a rate limit stopped — the vendor's (a 429: counted as a throttle) or the
 * lane's own pace — after `waitMs`, without spending their retry budget.
 */
async function giveBackThrottled(
  message: LaneMessage,
  records: readonly QueuedRecord[],
  waitMs: number,
  paced: boolean,
  options: ExportOptions,
  deps: ExportDependencies,
  counters: Counters,
): Promise<void> {
  if (!paced) deps.metrics.count(METRICS.destinationThrottles, 1, { lane: options.lane });
  const next = counted(paced, waitMs) ? { ...message, throttles: (message.throttles ?? 0) + 1 } : message;
  await giveBack(next, { records }, waitMs, options, deps, counters, paced ? 'paced' : 'throttled');
}

/**
 * Whether a give-back counts towards MAX_THROTTLES: the lane's own pace never does, nor a vendor
 * wait longer than SQS can delay a message (a migration or a daily quota announcing when it ends,
 * e.g. HubSpot's 477 with a Retry-After of hours): those records wait as long as the vendor says.
 */
function counted(paced: boolean, waitMs: number | undefined): boolean {
  return !paced && (waitMs ?? 0) <= MAX_DELAY_SECONDS * 1000;
}

/**
 * Writes the records. Every request the connector makes takes its slot from the lane's pace
 * first (connectors/sdk/http.ts); when the lane is booked further ahead than a short in-process
 * wait, or the destination answers 429 before anything was written, the records go back on the
 * lane with a delay: a Lambda never sleeps long. Any other failure of the whole batch is retried
 * within the budget. Resolves the outcomes, or undefined when the records were given back.
 */
async function deliver(
  message: LaneMessage,
  records: readonly QueuedRecord[],
  options: ExportOptions,
  deps: ExportDependencies,
  counters: Counters,
): Promise<RecordOutcome[] | undefined> {
  try {
    return await deps.destination.write({
      object: message.object,
      matchField: message.matchField,
      fieldTypes: message.fieldTypes,
      records,
    });
  } catch (error) {
    await deps.state.releaseClaims(
      message.syncId,
      records.map((r) => r.key),
      message.version,
    );
    if (error instanceof RateLimitedError && (message.throttles ?? 0) < MAX_THROTTLES) {
      await giveBackThrottled(message, records, error.retryAfterMs ?? 1000, error.paced, options, deps, counters);
      return undefined;
    }
    if (error instanceof RateLimitedError && !error.paced) {
      deps.metrics.count(METRICS.destinationThrottles, 1, { lane: options.lane });
    }
    deps.metrics.count(METRICS.exportErrors, 1, { lane: options.lane });
    const reason = `${(error as Error).name}: ${(error as Error).message}`;
    await deps.state.updateRun(message.syncId, message.runId, { error: reason });
    await retryOrDeadLetter(message, records, 0, reason, options, deps, counters);
    return undefined;
  }
}

/** Puts records back on the lane after `delayMs`, without spending their retry budget. */
async function giveBack(
  message: LaneMessage,
  part: { records: readonly QueuedRecord[] },
  delayMs: number,
  options: ExportOptions,
  deps: ExportDependencies,
  counters: Counters,
  counter: 'paced' | 'throttled' | 'deferred',
): Promise<void> {
  await deps.queue.send(options.lane, [{ ...message, records: part.records }], delaySeconds(delayMs));
  counters[counter] = (counters[counter] ?? 0) + part.records.length;
  counters.messages = (counters.messages ?? 0) + 1;
}

function delaySeconds(ms: number): number {
  return Math.min(MAX_DELAY_SECONDS, Math.max(1, Math.ceil(ms / 1000)));
}

/**
 * Records that failed go back on the lane with exponential backoff (at least what the destination
 * asked for) until they have been failing for the retry budget; then they go to the dead-letter
 * queue, counted on the run, to wait for a redrive.
 */
async function retryOrDeadLetter(
  message: LaneMessage,
  records: readonly QueuedRecord[],
  afterMs: number,
  reason: string,
  options: ExportOptions,
  deps: ExportDependencies,
  counters: Counters,
): Promise<void> {
  const now = deps.clock.now().getTime();
  const failingSince = message.failingSince ?? now;
  const failures = (message.failures ?? 0) + 1;
  const budget = options.retryBudgetMs ?? DEFAULT_RETRY_BUDGET_MS;
  const backoffMs = Math.max(afterMs, 1000 * 2 ** Math.min(failures - 1, 10));
  const retry: LaneMessage = { ...message, attempt: message.attempt + 1, failures, failingSince, records };
  if (now - failingSince + backoffMs > budget) {
    await deps.queue.sendToDeadLetter(options.lane, [{ ...retry, deadLetteredAt: new Date(now).toISOString() }]);
    await deps.state.markDeadLettered(
      message.syncId,
      records.map((r) => r.key),
      message.version,
      new Map(records.map((r) => [r.key, r.match])),
    );
    counters.deadLettered = (counters.deadLettered ?? 0) + records.length;
    counters.messagesDeadLettered = (counters.messagesDeadLettered ?? 0) + 1;
    const spent = Math.round((now - failingSince) / 1000);
    await deps.state.updateRun(message.syncId, message.runId, {
      error: `${records.length} record(s) dead-lettered on lane ${options.lane} after ${failures} failure(s) over ${spent} s (retry budget ${Math.round(budget / 1000)} s): ${reason}`,
    });
    return;
  }
  await deps.queue.send(options.lane, [retry], delaySeconds(backoffMs));
  counters.retried = (counters.retried ?? 0) + records.length;
  counters.messages = (counters.messages ?? 0) + 1;
}

/** Older than what is stored, or this very payload already delivered by this run (a redelivery). */
function isStale(record: QueuedRecord, previous: RecordState | undefined, version: number): boolean {
  if (!previous) return false;
  if (previous.version > version) return true;
  if (previous.version === version && !previous.dirty) {
    if (record.op === 'delete') return previous.status === 'deleted';
    return previous.hash === record.hash && previous.status !== 'deleted';
  }
  return false;
}

async function applyOutcomes(
  message: LaneMessage,
  records: readonly QueuedRecord[],
  outcomes: readonly RecordOutcome[],
  /** Keys this delivery read flagged dirty: its write may clear the flag. */
  flagged: ReadonlySet<string>,
  options: ExportOptions,
  deps: ExportDependencies,
  counters: Counters,
): Promise<void> {
  const byKey = new Map(outcomes.map((o) => [o.key, o]));
  const now = deps.clock.now().toISOString();
  const writes: RecordStateWrite[] = [];
  const retries: QueuedRecord[] = [];
  const reasons = new Set<string>();
  let delayMs = 0;
  /** Records a rate limit stopped part way through the batch: given back, budget kept. */
  const throttled: QueuedRecord[] = [];
  let throttledMs = 0;
  let paced = true;
  const canGiveBack = (message.throttles ?? 0) < MAX_THROTTLES;
  const add = (name: keyof RunCounters, n = 1) => {
    counters[name] = (counters[name] ?? 0) + n;
  };
  for (const record of records) {
    const outcome: RecordOutcome = byKey.get(record.key) ?? {
      key: record.key,
      status: 'retry',
      reason: 'the destination returned no outcome for this record',
    };
    const base = { key: record.key, version: message.version, updatedAt: now, clearsDirty: flagged.has(record.key) };
    if (outcome.status === 'ok') {
      if (record.op === 'delete') {
        writes.push({ ...base, status: 'deleted', match: record.match });
        add('deleted');
      } else {
        writes.push({
          ...base,
          status: 'ok',
          hash: record.hash,
          match: record.match,
          destinationId: outcome.destinationId,
        });
        add((outcome.action ?? (record.isNew ? 'created' : 'updated')) as keyof RunCounters);
      }
    } else if (outcome.status === 'rejected') {
      const reason = outcome.field ? `${outcome.field}: ${outcome.reason}` : outcome.reason;
      writes.push({ ...base, status: 'rejected', hash: record.hash, match: record.match, reason });
      add('rejected');
    } else if (outcome.throttled && canGiveBack) {
      throttled.push(record);
      throttledMs = Math.max(throttledMs, outcome.afterMs ?? 1000);
      if (outcome.throttled === 'rate-limit') paced = false;
    } else {
      retries.push(record);
      if (outcome.reason) reasons.add(outcome.reason);
      delayMs = Math.max(delayMs, outcome.afterMs ?? 0);
    }
  }
  const { superseded } = await deps.state.putRecords(message.syncId, writes, deps.clock.now().getTime());
  if (superseded.length > 0) add('superseded', superseded.length);

  if (throttled.length > 0) {
    await deps.state.releaseClaims(
      message.syncId,
      throttled.map((r) => r.key),
      message.version,
    );
    await giveBackThrottled(message, throttled, throttledMs, paced, options, deps, counters);
  }
  if (retries.length > 0) {
    await deps.state.releaseClaims(
      message.syncId,
      retries.map((r) => r.key),
      message.version,
    );
    const reason = `the destination asked to retry ${retries.length} record(s)${reasons.size > 0 ? `: ${[...reasons].slice(0, 3).join('; ')}` : ''}`;
    await retryOrDeadLetter(message, retries, delayMs, reason, options, deps, counters);
  }
}
