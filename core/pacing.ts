/**
 * Pacing of a lane's calls to its destination: a token bucket shared by every concurrent exporter
 * of the lane, with additive increase and multiplicative decrease of the rate on 429s.
 */
export interface Pacer {
  /** Takes one request token. Resolves 0 when granted, else the milliseconds to wait for one. */
  take(lane: string, requestsPerSecond: number): Promise<number>;
  /** The destination answered 429: halve the lane's rate (never below a twentieth of the limit). */
  slowDown(lane: string, requestsPerSecond: number): Promise<void>;
}

export interface Bucket {
  /** Tokens left at `at` (ms since epoch). */
  readonly tokens: number;
  readonly at: number;
  /** Current rate in requests per second: the limit, or less after 429s. */
  readonly rate: number;
  /** When the rate was last halved: one storm of concurrent 429s halves it once. */
  readonly slowedAt?: number;
}

/**
 * At most one token is banked: requests are spaced 1/rate apart, so no one-second window sees
 * more than rate + 1 calls, whatever the number of exporters.
 */
export const BUCKET_CAPACITY = 1;
/** Each granted request wins back this share of the limit after a slow-down. */
const INCREASE = 0.02;
const FLOOR = 0.05;
const SLOW_DOWN_EVERY_MS = 1000;

/** Pure token-bucket step: the bucket after taking a token at `now`, or the wait for one. */
export function takeToken(
  bucket: Bucket | undefined,
  limit: number,
  now: number,
): { granted: true; next: Bucket } | { granted: false; waitMs: number } {
  const rate = Math.min(limit, bucket?.rate ?? limit);
  const tokens = bucket
    ? Math.min(BUCKET_CAPACITY, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * rate)
    : BUCKET_CAPACITY;
  if (tokens < 1) return { granted: false, waitMs: Math.max(1, Math.ceil(((1 - tokens) / rate) * 1000)) };
  return {
    granted: true,
    next: { tokens: tokens - 1, at: now, rate: Math.min(limit, rate + limit * INCREASE), slowedAt: bucket?.slowedAt },
  };
}

/** Halves the rate, at most once a second, and empties the bucket. */
export function slowedDown(bucket: Bucket | undefined, limit: number, now: number): Bucket {
  const current = Math.min(limit, bucket?.rate ?? limit);
  if (bucket?.slowedAt !== undefined && now - bucket.slowedAt < SLOW_DOWN_EVERY_MS) {
    return { ...bucket, tokens: 0, at: now };
  }
  return { tokens: 0, at: now, rate: Math.max(limit * FLOOR, current / 2), slowedAt: now };
}

/** A single-process pacer (unit tests, and a lane with one exporter). */
export class MemoryPacer implements Pacer {
  readonly buckets = new Map<string, Bucket>();
  constructor(private readonly now: () => number = Date.now) {}
  async take(lane: string, limit: number): Promise<number> {
    const step = takeToken(this.buckets.get(lane), limit, this.now());
    if (!step.granted) return step.waitMs;
    this.buckets.set(lane, step.next);
    return 0;
  }
  async slowDown(lane: string, limit: number): Promise<void> {
    this.buckets.set(lane, slowedDown(this.buckets.get(lane), limit, this.now()));
  }
}
