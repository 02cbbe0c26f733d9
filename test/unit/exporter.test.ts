import { describe, expect, it } from 'vitest';
import {
  type DestinationConnection,
  keepProgress,
  type RecordOutcome,
  unfinished,
  type WriteBatch,
} from '#connectors/sdk/destination';
import { RateLimitedError, TransientError } from '#core/errors';
import { exportMessage } from '#core/exporter';
import type { LaneMessage } from '#core/lane-message';
import { emptyCounters, noMetrics } from '#core/ports';
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

/** A clock the test moves by hand. */
class TestClock {
  ms = Date.parse('2026-01-01T00:00:00Z');
  now = () => new Date(this.ms);
  advance(seconds: number) {
    this.ms += seconds * 1000;
  }
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
  const clock = new TestClock();
  const deps = { state, queue, clock, metrics: noMetrics, destination: dest };
  return { state, queue, dest, deps, clock };
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

  it('gives retryable records back to the lane with the delay asked for, then dead-letters them when the budget is spent', async () => {
    const { queue, deps, clock, state } = await setup((key) =>
      key === 'r' ? { key, status: 'retry', reason: 'busy', afterMs: 30_000 } : { key, status: 'ok' },
    );
    const options = { lane: 'crm', retryBudgetMs: 60_000 };
    const first = await exportMessage(message(1, ['ok', 'r']), options, deps);
    expect(first.counters).toMatchObject({ updated: 1, retried: 1 });
    expect(queue.sent).toHaveLength(1);
    expect(queue.sent[0]).toMatchObject({
      lane: 'crm',
      delaySeconds: 30,
      message: { attempt: 1, failures: 1, records: [{ key: 'r' }] },
    });
    clock.advance(30);
    await exportMessage(queue.sent[0]!.message, options, deps);
    expect(queue.deadLetters).toHaveLength(0);
    clock.advance(30);
    const last = await exportMessage(queue.sent[1]!.message, options, deps);
    expect(last.counters).toMatchObject({ deadLettered: 1, messagesDeadLettered: 1 });
    expect(queue.deadLetters.map((d) => d.message.records.map((r) => r.key))).toEqual([['r']]);
    expect(queue.deadLetters[0]!.message.deadLetteredAt).toBeDefined();
    const run = (await state.getRun('s', '1'))!;
    expect(run.error).toMatch(/1 record\(s\) dead-lettered on lane crm .* busy/);
  });

  it('keeps partial progress on a rate limit part way: what was written stands, the rest goes back unspent', async () => {
    const throttle = new RateLimitedError(
      'HubSpot POST /crm/v3/objects/contacts/batch/create was rate limited (429)',
      3000,
    );
    const { state, deps, queue } = await setup();
    deps.destination.write = async (batch) =>
      keepProgress(
        [batch.records.slice(0, 2), batch.records.slice(2)],
        (part) => part.map((r) => r.key),
        async (part) => {
          if (part[0]!.key === 'c') throw throttle;
          return part.map((r) => ({ key: r.key, status: 'ok' as const }));
        },
      );
    const { counters } = await exportMessage(message(1, ['a', 'b', 'c', 'd']), { lane: 'crm' }, deps);
    expect(counters).toMatchObject({ updated: 2, throttled: 2 });
    expect(counters.retried ?? 0).toBe(0);
    const stored = await state.getRecords('s', ['a', 'b', 'c', 'd']);
    expect([...stored.keys()].sort()).toEqual(['a', 'b']);
    // Only c and d go back, after the vendor's wait, with their retry budget untouched.
    expect(queue.sent).toHaveLength(1);
    expect(queue.sent[0]!.message.records.map((r) => r.key)).toEqual(['c', 'd']);
    expect(queue.sent[0]!.delaySeconds).toBe(3);
    expect(queue.sent[0]!.message.failures).toBeUndefined();
    expect(queue.sent[0]!.message.throttles).toBe(1);
  });

  it('waits out a vendor wait longer than SQS can delay without counting it towards the 429 storm limit', async () => {
    const { deps, queue } = await setup();
    deps.destination.write = async () => {
      throw new RateLimitedError('HubSpot 477 Migration in Progress', 6 * 3600_000, { slowsLane: false });
    };
    let next = message(1, ['a']);
    for (let i = 0; i < 60; i++) {
      await exportMessage(next, { lane: 'crm' }, deps);
      next = queue.sent.at(-1)!.message;
      expect(queue.sent.at(-1)!.delaySeconds).toBe(900);
    }
    // Sixty 15-minute give-backs later the record still waits, unspent and not dead-lettered.
    expect(queue.deadLetters).toHaveLength(0);
    expect(next.throttles ?? 0).toBe(0);
  });

  it('gives back what the lane’s own pace stopped, counted as paced, not throttled', async () => {
    const { deps, queue } = await setup();
    deps.destination.write = async (batch) =>
      unfinished(
        batch.records.map((r) => r.key),
        new RateLimitedError('lane crm is paced', 1500, { paced: true }),
      );
    const { counters } = await exportMessage(message(1, ['a']), { lane: 'crm' }, deps);
    expect(counters).toMatchObject({ paced: 1 });
    expect(counters.throttled ?? 0).toBe(0);
    expect(queue.sent[0]!.message.throttles ?? 0).toBe(0);
  });

