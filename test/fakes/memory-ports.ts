import type { Checkpoint } from '#connectors/sdk/source';
import type { JsonValue } from '#connectors/sdk/types';
import type { LaneMessage } from '#core/lane-message';
import type {
  ClaimResult,
  LaneQueue,
  LockResult,
  PlanProgress,
  RecordState,
  RecordStateWrite,
  RunCounters,
  RunRecord,
  RunStatus,
  StateStore,
} from '#core/ports';

/** StateStore in memory, with the same version rule as DynamoDB's conditional write. */
export class MemoryStateStore implements StateStore {
  readonly records = new Map<string, Map<string, RecordState>>();
  private readonly items = new Map<string, unknown>();
  private readonly runs = new Map<string, RunRecord & { invalidSamples: { key: string; reason: string }[] }>();
  private readonly sequences = new Map<string, number>();
  private readonly locks = new Map<string, { owner: string; until: number }>();
  private readonly claims = new Map<string, { version: number; until: number }>();

  private syncRecords(syncId: string): Map<string, RecordState> {
    const found = this.records.get(syncId) ?? new Map<string, RecordState>();
    this.records.set(syncId, found);
    return found;
  }

  async nextSequence(syncId: string) {
    const next = (this.sequences.get(syncId) ?? 0) + 1;
    this.sequences.set(syncId, next);
    return next;
  }
  async acquireLock(syncId: string, owner: string, ttlMs: number, force = false): Promise<LockResult> {
    const lock = this.locks.get(syncId);
    const previous = lock && lock.owner !== owner ? { ...lock } : undefined;
    if (!force && lock && lock.owner !== owner && lock.until >= Date.now()) return { acquired: false, previous };
    this.locks.set(syncId, { owner, until: Date.now() + ttlMs });
    return { acquired: true, previous };
  }
  async releaseLock(syncId: string, owner: string) {
    if (this.locks.get(syncId)?.owner === owner) this.locks.delete(syncId);
  }
  async getCursor(syncId: string) {
    return this.items.get(`${syncId}/cursor`) as Checkpoint | undefined;
  }
  async putCursor(syncId: string, cursor: Checkpoint) {
    this.items.set(`${syncId}/cursor`, cursor);
  }
  async getModelSchema(syncId: string) {
    return this.items.get(`${syncId}/schema`) as Record<string, string> | undefined;
  }
  async putModelSchema(syncId: string, schema: Record<string, string>) {
    this.items.set(`${syncId}/schema`, schema);
  }
  async getProgress(syncId: string) {
    return this.items.get(`${syncId}/progress`) as PlanProgress | undefined;
  }
  async putProgress(syncId: string, progress: PlanProgress) {
    this.items.set(`${syncId}/progress`, progress);
  }
  async clearProgress(syncId: string) {
    this.items.delete(`${syncId}/progress`);
  }
  async getRecords(syncId: string, keys: readonly string[]) {
    const found = new Map<string, RecordState>();
    for (const key of keys) {
      const state = this.syncRecords(syncId).get(key);
      if (state) found.set(key, state);
    }
    return found;
  }
  async claimRecords(syncId: string, keys: readonly string[], version: number, now: number, until: number) {
    const result: ClaimResult = { claimed: [], stale: [], busy: [] };
    for (const key of new Set(keys)) {
      const stored = this.syncRecords(syncId).get(key);
      const claim = this.claims.get(`${syncId}/${key}`);
      if (stored && stored.version > version) result.stale.push(key);
      else if (claim && claim.version !== version && claim.until >= now) result.busy.push({ key, until: claim.until });
      else {
        this.claims.set(`${syncId}/${key}`, { version, until });
        result.claimed.push(key);
      }
    }
    return result;
  }
  async releaseClaims(syncId: string, keys: readonly string[], version: number) {
    for (const key of keys) {
      if (this.claims.get(`${syncId}/${key}`)?.version === version) this.claims.delete(`${syncId}/${key}`);
    }
  }
  async markDeadLettered(
    syncId: string,
    keys: readonly string[],
    version: number,
    matches?: ReadonlyMap<string, JsonValue>,
  ) {
    const records = this.syncRecords(syncId);
    for (const key of keys) {
      const state = records.get(key);
      const match = matches?.get(key);
      if (!state && match !== undefined) {
        records.set(key, { key, version: 0, status: 'deleted', match, updatedAt: '', pending: version });
      } else if (state && (state.pending ?? 0) < version) records.set(key, { ...state, pending: version });
    }
  }
  async putRecords(syncId: string, states: readonly RecordStateWrite[], now = Date.now()) {
    const superseded: string[] = [];
    const records = this.syncRecords(syncId);
    for (const { clearsDirty, ...state } of states) {
      const previous = records.get(state.key);
      const claim = this.claims.get(`${syncId}/${state.key}`);
      const racing = claim !== undefined && claim.version !== state.version && claim.until >= now;
      if ((previous && previous.version > state.version) || racing) {
        superseded.push(state.key);
        records.set(state.key, { ...(previous ?? state), dirty: true });
      } else {
        if (claim?.version === state.version) this.claims.delete(`${syncId}/${state.key}`);
        records.set(state.key, {
          ...state,
          ...(previous?.dirty && !clearsDirty ? { dirty: true } : {}),
          ...(previous?.pending !== undefined ? { pending: previous.pending } : {}),
        });
      }
    }
    return { superseded };
  }
  async *listRecords(syncId: string) {
    yield* this.syncRecords(syncId).values();
  }
  async putRun(run: RunRecord) {
    this.runs.set(`${run.syncId}/${run.runId}`, { ...run, invalidSamples: [], counters: { ...run.counters } });
  }
  async addToRun(syncId: string, runId: string, counters: Partial<RunCounters>) {
    const run = this.runs.get(`${syncId}/${runId}`);
    if (!run) return undefined;
    for (const [name, value] of Object.entries(counters)) run.counters[name as keyof RunCounters] += value ?? 0;
    return { ...run, counters: { ...run.counters } };
  }
  async updateRun(
    syncId: string,
    runId: string,
    fields: { status?: RunStatus; error?: string | null; plannedAt?: string; finishedAt?: string | null },
  ) {
    const run = this.runs.get(`${syncId}/${runId}`);
    if (!run) return;
    const next: Record<string, unknown> = { ...run };
    for (const [name, value] of Object.entries(fields)) {
      if (value === null) delete next[name];
      else if (value !== undefined) next[name] = value;
    }
    this.runs.set(
      `${syncId}/${runId}`,
      next as unknown as RunRecord & { invalidSamples: { key: string; reason: string }[] },
    );
  }
  async addInvalidSamples(syncId: string, runId: string, samples: readonly { key: string; reason: string }[]) {
    this.runs.get(`${syncId}/${runId}`)?.invalidSamples.push(...samples);
  }
  async getRun(syncId: string, runId: string) {
    return this.runs.get(`${syncId}/${runId}`);
  }
  async listRuns(syncId: string, limit: number) {
    return [...this.runs.values()]
      .filter((r) => r.syncId === syncId)
      .reverse()
      .slice(0, limit);
  }
}

/** A LaneQueue that keeps what was sent, with the delay asked for. */
export class MemoryLaneQueue implements LaneQueue {
  readonly sent: { lane: string; message: LaneMessage; delaySeconds?: number }[] = [];
  readonly deadLetters: { lane: string; message: LaneMessage }[] = [];
  readonly delayed: { lane: string; receiptHandle: string; seconds: number }[] = [];
  async send(lane: string, messages: readonly LaneMessage[], delaySeconds?: number) {
    for (const message of messages) this.sent.push({ lane, message, delaySeconds });
  }
  async sendToDeadLetter(lane: string, messages: readonly LaneMessage[]) {
    for (const message of messages) this.deadLetters.push({ lane, message });
  }
  async retryLater(lane: string, receiptHandle: string, seconds: number) {
    this.delayed.push({ lane, receiptHandle, seconds });
  }
}
