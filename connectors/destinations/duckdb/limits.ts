import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * DuckDB is embedded: no network and no request cap. It prefers few large transactions over many
 * small ones (one writer per file), hence a larger batch than the network databases.
 */
export const duckdbLimits: DestinationLimits = {
  batchSize: { value: 1000, doc: 'https://duckdb.org/docs/sql/statements/insert' },
};
