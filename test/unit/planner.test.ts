import { describe, expect, it } from 'vitest';
import { manifests } from '#connectors/manifests';
import type { ReadRequest, RowPage, SourceConnection } from '#connectors/sdk/source';
import type { Row } from '#connectors/sdk/types';
import { parseConfig } from '#core/config/load';
import { MessagesRefusedError, RunStoppedError } from '#core/errors';
import type { LaneMessage } from '#core/lane-message';
import { planSync } from '#core/planner';
import { noMetrics, systemClock } from '#core/ports';
import { MemoryLaneQueue, MemoryStateStore } from '../fakes/memory-ports.ts';

const yml = (mode = 'upsert') => `version: 1
sources:
  wh: { type: duckdb }
models:
  people: { source: wh, sql: select * from people, primary_key: id, cursor: updated_at }
destinations:
  crm: { type: webhook, url: "http://127.0.0.1:1/" }
syncs:
  people-to-crm:
    model: people
    destination: crm
    object: people
    mode: ${mode}
    match: { id: id }
    mappings: { name: name }
    lock_lease_seconds: 30
`;

/**
 * A source that serves fixed pages as a warehouse would under the reader's guarantee (every copy
 * of a key in one page), and answers which keys the model holds more than once.
 */
function source(pages: Row[][], incremental: Row[][] = []): SourceConnection {
  const all = pages.flat();
  return {
    check: async () => {},
    describe: async () => [
      { name: 'id', type: 'integer', nativeType: 'BIGINT' },
      { name: 'name', type: 'string', nativeType: 'VARCHAR' },
      { name: 'updated_at', type: 'integer', nativeType: 'BIGINT' },
    ],
    async *read(request: ReadRequest): AsyncGenerator<RowPage> {
      for (const rows of request.cursor ? incremental : pages) {
        const last = rows.at(-1)!;
        yield { rows, checkpoint: { pk: last.id!, cursor: last.updated_at } };
      }
    },
    watermark: async () => ({ pk: 100, cursor: 100 }),
    async *readKeys() {
      yield all.map((r) => r.id);
    },
    duplicateKeys: async () => {
      const counts = new Map<unknown, number>();
      for (const row of all) counts.set(row.id, (counts.get(row.id) ?? 0) + 1);
      return [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    },
    listTables: async () => [],
    close: async () => {},
  };
}

function setup(mode = 'upsert') {
  const config = parseConfig(yml(mode), '/tmp/backflow.yml', manifests, {});
  const sync = config.syncs['people-to-crm']!;
  const model = config.models.people!;
  const state = new MemoryStateStore();
  const queue = new MemoryLaneQueue();
  const plan = (src: SourceConnection, extra: { full?: boolean; force?: boolean } = {}) =>
    planSync(
      { sync, model, lane: 'crm', batchSize: 10, ...extra },
      { state, queue, clock: systemClock, metrics: noMetrics, source: src },
    );
  const queuedKeys = () => queue.sent.flatMap((s) => s.message.records.map((r) => r.key));
  return { state, queue, plan, queuedKeys };
}

const row = (id: number, name = `n${id}`, updated_at = id) => ({ id, name, updated_at });

describe('planning a run', () => {
  it('reports every copy of a repeated key, in a page or at its end, and sends none', async () => {
    const { plan, queuedKeys } = setup();
    const outcome = await plan(
      source([[row(1), row(2), row(2, 'other')], [row(3), row(3, 'x'), row(3, 'y')], [row(4)]]),
    );
    expect(queuedKeys()).toEqual(['1', '4']);
    if (outcome.status !== 'planned') throw new Error('expected planned');
    expect(outcome.run.counters).toMatchObject({ extracted: 7, invalid: 5, queued: 2 });
    expect(outcome.run.invalidSamples.map((s) => s.key)).toEqual(['2', '2', '3', '3', '3']);
    expect(outcome.run.invalidSamples[2]!.reason).toMatch(
      /^duplicate primary key "id" = 3 \(3 rows\): no copy is sent/,
    );
  });

  it('finds on an incremental read a key repeated by a row that did not change, and reports repeated keys it did not read', async () => {
    const { plan, queuedKeys, queue } = setup();
    await plan(source([[row(1), row(2), row(5)]]));
    queue.sent.length = 0;
    // Row 2 changed; an old row with key 2 and another with key 5 appeared with old cursor values.
    const pages = [[row(1), row(2, 'changed', 50), row(2, 'old copy', 0), row(5), row(5, 'old', 0)]];
    const outcome = await plan(source(pages, [[row(2, 'changed', 50)]]));
    expect(queuedKeys()).toEqual([]);
    if (outcome.status !== 'planned') throw new Error('expected planned');
    expect(outcome.run.invalidSamples.map((s) => s.key).sort()).toEqual(['2', '5']);
  });

  it('does not re-send unchanged records when the mode switches from upsert to mirror', async () => {
    const upsert = setup('upsert');
    const rows = [[row(1), row(2), row(3)]];
    await upsert.plan(source(rows));
    const delivered = upsert.queue.sent.flatMap((s) =>
      s.message.records.map((r) => ({
        key: r.key,
        version: 1,
        status: 'ok' as const,
        hash: r.hash,
        match: r.match,
        updatedAt: '',
      })),
    );
    await upsert.state.putRecords('people-to-crm', delivered);
    const mirror = setup('mirror');
    const outcome = await planSync(
      {
        sync: parseConfig(yml('mirror'), '/tmp/backflow.yml', manifests, {}).syncs['people-to-crm']!,
        model: parseConfig(yml('mirror'), '/tmp/backflow.yml', manifests, {}).models.people!,
        lane: 'crm',
        batchSize: 10,
        full: true,
      },
      { state: upsert.state, queue: mirror.queue, clock: systemClock, metrics: noMetrics, source: source(rows) },
    );
    if (outcome.status !== 'planned') throw new Error('expected planned');
    expect(outcome.run.counters).toMatchObject({ unchanged: 3, queued: 0, deletesQueued: 0 });
  });

  it('makes a record the queue refuses invalid with its key, and queues the others', async () => {
    const { state } = setup();
    const queue = new MemoryLaneQueue();
    queue.send = async (_lane: string, messages: readonly LaneMessage[]) => {
      // As SQS does: the other entries of the call are sent, the refused ones named.
      const refused = messages.flatMap((m, i) => (m.records.some((r) => r.fields.name === 'bad') ? [i] : []));
      messages.forEach((message, i) => {
        if (!refused.includes(i)) queue.sent.push({ lane: 'crm', message });
      });
      if (refused.length > 0)
        throw new MessagesRefusedError('SQS refused 1 message(s): InvalidMessageContents', refused);
    };
    const outcome = await planSync(
      {
        sync: parseConfig(yml(), '/tmp/backflow.yml', manifests, {}).syncs['people-to-crm']!,
        model: parseConfig(yml(), '/tmp/backflow.yml', manifests, {}).models.people!,
        lane: 'crm',
        batchSize: 10,
      },
      { state, queue, clock: systemClock, metrics: noMetrics, source: source([[row(1), row(2, 'bad'), row(3)]]) },
    );
    if (outcome.status !== 'planned') throw new Error('expected planned');
    expect(queue.sent.flatMap((s) => s.message.records.map((r) => r.key))).toEqual(['1', '3']);
    expect(outcome.run.counters).toMatchObject({ queued: 2, invalid: 1, messages: 2 });
    expect(outcome.run.invalidSamples).toEqual([
      { key: '2', reason: 'the queue refused this record: SQS refused 1 message(s): InvalidMessageContents' },
    ]);
  });

  it('takes over the lock of a plan that died once its lease lapses, and marks that run interrupted', async () => {
    const { plan, state } = setup();
    await state.putRun({
      syncId: 'people-to-crm',
      runId: '0000000007',
      sequence: 7,
      status: 'planning',
      full: false,
      startedAt: '',
      invalidSamples: [],
      counters: (await import('#core/ports')).emptyCounters(),
    });
    await state.acquireLock('people-to-crm', '0000000007/dead', 60_000);
    await expect(plan(source([[row(1)]]))).rejects.toThrow(
      /already running \(lock held by run 0000000007, lease until .*\).*--force to take it now/,
    );
    // The holder died: nobody renews its lease.
    await state.acquireLock('people-to-crm', '0000000007/dead', -1);
    const outcome = await plan(source([[row(1)]]));
    expect(outcome.notices).toEqual([expect.stringMatching(/run 0000000007 had died while planning/)]);
    expect(await state.getRun('people-to-crm', '0000000007')).toMatchObject({ status: 'interrupted' });
  });

  it('says what --force breaks when it takes a lock that is still held', async () => {
    const { plan, state } = setup();
    await state.acquireLock('people-to-crm', '0000000009/other', 60_000);
    await expect(plan(source([[row(1)]]))).rejects.toBeInstanceOf(RunStoppedError);
    const outcome = await plan(source([[row(1)]]), { force: true });
    expect(outcome.notices).toEqual([expect.stringMatching(/took the lock from run 0000000009 \(--force\)/)]);
  });
});
