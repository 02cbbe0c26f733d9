import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backflow, duckdb, editFile, initProject, json, stateSnapshot } from './helpers.ts';

/**
 * The workflow of the issue, on one project made by `backflow init`, through the real process:
 * plan → preview → preview --send → run → status → rejections → plan (guardrail) → trigger → redrive.
 * The tests share the project and run in order.
 */
describe('the backflow workflow, end to end through the CLI', () => {
  let dir: string;
  const crm = () => path.join(dir, 'data', 'crm.duckdb');
  const contacts = async () =>
    (await duckdb(crm(), 'select customer_id::integer as customer_id, plan from contacts order by customer_id')) as {
      customer_id: number;
      plan: string;
    }[];

  beforeAll(async () => {
    dir = await initProject();
    // A mirror sync (deletes, guardrail) and an update-only one whose records the CRM refuses.
    editFile(path.join(dir, 'backflow.yml'), (text) =>
      text.replace('mode: upsert ', 'mode: mirror ').concat(`
  customers-to-vip:
    model: customers
    destination: crm
    object: vip
    mode: update
    match: { customer_id: id }
    mappings:
      email: email
`),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('init made a runnable project and refuses to overwrite it', async () => {
    for (const file of ['backflow.yml', 'data/customers.csv', '.gitignore', 'README.md']) {
      expect(existsSync(path.join(dir, file))).toBe(true);
    }
    expect(readFileSync(path.join(dir, 'data/customers.csv'), 'utf8').trim().split('\n')).toHaveLength(51);
    expect(readFileSync(path.join(dir, '.gitignore'), 'utf8')).toMatch(/^\.backflow\/$/m);
    const before = readFileSync(path.join(dir, 'backflow.yml'), 'utf8');
    const again = await backflow(['init'], dir);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/backflow\.yml.*already exist.*nothing was written/);
    expect(readFileSync(path.join(dir, 'backflow.yml'), 'utf8')).toBe(before);
  });

  it('plan before the first run counts 50 creates and creates no state and no destination', async () => {
    const result = await backflow(['plan', 'customers-to-crm', '--json'], dir);
    expect(result.code).toBe(0);
    const plan = json<{
      tally: Record<string, number>;
      counters: Record<string, number>;
      runId: string;
      full: boolean;
    }>(result);
    expect(plan).toMatchObject({ runId: '0000000001', full: true });
    expect(plan.tally).toMatchObject({ creates: 50, updates: 0, deletes: 0, messages: 1 });
    expect(plan.counters).toMatchObject({ extracted: 50, unchanged: 0, invalid: 0 });
    expect(existsSync(path.join(dir, '.backflow'))).toBe(false);
    expect(existsSync(crm())).toBe(false);
  });

  it('preview shows the row, the payload and the action; --send delivers exactly those records', async () => {
    const shown = await backflow(['preview', 'customers-to-crm', '--key', '7', '--key', '999', '--json'], dir);
    expect(shown.code).toBe(0);
    const preview = json<{ records: Record<string, unknown>[]; missing: string[] }>(shown);
    expect(preview.missing).toEqual(['999']);
    expect(preview.records).toEqual([
      expect.objectContaining({
        key: '7',
        action: 'create',
        row: expect.objectContaining({ id: 7, email: 'john.backus7@example.com' }),
        payload: {
          match: { customer_id: 7 },
          fields: expect.objectContaining({ email: 'john.backus7@example.com', source: 'backflow' }),
        },
      }),
    ]);

    const sent = await backflow(['preview', 'customers-to-crm', '--key', '7', '--send'], dir);
    expect(sent.code).toBe(0);
    expect(sent.stdout).toMatch(/● 7 {2}create/);
    expect(sent.stdout).toMatch(/✔ 7 {2}delivered/);
    expect(await contacts()).toEqual([{ customer_id: 7, plan: 'enterprise' }]);
  });

  it('run syncs, status shows the runs, rejections lists what the destination refused', async () => {
    const run = await backflow(['run'], dir);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/customers-to-crm {2}succeeded/);
    expect(run.stdout).toMatch(/unchanged 1 · queued 49/);
    expect(await contacts()).toHaveLength(50);

    const status = json<{ syncs: { syncId: string; runs: { runId: string; status: string }[] }[]; lanes: unknown[] }>(
      await backflow(['status', '--json'], dir),
    );
    expect(status.syncs.map((s) => [s.syncId, s.runs.map((r) => [r.runId, r.status])])).toEqual([
      [
        'customers-to-crm',
        [
          ['0000000002', 'succeeded'],
          ['0000000001', 'succeeded'],
        ],
      ],
      ['customers-to-vip', [['0000000001', 'succeeded']]],
    ]);
    expect(status.lanes).toEqual([{ destination: 'crm', queued: 0, inFlight: 0, delayed: 0, deadLetters: 0 }]);

    const rejections = await backflow(['rejections', 'customers-to-vip', '--limit', '3'], dir);
    expect(rejections.code).toBe(0);
    expect(rejections.stdout).toMatch(/50 rejected record\(s\) of 50, newest first \(showing 3/);
    expect(rejections.stdout).toMatch(/^ {2}1 .*0000000001 {2}no matching record in the destination/m);
  });

  it('plan reports creates, updates, deletes and the guardrail verdict, and writes nothing anywhere', async () => {
    // Five customers change, fifteen leave the model: a mirror run would delete 30% > 20%.
    editFile(path.join(dir, 'data/customers.csv'), (text) =>
      text
        .trim()
        .split('\n')
        .filter((_line, i) => i <= 35)
        .map((line, i) =>
          i >= 1 && i <= 5
            ? line.replace(/,(free|starter|pro|enterprise),/, ',vip,').replace(/2026-01-01/, '2026-02-01')
            : line,
        )
        .join('\n')
        .concat('\n'),
    );
    const state = await stateSnapshot(dir);
    const destination = await contacts();
    expect(state).toBeDefined();

    const result = await backflow(['plan', 'customers-to-crm', '--full', '--json'], dir);
    expect(result.code).toBe(1);
    const plan = json<Record<string, unknown>>(result);
    expect(plan).toMatchObject({
      dryRun: true,
      runId: '0000000003',
      verdict: { status: 'stop', kind: 'guardrail' },
      forced: true,
      synced: 50,
      tally: { creates: 0, updates: 5, deletes: 15, messages: 2 },
      counters: { extracted: 35, unchanged: 30, invalid: 0 },
      estimate: { requests: 2, batchSize: 1000 },
    });
    const human = await backflow(['plan', 'customers-to-crm', '--full'], dir);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/a run would stop before sending anything/);
    expect(human.stdout).toMatch(/guardrail +■ stop: deletes 15 of 50 synced \(30\.0%\), above the limit of 20%/);
    expect(human.stdout).toMatch(/update +5 {2}e\.g\. 1, 2, 3, 4, 5/);

    expect(await stateSnapshot(dir)).toBe(state);
    expect(await contacts()).toEqual(destination);
    expect(existsSync(path.join(dir, '.backflow', 'dead-letters', 'crm.jsonl'))).toBe(false);
  });

  it('trigger runs the sync locally, and --force applies what plan announced', async () => {
    const result = await backflow(['trigger', 'customers-to-crm', '--full', '--force'], dir);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/created 0 · updated 5 · deleted 15/);
    const rows = await contacts();
    expect(rows).toHaveLength(35);
    expect(rows.slice(0, 6).map((r) => r.plan)).toEqual(['vip', 'vip', 'vip', 'vip', 'vip', 'pro']);
  });

  it('redrive moves the saved dead letters back to the lane and delivers them', async () => {
    const message = {
      v: 1,
      syncId: 'customers-to-crm',
      runId: '0000000003',
      version: 3,
      object: 'contacts',
      matchField: 'customer_id',
      fieldTypes: { customer_id: 'integer', plan: 'string' },
      attempt: 9,
      records: [{ key: '77', op: 'upsert', match: 77, fields: { plan: 'redriven' }, hash: 'h77', isNew: true }],
    };
    mkdirSync(path.join(dir, '.backflow', 'dead-letters'), { recursive: true });
    writeFileSync(path.join(dir, '.backflow', 'dead-letters', 'crm.jsonl'), `${JSON.stringify(message)}\n`);
    const status = await backflow(['status', 'customers-to-crm'], dir);
    expect(status.stdout).toMatch(/^ {2}crm +0 +0 +0 +1 {2}backflow redrive crm$/m);

    const result = await backflow(['redrive', 'crm', '--json'], dir);
    expect(result.code).toBe(0);
    expect(json(result)).toMatchObject({
      destination: 'crm',
      moved: 1,
      records: 1,
      deadLettered: 0,
      delta: { created: 1, rejected: 0 },
    });
    expect(existsSync(path.join(dir, '.backflow', 'dead-letters', 'crm.jsonl'))).toBe(false);
    expect((await contacts()).find((r) => r.customer_id === 77)).toEqual({ customer_id: 77, plan: 'redriven' });
  });
});
