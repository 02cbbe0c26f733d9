/**
 * Builds the quickstart's demo warehouse (examples/quickstart/data/warehouse.duckdb) once:
 * 10,000 customers, deterministic, plus a few rows that are invalid on purpose.
 * `--force` rebuilds it; `--touch N` bumps `updated_at` of N customers (to watch an incremental run).
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';

const here = path.dirname(fileURLToPath(import.meta.url));
const file = path.join(here, 'data', 'warehouse.duckdb');

export const CUSTOMERS = 10_000;

/** SQL creating the demo customers table; shared with the tests so they check the same data. */
export function seedSql(customers = CUSTOMERS): string {
  return `
    create or replace table customers as
    select
      i as id,
      lower(first_name) || '.' || lower(last_name) || i || '@example.com' as email,
      first_name,
      last_name,
      (['free', 'starter', 'pro', 'enterprise'])[1 + i % 4] as plan,
      round(((i * 7919) % 100000) / 100.0, 2)::decimal(12, 2) as ltv,
      timestamp '2026-01-01 00:00:00' + to_minutes(i) as updated_at
    from (
      select
        i,
        (['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'John', 'Margaret', 'Ken'])[1 + i % 10] as first_name,
        (['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Backus', 'Hamilton', 'Thompson', 'Ritchie'])[1 + i % 11] as last_name
      from range(1, ${customers + 1}) as t(i)
    );
    -- Invalid on purpose: two rows without a primary key and a duplicate of customer 42.
    insert into customers values
      (null, 'nobody@example.com', 'No', 'Key', 'free', 0, timestamp '2026-01-01 00:00:00'),
      (null, 'nokey@example.com', 'Also', 'Nokey', 'free', 0, timestamp '2026-01-01 00:00:00'),
      (42, 'impostor@example.com', 'Dupli', 'Cate', 'pro', 1, timestamp '2026-01-01 00:00:00');
  `;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const force = args.includes('--force');
  const touch = args.includes('--touch') ? Number(args[args.indexOf('--touch') + 1] ?? 100) : 0;
  await ensureWarehouse({ force, touch });
}

/** Builds the demo warehouse unless it exists (`force` rebuilds it); `touch` bumps N customers. */
export async function ensureWarehouse(options: { force?: boolean; touch?: number } = {}): Promise<void> {
  const { force = false, touch = 0 } = options;
  if (force) rmSync(file, { force: true });
  if (existsSync(file) && touch === 0) return;
  mkdirSync(path.dirname(file), { recursive: true });
  const instance = await DuckDBInstance.create(file);
  const connection = await instance.connect();
  if (touch > 0) {
    await connection.run(
      `update customers set ltv = ltv + 1, updated_at = now()::timestamp where id in (select id from customers where id is not null order by hash(id, epoch_ms(now())) limit ${touch})`,
    );
    console.log(`touched ${touch} customers in ${path.relative(process.cwd(), file)}`);
  } else {
    await connection.run(seedSql());
    console.log(
      `created the demo warehouse ${path.relative(process.cwd(), file)} (${CUSTOMERS} customers + 3 invalid rows)`,
    );
  }
  connection.closeSync();
  instance.closeSync();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await main();
