import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { duckdbLimits } from './limits.ts';

const options = z.strictObject({
  /** DuckDB database file, relative to backflow.yml; created when missing. */
  path: z.string().min(1),
  /** Schema of tables named without one in a sync's `object`; created when missing. */
  schema: z.string().min(1).default('main'),
});

/** Tables of a DuckDB file, created from the model's types on first write. docs/destinations/duckdb.md */
export const duckdbDestinationManifest = defineDestinationManifest({
  type: 'duckdb',
  optionsSchema: options,
  secretKeys: [],
  modes: ['upsert', 'update', 'insert', 'mirror'],
  limits: duckdbLimits,
});
