import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRuntime } from '#cli/local-runtime';
import { openDuckDb, queryRows } from '#connectors/duckdb/database';
import { manifests } from '#connectors/manifests';
import { loadConfig } from '#core/config/load';
import { seedSql } from '../../examples/quickstart/seed.ts';
import { backflow, json } from '../cli/helpers.ts';

/**
 * A membership sync end to end through the local runtime: a "high value" segment of the
 * quickstart's customers (rules: ltv ≥ 900 and plan in pro/enterprise), kept equal to a real
 * PostgreSQL table in mirror mode — the ground truth is PostgreSQL itself, compared with the
 * warehouse's own answer to the same question.
 */
const database = `backflow_seg_e2e_${randomBytes(5).toString('hex')}`;
const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-segments-'));
let warehouse: DuckDBConnection;
let crm: pg.Client;

const CONFIG = `version: 1
sources:
  warehouse: { type: duckdb, path: warehouse.duckdb }
models:
  customers:
    source: warehouse
    sql: select id, email, first_name, plan, ltv, updated_at from customers
    primary_key: id
    cursor: updated_at
segments:
  high_value:
    description: customers worth a call
    model: customers
    rules:
      all:
        - { column: ltv, op: gte, value: 900 }
        - { column: plan, op: in, value: [pro, enterprise] }
destinations:
  crm:
    type: postgres
    connection: { host: 127.0.0.1, port: 5432, database: ${database}, user: postgres }
syncs:
  high-value-list:
    segment: high_value
    destination: crm
    object: high_value_members
    mode: mirror
    match: { customer_id: id }
    mappings:
      email: email
    guardrails: { max_delete_ratio: 0.3 }
`;

async function expectedMembers(): Promise<number[]> {
  const rows = (
    await queryRows(
      warehouse,
      "select id from customers where id is not null and ltv >= 900 and plan in ('pro', 'enterprise') qualify count(*) over (partition by id) = 1 order by id",
    )
  ).rows;
  return rows.map((r) => Number(r.id));
}

async function destinationMembers(): Promise<number[]> {
  const out = await crm.query('select customer_id from high_value_members order by customer_id');
  return out.rows.map((r) => Number(r.customer_id));
}

async function run(options: { force?: boolean } = {}) {
  const runtime = await LocalRuntime.start({
    config: loadConfig(path.join(dir, 'backflow.yml'), manifests),
    stateDir: path.join(dir, '.backflow'),
    maxDelaySeconds: 0,
  });
  try {
    // The warehouse file is opened by the source: release ours while the run reads it.
    return (await runtime.run(['high-value-list'], options))[0]!;
  } finally {
    await runtime.stop();
  }
}

async function change(sql: string): Promise<void> {
  await warehouse.run(sql);
}

beforeAll(async () => {
  const admin = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query(`create database ${database}`);
  await admin.end();
  crm = new pg.Client({ host: '127.0.0.1', user: 'postgres', database });
  await crm.connect();
  warehouse = await openDuckDb(path.join(dir, 'warehouse.duckdb'), { projectDir: dir });
  await warehouse.run(seedSql(2000));
  writeFileSync(path.join(dir, 'backflow.yml'), CONFIG);
});

