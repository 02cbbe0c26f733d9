import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import {
  describeSchedule,
  describeStep,
  type Faults,
  type Feature,
  type Schedule,
  type Step,
  scheduleArbitrary,
  scheduleJson,
} from './schedule.ts';
import type { RowValues } from './values.ts';
import { CheckerDatabase, type Tally, Violation, World } from './world.ts';

export interface CheckerOptions {
  /** Random schedules to run at most (before shrinking). */
  readonly schedules: number;
  readonly seed: number;
  /** Features left out of the schedules (see FEATURES). */
  readonly without?: ReadonlySet<Feature>;
  readonly maxSteps?: number;
  /** Time allowed for the search: no new schedule starts after it (the report says how many ran). */
  readonly searchSeconds?: number;
  /** Time allowed for shrinking a failure; after it, the smallest failing schedule so far is reported. */
  readonly shrinkSeconds?: number;
  /** fast-check replay path of a reported failure (with its seed). */
  readonly path?: string;
  /** Runs this one schedule instead of random ones. */
  readonly replay?: Schedule;
  readonly log?: (line: string) => void;
  /** Also logs every step with its duration. */
  readonly verbose?: boolean;
}

export interface CheckerReport {
  readonly ok: boolean;
  /** Schedules run by the search (shrinking not counted). */
  readonly schedules: number;
  readonly tally: Tally;
  readonly durationMs: number;
  /** The report to print: the summary line, and on failure the reproduction and first difference. */
  readonly text: string;
}

const HEAL: Step = { t: 'heal' };

/**
 * Drives the real local runtime through random fault schedules (fast-check, shrinking on failure)
 * and compares the real destinations with the reference model at every heal.
 */
export async function runChecker(options: CheckerOptions): Promise<CheckerReport> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const verbose = options.verbose ? log : undefined;
  const tally: Tally = {
    steps: 0,
    heals: 0,
    crashes: 0,
    childErrors: 0,
    stepErrors: 0,
    memberChecks: 0,
    guardrailStops: 0,
  };
  const db = await CheckerDatabase.create();
  const report = (ok: boolean, schedules: number, text: string): CheckerReport => ({
    ok,
    schedules,
    tally,
    durationMs: Date.now() - started,
    text,
  });
  try {
    if (options.replay) {
      const violation = await runSchedule(db, options.replay, tally, log, verbose);
      return violation
        ? report(false, 1, failureText({ violation, schedule: options.replay, shrinks: 0 }))
        : report(true, 1, `✔ the schedule passed (${tally.steps} steps, ${tally.heals} heals)`);
    }
    const shrinkMs = (options.shrinkSeconds ?? 180) * 1000;
    const searchMs = (options.searchSeconds ?? Number.POSITIVE_INFINITY) * 1000;
    let failedAt: number | undefined;
    let searched = 0;
    let shrinkRuns = 0;
    const property = fc.asyncProperty(
      scheduleArbitrary({ without: options.without, maxSteps: options.maxSteps }),
      async (schedule) => {
        if (failedAt === undefined) {
          // Past the search budget, schedules are skipped: they pass without running.
          if (Date.now() - started > searchMs) return;
          searched++;
        } else {
          // Past its share of the shrink budget every candidate passes: fast-check stops with the
          // smallest failure so far, and minimize() gets the rest of the budget.
          if (Date.now() - failedAt > (shrinkMs * 2) / 3) return;
          shrinkRuns++;
        }
        const t0 = Date.now();
        const violation = await runSchedule(db, schedule, tally, log, verbose);
        const seconds = ((Date.now() - t0) / 1000).toFixed(1);
        const which = failedAt === undefined ? `schedule ${searched}` : `shrinking ${shrinkRuns}`;
        const outcome = violation ? `FAILED at step ${violation.step + 1}` : 'ok';
        log(`${which}: ${schedule.steps.length + 1} steps, ${outcome} (${seconds} s)`);
        if (violation) {
          failedAt ??= Date.now();
          throw violation;
        }
      },
    );
    const details = await fc.check(property, {
      seed: options.seed,
      numRuns: options.schedules,
      ...(options.path ? { path: options.path } : {}),
      // Our report replaces fast-check's own.
      includeErrorInReport: false,
    });
    if (!details.failed) {
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      return report(
        true,
        searched,
        `✔ fault checker: ${searched} schedule(s), ${tally.steps} steps (${tally.heals} heals, ${tally.crashes} crashes, ${tally.stepErrors} steps that threw under faults, ${tally.childErrors} crash children that failed without being killed, ${tally.memberChecks} membership runs checked as they ended, ${tally.guardrailStops} of them stopped by the guardrail), seed ${options.seed}: no broken guarantee (${seconds} s)`,
      );
    }
    const found = details.counterexample?.[0];
    if (!found || !(details.errorInstance instanceof Violation)) {
      return report(false, searched, `✘ fault checker failed: ${String(details.errorInstance)}`);
    }
    // fast-check shrinks values well but rarely drops a step from the middle or the end: finish
    // with a greedy pass of our own, within what is left of the shrink budget.
    const minimized = await minimize(db, found, details.errorInstance, {
      deadline: (failedAt ?? Date.now()) + shrinkMs,
      tally,
      log,
    });
    return report(
      false,
      searched,
      failureText({
        ...minimized,
        shrinks: details.numShrinks + minimized.shrinks,
        search: { seed: options.seed, schedule: searched, path: details.counterexamplePath ?? undefined, options },
      }),
    );
  } finally {
    await db.drop();
  }
}