  it('treats a record the destination forgot to answer as retryable', async () => {
    const { deps, queue } = await setup();
    deps.destination.write = async () => [];
    const { counters } = await exportMessage(message(1, ['a']), { lane: 'crm' }, deps);
    expect(counters.retried).toBe(1);
    expect(queue.sent[0]!.message.records[0]!.key).toBe('a');
  });

  it('retries a whole-batch failure with exponential backoff: a two-minute outage dead-letters nothing and loses nothing', async () => {
    const { state, deps, queue, clock, dest } = await setup();
    const write = dest.write;
    const outageEnds = clock.ms + 120_000;
    deps.destination.write = async (batch) => {
      if (clock.ms < outageEnds) throw new TransientError('connect ECONNREFUSED 127.0.0.1:5999');
      return write(batch);
    };
    await state.addToRun('s', '1', { messages: 1 });
    let next: LaneMessage | undefined = message(1, ['a', 'b']);
    const delays: number[] = [];
    while (next) {
      const sent = queue.sent.length;
      await exportMessage(next, { lane: 'crm' }, deps);
      const retry = queue.sent[sent];
      next = retry?.message;
      if (retry) {
        delays.push(retry.delaySeconds!);
        clock.advance(retry.delaySeconds!);
      }
    }
    expect(delays).toEqual([1, 2, 4, 8, 16, 32, 64]);
    expect(queue.deadLetters).toHaveLength(0);
    expect([...(await state.getRecords('s', ['a', 'b'])).values()].map((r) => r.status)).toEqual(['ok', 'ok']);
    const run = (await state.getRun('s', '1'))!;
    expect(run).toMatchObject({ status: 'succeeded', counters: { retried: 14, deadLettered: 0, updated: 2 } });
    expect(run.error).toBeUndefined();
  });

  it('dead-letters a whole batch once it has failed for the budget, closes the run failed, and a redrive reopens and heals it', async () => {
    const { state, deps, queue, clock, dest } = await setup();
    const write = dest.write;
    let down = true;
    deps.destination.write = async (batch) => {
      if (down) throw new TransientError('HTTP 503 from the destination');
      return write(batch);
    };
    await state.addToRun('s', '1', { messages: 1 });
    let next: LaneMessage | undefined = message(1, ['a', 'b']);
    while (next) {
      const sent = queue.sent.length;
      await exportMessage(next, { lane: 'crm', retryBudgetMs: 10 * 60_000 }, deps);
      next = queue.sent[sent]?.message;
      if (next) clock.advance(queue.sent[sent]!.delaySeconds!);
    }
    expect(queue.deadLetters).toHaveLength(1);
    let run = (await state.getRun('s', '1'))!;
    expect(run.status).toBe('failed');
    expect(run.counters).toMatchObject({ deadLettered: 2, messagesDeadLettered: 1 });
    expect(run.error).toMatch(/2 record\(s\) dead-lettered .* 503/);

    down = false;
    await exportMessage(queue.deadLetters[0]!.message, { lane: 'crm' }, deps);
    run = (await state.getRun('s', '1'))!;
    expect(run.status).toBe('succeeded');
    expect(run.counters).toMatchObject({ deadLettered: 0, messagesDeadLettered: 0, updated: 2 });
    expect(run.error).toBeUndefined();
  });

  it('never lets an older version reach the destination after a newer one: a delivery in flight holds its keys', async () => {
    const { state, deps, queue } = await setup();
    const landed = new Map<string, unknown>();
    let releaseOld!: () => void;
    const oldWrite = new Promise<void>((resolve) => {
      releaseOld = resolve;
    });
    deps.destination.write = async (batch) => {
      if (batch.records[0]!.fields.v === 1) await oldWrite;
      for (const r of batch.records) landed.set(r.key, r.fields.v);
      return batch.records.map((r) => ({ key: r.key, status: 'ok' as const }));
    };
    // A redriven version 1 and version 2 of the same key are delivered side by side.
    const older = exportMessage(message(1, ['a']), { lane: 'crm' }, deps);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const newer = await exportMessage(message(2, ['a']), { lane: 'crm' }, deps);
    expect(newer.counters.deferred).toBe(1);
    releaseOld();
    await older;
    expect(landed.get('a')).toBe(1);
    // The deferred delivery of version 2 comes back once version 1 is done.
    await exportMessage(queue.sent.at(-1)!.message, { lane: 'crm' }, deps);
    expect(landed.get('a')).toBe(2);
    expect((await state.getRecords('s', ['a'])).get('a')).toMatchObject({ version: 2, hash: 'h2-a' });
    // And a late redelivery of version 1 is stale: it never writes.
    const late = await exportMessage(message(1, ['a']), { lane: 'crm' }, deps);
    expect(late.counters.stale).toBe(1);
    expect(landed.get('a')).toBe(2);
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
