import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalAws, startLocalAws } from '#cli/local-aws';
import { bucketOf, DynamoStateStore } from '#core/aws/dynamo-state-store';
import { emptyCounters } from '#core/ports';

describe('DynamoDB state store on dynalite', () => {
  let aws: LocalAws;
  let state: DynamoStateStore;
  beforeAll(async () => {
    aws = await startLocalAws(undefined);
    state = new DynamoStateStore(aws.dynamodb, aws.table);
  });
  afterAll(async () => aws.stop());

  it('hands out increasing run sequences', async () => {
    expect(await state.nextSequence('seq')).toBe(1);
    expect(await state.nextSequence('seq')).toBe(2);
  });

  it('lets one owner hold the lock until it is released or its lease lapses, and --force takes it', async () => {
    expect(await state.acquireLock('lock', 'a', 60_000)).toEqual({ acquired: true });
    expect(await state.acquireLock('lock', 'b', 60_000)).toMatchObject({ acquired: false, previous: { owner: 'a' } });
    expect(await state.acquireLock('lock', 'a', 60_000)).toEqual({ acquired: true });
    await state.releaseLock('lock', 'b');
    expect((await state.acquireLock('lock', 'b', 60_000)).acquired).toBe(false);
    await state.releaseLock('lock', 'a');
    expect((await state.acquireLock('lock', 'b', 1)).acquired).toBe(true);
    await new Promise((r) => setTimeout(r, 5));
    // b died: its lease lapsed, and the next owner is told whose lock it took.
    expect(await state.acquireLock('lock', 'c', 60_000)).toMatchObject({ acquired: true, previous: { owner: 'b' } });
    const forced = await state.acquireLock('lock', 'd', 60_000, true);
    expect(forced).toMatchObject({ acquired: true, previous: { owner: 'c' } });
    expect(forced.previous!.until).toBeGreaterThan(Date.now());
  });

  it('claims a key for one version at a time, never for one older than stored, and releases it on the state write', async () => {
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
    await state.releaseClaims('claims', ['b'], 4);
    expect((await state.claimRecords('claims', ['b'], 5, now, now + 60_000)).claimed).toEqual(['b']);
  });

  it("flags a record whose state write meets another version's claim, and keeps a flag set during a delivery", async () => {
    const now = Date.now();
    const at = new Date(now).toISOString();
    await state.claimRecords('race', ['k'], 3, now, now + 60_000);
    // Version 2 outlived its own claim and version 3 holds one now: 2 may have landed after 3.
    const { superseded } = await state.putRecords(
      'race',
      [{ key: 'k', version: 2, status: 'ok', hash: 'h2', updatedAt: at }],
      now,
    );
    expect(superseded).toEqual(['k']);
    expect((await state.getRecords('race', ['k'])).get('k')).toMatchObject({ dirty: true });
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
  });

  it('reads records in batches of 100 and never writes an older version over a newer one', async () => {
    const keys = Array.from({ length: 250 }, (_, i) => `k${i}`);
    const now = new Date().toISOString();
    await state.putRecords(
      'recs',
      keys.map((key) => ({ key, version: 2, status: 'ok' as const, hash: `h-${key}`, match: key, updatedAt: now })),
    );
    const read = await state.getRecords('recs', keys);
    expect(read.size).toBe(250);
    expect(read.get('k249')).toMatchObject({ version: 2, hash: 'h-k249', status: 'ok', match: 'k249' });

    const { superseded } = await state.putRecords('recs', [
      { key: 'k1', version: 1, status: 'ok', hash: 'old', updatedAt: now },
    ]);
    expect(superseded).toEqual(['k1']);
    const after = await state.getRecords('recs', ['k1']);
    expect(after.get('k1')).toMatchObject({ version: 2, hash: 'h-k1', dirty: true });

    // The next delivery read the flag before it wrote, so its write clears it.
    await state.putRecords('recs', [
      { key: 'k1', version: 3, status: 'deleted', match: 'k1', updatedAt: now, clearsDirty: true },
    ]);
    const deleted = (await state.getRecords('recs', ['k1'])).get('k1')!;
    expect(deleted).toMatchObject({ version: 3, status: 'deleted' });
    expect(deleted.hash).toBeUndefined();
    expect(deleted.dirty).toBeUndefined();
  });

  it('spreads records over 64 buckets and lists them all', async () => {
    const keys = Array.from({ length: 500 }, (_, i) => String(i));
    expect(new Set(keys.map(bucketOf)).size).toBe(64);
    const now = new Date().toISOString();
    await state.putRecords(
      'list',
      keys.map((key) => ({ key, version: 1, status: 'ok' as const, hash: 'h', updatedAt: now })),
    );
    const listed: string[] = [];
    for await (const record of state.listRecords('list')) listed.push(record.key);
    expect(listed.sort()).toEqual([...keys].sort());
  });

  it('adds to run counters and keeps invalid samples', async () => {
    await state.putRun({
      syncId: 'runs',
      runId: '0000000001',
      sequence: 1,
      status: 'planning',
      full: true,
      startedAt: 'now',
      invalidSamples: [],
      counters: emptyCounters(),
    });
    await state.addToRun('runs', '0000000001', { extracted: 5, queued: 3 });
    await state.addToRun('runs', '0000000001', { created: 2, queued: 1 });
    await state.addInvalidSamples('runs', '0000000001', [{ key: '9', reason: 'primary key "id" is null' }]);
    await state.updateRun('runs', '0000000001', { status: 'exporting' });
    const run = await state.getRun('runs', '0000000001');
    expect(run).toMatchObject({
      status: 'exporting',
      counters: { extracted: 5, queued: 4, created: 2 },
      invalidSamples: [{ key: '9' }],
    });
    expect((await state.listRuns('runs', 5)).map((r) => r.runId)).toEqual(['0000000001']);
  });
});
