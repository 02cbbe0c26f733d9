import type { Database } from 'lmdb';
import type { Checkpoint } from '#connectors/sdk/source';
import type { JsonValue } from '#connectors/sdk/types';
import type {
  ClaimResult,
  LockResult,
  PlanProgress,
  RecordState,
  RecordStateWrite,
  RunCounters,
  RunRecord,
  RunStatus,
  StateStore,
} from '#core/ports';
import { emptyCounters } from '#core/ports';

/** A record's state as stored: the short attribute names of the DynamoDB item. */
interface StoredRecord {
  v?: number;
  s?: RecordState['status'];
  u?: string;
  h?: string;
  r?: string;
  d?: string;
  /** The match value as JSON text (exactly what was sent, big numbers included). */
  m?: string;
  x?: true;
  p?: number;
}

const SEP = '\u0001';
const END = '\u0002';
const recordKey = (syncId: string, key: string) => `rec${SEP}${syncId}${SEP}${key}`;
const runKey = (syncId: string, runId: string) => `run${SEP}${syncId}${SEP}${runId}`;
const syncKey = (kind: string, syncId: string) => `${kind}${SEP}${syncId}`;

/**
 * The StateStore on the embedded store (core/embedded/database.ts), with the semantics of
 * DynamoStateStore: each read-modify-write runs inside one LMDB write transaction (lmdb-js runs the
 * callback in the batch's transaction, where reads see the writes before them), so the conditional
 * writes of the DynamoDB adapter become plain comparisons.
 *
 * Claims live in this process's memory: the store is opened by one process at a time (see
 * `EmbeddedDatabase.open`), so every exporter that could deliver a key lives here, and a process
 * that dies takes its claims with it, as a lapsed lease would.
 */
export class EmbeddedStateStore implements StateStore {
  private readonly claims = new Map<string, { version: number; until: number }>();

  constructor(private readonly db: Database) {}

  private txn<T>(action: () => T): Promise<T> {
    return this.db.transaction(action) as Promise<T>;
  }

  nextSequence(syncId: string): Promise<number> {
    return this.txn(() => {
      const next = ((this.db.get(syncKey('seq', syncId)) as number | undefined) ?? 0) + 1;
      this.db.put(syncKey('seq', syncId), next);
      return next;
    });
  }

  acquireLock(syncId: string, owner: string, ttlMs: number, force = false): Promise<LockResult> {
    const now = Date.now();
    return this.txn(() => {
      const key = syncKey('lock', syncId);
      const held = this.db.get(key) as { owner: string; until: number } | undefined;
      if (!force && held && held.until >= now && held.owner !== owner) {
        return { acquired: false, previous: { owner: held.owner, until: held.until } };
      }
      this.db.put(key, { owner, until: now + ttlMs });
      return {
        acquired: true,
        previous: held && held.owner !== owner ? { owner: held.owner, until: held.until } : undefined,
      };
    });
  }

  async releaseLock(syncId: string, owner: string): Promise<void> {
    await this.txn(() => {
      const key = syncKey('lock', syncId);
      if ((this.db.get(key) as { owner: string } | undefined)?.owner === owner) this.db.remove(key);
    });
  }

  private getJson<T>(kind: string, syncId: string): T | undefined {
    const body = this.db.get(syncKey(kind, syncId)) as string | undefined;
    return body === undefined ? undefined : (JSON.parse(body) as T);
  }
  private async putJson(kind: string, syncId: string, value: unknown): Promise<void> {
    await this.db.put(syncKey(kind, syncId), JSON.stringify(value));
  }

  async getCursor(syncId: string): Promise<Checkpoint | undefined> {
    return this.getJson<Checkpoint>('cursor', syncId);
  }
  putCursor(syncId: string, cursor: Checkpoint): Promise<void> {
    return this.putJson('cursor', syncId, cursor);
  }
  async getModelSchema(syncId: string): Promise<Record<string, string> | undefined> {
    return this.getJson<Record<string, string>>('schema', syncId);
  }
  putModelSchema(syncId: string, schema: Record<string, string>): Promise<void> {
    return this.putJson('schema', syncId, schema);
  }
  async getProgress(syncId: string): Promise<PlanProgress | undefined> {
    return this.getJson<PlanProgress>('progress', syncId);
  }
  putProgress(syncId: string, progress: PlanProgress): Promise<void> {
    return this.putJson('progress', syncId, progress);
  }
  async clearProgress(syncId: string): Promise<void> {
    await this.db.remove(syncKey('progress', syncId));
  }

