import type { RunRecord, StateStore } from './ports.ts';

/**
 * Marks a run finished once every message it queued has been handled. Called by the planner when
 * planning ends and by the exporter after each message (with the run its counter update returned),
 * so whichever comes last closes the run. Resolves the run as it now stands.
 */
export async function finishRunIfDone(state: StateStore, run: RunRecord | undefined): Promise<RunRecord | undefined> {
  if (run?.status !== 'exporting' || run.counters.messagesDone < run.counters.messages) return run;
  const status = run.counters.deadLettered > 0 ? 'failed' : 'succeeded';
  await state.updateRun(run.syncId, run.runId, { status });
  return { ...run, status };
}
