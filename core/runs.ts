import type { StateStore } from './ports.ts';

/**
 * Marks a run finished once every message it queued has been handled. Called by the planner when
 * planning ends and by the exporter after each message, so whichever comes last closes the run.
 */
export async function finishRunIfDone(state: StateStore, syncId: string, runId: string): Promise<void> {
  const run = await state.getRun(syncId, runId);
  if (run?.status !== 'exporting' || run.counters.messagesDone < run.counters.messages) return;
  await state.updateRun(syncId, runId, { status: run.counters.deadLettered > 0 ? 'failed' : 'succeeded' });
}
