import * as z from 'zod';
import { databaseConnection } from '#connectors/sdk/database-options';
import { defineSourceManifest } from '#connectors/sdk/source';

const options = z.strictObject({
  connection: databaseConnection(3306),
  /** Cap per query (server-side `max_execution_time` / `max_statement_time`); 0 disables it. */
  query_timeout_ms: z.number().int().min(0).default(300_000),
});

/** MySQL 8 and MariaDB, read in keyset pages. docs/sources/mysql.md */
export const mysqlSourceManifest = defineSourceManifest({
  type: 'mysql',
  optionsSchema: options,
  secretKeys: ['connection.password'],
});
