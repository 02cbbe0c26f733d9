import { catalogue } from '#connectors/registry';
import type { Checkpoint, SourceConnection } from '#connectors/sdk/source';
import type { Config } from '#core/config/load';
import { batchSizeOf } from '#core/connect';
import { RunStoppedError } from '#core/errors';
import type { LaneMessage } from '#core/lane-message';
import { planSync } from '#core/planner';
import {
  type ClaimResult,
  emptyCounters,
  type LaneQueue,
  type LockResult,
  noMetrics,
  type PlanProgress,
  type RecordState,
  type RecordStateWrite,
  type RunCounters,
  type RunRecord,
  type RunStatus,
  type StateStore,
  systemClock,
} from '#core/ports';

/**
 * A StateStore for dry runs: reads go to the real store, writes stay in this object. The planner
 * runs unchanged on it and nothing it does reaches the real state:
 * - `nextSequence` answers the last run's sequence + 1 without incrementing anything;
 * - the lock is always granted and never written;
 * - runs (`putRun`, `addToRun`, `updateRun`, samples) live in a local map, so `getRun` works;
 * - cursor, schema, progress and record writes are dropped.
 */
export class DryRunStateStore implements StateStore {
  private readonly runs = new Map<string, RunRecord>();
  /** Records in status `ok` listed by the planner (mirror: the guardrail's denominator). */
  synced = 0;

  constructor(private readonly delegate: StateStore) {}

  async nextSequence(syncId: string): Promise<number> {
    const [last] = await this.delegate.listRuns(syncId, 1);
    return (last?.sequence ?? 0) + 1;
  }
  async acquireLock(): Promise<LockResult> {
    return { acquired: true };
  }
  async releaseLock(): Promise<void> {}

  getCursor(syncId: string): Promise<Checkpoint | undefined> {
    return this.delegate.getCursor(syncId);
  }
  async putCursor(): Promise<void> {}

  getModelSchema(syncId: string): Promise<Record<string, string> | undefined> {
    return this.delegate.getModelSchema(syncId);
  }
  async putModelSchema(): Promise<void> {}

  /** A dry run plans a whole fresh run, never the continuation of one in progress. */
  async getProgress(): Promise<PlanProgress | undefined> {
    return undefined;
  }
  async putProgress(): Promise<void> {}
  async clearProgress(): Promise<void> {}

  getRecords(syncId: string, keys: readonly string[]): Promise<Map<string, RecordState>> {
    return this.delegate.getRecords(syncId, keys);
  }
  async putRecords(_syncId: string, _states: readonly RecordStateWrite[]): Promise<{ superseded: string[] }> {
    return { superseded: [] };
  }
  async claimRecords(): Promise<ClaimResult> {
    throw new Error('a dry run never delivers');
  }
  async releaseClaims(): Promise<void> {}
  async markDeadLettered(): Promise<void> {}
  async *listRecords(syncId: string): AsyncIterable<RecordState> {
    for await (const record of this.delegate.listRecords(syncId)) {
      if (record.status === 'ok') this.synced++;
      yield record;
    }
  }

  async putRun(run: RunRecord): Promise<void> {
    this.runs.set(`${run.syncId}/${run.runId}`, { ...run, counters: { ...run.counters } });
  }
  async addToRun(syncId: string, runId: string, counters: Partial<RunCounters>): Promise<RunRecord | undefined> {
    const run = this.runs.get(`${syncId}/${runId}`);
    if (!run) return undefined;
    const next = { ...run.counters };
    for (const [name, value] of Object.entries(counters) as [keyof RunCounters, number | undefined][]) {
      if (typeof value === 'number') next[name] += value;
    }
    const updated = { ...run, counters: next };
    this.runs.set(`${syncId}/${runId}`, updated);
    return updated;
  }
  async updateRun(
    syncId: string,
    runId: string,
    fields: { status?: RunStatus; error?: string; plannedAt?: string; finishedAt?: string | null },
  ): Promise<void> {
    const run = this.runs.get(`${syncId}/${runId}`);
    if (!run) return;
    const defined = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    this.runs.set(`${syncId}/${runId}`, { ...run, ...defined });
  }
  async addInvalidSamples(
    syncId: string,
    runId: string,
    samples: readonly { key: string; reason: string }[],
  ): Promise<void> {
    const run = this.runs.get(`${syncId}/${runId}`);
    if (run) this.runs.set(`${syncId}/${runId}`, { ...run, invalidSamples: [...run.invalidSamples, ...samples] });
  }
  async getRun(syncId: string, runId: string): Promise<RunRecord | undefined> {
    return this.runs.get(`${syncId}/${runId}`) ?? this.delegate.getRun(syncId, runId);
  }
  listRuns(syncId: string, limit: number): Promise<RunRecord[]> {
    return this.delegate.listRuns(syncId, limit);
  }
}