  async getRecords(syncId: string, keys: readonly string[]): Promise<Map<string, RecordState>> {
    const found = new Map<string, RecordState>();
    for (const key of keys) {
      if (found.has(key)) continue;
      const stored = this.db.get(recordKey(syncId, key)) as StoredRecord | undefined;
      if (stored) found.set(key, toRecordState(key, stored));
    }
    return found;
  }

  async claimRecords(
    syncId: string,
    keys: readonly string[],
    version: number,
    now: number,
    until: number,
  ): Promise<ClaimResult> {
    const result: ClaimResult = { claimed: [], stale: [], busy: [] };
    for (const key of new Set(keys)) {
      const stored = this.db.get(recordKey(syncId, key)) as StoredRecord | undefined;
      const claim = this.claims.get(recordKey(syncId, key));
      if ((stored?.v ?? 0) > version) result.stale.push(key);
      else if (claim && claim.version !== version && claim.until >= now) result.busy.push({ key, until: claim.until });
      else {
        this.claims.set(recordKey(syncId, key), { version, until });
        result.claimed.push(key);
      }
    }
    return result;
  }

  async releaseClaims(syncId: string, keys: readonly string[], version: number): Promise<void> {
    for (const key of keys) {
      if (this.claims.get(recordKey(syncId, key))?.version === version) this.claims.delete(recordKey(syncId, key));
    }
  }

  async markDeadLettered(
    syncId: string,
    keys: readonly string[],
    version: number,
    matches?: ReadonlyMap<string, JsonValue>,
  ): Promise<void> {
    const now = new Date().toISOString();
    await this.txn(() => {
      for (const key of new Set(keys)) {
        const id = recordKey(syncId, key);
        const stored = this.db.get(id) as StoredRecord | undefined;
        if (stored?.v === undefined) {
          // Never delivered: a placeholder a mirror run can delete if the key leaves the model.
          const match = matches?.get(key);
          if (match !== undefined)
            this.db.put(id, { v: 0, s: 'deleted', u: now, m: JSON.stringify(match), p: version });
          continue;
        }
        if (stored.p !== undefined && stored.p >= version) continue;
        this.db.put(id, { ...stored, p: version });
      }
    });
  }

  putRecords(syncId: string, states: readonly RecordStateWrite[], now = Date.now()): Promise<{ superseded: string[] }> {
    return this.txn(() => {
      const superseded: string[] = [];
      for (const state of states) {
        const id = recordKey(syncId, state.key);
        const stored = this.db.get(id) as StoredRecord | undefined;
        const claim = this.claims.get(id);
        // Newer versions win; a claim held by another version means its delivery may be racing
        // ours (our claim outlived its lease), so ours must not be recorded as what the destination holds.
        const ordered =
          (stored?.v === undefined || stored.v <= state.version) &&
          (!claim || claim.version === state.version || claim.until < now);
        if (ordered) {
          const next: StoredRecord = { v: state.version, s: state.status, u: state.updatedAt };
          if (state.hash !== undefined) next.h = state.hash;
          if (state.reason !== undefined) next.r = state.reason;
          if (state.destinationId !== undefined) next.d = state.destinationId;
          if (state.match !== undefined) next.m = JSON.stringify(state.match);
          if (stored?.p !== undefined) next.p = stored.p;
          // A flag set while this delivery was under way (it did not read it) survives its write.
          if (stored?.x && state.clearsDirty !== true) next.x = true;
          this.db.put(id, next);
          this.claims.delete(id);
          continue;
        }
        // A newer run's write landed first, or another delivery of the key ran beside ours, so the
        // destination may now hold this older payload: flag the record so the next run sends it again.
        superseded.push(state.key);
        this.db.put(id, { ...stored, x: true });
      }
      return { superseded };
    });
  }

  async *listRecords(syncId: string): AsyncIterable<RecordState> {
    const prefix = `rec${SEP}${syncId}${SEP}`;
    for (const { key, value } of this.db.getRange({ start: prefix, end: `rec${SEP}${syncId}${END}` })) {
      yield toRecordState((key as string).slice(prefix.length), value as StoredRecord);
    }
  }

  async putRun(run: RunRecord): Promise<void> {
    await this.db.put(runKey(run.syncId, run.runId), { ...run, invalidSamples: [], counters: { ...run.counters } });
  }

