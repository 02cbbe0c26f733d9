import { randomUUID } from 'node:crypto';
import type { Checkpoint, SourceConnection } from '#connectors/sdk/source';
import type { FieldType, SyncMode } from '#connectors/sdk/types';
import type { ResolvedSync } from '#core/config/load';
import type { ModelConfig } from '#core/config/schema';
import { classifyRecord, destinationFieldTypes, duplicateReason, operationFor, repeatedKeys } from './classify.ts';
import { MessagesRefusedError, RunStoppedError } from './errors.ts';
import { type LaneMessage, MessagePacker, type QueuedRecord } from './lane-message.ts';
import { compileMapping, type Mapping, mapRow, recordHash, recordKey } from './mapping.ts';
import { METRICS } from './metrics.ts';
import {
  type Clock,
  emptyCounters,
  type LaneQueue,
  type Metrics,
  type RecordState,
  type RunCounters,
  type RunRecord,
  type StateStore,
} from './ports.ts';
import { finishRunIfDone, runIdOf } from './runs.ts';

export interface PlanDependencies {
  readonly state: StateStore;
  readonly queue: LaneQueue;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly source: SourceConnection;
}

export interface PlanRequest {
  readonly sync: ResolvedSync;
  readonly model: ModelConfig;
  /** Lane (destination name) the records are queued on. */
  readonly lane: string;
  /** Records per message: the destination's batch size. */
  readonly batchSize: number;
  /** Re-read and re-diff the whole model, ignoring the cursor. */
  readonly full?: boolean;
  /** Run even when a guardrail says stop. */
  readonly force?: boolean;
  /** Milliseconds left in this invocation; the plan hands over to a fresh one before it runs out. */
  readonly remainingMs?: () => number;
  /** Stop and hand over when fewer than this many milliseconds remain. */
  readonly reserveMs?: number;
  /** Largest message body in bytes (tests shrink it). */
  readonly maxMessageBytes?: number;
}

export type PlanOutcome =
  | { readonly status: 'planned'; readonly run: RunRecord; readonly notices: readonly string[] }
  | {
      readonly status: 'continue';
      readonly runId: string;
      readonly counters: RunCounters;
      readonly notices: readonly string[];
    };

const STATE_BATCH = 100;
const MAX_INVALID_SAMPLES = 20;

/**
 * Plans one run of a sync: reads the model, keeps what changed since the last delivery, and
 * queues it on the destination's lane. Throws RunStoppedError when a guardrail or a schema
 * drift stops the run before anything is sent.
 */
