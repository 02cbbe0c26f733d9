import { setTimeout as sleep } from 'node:timers/promises';
import { RateLimitedError } from '#connectors/sdk/errors';
import type { RequestPace } from '#connectors/sdk/types';

/**
 * Pacing of a lane's requests to its destination, shared by every exporter of the lane.
 *
 * The lane is a schedule of request slots spaced `1000 / rate` ms apart (a "theoretical arrival
 * time", `tat`: when the next free slot begins). A reservation of `n` slots moves `tat` on by
 * `n / rate` seconds in one atomic step and tells the caller when each of its slots begins; a
 * request is sent at its slot, never earlier, so no window of one second ever sees more than
 * `rate + 1` requests, whatever the number of exporters. A 429 halves the rate (at most once a
 * second, never below a twentieth of the limit); the rate then grows back with time.
 */
export interface Pacer {
  /**
   * Reserves `count` slots on the lane. Granted: the start of each slot (ms since epoch). Refused
   * when the lane is booked more than `horizonMs` ahead: the wait before asking again.
   */
  reserve(lane: string, limit: number, count: number, horizonMs: number): Promise<Reservation>;
  /** The destination answered 429: halve the lane's rate (at most once a second). */
  slowDown(lane: string, limit: number): Promise<void>;
}

export type Reservation = { granted: true; slots: number[] } | { granted: false; waitMs: number };

/** The lane's schedule as stored. */
export interface Schedule {
  /** When the next free slot begins (ms since epoch). */
  readonly tat: number;
  /** The rate set by the last slow-down (requests per second); absent: the limit. */
  readonly rate?: number;
  /** When the rate was last halved: one storm of concurrent 429s halves it once. */
  readonly slowedAt?: number;
}

const FLOOR = 0.05;
/** After a slow-down the rate wins back this share of the limit every second. */
const RECOVERY_PER_SECOND = 0.05;
export const SLOW_DOWN_EVERY_MS = 1000;

/** The rate in force at `now`: the limit, or a slowed rate growing back towards it. */
export function rateAt(schedule: Schedule | undefined, limit: number, now: number): number {
  if (!schedule?.rate || schedule.slowedAt === undefined) return limit;
  const recovered = schedule.rate + limit * RECOVERY_PER_SECOND * (Math.max(0, now - schedule.slowedAt) / 1000);
  return Math.min(limit, recovered);
}

/** Pure reservation step: the schedule after reserving `count` slots at `now`, or the wait. */
export function reserveSlots(
  schedule: Schedule | undefined,
  limit: number,
  count: number,
  now: number,
  horizonMs: number,
): { granted: true; next: Schedule; slots: number[] } | { granted: false; waitMs: number } {
  const interval = 1000 / rateAt(schedule, limit, now);
  const start = Math.max(now, schedule?.tat ?? now);
  if (start - now > horizonMs) return { granted: false, waitMs: Math.ceil(start - now - horizonMs / 2) };
  const slots = Array.from({ length: count }, (_, i) => start + i * interval);
  return { granted: true, next: { ...schedule, tat: start + count * interval }, slots };
}

/** The schedule after a 429 at `now`: the rate halved, unless it was halved less than a second ago. */
export function slowedDown(schedule: Schedule | undefined, limit: number, now: number): Schedule {
  if (schedule?.slowedAt !== undefined && now - schedule.slowedAt < SLOW_DOWN_EVERY_MS) return schedule;
  const rate = Math.max(limit * FLOOR, rateAt(schedule, limit, now) / 2);
  return { tat: Math.max(now, schedule?.tat ?? now) + 1000 / rate, rate, slowedAt: now };
}

/** A single-process pacer (unit tests, and a lane with one exporter). */
export class MemoryPacer implements Pacer {
  readonly schedules = new Map<string, Schedule>();
  constructor(private readonly now: () => number = Date.now) {}
  async reserve(lane: string, limit: number, count: number, horizonMs: number): Promise<Reservation> {
    const step = reserveSlots(this.schedules.get(lane), limit, count, this.now(), horizonMs);
    if (!step.granted) return step;
    this.schedules.set(lane, step.next);
    return { granted: true, slots: step.slots };
  }
  async slowDown(lane: string, limit: number): Promise<void> {
    this.schedules.set(lane, slowedDown(this.schedules.get(lane), limit, this.now()));
  }
}

export interface LanePaceOptions {
  readonly lane: string;
  /** Requests per second: the connector's documented limit, or the lane's override. */
  readonly requestsPerSecond: number;
  /** Longest one request waits in-process for its slot; beyond it the records are given back. */
  readonly maxWaitMs?: number;
  /** Called on each 429 (metrics). */
  readonly onThrottle?: () => void;
  readonly now?: () => number;
}

/**
 * The RequestPace a connection uses: each `take()` waits for one slot of the lane. Takes that
 * arrive together (a connector's concurrent requests) share one reservation, so a busy lane
 * costs one atomic update per group of requests, not one per request.
 */
export function lanePace(pacer: Pacer, options: LanePaceOptions): RequestPace {
  const now = options.now ?? Date.now;
  const maxWaitMs = options.maxWaitMs ?? 2000;
  const limit = options.requestsPerSecond;
  let waiting: { resolve: (slot: number) => void; reject: (error: unknown) => void }[] = [];
  let reserving = false;

  const reserveForWaiting = async (): Promise<void> => {
    if (reserving || waiting.length === 0) return;
    reserving = true;
    const group = waiting;
    waiting = [];
    try {
      const reservation = await pacer.reserve(options.lane, limit, group.length, maxWaitMs);
      if (reservation.granted) group.forEach((w, i) => w.resolve(reservation.slots[i]!));
      else {
        const error = new RateLimitedError(
          `lane ${options.lane} is paced at ${limit} request(s)/s and booked ${reservation.waitMs} ms ahead`,
          reservation.waitMs,
          { paced: true },
        );
        for (const w of group) w.reject(error);
      }
    } catch (error) {
      for (const w of group) w.reject(error);
    } finally {
      reserving = false;
      void reserveForWaiting();
    }
  };

  return {
    async take() {
      const slot = await new Promise<number>((resolve, reject) => {
        waiting.push({ resolve, reject });
        void reserveForWaiting();
      });
      // A slot already begun (the reservation's own round trip) is used at once: every later slot
      // is at least one interval after it, so requests stay spaced as the schedule says.
      const wait = slot - now();
      if (wait > 0) await sleep(wait);
    },
    async throttled() {
      options.onThrottle?.();
      await pacer.slowDown(options.lane, limit);
    },
  };
}
