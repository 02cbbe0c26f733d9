import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * PostgreSQL sets no per-request record cap; 500 rows keep one multi-row upsert well under a
 * second and its JSON parameter small, while still amortizing the round trips of a transaction.
 */
export const postgresLimits: DestinationLimits = {
  batchSize: { value: 500, doc: 'https://www.postgresql.org/docs/current/sql-insert.html' },
};