export async function planSync(request: PlanRequest, deps: PlanDependencies): Promise<PlanOutcome> {
  const { sync, model } = request;
  const { state, clock } = deps;
  const progress = await state.getProgress(sync.id);
  const sequence = progress?.sequence ?? (await state.nextSequence(sync.id));
  const runId = progress?.runId ?? runIdOf(sequence);
  // The lock belongs to this invocation, not the run: a continuation and a scheduled start of
  // the same run must never plan side by side. Its lease is short and renewed while the plan
  // works, so the lock of a plan whose process died lapses within one lease.
  const owner = `${runId}/${randomUUID()}`;
  const lease = new LockLease(state, sync.id, owner, (sync.lock_lease_seconds ?? 90) * 1000);
  const notices: string[] = [];
  const taken = await lease.acquire(request.force === true);
  if (!taken.acquired) {
    const holder = taken.previous;
    const until = holder ? new Date(holder.until).toISOString() : 'unknown';
    throw new RunStoppedError(
      'locked',
      `sync ${sync.id} is already running (lock held by run ${holder?.owner.split('/')[0] ?? '?'}, lease until ${until}); it is renewed while that plan works, so if its process died the lock lapses by then. Run with --force to take it now.`,
    );
  }
  if (taken.previous && taken.previous.owner.split('/')[0] !== runId) {
    const previousRun = taken.previous.owner.split('/')[0]!;
    const alive = taken.previous.until >= clock.now().getTime();
    notices.push(
      alive
        ? `took the lock from run ${previousRun} (--force): its lease ran until ${new Date(taken.previous.until).toISOString()}; if that plan is still working it stops at its next page`
        : `run ${previousRun} had died while planning (its lock lapsed at ${new Date(taken.previous.until).toISOString()}); marked interrupted`,
    );
  }
  lease.start();
  const storedCursor = model.cursor === undefined ? undefined : await state.getCursor(sync.id);
  const full = progress?.full ?? (request.full === true || storedCursor === undefined);
  const force = progress?.force ?? request.force === true;
  const startedAt = clock.now().toISOString();
  const counters = emptyCounters();
  const invalidSamples: { key: string; reason: string }[] = [];
  const invalid = (key: string, reason: string) => {
    counters.invalid++;
    if (invalidSamples.length < MAX_INVALID_SAMPLES) invalidSamples.push({ key, reason });
  };
  const mapping = compileMapping(sync);

  if (!progress) {
    await markInterrupted(state, sync.id, runId);
    await state.putRun({
      syncId: sync.id,
      runId,
      sequence,
      status: 'planning',
      full,
      startedAt,
      invalidSamples,
      counters,
    });
  }
  try {
    const fieldTypes = await checkSchema(request, mapping, deps.source, state);
    const header = {
      v: 1,
      syncId: sync.id,
      runId,
      version: sequence,
      object: sync.object,
      matchField: mapping.matchField,
      fieldTypes,
      attempt: 0,
      queuedAt: clock.now().getTime(),
    } as const;
    const sender = new MessageSender(deps.queue, request.lane, counters, invalid);
    const newPacker = () => new MessagePacker(header, request.batchSize, request.maxMessageBytes);

    if (!progress && full && sync.mode === 'mirror') {
      await queueMirrorDeletes(request, deps, newPacker(), sender, counters);
    }

    const packer = newPacker();
    const duplicates = new DuplicateKeys(
      full ? new Map() : await duplicatedInModel(deps.source, model.sql, model.primary_key),
    );
    // A full read goes in primary key order; it remembers where the cursor stood when it began,
    // so the next incremental read picks up whatever changed while it ran.
    const watermark =
      progress?.watermark ??
      (full && model.cursor !== undefined
        ? await deps.source.watermark(model.sql, model.cursor, model.primary_key)
        : undefined);
    let after: Checkpoint | undefined = progress ? progress.after : full ? undefined : storedCursor;
    let resume: string | undefined;
    // One execution of the model for this invocation: a continuation goes on in the result the
    // invocation before left (`resume`, where the warehouse keeps it) or reads on from `after`.
    const reads = deps.source.read({
      sql: model.sql,
      primaryKey: model.primary_key,
      cursor: full ? undefined : model.cursor,
      after,
      pageSize: model.page_size,
      resume: progress?.resume,
    });
    for await (const page of reads) {
      lease.check();
      const candidates: QueuedRecord[] = [];
      const copies = duplicates.inPage(page.rows.map((row) => recordKey(row[model.primary_key])));
      for (const row of page.rows) {
        counters.extracted++;
        const mapped = mapRow(row, model.primary_key, mapping);
        const key = mapped.ok ? mapped.record.key : mapped.key;
        const repeated = mapped.ok ? copies.get(key) : undefined;
        if (repeated !== undefined) {
          invalid(key, duplicateReason(model.primary_key, key, repeated));
          continue;
        }
        if (!mapped.ok) {
          invalid(key, mapped.reason);
          continue;
        }
        candidates.push({
          ...mapped.record,
          op: operationFor(sync.mode as SyncMode),
          hash: recordHash(mapped.record, mapping.version),
        });
      }
      for (let i = 0; i < candidates.length; i += STATE_BATCH) {
        const slice = candidates.slice(i, i + STATE_BATCH);
        const stored = await state.getRecords(
          sync.id,
          slice.map((r) => r.key),
        );
        for (const record of slice) {
          const previous = stored.get(record.key);
          const { action, queued } = classifyRecord(sync.mode as SyncMode, record, previous);
          if (action === 'unchanged') {
            counters.unchanged++;
            continue;
          }
          // Sized once, and only when queued: unchanged rows are never serialized.
          const size = MessagePacker.sizeOf(queued);
          if (!packer.fits(queued, size)) {
            invalid(record.key, 'record is larger than one queue message (1 MiB)');
            continue;
          }
          counters.queued++;
          await sender.add(packer.add(queued, size));
        }
      }
      // Every record of this page is durably queued before the cursor moves past it.
      await sender.add(packer.flush());
      await sender.drain();
      // Pages of rows without a primary key have no position to resume from: keep reading.
      if (!page.checkpoint) continue;
      after = page.checkpoint;
      resume = page.resume;
      if (!full) await state.putCursor(sync.id, after);
      const remaining = request.remainingMs?.() ?? Number.POSITIVE_INFINITY;
      if (remaining < (request.reserveMs ?? 60_000)) {
        await state.putProgress(sync.id, {
          runId,
          sequence,
          full,
          force,
          after,
          watermark,
          ...(resume !== undefined && { resume }),
        });
        await state.addToRun(sync.id, runId, counters);
        await appendInvalidSamples(state, sync.id, runId, invalidSamples);
        emitPlanMetrics(deps.metrics, sync.id, counters);
        return { status: 'continue', runId, counters, notices };
      }
    }
    await sender.add(packer.flush());
    await sender.drain();
    for (const key of duplicates.notRead()) invalid(key, duplicateReason(model.primary_key, key, 0));
    if (watermark !== undefined) await state.putCursor(sync.id, watermark);
    await state.addToRun(sync.id, runId, counters);
    await appendInvalidSamples(state, sync.id, runId, invalidSamples);
    await state.updateRun(sync.id, runId, { status: 'exporting', plannedAt: clock.now().toISOString() });
    await state.clearProgress(sync.id);
    const run = await finishRunIfDone(state, await state.getRun(sync.id, runId));
    emitPlanMetrics(deps.metrics, sync.id, counters);
    return { status: 'planned', run: run!, notices };
  } catch (error) {
    const stopped = error instanceof RunStoppedError;
    await state.addToRun(sync.id, runId, counters);
    await state.updateRun(sync.id, runId, { status: stopped ? 'stopped' : 'failed', error: (error as Error).message });
    await state.clearProgress(sync.id);
    throw error;
  } finally {
    await lease.release();
  }
}

