import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryPacer, slowedDown, takeToken } from '#core/pacing';

/** Largest number of grants in any window of `windowMs`. */
function busiestWindow(grants: number[], windowMs: number): number {
  let best = 0;
  for (let i = 0, j = 0; i < grants.length; i++) {
    while (grants[i]! - grants[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe('the lane token bucket', () => {
  it('never grants more than rate + 1 calls in any one-second window, however callers arrive', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 300 }),
        (rate, gaps) => {
          const pacer = new MemoryPacer(() => now);
          let now = 1_000_000;
          const grants: number[] = [];
          for (const gap of gaps) {
            now += gap;
            const step = takeToken(pacer.buckets.get('l'), rate, now);
            if (step.granted) {
              pacer.buckets.set('l', step.next);
              grants.push(now);
            } else {
              expect(step.waitMs).toBeGreaterThan(0);
              expect(step.waitMs).toBeLessThanOrEqual(Math.ceil(1000 / rate));
            }
          }
          expect(busiestWindow(grants, 1000)).toBeLessThanOrEqual(rate + 1);
        },
      ),
    );
  });

  it('halves the rate on a 429 and wins it back additively', () => {
    const slowed = slowedDown({ tokens: 1, at: 0, rate: 10 }, 10, 0);
    expect(slowed).toEqual({ tokens: 0, at: 0, rate: 5, slowedAt: 0 });
    expect(slowedDown(slowed, 10, 500).rate).toBe(5);
    expect(slowedDown(slowed, 10, 1000).rate).toBe(2.5);
    expect(slowedDown({ tokens: 0, at: 0, rate: 0.5 }, 10, 0).rate).toBe(0.5);
    let bucket = slowed;
    let now = 0;
    let grants = 0;
    while (bucket.rate < 10 && grants < 1000) {
      now += 1000;
      const step = takeToken(bucket, 10, now);
      if (step.granted) {
        bucket = step.next;
        grants++;
      }
    }
    expect(grants).toBeGreaterThanOrEqual(25);
    expect(grants).toBeLessThanOrEqual(26);
  });

  it('lets a caller wait for exactly the next token', async () => {
    let now = 0;
    const pacer = new MemoryPacer(() => now);
    expect(await pacer.take('l', 4)).toBe(0);
    expect(await pacer.take('l', 4)).toBe(250);
    now += 250;
    expect(await pacer.take('l', 4)).toBe(0);
  });
});
