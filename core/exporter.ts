import { setTimeout as sleep } from 'node:timers/promises';
import type { DestinationConnection, RecordOutcome } from '#connectors/sdk/destination';
import { RateLimitedError } from './errors.ts';
import type { LaneMessage, QueuedRecord } from './lane-message.ts';
import type { Pacer } from './pacing.ts';
import type { Clock, LaneQueue, Metrics, RecordState, RecordStateWrite, RunCounters, StateStore } from './ports.ts';
import { finishRunIfDone } from './runs.ts';

export interface ExportDependencies {
  /** Shared token bucket of the lane; without it calls are not paced. */
  readonly pacer?: Pacer;
  readonly state: StateStore;
  readonly queue: LaneQueue;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly destination: DestinationConnection;
}

export interface ExportOptions {
  /** Lane the message came from; retries go back on it. */
  readonly lane: string;
  /** Retry rounds for records the destination asked to retry, before they are dead-lettered. */
  readonly maxAttempts?: number;
  /** The lane's pace (the connector's documented limit or the lane override). */
  readonly requestsPerSecond?: number;
  /** Longest a call waits in-process for a token before the message is given back with a delay. */
  readonly maxInlineWaitMs?: number;
}

export interface ExportResult {
  readonly counters: Partial<RunCounters>;
}

/** SQS caps DelaySeconds at 15 minutes. */
const MAX_DELAY_SECONDS = 900;

/**
 * Delivers one lane message: drops what a newer run already delivered, writes the rest, records
 * each outcome in state, and gives retryable records back to the lane with a delay. Whole-batch
 * failures (auth, rate limit, network) are thrown so the caller reports the message as failed
 * and SQS redelivers it — nothing is lost.
 */
export async function exportMessage(
  message: LaneMessage,
  options: ExportOptions,
  deps: ExportDependencies,
): Promise<ExportResult> {
  const { state } = deps;
  const counters: Partial<RunCounters> & { stale: number } = { stale: 0 };
  const stored = await state.getRecords(
    message.syncId,
    message.records.map((r) => r.key),
  );
  const fresh = message.records.filter((record) => {
    const previous = stored.get(record.key);
    if (isStale(record, previous, message.version)) {
      counters.stale++;
      return false;
    }
    return true;
  });

  if (fresh.length > 0) {
    const outcomes = await deliver(message, fresh, options, deps, counters);
    if (outcomes) await applyOutcomes(message, fresh, outcomes, options, deps, counters);
  }
  counters.messagesDone = 1;
  await finishRunIfDone(state, await state.addToRun(message.syncId, message.runId, counters));
  const dimensions = { sync: message.syncId };
  for (const name of ['created', 'updated', 'deleted', 'rejected', 'retried', 'deadLettered'] as const) {
    const value = counters[name];
    if (value) deps.metrics.count(`Records${name[0]!.toUpperCase()}${name.slice(1)}`, value, dimensions);
  }
  return { counters };
}

/** A 429 storm longer than this many give-backs lets SQS count receives again (and dead-letter). */
const MAX_THROTTLES = 50;

/**
 * Takes a token from the lane's bucket, then writes. When the pace is spent for longer than a
 * short in-process wait, or the destination answers 429, the records go back on the lane with a
 * delay instead: a Lambda never sleeps long, and a throttled message does not use up its receives.
 * Resolves undefined when the records were given back.
 */
async function deliver(
  message: LaneMessage,
  records: readonly QueuedRecord[],
  options: ExportOptions,
  deps: ExportDependencies,
  counters: Partial<RunCounters>,
): Promise<RecordOutcome[] | undefined> {
  const rate = options.requestsPerSecond;
  const giveBack = async (delayMs: number, counter: 'paced' | 'throttled') => {
    const throttles = (message.throttles ?? 0) + (counter === 'throttled' ? 1 : 0);
    await deps.queue.send(
      options.lane,
      [{ ...message, throttles, records }],
      Math.min(MAX_DELAY_SECONDS, Math.max(1, Math.ceil(delayMs / 1000))),
    );
    counters[counter] = (counters[counter] ?? 0) + records.length;
    counters.messages = (counters.messages ?? 0) + 1;
    return undefined;
  };
  if (deps.pacer && rate) {
    let waited = 0;
    for (;;) {
      const wait = await deps.pacer.take(options.lane, rate);
      if (wait === 0) break;
      if (waited + wait > (options.maxInlineWaitMs ?? 2000)) return giveBack(wait, 'paced');
      await sleep(wait);
      waited += wait;
    }
  }
  try {
    return await deps.destination.write({
      object: message.object,
      matchField: message.matchField,
      fieldTypes: message.fieldTypes,
      records,
    });
  } catch (error) {
    if (!(error instanceof RateLimitedError)) throw error;
    deps.metrics.count('DestinationThrottles', 1, { lane: options.lane });
    if (deps.pacer && rate) await deps.pacer.slowDown(options.lane, rate);
    if ((message.throttles ?? 0) >= MAX_THROTTLES) throw error;
    return giveBack(error.retryAfterMs ?? 1000, 'throttled');
  }
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
  options: ExportOptions,
  deps: ExportDependencies,
  counters: Partial<RunCounters>,
): Promise<void> {
  const byKey = new Map(outcomes.map((o) => [o.key, o]));
  const now = deps.clock.now().toISOString();
  const writes: RecordStateWrite[] = [];
  const retries: QueuedRecord[] = [];
  let delayMs = 0;
  const add = (name: keyof RunCounters, n = 1) => {
    counters[name] = (counters[name] ?? 0) + n;
  };
  for (const record of records) {
    const outcome: RecordOutcome = byKey.get(record.key) ?? {
      key: record.key,
      status: 'retry',
      reason: 'the destination returned no outcome for this record',
    };
    const base = { key: record.key, version: message.version, updatedAt: now };
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
    } else {
      retries.push(record);
      delayMs = Math.max(delayMs, outcome.afterMs ?? 0);
    }
  }
  const { superseded } = await deps.state.putRecords(message.syncId, writes);
  if (superseded.length > 0) add('superseded', superseded.length);

  if (retries.length > 0) {
    const retry: LaneMessage = { ...message, attempt: message.attempt + 1, records: retries };
    if (retry.attempt > (options.maxAttempts ?? 8)) {
      await deps.queue.sendToDeadLetter(options.lane, [retry]);
      add('deadLettered', retries.length);
    } else {
      // Exponential backoff, at least what the destination asked for, at most SQS's 15 minutes.
      const backoff = Math.min(MAX_DELAY_SECONDS, Math.max(Math.ceil(delayMs / 1000), 2 ** message.attempt));
      await deps.queue.send(options.lane, [retry], backoff);
      add('retried', retries.length);
      add('messages');
    }
  }
}