/**
 * Runs still `planning` when a new run starts had their invocation die (the lock was free or had
 * lapsed): they are shown as interrupted, and the state they left is healed by the runs after.
 */
async function markInterrupted(state: StateStore, syncId: string, runId: string): Promise<void> {
  for (const run of await state.listRuns(syncId, 5)) {
    if (run.runId === runId || run.status !== 'planning') continue;
    await state.updateRun(syncId, run.runId, {
      status: 'interrupted',
      error: `its plan stopped before finishing (process killed, timed out or out of memory); run ${runId} took over`,
    });
  }
}

/**
 * The sync's plan lock, held with a short lease that a timer renews while the plan works. A plan
 * that loses it (another run took it with --force) stops at its next page.
 */
class LockLease {
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> = Promise.resolve();
  lost = false;
  constructor(
    private readonly state: StateStore,
    private readonly syncId: string,
    private readonly owner: string,
    private readonly leaseMs: number,
  ) {}

  acquire(force: boolean) {
    return this.state.acquireLock(this.syncId, this.owner, this.leaseMs, force);
  }

  start(): void {
    this.timer = setInterval(() => {
      this.renewing = this.acquire(false).then(
        (result) => {
          if (!result.acquired) this.lost = true;
        },
        () => {},
      );
    }, this.leaseMs / 3);
    this.timer.unref();
  }

  /** Throws when another run took the lock: two plans must never queue side by side. */
  check(): void {
    if (this.lost) {
      throw new RunStoppedError(
        'locked',
        `the lock of sync ${this.syncId} was taken by another run (--force); this plan stopped`,
      );
    }
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.renewing;
    await this.state.releaseLock(this.syncId, this.owner);
  }
}

export { runIdOf } from './runs.ts';

/**
 * Stops before anything is sent when a column the sync needs is gone from the model; returns the
 * destination fields' types, taken from the model's columns.
 */
