import * as z from 'zod';
import { databaseConnection } from '#connectors/sdk/database-options';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { postgresLimits } from './limits.ts';

const options = z.strictObject({
  connection: databaseConnection(5432),
  /** Schema of tables named without one in a sync's `object`. */
  schema: z.string().min(1).default('public'),
});

/** PostgreSQL tables, created from the model's types on first write. docs/destinations/postgres.md */
export const postgresDestinationManifest = defineDestinationManifest({
  type: 'postgres',
  optionsSchema: options,
  secretKeys: ['connection.password'],
  modes: ['upsert', 'update', 'insert', 'mirror'],
  limits: postgresLimits,
});
