import { describe, expect, it } from 'vitest';
import { runChecker } from './checker.ts';
import { parseFeatures, type Schedule } from './schedule.ts';
import { canonicalDecimal, canonicalDouble, canonicalFields, canonicalJsonText, parseLossless } from './values.ts';

/**
 * The fault checker's share of `npm test`: a fixed seed (deterministic schedules), SCHEDULES
 * schedules — about two minutes on a 2-core machine — and, as a safety net on a slow machine, no
 * new one after SECONDS. Overrides: BACKFLOW_FAULTS_SEED, BACKFLOW_FAULTS_SCHEDULES, BACKFLOW_FAULTS_SECONDS,
 * BACKFLOW_FAULTS_WITHOUT (features to leave out, e.g. `negzero,dup`). Longer searches:
 * `npm run check:faults` (docs/testing.md).
 */
const env = process.env;
const SEED = Number(env.BACKFLOW_FAULTS_SEED ?? 20_260_101);
const SCHEDULES = Number(env.BACKFLOW_FAULTS_SCHEDULES ?? 36);
const SECONDS = Number(env.BACKFLOW_FAULTS_SECONDS ?? 130);
const SHRINK_SECONDS = 90;

describe('the fault checker', () => {
  it('compares values exactly: decimals by value at any precision, JSON numbers without a double, the sign of zero', () => {
    expect(canonicalDecimal('1.50')).toBe('1.5');
    expect(canonicalDecimal('-0.0')).toBe('0');
    expect(canonicalDecimal('1e2')).toBe('100');
    expect(canonicalDecimal('-1.5e-3')).toBe('-0.0015');
    expect(canonicalDecimal('123456789012345678901234567890.123456789')).toBe(
      '123456789012345678901234567890.123456789',
    );
    expect(canonicalJsonText('{"n": 12345678901234567890}')).not.toBe(canonicalJsonText('{"n": 12345678901234567000}'));
    expect(canonicalJsonText('{"b": 1.0, "a": [2]}')).toBe(canonicalJsonText('{"a":[2],"b":1}'));
    expect(canonicalDouble('-0')).not.toBe(canonicalDouble('0'));
    // A webhook body's numbers stay text: 2^53 + 1 is not 2^53.
    const fields = parseLossless('{"amount": 9007199254740993, "dbl": -0, "txt": "\\uFFFE"}');
    expect(canonicalFields(fields)).toMatchObject({ amount: '9007199254740993', dbl: '-0', txt: '\uFFFE' });
  });

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
        `fault checker: seed ${SEED}, ${report.schedules} schedule(s), ${tally.steps} steps run, shrinking included (${tally.heals} heals, ${tally.crashes} crashes, ${tally.memberChecks} membership runs checked as they ended, ${tally.guardrailStops} guardrail stops) in ${(report.durationMs / 1000).toFixed(0)} s`,
      );
      expect(report.ok, report.text).toBe(true);
    },
    (SECONDS + SHRINK_SECONDS + 120) * 1000,
  );
});

/**
 * Engine defects the checker found, as the shrunk schedules it printed. Each test fails until the
 * engine is fixed (then it passes, and stays as a regression test). Replay one with
 * `npm run check:faults -- --replay '<JSON>' --verbose`.
 */
describe('regressions: a redrive of an upsert dead-lettered before the key left the model', () => {
  const plain = { email: 'user1@example.com', txt: 'plain', amount: '1', doc: null, dbl: null };

  // Run 1 dead-letters the member's add (PostgreSQL down); the member leaves; run 2 succeeds and,
  // the member never having been delivered (no state `ok`), removes nothing — and records nothing
  // either. The redrive then delivers run 1's add: the list holds a member who left, over the
  // newer decision of run 2 ("never older over newer", README). The next run is even stopped by the
  // guardrail (it would remove 1 of the 1 member delivered), so only --force takes them out.
  it('a redrive never re-adds a member who left (membership sync, mirror)', async () => {
    const schedule: Schedule = {
      pageSize: 3,
      batchSize: 2,
      maxReceives: 2,
      concurrency: 1,
      mode: 'upsert',
      membership: true,
      steps: [
        { t: 'tier', ids: [1], tier: 'gold' },
        { t: 'run', full: false, syncs: 'members', faults: { pgDown: 30 } },
        { t: 'tier', ids: [1], tier: 'basic' },
        { t: 'run', full: false, syncs: 'members' },
        { t: 'redrive' },
      ],
    };
    const report = await runChecker({ schedules: 1, seed: 0, replay: schedule });
    expect(report.ok, report.text).toBe(true);
  }, 60_000);

  // The same for records: the row's upsert is dead-lettered, the row is deleted from the source,
  // and the heal's full run deletes nothing (never delivered); its redrive brings the row back and
  // its last (incremental) run sends no mirror deletes: the table keeps a row the source deleted.
  it('a redrive never brings back a row deleted from the source (record sync, mirror)', async () => {
    const schedule: Schedule = {
      pageSize: 3,
      batchSize: 2,
      maxReceives: 2,
      concurrency: 1,
      mode: 'mirror',
      steps: [
        { t: 'edit', changes: [{ op: 'set', id: 1, copy: 0, row: plain }] },
        { t: 'run', full: false, syncs: 'pg', faults: { pgDown: 30 } },
        { t: 'edit', changes: [{ op: 'delete', id: 1, copy: 0 }] },
      ],
    };
    const report = await runChecker({ schedules: 1, seed: 0, replay: schedule });
    expect(report.ok, report.text).toBe(true);
  }, 60_000);
});
