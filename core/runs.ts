import { type Clock, emptyCounters, type RunRecord, type StateStore } from './ports.ts';

/** A run's id: its sequence number, zero-padded so ids sort in run order. */
export function runIdOf(sequence: number): string {
  return String(sequence).padStart(10, '0');
}

/**
 * Marks a run finished once every message it queued has been handled. Called by the planner when
 * planning ends and by the exporter after each message (with the run its counter update returned),
 * so whichever comes last closes the run: `failed` while records of it wait in the dead-letter
 * queue, else `succeeded`. Resolves the run as it now stands.
 */
export async function finishRunIfDone(state: StateStore, run: RunRecord | undefined): Promise<RunRecord | undefined> {
  if (run?.status !== 'exporting' || run.counters.messagesDone < run.counters.messages) return run;
  const failed = run.counters.deadLettered > 0;
  // A run that got everything through in the end does not keep the error of a retry on the way.
  const finishedAt = new Date().toISOString();
  await state.updateRun(run.syncId, run.runId, {
    status: failed ? 'failed' : 'succeeded',
    finishedAt,
    ...(failed ? {} : { error: null }),
  });
  return { ...run, status: failed ? 'failed' : 'succeeded', finishedAt, ...(failed ? {} : { error: undefined }) };
}

/**
 * A dead-lettered message of a run is back on its lane (a redrive): the run is open again until it
 * is handled, and its records no longer count as dead-lettered. Its closing status is decided anew.
 */
export async function reopenRun(state: StateStore, syncId: string, runId: string, records: number): Promise<void> {
  const run = await state.addToRun(syncId, runId, { messages: 1, deadLettered: -records, messagesDeadLettered: -1 });
  if (run && run.status !== 'exporting' && run.status !== 'planning') {
    await state.updateRun(syncId, runId, { status: 'exporting', finishedAt: null });
  }
}

/**
 * A plan that failed before its run began (the source's secret is missing, its login refused):
 * recorded as a failed run, so `backflow status` shows why the sync is not running.
 */
export async function recordFailedStart(state: StateStore, syncId: string, clock: Clock, error: string): Promise<void> {
  const sequence = await state.nextSequence(syncId);
  await state.putRun({
    syncId,
    runId: runIdOf(sequence),
    sequence,
    status: 'failed',
    full: false,
    startedAt: clock.now().toISOString(),
    error,
    invalidSamples: [],
    counters: emptyCounters(),
  });
}
