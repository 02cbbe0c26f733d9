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
   * Reserves `count` slots on the lane, none starting before `now + leadMs` (the time the answer
   * takes to come back, so the slots are still ahead when it does). Granted: the start of each
   * slot (ms since epoch). Refused when the lane is booked more than `horizonMs` beyond that:
   * the wait before asking again.
   */
  reserve(lane: string, limit: number, count: number, horizonMs: number, leadMs?: number): Promise<Reservation>;
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
  leadMs = 0,
): { granted: true; next: Schedule; slots: number[] } | { granted: false; waitMs: number } {
  const interval = 1000 / rateAt(schedule, limit, now);
  const earliest = now + leadMs;
  const start = Math.max(earliest, schedule?.tat ?? earliest);
  if (start - earliest > horizonMs) return { granted: false, waitMs: Math.ceil(start - now - horizonMs / 2) };
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
  async reserve(lane: string, limit: number, count: number, horizonMs: number, leadMs = 0): Promise<Reservation> {
    const step = reserveSlots(this.schedules.get(lane), limit, count, this.now(), horizonMs, leadMs);
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
  readonly now?: () => number;
}

/** Attempts of one request to get a slot that is still ahead when the reservation answers. */
const MAX_SLOT_ATTEMPTS = 4;

/**
 * The RequestPace a connection uses: each `take()` waits for one slot of the lane and sends at
 * its start. Takes that arrive together (a connector's concurrent requests) share one
 * reservation, so a busy lane costs one atomic update per group of requests, not one per request.
 * Slots are reserved a little ahead (the reservation's own measured round trip), and a slot that
 * has passed by the time the answer arrives is never used late — late slots would bunch up with
 * the next ones — but given up for a new one.
 */
export function lanePace(pacer: Pacer, options: LanePaceOptions): RequestPace {
  const now = options.now ?? Date.now;
  const maxWaitMs = options.maxWaitMs ?? 2000;
  const limit = options.requestsPerSecond;
  let waiting: { resolve: (slot: number) => void; reject: (error: unknown) => void }[] = [];
  let reserving = false;
  /** Smoothed round trip of a reservation (ms): how far ahead the next one books. */
  let roundTrip = 0;

  const reserveForWaiting = async (): Promise<void> => {
    if (reserving || waiting.length === 0) return;
    reserving = true;
    const group = waiting;
    waiting = [];
    try {
      const asked = now();
      const lead = Math.min(maxWaitMs / 2, Math.ceil(roundTrip * 1.5));
      const reservation = await pacer.reserve(options.lane, limit, group.length, maxWaitMs, lead);
      const took = now() - asked;
      roundTrip = roundTrip === 0 ? took : roundTrip * 0.7 + took * 0.3;
      if (reservation.granted) {
        for (const [i, w] of group.entries()) w.resolve(reservation.slots[i]!);
      } else {
        const error = pacedError(options.lane, limit, reservation.waitMs);
        for (const w of group) w.reject(error);
      }
    } catch (error) {
      for (const w of group) w.reject(error);
    } finally {
      reserving = false;
      void reserveForWaiting();
    }
  };

  const slot = () =>
    new Promise<number>((resolve, reject) => {
      waiting.push({ resolve, reject });
      void reserveForWaiting();
    });

  return {
    async take() {
      // A slot may start this much late: less than half the spacing, so no two requests bunch.
      const tolerance = Math.min(10, 500 / limit);
      for (let attempt = 1; attempt <= MAX_SLOT_ATTEMPTS; attempt++) {
        const wait = (await slot()) - now();
        if (wait >= -tolerance) {
          if (wait > 0) await sleep(wait);
          return;
        }
      }
      // The reservations keep answering too late to use their slots: give the records back.
      throw pacedError(options.lane, limit, 1000);
    },
    async throttled() {
      await pacer.slowDown(options.lane, limit);
    },
  };
}

function pacedError(lane: string, limit: number, waitMs: number): RateLimitedError {
  return new RateLimitedError(`lane ${lane} is paced at ${limit} request(s)/s and booked ${waitMs} ms ahead`, waitMs, {
    paced: true,
  });
}
