import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { LocalRuntime, type LocalRuntimeOptions } from '#cli/local-runtime';
import { openDuckDb, queryRows } from '#connectors/duckdb/database';
import { manifests } from '#connectors/manifests';
import type { DestinationConnection, WriteBatch } from '#connectors/sdk/destination';
import type { Row } from '#connectors/sdk/types';
import { type Config, loadConfig } from '#core/config/load';
import { seedSql } from '../../examples/quickstart/seed.ts';

export interface ProjectOptions {
  readonly customers?: number;
  readonly mode?: 'upsert' | 'mirror' | 'update' | 'insert';
  readonly cursor?: boolean;
  readonly sql?: string;
  readonly maxDeleteRatio?: number;
  readonly pageSize?: number;
  readonly maxReceives?: number;
  /** The lane's retry budget in seconds (default 1800). */
  readonly retryBudgetSeconds?: number;
  /** Replaces the `crm` destination's options (YAML lines indented by four spaces). */
  readonly destination?: string;
  /** The destination object (default `contacts`). */
  readonly object?: string;
  /** Replaces the sync's `match` and `mappings` (YAML lines indented by four spaces). */
  readonly mapping?: string;
  /** Extra lane settings, e.g. `requests_per_second: 5, batch_size: 5`. */
  readonly lane?: string;
}

const DEFAULT_MAPPING = `    match: { customer_id: id }
    mappings:
      email: email
      first_name: first_name
      last_name: last_name
      plan: plan
      lifetime_value: { column: ltv, nulls: sync }
      source: { value: e2e }`;

/** A throwaway project: a seeded DuckDB warehouse, a DuckDB destination, and its backflow.yml. */
export class TestProject {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-e2e-'));
  warehouse!: DuckDBConnection;
  config!: Config;
  writes: WriteBatch[] = [];

  static async create(options: ProjectOptions = {}): Promise<TestProject> {
    const project = new TestProject();
    project.warehouse = await openDuckDb(path.join(project.dir, 'warehouse.duckdb'), { projectDir: project.dir });
    await project.warehouse.run(seedSql(options.customers ?? 1000));
    project.writeConfig(options);
    return project;
  }

  writeConfig(options: ProjectOptions): void {
    const yml = `version: 1
sources:
  warehouse: { type: duckdb, path: warehouse.duckdb }
models:
  customers:
    source: warehouse
    sql: ${options.sql ?? 'select id, email, first_name, last_name, plan, ltv, updated_at from customers'}
    primary_key: id
${options.cursor === false ? '' : '    cursor: updated_at\n'}    page_size: ${options.pageSize ?? 10000}
destinations:
  crm:
${options.destination ?? '    type: duckdb\n    path: crm.duckdb'}
    lane: { max_receives: ${options.maxReceives ?? 5}, retry_budget_seconds: ${options.retryBudgetSeconds ?? 1800}${options.lane ? `, ${options.lane}` : ''} }
syncs:
  customers-to-crm:
    model: customers
    destination: crm
    object: ${options.object ?? 'contacts'}
    mode: ${options.mode ?? 'upsert'}
${options.mapping ?? DEFAULT_MAPPING}
    guardrails: { max_delete_ratio: ${options.maxDeleteRatio ?? 0.2} }
`;
    writeFileSync(path.join(this.dir, 'backflow.yml'), yml);
    this.config = loadConfig(path.join(this.dir, 'backflow.yml'), manifests);
  }

  /** Starts the local runtime on this project; every destination write is recorded in `writes`. */
  runtime(options: Partial<LocalRuntimeOptions> = {}): Promise<LocalRuntime> {
    return LocalRuntime.start({
      config: this.config,
      stateDir: path.join(this.dir, '.backflow'),
      maxDelaySeconds: 0,
      ...options,
      wrapDestination: (lane, connection) => {
        const recorded: DestinationConnection = {
          ...connection,
          write: (batch) => {
            this.writes.push(batch);
            return connection.write(batch);
          },
        };
        return options.wrapDestination ? options.wrapDestination(lane, recorded) : recorded;
      },
    });
  }

  async sql(text: string): Promise<Row[]> {
    return (await queryRows(this.warehouse, text)).rows;
  }

  /** The destination table, ordered by its match key. */
  async destinationRows(): Promise<Row[]> {
    const crm = await openDuckDb(path.join(this.dir, 'crm.duckdb'), { projectDir: this.dir });
    try {
      return (await queryRows(crm, 'select * exclude (source) from contacts order by customer_id')).rows;
    } finally {
      crm.closeSync();
    }
  }

  /** What the destination should hold: the valid model rows, mapped; a repeated key is never sent. */
  async expectedRows(): Promise<Row[]> {
    return this.sql(`
      select id as customer_id, email, first_name, last_name, plan, ltv as lifetime_value
      from customers where id is not null
      qualify count(*) over (partition by id) = 1
      order by id`);
  }

  recordsWritten(): number {
    return this.writes.reduce((n, b) => n + b.records.length, 0);
  }

  cleanup(): void {
    this.warehouse.closeSync();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
