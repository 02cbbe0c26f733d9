import type { DestinationLimits } from '#connectors/sdk/destination';
import type { LaneConfig } from '#core/config/schema';

/** The SQS event source of a lane's export function. */
export interface LaneEventSource {
  /** SQS messages per invocation; each message already holds one destination-sized batch. */
  readonly batchSize: number;
  /** How long Lambda may wait to fill a batch, in seconds. */
  readonly maxBatchingWindowSeconds: number;
  /** Concurrent export invocations of the lane. */
  readonly maxConcurrency: number;
  /** Set when the configured or documented concurrency had to be raised to what SQS allows. */
  readonly note?: string;
}

/** A lane message is at most 1 MiB; ten of them keep one invocation's work and memory bounded. */
export const MAX_MESSAGES_PER_INVOCATION = 10;

/**
 * Concurrency of a lane whose destination documents no limit (a database, say): enough to keep a
 * backlog moving, few enough not to exhaust a server's connection slots.
 */
export const DEFAULT_LANE_CONCURRENCY = 10;

/** The range SQS event sources accept for maximum concurrency. */
const SQS_MIN_CONCURRENCY = 2;
const SQS_MAX_CONCURRENCY = 1000;

/**
 * The event source of a lane, from the destination's documented limits and the lane's overrides
 * in backflow.yml (`lane.requests_per_second`, `lane.concurrency`).
 *
 * - Batch size: up to 10 messages, but no more than the destination accepts in one second, so a
 *   rate-limited destination is not handed more work per invocation than it can take.
 * - Batching window: 1 s for a rate-limited destination (gather a second's worth of messages into
 *   one invocation), none otherwise (each message is a full destination batch: waiting would only
 *   add latency).
 * - Maximum concurrency: the lane's `concurrency`, else the documented one (else 10) but no more than
 *   the lane's requests per second, rounded up (a paced lane gains nothing from more); SQS accepts
 *   2–1,000 (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html).
 */
export function laneEventSource(limits: DestinationLimits, lane: LaneConfig): LaneEventSource {
  const requestsPerSecond = lane.requests_per_second ?? limits.requestsPerSecond?.value;
  const batchSize =
    requestsPerSecond === undefined
      ? MAX_MESSAGES_PER_INVOCATION
      : Math.max(1, Math.min(MAX_MESSAGES_PER_INVOCATION, Math.floor(requestsPerSecond)));
  const maxBatchingWindowSeconds = requestsPerSecond !== undefined && batchSize > 1 ? 1 : 0;
  const documented = limits.concurrency?.value ?? DEFAULT_LANE_CONCURRENCY;
  // More invocations than the pace can keep busy only wait for tokens and give their batches back
  // (paying for SQS and Lambda): a paced lane runs about one invocation per request a second.
  const paced = requestsPerSecond === undefined ? documented : Math.min(documented, Math.ceil(requestsPerSecond));
  const wanted = lane.concurrency ?? paced;
  const maxConcurrency = Math.max(SQS_MIN_CONCURRENCY, Math.min(SQS_MAX_CONCURRENCY, wanted));
  const note =
    maxConcurrency === wanted
      ? undefined
      : `concurrency ${wanted} is outside what an SQS event source accepts (${SQS_MIN_CONCURRENCY}–${SQS_MAX_CONCURRENCY}): using ${maxConcurrency}; the lane's requests_per_second still paces the destination`;
  return note === undefined
    ? { batchSize, maxBatchingWindowSeconds, maxConcurrency }
    : { batchSize, maxBatchingWindowSeconds, maxConcurrency, note };
}