async function checkSchema(
  request: PlanRequest,
  mapping: Mapping,
  source: SourceConnection,
  state: StateStore,
): Promise<Record<string, FieldType>> {
  const described = await source.describe(request.model.sql);
  const columns = new Map(described.map((c) => [c.name, c.type]));
  const previous = await state.getModelSchema(request.sync.id);
  const needed = [
    request.model.primary_key,
    ...(request.model.cursor ? [request.model.cursor] : []),
    ...mapping.columns,
  ];
  const missing = [...new Set(needed)].filter((c) => !columns.has(c));
  const names = [...columns.keys()];
  if (missing.length > 0) {
    throw new RunStoppedError(
      'schema_drift',
      previous === undefined
        ? `the model of sync ${request.sync.id} has no column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')} (it has ${names.join(', ')}); nothing was sent. Fix the mappings, the primary key or cursor, or the model SQL.`
        : `schema drift: the model of sync ${request.sync.id} no longer has column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')} (it has ${names.join(', ')}); nothing was sent. Fix the model SQL or the mappings.`,
    );
  }
  // A mapped column whose type changed would change every payload, or break the destination's
  // field: stop and let a person decide (--force accepts the new types).
  const changed = mapping.columns.filter((c) => previous?.[c] !== undefined && previous[c] !== columns.get(c));
  if (changed.length > 0 && request.force !== true) {
    const list = changed.map((c) => `"${c}" ${previous![c]} → ${columns.get(c)}`).join(', ');
    throw new RunStoppedError(
      'schema_drift',
      `schema drift: in the model of sync ${request.sync.id} the type of ${list} changed since the last run; nothing was sent. If intended, rerun with --force.`,
    );
  }
  const current = Object.fromEntries(mapping.columns.map((c) => [c, columns.get(c)!]));
  if (JSON.stringify(current) !== JSON.stringify(previous)) await state.putModelSchema(request.sync.id, current);
  return destinationFieldTypes(mapping, (column) => columns.get(column));
}

/**
 * Mirror: records delivered earlier that left the model are deleted in the destination. The
 * model's keys are read first, so the guardrail can stop the run before anything is sent.
 */
async function queueMirrorDeletes(
  request: PlanRequest,
  deps: PlanDependencies,
  packer: MessagePacker,
  sender: MessageSender,
  counters: RunCounters,
): Promise<void> {
  const { sync, model } = request;
  const present = new Set<string>();
  for await (const keys of deps.source.readKeys(model.sql, model.primary_key, 50_000)) {
    for (const value of keys) {
      const key = recordKey(value);
      if (key !== undefined) present.add(key);
    }
  }
  let synced = 0;
  const gone: RecordState[] = [];
  /**
   * Left the model while a version of theirs waits in the dead-letter queue (not delivered, or
   * delivered before and dead-lettered since): a delete at this run's version makes a redrive of
   * that version stale, so it never brings back a record that left. Records never delivered do
   * not count towards the guardrail: removing what is not there deletes nothing.
   */
  const undelivered: RecordState[] = [];
  for await (const record of deps.state.listRecords(sync.id)) {
    if (record.status === 'ok') synced++;
    if (present.has(record.key)) continue;
    if (record.status === 'ok') gone.push(record);
    else if (record.pending !== undefined && record.pending > record.version) undelivered.push(record);
  }
  present.clear();
  const ratio = synced === 0 ? 0 : gone.length / synced;
  const limit = sync.guardrails.max_delete_ratio;
  if (gone.length > 0 && ratio > limit && request.force !== true) {
    throw new RunStoppedError(
      'guardrail',
      `guardrail: sync ${sync.id} would delete ${gone.length} of ${synced} synced records (${(ratio * 100).toFixed(1)}%), above guardrails.max_delete_ratio ${limit}; nothing was sent. If the model is right, rerun with --force.`,
    );
  }
  for (const record of [...gone, ...undelivered]) {
    if (record.match === undefined) continue;
    counters.deletesQueued++;
    await sender.add(
      packer.add({
        key: record.key,
        op: 'delete',
        match: record.match,
        fields: {},
        ...(record.destinationId ? { destinationId: record.destinationId } : {}),
      }),
    );
  }
  await sender.add(packer.flush());
  await sender.drain();
}

const MAX_DUPLICATE_KEYS = 10_000;

