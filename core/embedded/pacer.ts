import type { Database } from 'lmdb';
import { type Pacer, type Reservation, reserveSlots, type Schedule, slowedDown } from '#core/pacing';

/**
 * The lanes' request schedules on the embedded store (`pace\u0001<lane>`), with DynamoPacer's
 * semantics: a reservation books `count` slots in one atomic step (here: one write transaction,
 * which reads the schedule and moves `tat` on), and a storm of 429s halves the rate once a second.
 * The schedule outlives the process, so a slowed lane stays slowed across runs until it recovers.
 */
export class EmbeddedPacer implements Pacer {
  constructor(
    private readonly db: Database,
    private readonly now: () => number = Date.now,
  ) {}

  private key(lane: string): string {
    return `pace\u0001${lane}`;
  }

  reserve(lane: string, limit: number, count: number, horizonMs: number): Promise<Reservation> {
    return this.db.transaction(() => {
      const step = reserveSlots(
        this.db.get(this.key(lane)) as Schedule | undefined,
        limit,
        count,
        this.now(),
        horizonMs,
      );
      if (!step.granted) return step;
      this.db.put(this.key(lane), step.next);
      return { granted: true, slots: step.slots };
    }) as Promise<Reservation>;
  }

  async slowDown(lane: string, limit: number): Promise<void> {
    await this.db.transaction(() => {
      const current = this.db.get(this.key(lane)) as Schedule | undefined;
      const next = slowedDown(current, limit, this.now());
      if (next !== current) this.db.put(this.key(lane), next);
    });
  }

  /** The lane's schedule as stored (tests). */
  schedule(lane: string): Schedule | undefined {
    return this.db.get(this.key(lane)) as Schedule | undefined;
  }
}
