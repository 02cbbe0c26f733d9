import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LocalRuntime } from '#cli/local-runtime';
import { decodeMessage, type LaneMessage } from '#core/lane-message';
import { TestProject } from './project.ts';

const SYNC = 'customers-to-crm';

describe('upgrading a project whose local state was kept by dynalite', () => {
  let project: TestProject | undefined;
  let runtime: LocalRuntime | undefined;
  let legacy: string | undefined;
  afterEach(async () => {
    await runtime?.stop();
    project?.cleanup();
    if (legacy) rmSync(legacy, { recursive: true, force: true });
    runtime = project = legacy = undefined;
  });

  it('carries record states, runs, sequences, cursors and saved dead letters over, and re-sends nothing', async () => {
    project = await TestProject.create({ customers: 2000 });
    // The older runtime: dynalite (persisted) and fauxqs, its dead letters saved in jsonl files.
    legacy = mkdtempSync(path.join(os.tmpdir(), 'backflow-legacy-'));
    runtime = await project.runtime({ backend: 'emulators', stateDir: legacy });
    const [first] = await runtime.run([SYNC]);
    expect(first).toMatchObject({ status: 'succeeded', run: { counters: { created: 1999 } } });
    await project.sql(
      `update customers set plan = 'churned', updated_at = (select max(updated_at) from customers) + interval 1 day where id <= 10`,
    );
    const [second] = await runtime.run([SYNC]);
    expect(second!.run!.counters).toMatchObject({ updated: 10 });
    const dead: LaneMessage = {
      v: 1,
      syncId: SYNC,
      runId: second!.run!.runId,
      version: second!.run!.sequence,
      object: 'contacts',
      matchField: 'customer_id',
      fieldTypes: {},
      attempt: 3,
      records: [{ key: '7', op: 'upsert', match: 7, hash: 'h', fields: { email: 'dead@example.com' } }],
    };
    await runtime.queue.sendToDeadLetter('crm', [dead]);
    const cursor = await runtime.state.getCursor(SYNC);
    const records = new Map<string, unknown>();
    for await (const r of runtime.state.listRecords(SYNC)) records.set(r.key, r);
    await runtime.stop();
    runtime = undefined;
    // The older layout: .backflow/dynamodb and .backflow/dead-letters/<lane>.jsonl.
    const stateDir = path.join(project.dir, '.backflow');
    mkdirSync(stateDir, { recursive: true });
    renameSync(path.join(legacy, 'emulators', 'dynamodb'), path.join(stateDir, 'dynamodb'));
    renameSync(path.join(legacy, 'emulators', 'dead-letters'), path.join(stateDir, 'dead-letters'));

    project.writes = [];
    runtime = await project.runtime();
    expect(existsSync(path.join(stateDir, 'dynamodb'))).toBe(false);
    expect(existsSync(path.join(stateDir, 'dynamodb.migrated'))).toBe(true);
    expect(existsSync(path.join(stateDir, 'dead-letters'))).toBe(false);
    expect(await runtime.state.getCursor(SYNC)).toEqual(cursor);
    const carried = new Map<string, unknown>();
    for await (const r of runtime.state.listRecords(SYNC)) carried.set(r.key, r);
    expect(carried.size).toBe(1999);
    expect(carried).toEqual(records);
    expect((await runtime.state.listRuns(SYNC, 10)).map((r) => [r.runId, r.status])).toEqual([
      [second!.run!.runId, 'succeeded'],
      [first!.run!.runId, 'succeeded'],
    ]);
    expect((await runtime.deadLetters('crm')).map((b) => decodeMessage(b).records[0]!.key)).toEqual(['7']);

    const [incremental] = await runtime.run([SYNC]);
    expect(incremental).toMatchObject({ status: 'succeeded', run: { counters: { queued: 0 } } });
    expect(incremental!.run!.sequence).toBe(second!.run!.sequence + 1);
    const [full] = await runtime.run([SYNC], { full: true });
    expect(full!.run!.counters).toMatchObject({ extracted: 2003, unchanged: 1999, queued: 0 });
    expect(project.writes).toHaveLength(0);
    expect(await project.destinationRows()).toEqual(await project.expectedRows());
  }, 120_000);
});
