// The tests of test/integration/pacer.test.ts (DynamoPacer on dynalite), on the embedded pacer.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedStore, openEmbeddedStore } from '#core/embedded/store';
import { lanePace, type Pacer, type Schedule } from '#core/pacing';

interface PacerSetup {
  /** A pacer as one exporter process has it. */
  pacer(): Pacer;
  stored(lane: string): Promise<Schedule | undefined>;
  close(): Promise<void>;
}

pacerContract('embedded store (LMDB)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-pacer-'));
  const store: EmbeddedStore = openEmbeddedStore(dir, { exclusive: true });
  return {
    // Exporters of one local runtime share its store: each gets the same pacer.
    pacer: () => store.pacer,
    stored: async (lane) => store.pacer.schedule(lane),
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

function pacerContract(name: string, setup: () => Promise<PacerSetup>) {
  describe(`the lane schedule shared by concurrent exporters: ${name}`, () => {
    let env: PacerSetup;
    beforeAll(async () => {
      env = await setup();
    });
    afterAll(async () => env.close());

    it('gives each slot once: eight exporters (each its own process’s pacer) never beat the rate', async () => {
      const rate = 20;
      const sent: number[] = [];
      const deadline = Date.now() + 1500;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const pace = lanePace(env.pacer(), { lane: 'crm', requestsPerSecond: rate });
          while (Date.now() < deadline) {
            await pace.take();
            sent.push(Date.now());
          }
        }),
      );
      sent.sort((a, b) => a - b);
      let busiest = 0;
      for (let i = 0, j = 0; i < sent.length; i++) {
        while (sent[i]! - sent[j]! >= 1000) j++;
        busiest = Math.max(busiest, i - j + 1);
      }
      expect(busiest).toBeLessThanOrEqual(rate + 1);
      expect(sent.length).toBeGreaterThan(20);
    });

    it('saves when it slowed down: a storm of concurrent 429s halves the rate once', async () => {
      const pacers = Array.from({ length: 5 }, () => env.pacer());
      await pacers[0]!.reserve('slow', 10, 1, 2000);
      await Promise.all(pacers.map((p) => p.slowDown('slow', 10)));
      const stored = await env.stored('slow');
      expect(stored?.rate).toBe(5);
      expect(stored?.slowedAt).toBeGreaterThan(Date.now() - 5000);
      // Half the rate: slots 200 ms apart instead of 100 ms.
      const reservation = await env.pacer().reserve('slow', 10, 2, 5000);
      expect(reservation.granted).toBe(true);
      if (reservation.granted)
        expect(Math.round(reservation.slots[1]! - reservation.slots[0]!)).toBeGreaterThanOrEqual(190);
    });

    it('refuses a reservation beyond the horizon, with the wait', async () => {
      const pacer = env.pacer();
      expect((await pacer.reserve('busy', 2, 10, 60_000)).granted).toBe(true);
      const refused = await pacer.reserve('busy', 2, 1, 1000);
      expect(refused.granted).toBe(false);
      if (!refused.granted) expect(refused.waitMs).toBeGreaterThan(3000);
    });
  });
}
