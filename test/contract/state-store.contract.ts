import { describe, expect, it } from 'vitest';
import { emptyCounters, type RunRecord, type StateStore } from '#core/ports';

/**
 * The StateStore port's contract: every adapter (DynamoDB on dynalite, the embedded store) passes
 * the same suite. `open` resolves a fresh store and how to close it; each test uses its own sync ids.
 */
export function stateStoreContract(name: string, open: () => Promise<{ state: StateStore; close(): Promise<void> }>) {
  describe(`StateStore contract: ${name}`, () => {
    const withStore = (test: (state: StateStore) => Promise<void>) => async () => {
      const { state, close } = await open();
      try {
        await test(state);
      } finally {
        await close();
      }
    };
    const run = (syncId: string, runId: string, sequence: number): RunRecord => ({
      syncId,
      runId,
      sequence,
      status: 'planning',
      full: true,
      startedAt: '2030-01-01T00:00:00.000Z',
      invalidSamples: [],
      counters: emptyCounters(),
    });

    it(
      'hands out increasing run sequences per sync, also when asked concurrently',
      withStore(async (state) => {
        expect(await state.nextSequence('seq')).toBe(1);
        expect(await state.nextSequence('seq')).toBe(2);
        expect(await state.nextSequence('seq-other')).toBe(1);
        const many = await Promise.all(Array.from({ length: 10 }, () => state.nextSequence('seq')));
        expect([...many].sort((a, b) => a - b)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      }),
    );

    it(
      'lets one owner hold the lock until it is released or its lease lapses, and force takes it',
      withStore(async (state) => {
        expect(await state.acquireLock('lock', 'a', 60_000)).toEqual({ acquired: true });
        expect(await state.acquireLock('lock', 'b', 60_000)).toMatchObject({
          acquired: false,
          previous: { owner: 'a' },
        });
        // The holder renews its own lease.
        expect(await state.acquireLock('lock', 'a', 60_000)).toEqual({ acquired: true });
        // Only the holder releases it.
        await state.releaseLock('lock', 'b');
        expect((await state.acquireLock('lock', 'b', 60_000)).acquired).toBe(false);
        await state.releaseLock('lock', 'a');
        expect((await state.acquireLock('lock', 'b', 1)).acquired).toBe(true);
        await new Promise((r) => setTimeout(r, 5));
        // b died: its lease lapsed, and the next owner is told whose lock it took.
        expect(await state.acquireLock('lock', 'c', 60_000)).toMatchObject({
          acquired: true,
          previous: { owner: 'b' },
        });
        const forced = await state.acquireLock('lock', 'd', 60_000, true);
        expect(forced).toMatchObject({ acquired: true, previous: { owner: 'c' } });
        expect(forced.previous!.until).toBeGreaterThan(Date.now());
        expect((await state.acquireLock('lock', 'c', 60_000)).acquired).toBe(false);
        // Locks are per sync.
        expect((await state.acquireLock('lock-other', 'c', 60_000)).acquired).toBe(true);
      }),
    );

    it(
      'keeps cursors, model schemas and plan progress per sync, and clears progress',
      withStore(async (state) => {
        expect(await state.getCursor('docs')).toBeUndefined();
        await state.putCursor('docs', { cursor: '2030-01-01T00:00:00Z', pk: '12345678901234567890' });
        await state.putCursor('docs', { cursor: '2030-01-02T00:00:00Z', pk: 7 });
        expect(await state.getCursor('docs')).toEqual({ cursor: '2030-01-02T00:00:00Z', pk: 7 });
        expect(await state.getCursor('docs-other')).toBeUndefined();
        await state.putModelSchema('docs', { id: 'integer', email: 'text' });
        expect(await state.getModelSchema('docs')).toEqual({ id: 'integer', email: 'text' });
        const progress = { runId: '0000000003', sequence: 3, full: true, force: false, after: { pk: 500 } };
        await state.putProgress('docs', progress);
        expect(await state.getProgress('docs')).toEqual(progress);
        await state.clearProgress('docs');
        expect(await state.getProgress('docs')).toBeUndefined();
      }),
    );

    it(
      'claims a key for one version at a time, never for one older than stored, and releases it on the state write',
      withStore(async (state) => {
        const now = Date.now();
        const at = new Date(now).toISOString();
        expect(await state.claimRecords('claims', ['a', 'b'], 2, now, now + 60_000)).toEqual({
          claimed: ['a', 'b'],
          stale: [],
          busy: [],
        });
        // The same version may claim again (a redelivery of its message); another may not.
        expect((await state.claimRecords('claims', ['a'], 2, now, now + 60_000)).claimed).toEqual(['a']);
        expect(await state.claimRecords('claims', ['a'], 3, now, now + 60_000)).toEqual({
          claimed: [],
          stale: [],
          busy: [{ key: 'a', until: now + 60_000 }],
        });
        await state.putRecords('claims', [{ key: 'a', version: 2, status: 'ok', hash: 'h2', updatedAt: at }], now);
        expect((await state.claimRecords('claims', ['a'], 3, now, now + 60_000)).claimed).toEqual(['a']);
        expect(await state.claimRecords('claims', ['a'], 1, now, now + 60_000)).toMatchObject({ stale: ['a'] });
        // A claim whose holder died lapses.
        expect((await state.claimRecords('claims', ['b'], 4, now + 61_000, now + 120_000)).claimed).toEqual(['b']);
        // Only the version holding it releases a claim.
        await state.releaseClaims('claims', ['b'], 3);
        expect((await state.claimRecords('claims', ['b'], 5, now, now + 60_000)).busy).toHaveLength(1);
        await state.releaseClaims('claims', ['b'], 4);
        expect((await state.claimRecords('claims', ['b'], 5, now, now + 60_000)).claimed).toEqual(['b']);
      }),
    );

    it(
      "flags a record whose state write meets another version's claim, and keeps a flag set during a delivery",
      withStore(async (state) => {
        const now = Date.now();
        const at = new Date(now).toISOString();
        await state.putRecords('race', [{ key: 'k', version: 1, status: 'ok', hash: 'h1', updatedAt: at }], now);
        await state.claimRecords('race', ['k'], 3, now, now + 60_000);
        // Version 2 outlived its own claim and version 3 holds one now: 2 may have landed after 3.
        const { superseded } = await state.putRecords(
          'race',
          [{ key: 'k', version: 2, status: 'ok', hash: 'h2', updatedAt: at }],
          now,
        );
        expect(superseded).toEqual(['k']);
        expect((await state.getRecords('race', ['k'])).get('k')).toMatchObject({ version: 1, hash: 'h1', dirty: true });
        // Version 3 read the record before the flag was set: its write keeps the flag.
        await state.putRecords('race', [{ key: 'k', version: 3, status: 'ok', hash: 'h3', updatedAt: at }], now);
        expect((await state.getRecords('race', ['k'])).get('k')).toMatchObject({ version: 3, hash: 'h3', dirty: true });
        // A delivery that read the flag clears it.
        await state.putRecords(
          'race',
          [{ key: 'k', version: 4, status: 'ok', hash: 'h4', updatedAt: at, clearsDirty: true }],
          now,
        );
        const stored = (await state.getRecords('race', ['k'])).get('k')!;
        expect(stored).toMatchObject({ version: 4, hash: 'h4' });
        expect(stored.dirty).toBeUndefined();
        // A claim that lapsed no longer stands in the way of another version's write.
        await state.claimRecords('race', ['k'], 6, now, now + 10);
        expect(
          (await state.putRecords('race', [{ key: 'k', version: 5, status: 'ok', updatedAt: at }], now + 20))
            .superseded,
        ).toEqual([]);
      }),
    );

    it(
      'reads records in batches, never writes an older version over a newer one, and keeps every field',
      withStore(async (state) => {
        const keys = Array.from({ length: 250 }, (_, i) => `k${i}`);
        const now = new Date().toISOString();
        await state.putRecords(
          'recs',
          keys.map((key) => ({ key, version: 2, status: 'ok' as const, hash: `h-${key}`, match: key, updatedAt: now })),
        );
        const read = await state.getRecords('recs', [...keys, 'absent', 'k1']);
        expect(read.size).toBe(250);
        expect(read.get('k249')).toMatchObject({ version: 2, hash: 'h-k249', status: 'ok', match: 'k249' });
        // Same version again (a redelivery) is written.
        expect(
          (await state.putRecords('recs', [{ key: 'k2', version: 2, status: 'ok', hash: 'again', updatedAt: now }]))
            .superseded,
        ).toEqual([]);
        expect((await state.getRecords('recs', ['k2'])).get('k2')).toMatchObject({ hash: 'again' });

        const { superseded } = await state.putRecords('recs', [
          { key: 'k1', version: 1, status: 'ok', hash: 'old', updatedAt: now },
        ]);
        expect(superseded).toEqual(['k1']);
        expect((await state.getRecords('recs', ['k1'])).get('k1')).toMatchObject({
          version: 2,
          hash: 'h-k1',
          dirty: true,
        });

        // The next delivery read the flag before it wrote, so its write clears it; a delete drops the hash.
        await state.putRecords('recs', [
          { key: 'k1', version: 3, status: 'deleted', match: 'k1', updatedAt: now, clearsDirty: true },
        ]);
        const deleted = (await state.getRecords('recs', ['k1'])).get('k1')!;
        expect(deleted).toMatchObject({ version: 3, status: 'deleted', match: 'k1' });
        expect(deleted.hash).toBeUndefined();
        expect(deleted.dirty).toBeUndefined();

        const big = { id: '12345678901234567890', nested: [1, 'two', null, { x: true }] };
        await state.putRecords('recs', [
          {
            key: 'r',
            version: 4,
            status: 'rejected',
            hash: 'hr',
            reason: 'email is invalid',
            destinationId: 'D-1',
            match: big,
            updatedAt: now,
          },
        ]);
        expect((await state.getRecords('recs', ['r'])).get('r')).toMatchObject({
          key: 'r',
          version: 4,
          status: 'rejected',
          hash: 'hr',
          reason: 'email is invalid',
          destinationId: 'D-1',
          match: big,
          updatedAt: now,
        });
        // Records are per sync.
        expect((await state.getRecords('recs-other', ['r'])).size).toBe(0);
      }),
    );

    it(
      'notes the newest dead-lettered version of records that have a state',
      withStore(async (state) => {
        const at = new Date().toISOString();
        await state.putRecords('dlq', [{ key: 'a', version: 2, status: 'ok', hash: 'h', updatedAt: at }]);
        await state.markDeadLettered('dlq', ['a', 'never-delivered'], 5);
        await state.markDeadLettered('dlq', ['a'], 4);
        const read = await state.getRecords('dlq', ['a', 'never-delivered']);
        expect(read.get('a')).toMatchObject({ version: 2, pending: 5 });
        expect(read.has('never-delivered')).toBe(false);
        // With its match value, a never-delivered key gets a placeholder a mirror run can delete.
        await state.markDeadLettered(
          'dlq',
          ['a', 'new'],
          7,
          new Map([
            ['a', 'a@x.test'],
            ['new', 'n@x.test'],
          ]),
        );
        const marked = await state.getRecords('dlq', ['a', 'new']);
        expect(marked.get('a')).toMatchObject({ version: 2, status: 'ok', pending: 7 });
        expect(marked.get('new')).toMatchObject({ version: 0, status: 'deleted', match: 'n@x.test', pending: 7 });
        // A delivery of the key after it was dead-lettered wins over the placeholder.
        await state.putRecords('dlq', [{ key: 'new', version: 8, status: 'ok', hash: 'h8', updatedAt: at }]);
        expect((await state.getRecords('dlq', ['new'])).get('new')).toMatchObject({ version: 8, status: 'ok' });
        await state.markDeadLettered('dlq', ['a'], 6);
        expect((await state.getRecords('dlq', ['a'])).get('a')).toMatchObject({ pending: 7 });
        // A later delivery keeps the note (the exporter compares it with the version it delivers).
        await state.putRecords('dlq', [{ key: 'a', version: 6, status: 'ok', hash: 'h6', updatedAt: at }]);
        expect((await state.getRecords('dlq', ['a'])).get('a')).toMatchObject({ version: 6, pending: 7 });
      }),
    );

    it(
      'lists every record of a sync, and only of that sync',
      withStore(async (state) => {
        const keys = Array.from({ length: 500 }, (_, i) => String(i));
        const now = new Date().toISOString();
        await state.putRecords(
          'list',
          keys.map((key) => ({ key, version: 1, status: 'ok' as const, hash: 'h', updatedAt: now })),
        );
        await state.putRecords('list2', [{ key: 'x', version: 1, status: 'ok', hash: 'h', updatedAt: now }]);
        const listed: string[] = [];
        for await (const record of state.listRecords('list')) listed.push(record.key);
        expect(listed.sort()).toEqual([...keys].sort());
      }),
    );

    it(
      'adds to run counters atomically, updates status and error, keeps invalid samples, and lists runs newest first',
      withStore(async (state) => {
        await state.putRun(run('runs', '0000000001', 1));
        await state.putRun(run('runs', '0000000002', 2));
        await state.putRun(run('runs', '0000000010', 10));
        await state.addToRun('runs', '0000000001', { extracted: 5, queued: 3 });
        const adds = await Promise.all(
          Array.from({ length: 20 }, () => state.addToRun('runs', '0000000001', { messagesDone: 1 })),
        );
        expect(Math.max(...adds.map((r) => r!.counters.messagesDone))).toBe(20);
        const added = await state.addToRun('runs', '0000000001', { created: 2, queued: 1 });
        expect(added).toMatchObject({
          runId: '0000000001',
          counters: { extracted: 5, queued: 4, created: 2, messagesDone: 20 },
        });
        await state.addInvalidSamples('runs', '0000000001', [{ key: '9', reason: 'primary key "id" is null' }]);
        await state.addInvalidSamples('runs', '0000000001', [{ key: '10', reason: 'duplicate key' }]);
        await state.updateRun('runs', '0000000001', { status: 'exporting', error: 'a retry' });
        await state.updateRun('runs', '0000000001', {
          status: 'succeeded',
          error: null,
          finishedAt: '2026-12-08T01:02:03.000Z',
        });
        expect((await state.getRun('runs', '0000000001'))?.finishedAt).toBe('2026-12-08T01:02:03.000Z');
        // A redrive reopens a run: its close time goes with it until it closes again.
        await state.updateRun('runs', '0000000001', { status: 'exporting', finishedAt: null });
        expect((await state.getRun('runs', '0000000001'))?.finishedAt).toBeUndefined();
        await state.updateRun('runs', '0000000001', { status: 'succeeded' });
        const got = await state.getRun('runs', '0000000001');
        expect(got).toMatchObject({
          syncId: 'runs',
          sequence: 1,
          status: 'succeeded',
          full: true,
          counters: { extracted: 5, queued: 4, created: 2 },
          invalidSamples: [{ key: '9' }, { key: '10' }],
        });
        expect(got!.error).toBeUndefined();
        expect(await state.getRun('runs', '0000000099')).toBeUndefined();
        expect((await state.listRuns('runs', 2)).map((r) => r.runId)).toEqual(['0000000010', '0000000002']);
        expect((await state.listRuns('runs-other', 5)).length).toBe(0);
      }),
    );
  });
}