/**
 * Keys the whole model holds more than once. An incremental read sees only the rows that changed,
 * so a copy of a key that did not change would go unseen without this one query.
 */
async function duplicatedInModel(
  source: SourceConnection,
  sql: string,
  primaryKey: string,
): Promise<Map<string, number>> {
  const keys = new Map<string, number>();
  for (const value of await source.duplicateKeys(sql, primaryKey, MAX_DUPLICATE_KEYS)) {
    const key = recordKey(value);
    if (key !== undefined) keys.set(key, 0);
  }
  return keys;
}

/**
 * Repeated primary keys: every copy is invalid, none is sent. The source yields every copy of a
 * key in one page (see `SourceConnection.read`), so counting within a page finds them all on a
 * full read; an incremental read also checks the keys the model holds more than once.
 */
class DuplicateKeys {
  private readonly unseen: Set<string>;
  constructor(private readonly inModel: ReadonlyMap<string, number>) {
    this.unseen = new Set(inModel.keys());
  }
  /** Keys the model holds more than once that the read did not come across. */
  notRead(): string[] {
    return [...this.unseen];
  }
  /** The keys of a page that are repeated, with the number of rows of each in the page. */
  inPage(keys: readonly (string | undefined)[]): Map<string, number> {
    const repeated = repeatedKeys(keys);
    for (const key of keys) {
      if (key === undefined) continue;
      this.unseen.delete(key);
      if (this.inModel.has(key) && !repeated.has(key)) repeated.set(key, 1);
    }
    return repeated;
  }
}

/**
 * Collects full messages and sends them ten at a time. A message the queue refuses for its content
 * is sent again one record a message, and a record refused on its own is invalid: one bad record
 * never fails the run, and never holds back the others.
 */
class MessageSender {
  private pending: LaneMessage[] = [];
  /** What the queue said when it last refused a message. */
  private reason = '';
  constructor(
    private readonly queue: LaneQueue,
    private readonly lane: string,
    private readonly counters: RunCounters,
    private readonly invalid: (key: string, reason: string) => void,
  ) {}

  async add(message: LaneMessage | undefined): Promise<void> {
    if (!message) return;
    this.pending.push(message);
    if (this.pending.length >= 10) await this.drain();
  }

  async drain(): Promise<void> {
    if (this.pending.length === 0) return;
    const messages = this.pending;
    this.pending = [];
    const refused = await this.send(messages);
    for (const message of refused) {
      if (message.records.length === 1) {
        this.refuse(message);
        continue;
      }
      const singles = message.records.map((record) => ({ ...message, records: [record] }));
      for (const single of await this.send(singles)) this.refuse(single);
    }
  }

  /** Sends messages; resolves those the queue refused for their content. */
  private async send(messages: LaneMessage[]): Promise<LaneMessage[]> {
    try {
      await this.queue.send(this.lane, messages);
      this.counters.messages += messages.length;
      return [];
    } catch (error) {
      if (!(error instanceof MessagesRefusedError)) throw error;
      this.counters.messages += messages.length - error.refused.length;
      this.reason = error.message;
      return error.refused.map((i) => messages[i]!);
    }
  }

  private refuse(message: LaneMessage): void {
    const record = message.records[0]!;
    if (record.op === 'delete') this.counters.deletesQueued--;
    else this.counters.queued--;
    this.invalid(record.key, `the queue refused this record: ${this.reason}`);
  }
}

async function appendInvalidSamples(
  state: StateStore,
  syncId: string,
  runId: string,
  samples: { key: string; reason: string }[],
): Promise<void> {
  if (samples.length > 0) await state.addInvalidSamples(syncId, runId, samples.splice(0));
}

function emitPlanMetrics(metrics: Metrics, syncId: string, counters: RunCounters): void {
  const dimensions = { sync: syncId };
  metrics.count(METRICS.recordsExtracted, counters.extracted, dimensions);
  metrics.count(METRICS.recordsInvalid, counters.invalid, dimensions);
  metrics.count(METRICS.recordsUnchanged, counters.unchanged, dimensions);
  metrics.count(METRICS.recordsQueued, counters.queued + counters.deletesQueued, dimensions);
}
