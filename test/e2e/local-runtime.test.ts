import { afterEach, describe, expect, it } from 'vitest';
import type { LocalRuntime } from '#cli/local-runtime';
import type { DestinationConnection } from '#connectors/sdk/destination';
import { TransientError } from '#core/errors';
import type { LaneMessage } from '#core/lane-message';
import type { StateStore } from '#core/ports';
import { TestProject } from './project.ts';

describe('the local runtime, end to end', () => {
  let project: TestProject | undefined;
  let runtime: LocalRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    project?.cleanup();
    runtime = undefined;
    project = undefined;
  });

  it('delivers 10,000 rows equal to the mapped model, reports invalid rows, and a rerun sends nothing', async () => {
    project = await TestProject.create({ customers: 10_000 });
    runtime = await project.runtime();
    const [first] = await runtime.run(['customers-to-crm']);
    expect(first).toMatchObject({ status: 'succeeded', run: { status: 'succeeded' } });
    expect(first!.run!.counters).toMatchObject({
      extracted: 10_003,
      invalid: 4,
      queued: 9_999,
      created: 9_999,
      rejected: 0,
      deadLettered: 0,
    });
    // Both copies of the repeated key 42 are invalid, and neither is sent.
    expect(first!.run!.invalidSamples.map((s) => `${s.key}: ${s.reason.split(':')[0]}`).sort()).toEqual([
      '(null): primary key "id" is null',
      '(null): primary key "id" is null',
      '42: duplicate primary key "id" = 42 (2 rows)',
      '42: duplicate primary key "id" = 42 (2 rows)',
    ]);
    const rows = await project.destinationRows();
    expect(rows).toHaveLength(9_999);
    expect(rows.find((r) => r.customer_id === 42)).toBeUndefined();
    expect(rows).toEqual(await project.expectedRows());

    project.writes = [];
    const [second] = await runtime.run(['customers-to-crm']);
    expect(second!.run!.counters).toMatchObject({ queued: 0, messages: 0 });
    expect(project.writes).toHaveLength(0);

    const [full] = await runtime.run(['customers-to-crm'], { full: true });
    expect(full!.run!.counters).toMatchObject({ extracted: 10_003, unchanged: 9_999, queued: 0 });
    expect(project.writes).toHaveLength(0);
  }, 240_000);

  it('mirrors 100 updates, 10 inserts and 5 deletes as exactly those operations', async () => {
    project = await TestProject.create({ customers: 1000, mode: 'mirror', cursor: false });
    runtime = await project.runtime();
    await runtime.run(['customers-to-crm']);
    await project.sql(`
      update customers set plan = 'churned', updated_at = updated_at + interval 1 day where id between 101 and 200;
      insert into customers select id + 1000, email, first_name, last_name, plan, ltv, updated_at from customers where id between 1 and 10;
      delete from customers where id between 501 and 505;`);
    project.writes = [];
    const [summary] = await runtime.run(['customers-to-crm']);
    expect(summary!.run!.counters).toMatchObject({
      created: 10,
      updated: 100,
      deleted: 5,
      unchanged: 894,
      rejected: 0,
    });
    const ops = project.writes.flatMap((b) => b.records.map((r) => r.op));
    expect(ops.filter((op) => op === 'delete')).toHaveLength(5);
    expect(ops.filter((op) => op === 'upsert')).toHaveLength(110);
    expect(await project.destinationRows()).toEqual(await project.expectedRows());
  });

  it('stops a mirror run that would delete half the destination, and --force lets it through', async () => {
    project = await TestProject.create({ customers: 200, mode: 'mirror', cursor: false });
    runtime = await project.runtime();
    await runtime.run(['customers-to-crm']);
    await project.sql('delete from customers where id > 100');
    project.writes = [];
    const [stopped] = await runtime.run(['customers-to-crm']);
    expect(stopped!.status).toBe('stopped');
    expect(stopped!.reason).toMatch(
      /would delete 100 of 199 synced records \(50\.3%\), above guardrails\.max_delete_ratio 0\.2; nothing was sent/,
    );
    expect(project.writes).toHaveLength(0);
    expect(await project.destinationRows()).toHaveLength(199);

    const [forced] = await runtime.run(['customers-to-crm'], { force: true });
    expect(forced!.run!.counters.deleted).toBe(100);
    expect(await project.destinationRows()).toHaveLength(99);
  });

  it('stops before sending anything when a mapped column is dropped from the model', async () => {
    project = await TestProject.create({ customers: 50 });
    runtime = await project.runtime();
    await runtime.run(['customers-to-crm']);
    await project.sql("update customers set plan = 'x', updated_at = updated_at + interval 1 day");
    await runtime.stop();
    project.writeConfig({ sql: 'select id, email, first_name, last_name, ltv, updated_at from customers' });
    project.writes = [];
    runtime = await project.runtime();
    const [summary] = await runtime.run(['customers-to-crm']);
    expect(summary!.status).toBe('stopped');
    expect(summary!.reason).toMatch(/schema drift: .* no longer has column "plan".*nothing was sent/);
    expect(project.writes).toHaveLength(0);
  });

  it('stops when a mapped column changes type, and --force accepts the new type', async () => {
    project = await TestProject.create({ customers: 50 });
    runtime = await project.runtime();
    await runtime.run(['customers-to-crm']);
    await runtime.stop();
    project.writeConfig({
      sql: 'select id, email, first_name, last_name, plan, ltv::varchar as ltv, updated_at from customers',
    });
    project.writes = [];
    runtime = await project.runtime();
    const [stopped] = await runtime.run(['customers-to-crm']);
    expect(stopped!.status).toBe('stopped');
    expect(stopped!.reason).toMatch(/the type of "ltv" number → string changed since the last run; nothing was sent/);
    expect(project.writes).toHaveLength(0);
    const [forced] = await runtime.run(['customers-to-crm'], { force: true, full: true });
    expect(forced!.status).toBe('succeeded');
    expect(forced!.run!.counters.updated).toBe(49);
  });

  it('ends with the right state when the process dies between the destination write and the state write', async () => {
    project = await TestProject.create({ customers: 300 });
    let crashes = 0;
    runtime = await project.runtime({
      wrapState: (state): StateStore => {
        const wrapped = Object.create(state) as StateStore;
        wrapped.putRecords = async (syncId, states) => {
          if (crashes < 2) {
            crashes++;
            throw new Error('injected crash after the destination write');
          }
          return state.putRecords(syncId, states);
        };
        return wrapped;
      },
    });
    const [summary] = await runtime.run(['customers-to-crm']);
    expect(crashes).toBe(2);
    expect(summary!.status).toBe('succeeded');
    expect(await project.destinationRows()).toEqual(await project.expectedRows());
    // The redelivered batches were written twice, never lost; state now knows every record.
    expect(project.recordsWritten()).toBeGreaterThan(300);
    project.writes = [];
    const [rerun] = await runtime.run(['customers-to-crm'], { full: true });
    expect(rerun!.run!.counters).toMatchObject({ queued: 0, unchanged: 299 });
  });

  it('delivers any text the warehouse holds: emoji, noncharacters, control characters, right-to-left marks', async () => {
    project = await TestProject.create({ customers: 30 });
    await project.sql(`
      update customers set first_name = 'thumbs 👍 ' || chr(65534) || chr(65535) || chr(1) || chr(8238) || 'é漢字'
      where id between 1 and 25`);
    runtime = await project.runtime();
    const [summary] = await runtime.run(['customers-to-crm']);
    // 30 customers, the extra row of key 42 (a key of its own here) and two rows without a key.
    expect(summary).toMatchObject({ status: 'succeeded', run: { counters: { invalid: 2, created: 31 } } });
    const rows = await project.destinationRows();
    expect(rows.find((r) => r.customer_id === 7)?.first_name).toBe('thumbs 👍 \uFFFE\uFFFF\u0001\u202Eé漢字');
    expect(rows).toEqual(await project.expectedRows());
  });

  it('redrives four dead-lettered runs of the same rows and ends with the newest values, reopening and closing each run', async () => {
    project = await TestProject.create({ customers: 100, retryBudgetSeconds: 0, pageSize: 30 });
    let down = true;
    runtime = await project.runtime({
      exportConcurrency: 3,
      wrapDestination: (_lane, connection): DestinationConnection => ({
        ...connection,
        write: async (batch) => {
          if (down) throw new TransientError('connect ECONNREFUSED 127.0.0.1:5999');
          return connection.write(batch);
        },
      }),
    });
    const runs: string[] = [];
    for (const plan of ['A', 'B', 'C', 'D']) {
      await project.sql(`update customers set plan = '${plan}', updated_at = updated_at + interval 1 day`);
      const [summary] = await runtime.run(['customers-to-crm']);
      expect(summary!.run).toMatchObject({ status: 'failed', counters: { deadLettered: 99 } });
      runs.push(summary!.run!.runId);
    }
    down = false;
    const redriven = await runtime.redrive('crm');
    expect(redriven).toMatchObject({ deadLettered: 0, records: 396 });
    // The newest version of each record is delivered once; the three older ones are skipped.
    // Every version of every record ends delivered or skipped as older than one already delivered
    // (versions held back while another was in flight come back later: they are not counted twice).
    const { created = 0, updated = 0, stale = 0 } = redriven.delta;
    expect(created).toBe(99);
    expect(created + updated + stale).toBe(396);
    expect(redriven.delta).toMatchObject({ deadLettered: -396, messagesDeadLettered: -16 });
    const rows = await project.destinationRows();
    expect(rows.map((r) => r.plan)).toEqual(rows.map(() => 'D'));
    expect(rows).toEqual(await project.expectedRows());
    for (const runId of runs) {
      const run = await runtime.state.getRun('customers-to-crm', runId);
      expect(run).toMatchObject({ status: 'succeeded', counters: { deadLettered: 0, messagesDeadLettered: 0 } });
      expect(run!.error).toBeUndefined();
    }
    // And a full re-diff agrees with the state: nothing to heal.
    const [full] = await runtime.run(['customers-to-crm'], { full: true });
    expect(full!.run!.counters).toMatchObject({ queued: 0, unchanged: 99 });
  });

  it('never lets a redrive deliver a value the model has since moved back from', async () => {
    project = await TestProject.create({ customers: 10, retryBudgetSeconds: 0 });
    let down = false;
    runtime = await project.runtime({
      wrapDestination: (_lane, connection): DestinationConnection => ({
        ...connection,
        write: async (batch) => {
          if (down) throw new TransientError('connect ECONNREFUSED 127.0.0.1:5999');
          return connection.write(batch);
        },
      }),
    });
    await project.sql("update customers set plan = 'A', updated_at = updated_at + interval 1 day where id = 4");
    await runtime.run(['customers-to-crm']);
    down = true;
    await project.sql("update customers set plan = 'B', updated_at = updated_at + interval 2 day where id = 4");
    const [failed] = await runtime.run(['customers-to-crm']);
    expect(failed!.run!.counters.deadLettered).toBe(1);
    down = false;
    await project.sql("update customers set plan = 'A', updated_at = updated_at + interval 3 day where id = 4");
    // A is what the destination holds, but B waits in the dead-letter queue: A is sent again.
    const [full] = await runtime.run(['customers-to-crm'], { full: true });
    expect(full!.run!.counters).toMatchObject({ queued: 1, updated: 1 });
    const redriven = await runtime.redrive('crm');
    expect(redriven.delta).toMatchObject({ stale: 1, updated: 0 });
    const rows = await project.destinationRows();
    expect(rows.find((r) => r.customer_id === 4)?.plan).toBe('A');
  });

  it('keeps the newer version when two versions of a record arrive out of order', async () => {
    project = await TestProject.create({ customers: 5 });
    runtime = await project.runtime();
    await runtime.run(['customers-to-crm']);
    const message = (version: number, plan: string): LaneMessage => ({
      v: 1,
      syncId: 'customers-to-crm',
      runId: String(version),
      version,
      object: 'contacts',
      matchField: 'customer_id',
      fieldTypes: { customer_id: 'integer', plan: 'string' },
      attempt: 0,
      records: [{ key: '3', op: 'upsert', match: 3, fields: { plan: plan }, hash: `h${version}` }],
    });
    await runtime.enqueue('crm', [message(100, 'newer')]);
    await runtime.drain();
    await runtime.enqueue('crm', [message(99, 'older')]);
    await runtime.drain();
    const rows = await project.destinationRows();
    expect(rows.find((r) => r.customer_id === 3)?.plan).toBe('newer');
    const state = await runtime.state.getRecords('customers-to-crm', ['3']);
    expect(state.get('3')).toMatchObject({ version: 100, hash: 'h100' });
  });

  it('continues a long plan in fresh invocations without losing or repeating a row', async () => {
    project = await TestProject.create({ customers: 1000, pageSize: 100 });
    const plans: string[] = [];
    // Every invocation believes it has 1 s left, below the reserve: it hands over after each page.
    runtime = await project.runtime({
      planBudgetMs: () => 1000,
      onProgress: (event) => {
        if (event.type === 'plan') plans.push(event.result.status);
      },
    });
    const [summary] = await runtime.run(['customers-to-crm']);
    expect(plans.length).toBeGreaterThanOrEqual(10);
    expect(plans.at(-1)).toBe('planned');
    expect(summary!.run!.counters).toMatchObject({ extracted: 1003, created: 999, invalid: 4 });
    expect(await project.destinationRows()).toHaveLength(999);
  });

  it('retries what the destination asks to retry, and dead-letters batches that keep failing', async () => {
    // A budget of 3 s: retries (brought forward locally) go on for 3 s, then the batch is dead-lettered.
    project = await TestProject.create({ customers: 20, retryBudgetSeconds: 3 });
    let failing = true;
    let retried = false;
    runtime = await project.runtime({
      wrapDestination: (_lane, connection): DestinationConnection => ({
        ...connection,
        write: async (batch) => {
          if (failing) throw new TransientError('destination down');
          if (!retried) {
            retried = true;
            const [first, ...rest] = batch.records;
            return [
              { key: first!.key, status: 'retry', reason: 'try later', afterMs: 10 },
              ...(await connection.write({ ...batch, records: rest })),
            ];
          }
          return connection.write(batch);
        },
      }),
    });
    const [failed] = await runtime.run(['customers-to-crm']);
    expect(failed).toMatchObject({ status: 'failed' });
    expect(failed!.run).toMatchObject({ status: 'failed', counters: { deadLettered: 21, messagesDeadLettered: 1 } });
    expect(failed!.run!.error).toMatch(
      /21 record\(s\) dead-lettered on lane crm after \d+ failure\(s\) over \d+ s \(retry budget 3 s\): TransientError: destination down/,
    );

    failing = false;
    const [healed] = await runtime.run(['customers-to-crm']);
    expect(healed!.run!.error ?? healed!.reason).toBeUndefined();
    expect(healed!.status).toBe('succeeded');
    // 20 customers plus the row that duplicates id 42, which is a key of its own here.
    expect(healed!.run!.counters).toMatchObject({ retried: 1, created: 21 });
    expect(await project.destinationRows()).toEqual(await project.expectedRows());
  });
});