  addToRun(syncId: string, runId: string, counters: Partial<RunCounters>): Promise<RunRecord | undefined> {
    return this.txn(() => {
      const run = this.db.get(runKey(syncId, runId)) as RunRecord | undefined;
      if (!run) return undefined;
      const next = { ...emptyCounters(), ...run.counters };
      for (const [name, value] of Object.entries(counters)) {
        if (typeof value === 'number') next[name as keyof RunCounters] += value;
      }
      const updated: RunRecord = { ...run, counters: next };
      this.db.put(runKey(syncId, runId), updated);
      return updated;
    });
  }

  async updateRun(
    syncId: string,
    runId: string,
    fields: { status?: RunStatus; error?: string | null; plannedAt?: string; finishedAt?: string | null },
  ): Promise<void> {
    await this.txn(() => {
      const run = this.db.get(runKey(syncId, runId)) as Record<string, unknown> | undefined;
      const next: Record<string, unknown> = { ...(run ?? {}) };
      for (const [name, value] of Object.entries(fields)) {
        if (value === null) delete next[name];
        else if (value !== undefined) next[name] = value;
      }
      this.db.put(runKey(syncId, runId), next);
    });
  }

  async addInvalidSamples(
    syncId: string,
    runId: string,
    samples: readonly { key: string; reason: string }[],
  ): Promise<void> {
    if (samples.length === 0) return;
    await this.txn(() => {
      const run = this.db.get(runKey(syncId, runId)) as RunRecord | undefined;
      if (!run) return;
      this.db.put(runKey(syncId, runId), { ...run, invalidSamples: [...(run.invalidSamples ?? []), ...samples] });
    });
  }

  async getRun(syncId: string, runId: string): Promise<RunRecord | undefined> {
    const run = this.db.get(runKey(syncId, runId)) as RunRecord | undefined;
    return run && toRunRecord(run);
  }

  async listRuns(syncId: string, limit: number): Promise<RunRecord[]> {
    const runs: RunRecord[] = [];
    for (const { value } of this.db.getRange({
      start: `run${SEP}${syncId}${END}`,
      end: `run${SEP}${syncId}${SEP}`,
      reverse: true,
      limit,
    })) {
      runs.push(toRunRecord(value as RunRecord));
    }
    return runs;
  }

  /**
   * Writes states, sequences, runs and documents as they are, with no condition: the migration
   * from the dynalite store (cli/migrate-local-state.ts) copies what the old store held.
   */
  async importState(items: {
    records?: readonly { syncId: string; state: RecordState }[];
    runs?: readonly RunRecord[];
    sequences?: readonly { syncId: string; sequence: number }[];
    documents?: readonly { syncId: string; kind: 'cursor' | 'schema' | 'progress'; body: string }[];
  }): Promise<void> {
    await this.txn(() => {
      for (const { syncId, state } of items.records ?? []) {
        const stored: StoredRecord = {};
        if (state.version !== 0 || state.updatedAt !== '') {
          stored.v = state.version;
          stored.s = state.status;
          stored.u = state.updatedAt;
        }
        if (state.hash !== undefined) stored.h = state.hash;
        if (state.reason !== undefined) stored.r = state.reason;
        if (state.destinationId !== undefined) stored.d = state.destinationId;
        if (state.match !== undefined) stored.m = JSON.stringify(state.match);
        if (state.dirty) stored.x = true;
        if (state.pending !== undefined) stored.p = state.pending;
        this.db.put(recordKey(syncId, state.key), stored);
      }
      for (const run of items.runs ?? []) this.db.put(runKey(run.syncId, run.runId), { ...run });
      for (const { syncId, sequence } of items.sequences ?? []) this.db.put(syncKey('seq', syncId), sequence);
      for (const { syncId, kind, body } of items.documents ?? []) this.db.put(syncKey(kind, syncId), body);
    });
  }
}

function toRecordState(key: string, item: StoredRecord): RecordState {
  return {
    key,
    hash: item.h,
    version: item.v ?? 0,
    status: item.s ?? 'ok',
    reason: item.r,
    destinationId: item.d,
    match: item.m === undefined ? undefined : (JSON.parse(item.m) as JsonValue),
    updatedAt: item.u ?? '',
    dirty: item.x === true ? true : undefined,
    pending: item.p,
  };
}

function toRunRecord(run: RunRecord): RunRecord {
  return {
    syncId: run.syncId,
    runId: run.runId,
    sequence: run.sequence,
    status: run.status,
    full: run.full === true,
    startedAt: run.startedAt,
    plannedAt: run.plannedAt,
    finishedAt: run.finishedAt,
    error: run.error,
    invalidSamples: run.invalidSamples ?? [],
    counters: { ...emptyCounters(), ...run.counters },
  };
}
