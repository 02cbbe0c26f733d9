import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimitedError } from '#connectors/sdk/errors';
import { lanePace, MemoryPacer, rateAt, reserveSlots, type Schedule, slowedDown } from '#core/pacing';

/** Largest number of times in any window of `windowMs`. */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe('the lane schedule', () => {
  it('never books more than rate + 1 slots in any one-second window, however reservations arrive', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 400 }), count: fc.integer({ min: 1, max: 6 }) }), {
          minLength: 1,
          maxLength: 200,
        }),
        (rate, arrivals) => {
          let schedule: Schedule | undefined;
          let now = 1_000_000;
          const slots: number[] = [];
          for (const { gap, count } of arrivals) {
            now += gap;
            const step = reserveSlots(schedule, rate, count, now, 2000);
            if (step.granted) {
              for (const slot of step.slots) expect(slot).toBeGreaterThanOrEqual(now);
              slots.push(...step.slots);
              schedule = step.next;
            } else {
              expect(step.waitMs).toBeGreaterThan(0);
              // Refused only when the lane is booked beyond the horizon.
              expect(schedule!.tat - now).toBeGreaterThan(2000);
            }
          }
          expect(busiestWindow(slots, 1000)).toBeLessThanOrEqual(rate + 1);
        },
      ),
    );
  });

  it('halves the rate on a 429 once a second at most, and wins it back with time', () => {
    const slowed = slowedDown({ tat: 0 }, 10, 0);
    expect(slowed).toMatchObject({ rate: 5, slowedAt: 0 });
    // A storm of concurrent 429s within the second halves once.
    expect(slowedDown(slowed, 10, 500)).toBe(slowed);
    expect(slowedDown(slowed, 10, 1000).rate).toBe(2.75);
    // Never below a twentieth of the limit.
    let s: Schedule = { tat: 0 };
    for (let t = 0; t < 20_000; t += 1000) s = slowedDown(s, 10, t);
    expect(s.rate).toBeCloseTo(0.5, 3);
    // Growing back: +5% of the limit per second, up to the limit.
    expect(rateAt(slowed, 10, 0)).toBe(5);
    expect(rateAt(slowed, 10, 4000)).toBe(7);
    expect(rateAt(slowed, 10, 60_000)).toBe(10);
    // Slots after a slow-down are spaced at the slowed rate.
    const step = reserveSlots(slowed, 10, 2, 0, 2000);
    expect(step.granted && step.slots[1]! - step.slots[0]!).toBe(200);
  });

  it('spaces a reservation of several slots and refuses one booked beyond the horizon', async () => {
    let now = 0;
    const pacer = new MemoryPacer(() => now);
    expect(await pacer.reserve('l', 4, 3, 1000)).toEqual({ granted: true, slots: [0, 250, 500] });
    expect(await pacer.reserve('l', 4, 4, 1000)).toEqual({ granted: true, slots: [750, 1000, 1250, 1500] });
    // Booked until 1750: more than a 1000 ms horizon ahead.
    const refused = await pacer.reserve('l', 4, 1, 1000);
    expect(refused.granted).toBe(false);
    now = 900;
    expect(await pacer.reserve('l', 4, 1, 1000)).toEqual({ granted: true, slots: [1750] });
  });
});

describe('a connection’s pace', () => {
  it('sends each request at its slot: concurrent takes share one reservation', async () => {
    const pacer = new MemoryPacer();
    let reservations = 0;
    const reserve = pacer.reserve.bind(pacer);
    pacer.reserve = async (...args) => {
      reservations++;
      return reserve(...args);
    };
    const pace = lanePace(pacer, { lane: 'l', requestsPerSecond: 20 });
    const sent: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        await pace.take();
        sent.push(Date.now());
      }),
    );
    // One reservation for the first take, one for the nine that queued behind it.
    expect(reservations).toBe(2);
    sent.sort((a, b) => a - b);
    // Ten slots 50 ms apart: 450 ms from first to last, give or take a timer tick.
    expect(sent.at(-1)! - sent[0]!).toBeGreaterThanOrEqual(440);
  });

  it('never sends a slot late when reservations are slow: ten senders on a 20/s lane, 150 ms per reservation', async () => {
    const pacer = new MemoryPacer();
    const reserve = pacer.reserve.bind(pacer);
    pacer.reserve = async (...args) => {
      // The answer of a slow state store: the slots were computed 150 ms before they arrive.
      const reservation = await reserve(...args);
      await new Promise((r) => setTimeout(r, 150));
      return reservation;
    };
    const pace = lanePace(pacer, { lane: 'l', requestsPerSecond: 20 });
    const sent: number[] = [];
    const deadline = Date.now() + 2500;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (Date.now() < deadline) {
          try {
            await pace.take();
            sent.push(Date.now());
          } catch (error) {
            expect((error as RateLimitedError).paced).toBe(true);
          }
        }
      }),
    );
    expect(sent.length).toBeGreaterThan(20);
    expect(busiestWindow(sent, 1000)).toBeLessThanOrEqual(21);
  });

  it('throws a paced RateLimitedError when the lane is booked beyond the wait allowed', async () => {
    const pacer = new MemoryPacer();
    await pacer.reserve('l', 1, 5, 60_000);
    const pace = lanePace(pacer, { lane: 'l', requestsPerSecond: 1, maxWaitMs: 500 });
    const error = await pace.take().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).paced).toBe(true);
    expect((error as RateLimitedError).retryAfterMs).toBeGreaterThan(3000);
  });
});
