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

  it('lets one owner hold the lock until it is released or expires', async () => {
    expect(await state.acquireLock('lock', 'a', 60_000)).toBe(true);
    expect(await state.acquireLock('lock', 'b', 60_000)).toBe(false);
    expect(await state.acquireLock('lock', 'a', 60_000)).toBe(true);
    await state.releaseLock('lock', 'b');
    expect(await state.acquireLock('lock', 'b', 60_000)).toBe(false);
    await state.releaseLock('lock', 'a');
    expect(await state.acquireLock('lock', 'b', 1)).toBe(true);
    await new Promise((r) => setTimeout(r, 5));
    expect(await state.acquireLock('lock', 'c', 60_000)).toBe(true);
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

    await state.putRecords('recs', [{ key: 'k1', version: 3, status: 'deleted', match: 'k1', updatedAt: now }]);
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
