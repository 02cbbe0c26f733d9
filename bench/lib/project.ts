import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { openDuckDb, queryRows } from '#connectors/duckdb/database';
import { manifests } from '#connectors/manifests';
import type { Row } from '#connectors/sdk/types';
import { type Config, loadConfig } from '#core/config/load';
import { seedSql } from '../../examples/quickstart/seed.ts';

export const SYNC_ID = 'customers-to-crm';
export const LANE = 'crm';
export const MODEL_SQL = 'select id, email, first_name, last_name, plan, ltv, updated_at from customers';

/** A throwaway project folder: a DuckDB warehouse seeded with the quickstart's customers, and its backflow.yml. */
export interface BenchProject {
  readonly dir: string;
  readonly warehouse: string;
  config: Config;
  /** Runs a query on the warehouse (through the process's shared DuckDB instance). */
  sql(text: string): Promise<Row[]>;
  cleanup(): void;
}

export interface ProjectOptions {
  /** The destination's YAML lines, indented by four spaces. */
  readonly destination?: string;
  /** Lane settings, e.g. `requests_per_second: 20, batch_size: 100`. */
  readonly lane?: string;
  /** The model's page_size; default: the engine's. */
  readonly pageSize?: number;
}

/**
 * Seeds `rows` customers (+ 3 invalid rows: two without a primary key, one duplicate) with
 * examples/quickstart/seed.ts. The instance is closed again, so another process (or the source's
 * cached instance) can open the file.
 */
export async function seedWarehouse(file: string, rows: number): Promise<void> {
  const instance = await DuckDBInstance.create(file);
  const connection = await instance.connect();
  try {
    await connection.run(seedSql(rows));
    await connection.run('checkpoint');
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

export async function createProject(rows: number, options: ProjectOptions = {}): Promise<BenchProject> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-bench-'));
  const warehouse = path.join(dir, 'warehouse.duckdb');
  await seedWarehouse(warehouse, rows);
  const project: BenchProject = {
    dir,
    warehouse,
    config: writeConfig(dir, options),
    async sql(text) {
      const connection = await openDuckDb(warehouse, { projectDir: dir });
      try {
        return (await queryRows(connection, text)).rows;
      } finally {
        connection.closeSync();
      }
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  return project;
}

export function writeConfig(dir: string, options: ProjectOptions = {}): Config {
  const yml = `version: 1
sources:
  warehouse: { type: duckdb, path: warehouse.duckdb }
models:
  customers:
    source: warehouse
    sql: ${MODEL_SQL}
    primary_key: id
    cursor: updated_at
${options.pageSize === undefined ? '' : `    page_size: ${options.pageSize}\n`}destinations:
  ${LANE}:
${options.destination ?? '    type: webhook\n    url: http://127.0.0.1:9/hooks/bench'}
    lane: { max_receives: 5${options.lane ? `, ${options.lane}` : ''} }
syncs:
  ${SYNC_ID}:
    model: customers
    destination: ${LANE}
    object: contacts
    mode: upsert
    match: { customer_id: id }
    mappings:
      email: email
      first_name: first_name
      last_name: last_name
      plan: plan
      lifetime_value: { column: ltv, nulls: sync }
      source: { value: bench }
`;
  const file = path.join(dir, 'backflow.yml');
  writeFileSync(file, yml);
  return loadConfig(file, manifests);
}

/**
 * Changes `share` of the customers (those with `id % (1/share) = slot`): a new lifetime value and
 * an `updated_at` far in the future, so an incremental read picks them up whatever the clock says.
 */
export function touchSql(share: number, slot: number): string {
  const every = Math.max(2, Math.round(1 / share));
  return `update customers set ltv = ltv + 1, updated_at = timestamp '2100-01-01 00:00:00' + to_seconds(${slot})
    where id % ${every} = ${slot % every}`;
}
