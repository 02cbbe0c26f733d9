import * as z from 'zod';
import { databaseConnection } from '#connectors/sdk/database-options';
import { defineSourceManifest } from '#connectors/sdk/source';

const options = z.strictObject({
  connection: databaseConnection(5432),
  /** Server-side cap per statement (`statement_timeout`); 0 disables it. */
  statement_timeout_ms: z.number().int().min(0).default(300_000),
  /** Shown in `pg_stat_activity`, so Backflow's sessions are easy to find. */
  application_name: z.string().min(1).default('backflow'),
});

/** PostgreSQL (and Redshift), read in keyset pages. docs/sources/postgres.md */
export const postgresSourceManifest = defineSourceManifest({
  type: 'postgres',
  optionsSchema: options,
  secretKeys: ['connection.password'],
});
