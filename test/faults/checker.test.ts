import { describe, expect, it } from 'vitest';
import { runChecker } from './checker.ts';
import { parseFeatures } from './schedule.ts';

/**
 * The fault checker's share of `npm test`: a fixed seed (deterministic schedules), at most
 * SCHEDULES schedules and no new one after SECONDS, so it takes about two minutes on a 2-core
 * machine. Overrides: BACKFLOW_FAULTS_SEED, BACKFLOW_FAULTS_SCHEDULES, BACKFLOW_FAULTS_SECONDS,
 * BACKFLOW_FAULTS_WITHOUT (features to leave out, e.g. `negzero,dup`). Longer searches:
 * `npm run check:faults` (docs/testing.md).
 */
const env = process.env;
const SEED = Number(env.BACKFLOW_FAULTS_SEED ?? 20_260_101);
const SCHEDULES = Number(env.BACKFLOW_FAULTS_SCHEDULES ?? 40);
const SECONDS = Number(env.BACKFLOW_FAULTS_SECONDS ?? 100);
const SHRINK_SECONDS = 90;

describe('the fault checker', () => {
  it(
    'finds no broken guarantee in random fault schedules against real PostgreSQL and webhook destinations',
    async () => {
      const report = await runChecker({
        schedules: SCHEDULES,
        seed: SEED,
        searchSeconds: SECONDS,
        shrinkSeconds: SHRINK_SECONDS,
        without: parseFeatures(env.BACKFLOW_FAULTS_WITHOUT ?? ''),
      });
      const { tally } = report;
      console.log(
        `fault checker: seed ${SEED}, ${report.schedules} schedule(s), ${tally.steps} steps run (${tally.heals} heals, ${tally.crashes} crashes) in ${(report.durationMs / 1000).toFixed(0)} s`,
      );
      expect(report.ok, report.text).toBe(true);
    },
    (SECONDS + SHRINK_SECONDS + 120) * 1000,
  );
});