afterAll(async () => {
  await crm?.end();
  warehouse?.closeSync();
  const admin = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query(`drop database if exists ${database} with (force)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('a membership sync of a segment', () => {
  it('adds every member on the first run', async () => {
    const summary = await run();
    expect(summary.status).toBe('succeeded');
    const members = await expectedMembers();
    expect(members.length).toBeGreaterThan(50);
    expect(await destinationMembers()).toEqual(members);
    expect(summary.run!.counters.created).toBe(members.length);
  });

  it('removes who left and adds who entered; an unchanged rerun sends nothing', async () => {
    const before = await expectedMembers();
    const leaving = before.slice(0, 5);
    await change(`update customers set ltv = 10, updated_at = now() where id in (${leaving.join(',')})`);
    await change("update customers set ltv = 950, plan = 'pro', updated_at = now() where id in (1, 2, 3)");
    const summary = await run();
    expect(summary.run!.counters).toMatchObject({ deleted: 5 });
    const members = await expectedMembers();
    expect(await destinationMembers()).toEqual(members);
    for (const id of leaving) expect(members).not.toContain(id);
    const rerun = await run();
    expect(rerun.run!.counters).toMatchObject({ queued: 0, deletesQueued: 0 });
  });

  it('adds a member who re-enters', async () => {
    const [id] = (await queryRows(warehouse, 'select id from customers where ltv = 10 order by id limit 1')).rows;
    await change(`update customers set ltv = 999, plan = 'enterprise', updated_at = now() where id = ${id!.id}`);
    await run();
    expect(await destinationMembers()).toContain(Number(id!.id));
    expect(await destinationMembers()).toEqual(await expectedMembers());
  });

  it('stops a run that would remove more than max_delete_ratio, before anything is sent; --force lets it through', async () => {
    const before = await destinationMembers();
    await change("update customers set plan = 'free', updated_at = now() where ltv < 1000");
    const stopped = await run();
    expect(stopped.status).toBe('stopped');
    expect(stopped.reason).toMatch(/guardrail: sync high-value-list would delete \d+ of \d+/);
    expect(await destinationMembers()).toEqual(before);
    const forced = await run({ force: true });
    expect(forced.status).toBe('succeeded');
    expect(await destinationMembers()).toEqual(await expectedMembers());
  });

  it('`backflow segments` shows the size, who enters and leaves next, and members with the columns the rules read', async () => {
    await change("update customers set ltv = 995, plan = 'pro', updated_at = now() where id in (10, 11)");
    const expected = await expectedMembers();
    const delivered = await destinationMembers();
    // DuckDB lets one process at a time open a file, and this one keeps its instance: the CLI
    // reads a copy of the project (warehouse checkpointed, local state included).
    await warehouse.run('checkpoint');
    const copy = mkdtempSync(path.join(os.tmpdir(), 'backflow-segments-cli-'));
    cpSync(dir, copy, { recursive: true });
    try {
      const result = await backflow(['segments', 'high_value', '--json'], copy);
      expect(result.code, result.stderr).toBe(0);
      const [report] = json<{ segments: Record<string, unknown>[] }>(result).segments;
      expect(report).toMatchObject({
        segment: 'high_value',
        size: expected.length,
        comparedWith: 'high-value-list',
        entering: expected.filter((id) => !delivered.includes(id)).length,
        leaving: delivered.filter((id) => !expected.includes(id)).length,
        columns: ['id', 'ltv', 'plan'],
      });
      expect((report!.sample as { id: number }[]).map((r) => Number(r.id))).toEqual(expected.slice(0, 5));
      const human = await backflow(['segments'], copy);
      expect(human.stdout).toMatch(/high_value +\d+ member\(s\)/);
      expect(human.stdout).toMatch(/next run of high-value-list: \+2 entering, -0 leaving/);
      // `plan` says the same in its own terms, with the guardrail's verdict.
      const plan = await backflow(['plan', 'high-value-list'], copy);
      expect(plan.code, plan.stderr).toBe(0);
      expect(plan.stdout).toMatch(/entering +2/);
      expect(plan.stdout).toMatch(/leaving +0/);
      expect(plan.stdout).toMatch(/guardrail +✔ pass: removes 0 of \d+ synced/);
      const preview = await backflow(['preview', 'high-value-list', '--limit', '3'], copy);
      expect(preview.code, preview.stderr).toBe(0);
      expect(preview.stdout).toMatch(/member\(s\) of segment high_value → crm\.high_value_members \(mirror\)/);
    } finally {
      if (!process.env.KEEP) rmSync(copy, { recursive: true, force: true });
    }
  });
});
