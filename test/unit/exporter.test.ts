import { describe, expect, it } from 'vitest';
import type { DestinationConnection, RecordOutcome, WriteBatch } from '#connectors/sdk/destination';
import { exportMessage } from '#core/exporter';
import type { LaneMessage } from '#core/lane-message';
import { emptyCounters, noMetrics, systemClock } from '#core/ports';
import { MemoryLaneQueue, MemoryStateStore } from '../fakes/memory-ports.ts';

function message(version: number, keys: string[], attempt = 0): LaneMessage {
  return {
    v: 1,
    syncId: 's',
    runId: String(version),
    version,
    object: 'contacts',
    matchField: 'id',
    fieldTypes: {},
    attempt,
    records: keys.map((key) => ({ key, op: 'upsert', match: key, fields: { v: version }, hash: `h${version}-${key}` })),
  };
}

function destination(outcome: (key: string) => RecordOutcome): DestinationConnection & { batches: WriteBatch[] } {
  const batches: WriteBatch[] = [];
  return {
    batches,
    check: async () => {},
    fields: async () => [],
    close: async () => {},
    write: async (batch) => {
      batches.push(batch);
      return batch.records.map((r) => outcome(r.key));
    },
  };
}

async function setup(outcome: (key: string) => RecordOutcome = (key) => ({ key, status: 'ok' })) {
  const state = new MemoryStateStore();
  const queue = new MemoryLaneQueue();
  const dest = destination(outcome);
  for (const version of [1, 2, 3, 4, 5]) {
    await state.putRun({
      syncId: 's',
      runId: String(version),
      sequence: version,
      status: 'exporting',
      full: false,
      startedAt: '',
      invalidSamples: [],
      counters: emptyCounters(),
    });
  }
  const deps = { state, queue, clock: systemClock, metrics: noMetrics, destination: dest };
  return { state, queue, dest, deps };
}

describe('exporting one lane message', () => {
  it('writes state for delivered and refused records, with reasons', async () => {
    const { state, deps } = await setup((key) =>
      key === 'b' ? { key, status: 'rejected', reason: 'invalid email', field: 'email' } : { key, status: 'ok' },
    );
    const { counters } = await exportMessage(message(1, ['a', 'b']), { lane: 'crm' }, deps);
    expect(counters).toMatchObject({ updated: 1, rejected: 1 });
    const stored = await state.getRecords('s', ['a', 'b']);
    expect(stored.get('a')).toMatchObject({ status: 'ok', version: 1, hash: 'h1-a' });
    expect(stored.get('b')).toMatchObject({ status: 'rejected', reason: 'email: invalid email', hash: 'h1-b' });
  });

  it('drops records a newer run already delivered, and a redelivered message writes nothing twice', async () => {
    const { dest, deps } = await setup();
    await exportMessage(message(5, ['a']), { lane: 'crm' }, deps);
    const { counters } = await exportMessage(message(4, ['a', 'b']), { lane: 'crm' }, deps);
    expect(counters.stale).toBe(1);
    expect(dest.batches.at(-1)!.records.map((r) => r.key)).toEqual(['b']);
    const again = await exportMessage(message(4, ['b']), { lane: 'crm' }, deps);
    expect(again.counters.stale).toBe(1);
    expect(dest.batches).toHaveLength(2);
  });

  it('gives retryable records back to the lane with the delay asked for, then dead-letters them', async () => {
    const { queue, deps } = await setup((key) =>
      key === 'r' ? { key, status: 'retry', reason: 'busy', afterMs: 30_000 } : { key, status: 'ok' },
    );
    const first = await exportMessage(message(1, ['ok', 'r']), { lane: 'crm', maxAttempts: 2 }, deps);
    expect(first.counters).toMatchObject({ updated: 1, retried: 1 });
    expect(queue.sent).toHaveLength(1);
    expect(queue.sent[0]).toMatchObject({
      lane: 'crm',
      delaySeconds: 30,
      message: { attempt: 1, records: [{ key: 'r' }] },
    });
    await exportMessage(queue.sent[0]!.message, { lane: 'crm', maxAttempts: 2 }, deps);
    const last = await exportMessage(queue.sent[1]!.message, { lane: 'crm', maxAttempts: 2 }, deps);
    expect(last.counters.deadLettered).toBe(1);
    expect(queue.deadLetters.map((d) => d.message.records.map((r) => r.key))).toEqual([['r']]);
  });

  it('treats a record the destination forgot to answer as retryable', async () => {
    const { deps, queue } = await setup();
    deps.destination.write = async () => [];
    const { counters } = await exportMessage(message(1, ['a']), { lane: 'crm' }, deps);
    expect(counters.retried).toBe(1);
    expect(queue.sent[0]!.message.records[0]!.key).toBe('a');
  });

  it('lets whole-batch failures through so SQS redelivers the message, writing no state', async () => {
    const { state, deps } = await setup();
    deps.destination.write = async () => {
      throw new Error('down');
    };
    await expect(exportMessage(message(1, ['a']), { lane: 'crm' }, deps)).rejects.toThrow('down');
    expect((await state.getRecords('s', ['a'])).size).toBe(0);
  });

  it('closes the run once every queued message is handled', async () => {
    const { state, deps } = await setup();
    await state.addToRun('s', '2', { messages: 2 });
    await exportMessage(message(2, ['a']), { lane: 'crm' }, deps);
    expect((await state.getRun('s', '2'))!.status).toBe('exporting');
    await exportMessage(message(2, ['b']), { lane: 'crm' }, deps);
    expect((await state.getRun('s', '2'))!.status).toBe('succeeded');
  });
});
