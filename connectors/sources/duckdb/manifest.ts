import * as z from 'zod';
import { defineSourceManifest } from '#connectors/sdk/source';

const options = z.strictObject({
  /** DuckDB database file, relative to backflow.yml; `:memory:` for models over Parquet/CSV files only. */
  path: z.string().default(':memory:'),
});

/** The embedded default warehouse: a DuckDB file (models may read Parquet or CSV through it). docs/sources/duckdb.md */
export const duckdbSourceManifest = defineSourceManifest({
  type: 'duckdb',
  optionsSchema: options,
  secretKeys: [],
});