/** Runs one schedule (and the final heal) in a fresh world; resolves the violation, if any. */
export async function runSchedule(
  db: CheckerDatabase,
  schedule: Schedule,
  tally: Tally,
  log: (line: string) => void = () => {},
  verbose?: (line: string) => void,
): Promise<Violation | undefined> {
  const steps = [...schedule.steps, HEAL];
  const world = await World.create(db, schedule, tally);
  try {
    for (const [i, step] of steps.entries()) {
      const t0 = Date.now();
      try {
        await world.run(step, i);
        const detail = world.detail ? ` → ${world.detail}` : '';
        verbose?.(`  ${String(i + 1).padStart(3)}. ${describeStep(step)} (${Date.now() - t0} ms)${detail}`);
      } catch (error) {
        if (error instanceof Violation) return error;
        // Anything else the step threw (the checker's own SQL, a runtime that would not start) is a
        // failure too, reported where it happened.
        return new Violation(i, [{ what: `step threw: ${(error as Error).stack ?? String(error)}` }]);
      }
    }
    return undefined;
  } finally {
    for (const note of world.notes) log(`  note: ${note}`);
    await world.close();
  }
}

/** Simplifications of a schedule, each strictly smaller: fewer steps, changes, faults, values. */
function* simpler(schedule: Schedule): Generator<Schedule> {
  const { steps } = schedule;
  const withStep = (i: number, step: Step | undefined): Schedule => ({
    ...schedule,
    steps: step === undefined ? steps.filter((_, j) => j !== i) : steps.map((s, j) => (j === i ? step : s)),
  });
  for (let i = steps.length - 1; i >= 0; i--) yield withStep(i, undefined);
  for (const [i, step] of steps.entries()) {
    if (step.t === 'edit' && step.changes.length > 1) {
      for (let j = step.changes.length - 1; j >= 0; j--) {
        yield withStep(i, { ...step, changes: step.changes.filter((_, k) => k !== j) });
      }
    }
    if (step.t === 'tier' && step.ids !== 'all' && step.ids.length > 1) {
      for (let j = step.ids.length - 1; j >= 0; j--) {
        yield withStep(i, { ...step, ids: step.ids.filter((_, k) => k !== j) });
      }
    }
    if (step.t === 'run' && step.force) {
      const { force: _, ...rest } = step;
      yield withStep(i, rest);
    }
    if ((step.t === 'run' || step.t === 'redrive') && step.faults) {
      const { faults, ...rest } = step;
      yield withStep(i, rest);
      for (const name of Object.keys(faults) as (keyof Faults)[]) {
        if (Object.keys(faults).length > 1) {
          const fewer = { ...faults };
          delete fewer[name];
          yield withStep(i, { ...step, faults: fewer });
        }
      }
    }
  }
  for (const [i, step] of steps.entries()) {
    if (step.t !== 'edit') continue;
    for (const [j, change] of step.changes.entries()) {
      if (change.op === 'delete') continue;
      for (const field of ['txt', 'amount', 'doc', 'dbl'] as const) {
        if (change.row[field] === null) continue;
        const row: RowValues = { ...change.row, [field]: null };
        yield withStep(i, { ...step, changes: step.changes.map((c, k) => (k === j ? { ...change, row } : c)) });
      }
    }
  }
  if (schedule.concurrency > 1) yield { ...schedule, concurrency: 1 };
  // Without the membership sync (and its steps): a failure of the record syncs alone.
  if (schedule.membership) {
    yield {
      ...schedule,
      membership: false,
      steps: steps.filter((s) => s.t !== 'tier' && !(s.t === 'run' && s.syncs === 'members')),
    };
  }
}