/** What a dry run would have queued. */
export interface DryRunTally {
  /** Lane messages: one destination call each. */
  messages: number;
  creates: number;
  updates: number;
  deletes: number;
  /** A few keys of each kind, for the report. */
  samples: { create: string[]; update: string[]; delete: string[] };
}

const SAMPLES = 5;

/** A LaneQueue that counts what it is given and sends nothing. */
export class DryRunQueue implements LaneQueue {
  readonly tally: DryRunTally = {
    messages: 0,
    creates: 0,
    updates: 0,
    deletes: 0,
    samples: { create: [], update: [], delete: [] },
  };

  async send(_lane: string, messages: readonly LaneMessage[]): Promise<void> {
    for (const message of messages) {
      this.tally.messages++;
      for (const record of message.records) {
        const kind = record.op === 'delete' ? 'delete' : record.isNew ? 'create' : 'update';
        this.tally[`${kind}s`]++;
        if (this.tally.samples[kind].length < SAMPLES) this.tally.samples[kind].push(record.key);
      }
    }
  }
  async sendToDeadLetter(): Promise<void> {}
  async retryLater(): Promise<void> {}
}

export interface DryRunVerdict {
  /** `stop`: a run would stop before sending anything (guardrail or schema drift). */
  readonly status: 'pass' | 'stop';
  readonly kind?: 'guardrail' | 'schema_drift' | 'locked' | undefined;
  readonly reason?: string | undefined;
}

export interface DryRunResult {
  readonly syncId: string;
  /** The run id the next run would take. */
  readonly runId: string;
  readonly full: boolean;
  readonly verdict: DryRunVerdict;
  /** True when the counts are those of a forced run (the run itself would stop). */
  readonly forced: boolean;
  /** Counts are unknown when even a forced run cannot plan (a mapped column is gone). */
  readonly counters?: RunCounters | undefined;
  readonly tally?: DryRunTally | undefined;
  readonly invalidSamples: readonly { key: string; reason: string }[];
  /** Mirror: records in state `ok`, the guardrail's denominator. */
  readonly synced?: number | undefined;
  readonly batchSize: number;
}

/**
 * Plans a sync as a run would, on read-only state and a counting queue. A run that a guardrail
 * or a column type change would stop is reported with that verdict, and planned again forced, so
 * the counts say what `--force` would do.
 */
export async function dryRunPlan(
  config: Config,
  syncId: string,
  deps: { state: StateStore; source: SourceConnection; full?: boolean },
): Promise<DryRunResult> {
  const sync = config.syncs[syncId]!;
  const model = config.models[sync.model]!;
  const batchSize = batchSizeOf(catalogue, config, sync.destination);
  const attempt = async (force: boolean) => {
    const state = new DryRunStateStore(deps.state);
    const queue = new DryRunQueue();
    const outcome = await planSync(
      { sync, model, lane: sync.destination, batchSize, full: deps.full, force },
      { state, queue, clock: systemClock, metrics: noMetrics, source: deps.source },
    );
    if (outcome.status !== 'planned') throw new Error('a dry run never hands over');
    return { run: outcome.run, tally: queue.tally, synced: sync.mode === 'mirror' ? state.synced : undefined };
  };
  let verdict: DryRunVerdict = { status: 'pass' };
  let forced = false;
  let planned: Awaited<ReturnType<typeof attempt>> | undefined;
  try {
    planned = await attempt(false);
  } catch (error) {
    if (!(error instanceof RunStoppedError)) throw error;
    verdict = { status: 'stop', kind: error.reason, reason: error.message };
    forced = true;
    try {
      planned = await attempt(true);
    } catch (again) {
      if (!(again instanceof RunStoppedError)) throw again;
      planned = undefined;
    }
  }
  const sequence = (await deps.state.listRuns(sync.id, 1))[0]?.sequence ?? 0;
  return {
    syncId: sync.id,
    runId: planned?.run.runId ?? String(sequence + 1).padStart(10, '0'),
    full: planned?.run.full ?? deps.full === true,
    verdict,
    forced,
    counters: planned ? { ...emptyCounters(), ...planned.run.counters } : undefined,
    tally: planned?.tally,
    invalidSamples: planned?.run.invalidSamples ?? [],
    synced: planned?.synced,
    batchSize,
  };
}
