import { performance } from 'node:perf_hooks';
import { groupForBatch } from '#core/aws/sqs-lane-queue';
import { encodeMessage, type LaneMessage } from '#core/lane-message';
import type { LaneQueue, RecordStateWrite } from '#core/ports';

/** SQS bills every 64 KB chunk of a request's payload as one request. */
export const SQS_CHUNK_BYTES = 64 * 1024;
export const sqsBilled = (bytes: number): number => Math.max(1, Math.ceil(bytes / SQS_CHUNK_BYTES));

/** Calls, time and failures of named operations. */
export interface OpStats {
  calls: number;
  errors: number;
  ms: number;
  maxMs: number;
  /** Items the calls carried (keys read, records written, messages…), where it means something. */
  items: number;
}

export class OpTimer {
  readonly ops = new Map<string, OpStats>();

  add(name: string, ms: number, items = 0, failed = false): void {
    const stats = this.ops.get(name) ?? { calls: 0, errors: 0, ms: 0, maxMs: 0, items: 0 };
    stats.calls++;
    stats.ms += ms;
    stats.maxMs = Math.max(stats.maxMs, ms);
    stats.items += items;
    if (failed) stats.errors++;
    this.ops.set(name, stats);
  }

  get(name: string): OpStats {
    return this.ops.get(name) ?? { calls: 0, errors: 0, ms: 0, maxMs: 0, items: 0 };
  }

  snapshot(): Record<string, OpStats> {
    return Object.fromEntries([...this.ops].map(([name, stats]) => [name, { ...stats }]));
  }
}

/**
 * Wraps every method of `target`: each call is counted (and timed, when it returns a promise)
 * under `<prefix>.<method>`. `itemsOf` says how many items a call carries.
 */
export function instrument<T extends object>(
  target: T,
  prefix: string,
  timer: OpTimer,
  itemsOf: (method: string, args: readonly unknown[]) => number = () => 0,
): T {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return (...args: unknown[]) => {
        const name = `${prefix}.${property}`;
        const items = itemsOf(property, args);
        const started = performance.now();
        let out: unknown;
        try {
          out = (value as (...a: unknown[]) => unknown).apply(object, args);
        } catch (error) {
          timer.add(name, performance.now() - started, items, true);
          throw error;
        }
        if (out instanceof Promise) {
          return out.then(
            (result: unknown) => {
              timer.add(name, performance.now() - started, items);
              return result;
            },
            (error: unknown) => {
              timer.add(name, performance.now() - started, items, true);
              throw error;
            },
          );
        }
        timer.add(name, performance.now() - started, items);
        return out;
      };
    },
  });
}

/** Keys read or states written by a StateStore call. */
export function stateItems(method: string, args: readonly unknown[]): number {
  if (method === 'getRecords' || method === 'putRecords') return (args[1] as readonly unknown[]).length;
  return 0;
}

/**
 * A LaneQueue that encodes and groups messages exactly as the SQS lane does (the bytes and the
 * SendMessageBatch calls are real), counts them, and keeps nothing but what `onMessage` keeps.
 */
export class CountingLaneQueue implements LaneQueue {
  sendCalls = 0;
  messages = 0;
  records = 0;
  bytes = 0;
  maxMessageBytes = 0;
  /** SendMessageBatch calls the SQS lane would make. */
  sqsBatches = 0;
  /** Requests SQS would bill for them (64 KB chunks). */
  sqsBilled = 0;
  deadLettered = 0;

  constructor(private readonly onMessage?: (message: LaneMessage) => void) {}

  async send(_lane: string, messages: readonly LaneMessage[]): Promise<void> {
    this.sendCalls++;
    const bodies = messages.map(encodeMessage);
    for (const group of groupForBatch(bodies)) {
      const bytes = group.reduce((sum, body) => sum + Buffer.byteLength(body), 0);
      this.sqsBatches++;
      this.sqsBilled += sqsBilled(bytes);
      this.bytes += bytes;
      for (const body of group) this.maxMessageBytes = Math.max(this.maxMessageBytes, Buffer.byteLength(body));
    }
    for (const message of messages) {
      this.messages++;
      this.records += message.records.length;
      this.onMessage?.(message);
    }
  }

  async sendToDeadLetter(_lane: string, messages: readonly LaneMessage[]): Promise<void> {
    this.deadLettered += messages.length;
  }

  async retryLater(): Promise<void> {}
}

/** The state the exporter writes for a delivered record (no destination id: the fake has none). */
export function deliveredState(message: LaneMessage, at: string): RecordStateWrite[] {
  return message.records.map((record) => ({
    key: record.key,
    version: message.version,
    status: record.op === 'delete' ? 'deleted' : 'ok',
    hash: record.op === 'delete' ? undefined : record.hash,
    match: record.match,
    updatedAt: at,
  }));
}

/** Statements that ran the model, by what they were for. */
export interface ModelStatements {
  /** Statements that read the model's rows (`read`, `readKeys`): the figure the issue is about. */
  reads: number;
  /** The watermark (top-1 by cursor) a full read of a cursor model notes first. */
  watermark: number;
  /** The repeated-key query of an incremental run (a group-by over the key). */
  duplicates: number;
  /** `limit 0` statements that only describe the model's columns. */
  describes: number;
}

/**
 * Counts the statements DuckDB is asked to run that name `modelSql`, by kind, with a wrapper
 * around the real driver's `DuckDBConnection.run` and `.stream` (every other way of running SQL
 * in @duckdb/node-api goes through them). `stop()` removes the wrapper.
 */
export async function countDuckDbModelStatements(
  modelSql: string,
): Promise<{ counts: ModelStatements; reset(): void; stop(): void }> {
  const { DuckDBConnection } = await import('@duckdb/node-api');
  const proto = DuckDBConnection.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const counts: ModelStatements = { reads: 0, watermark: 0, duplicates: 0, describes: 0 };
  const originals = new Map<string, (...args: unknown[]) => unknown>();
  for (const name of ['run', 'stream']) {
    const original = proto[name]!;
    originals.set(name, original);
    proto[name] = function (this: unknown, ...args: unknown[]) {
      const sql = String(args[0] ?? '').trim();
      if (sql.includes(modelSql)) {
        if (/ limit 0$/i.test(sql)) counts.describes++;
        else if (/having count\(\*\) > 1/i.test(sql)) counts.duplicates++;
        else if (/ desc( nulls last)? limit 1$/i.test(sql)) counts.watermark++;
        else counts.reads++;
      }
      return original.apply(this, args);
    };
  }
  return {
    counts,
    reset() {
      Object.assign(counts, { reads: 0, watermark: 0, duplicates: 0, describes: 0 });
    },
    stop() {
      for (const [name, original] of originals) proto[name] = original;
    },
  };
}