/** Greedy: keeps any simplification that still fails, until none does or the deadline passes. */
async function minimize(
  db: CheckerDatabase,
  schedule: Schedule,
  violation: Violation,
  context: { deadline: number; tally: Tally; log: (line: string) => void },
): Promise<{ schedule: Schedule; violation: Violation; shrinks: number }> {
  let current = { schedule, violation, shrinks: 0 };
  for (let improved = true; improved && Date.now() < context.deadline; ) {
    improved = false;
    for (const candidate of simpler(current.schedule)) {
      if (Date.now() >= context.deadline) break;
      const found = await runSchedule(db, candidate, context.tally);
      context.log(`minimizing: ${candidate.steps.length + 1} steps, ${found ? 'still fails' : 'passes'}`);
      if (found) {
        current = { schedule: candidate, violation: found, shrinks: current.shrinks + 1 };
        improved = true;
        break;
      }
    }
  }
  return current;
}

function failureText(failure: {
  violation: Violation;
  schedule: Schedule;
  shrinks: number;
  /** Absent for a replayed schedule. */
  search?: { seed: number; schedule: number; path: string | undefined; options: CheckerOptions };
}): string {
  const { violation, schedule } = failure;
  const [first, ...others] = violation.differences;
  const full = { ...schedule, steps: [...schedule.steps, HEAL] };
  const lines = [
    failure.search
      ? `✘ fault checker: a guarantee broke (seed ${failure.search.seed}, schedule ${failure.search.schedule}, shrunk ${failure.shrinks} time(s))`
      : '✘ fault checker: the replayed schedule breaks a guarantee',
    '',
    `first difference, at step ${violation.step + 1}: ${first!.what}`,
  ];
  if (first!.key !== undefined)
    lines.push(`  key       id ${first!.key}${first!.lane ? ` (destination ${first!.lane})` : ''}`);
  if (first!.expected !== undefined) lines.push(`  expected  ${first!.expected}`);
  if (first!.actual !== undefined) lines.push(`  actual    ${first!.actual}`);
  if (first!.state !== undefined) lines.push(`  state     ${first!.state}`);
  for (const other of others.slice(0, 5))
    lines.push(
      `  also: ${other.what}${other.key !== undefined ? ` — expected ${other.expected}, actual ${other.actual}` : ''}`,
    );
  if (others.length > 5) lines.push(`  … and ${others.length - 5} more`);
  lines.push(
    '',
    'reproduction (the last heal is added to every schedule):',
    ...describeSchedule(full).map((l) => `  ${l}`),
  );
  const json = scheduleJson(schedule);
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'backflow-faults-repro-')), 'schedule.json');
  writeFileSync(file, `${json}\n`);
  lines.push('', 'replay this schedule:');
  lines.push(
    json.length <= 1500 ? `  npm run check:faults -- --replay '${json}'` : `  npm run check:faults -- --replay ${file}`,
  );
  if (json.length <= 1500) lines.push(`  (also saved in ${file})`);
  if (failure.search?.path) {
    const { seed, path: searchPath, options } = failure.search;
    const without = options.without && options.without.size > 0 ? ` --without ${[...options.without].join(',')}` : '';
    const steps = options.maxSteps ? ` --steps ${options.maxSteps}` : '';
    lines.push(
      `or replay fast-check's search (before the final minimizing pass): npm run check:faults -- --seed ${seed}${without}${steps} --path ${searchPath}`,
    );
  }
  return lines.join('\n');
}
