import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { airtableLimits } from './limits.ts';

const options = z.strictObject({
  base_url: z.url().default('https://api.airtable.com'),
  /** The base (`app…`, from the base's URL): every table named as `object` lives in it. */
  base_id: z.string().regex(/^app[A-Za-z0-9]+$/, 'expected a base ID such as appXXXXXXXXXXXXXX'),
  /** A personal access token with data.records:read, data.records:write and schema.bases:read. */
  access_token: z
    .string()
    .min(1)
    .regex(/^\S+$/, 'expected the token without spaces or line breaks (check for a trailing newline)'),
  /**
   * Airtable's `typecast`: convert text to the field's type, and create select options that do
   * not exist yet. Off, a value of the wrong type (or an unknown option) refuses the record.
   * https://airtable.com/developers/web/api/update-multiple-records
   */
  typecast: z.boolean().default(false),
  /** Per request, including reading the answer. */
  timeout_ms: z.number().int().min(1_000).max(120_000).default(30_000),
});

export type AirtableOptions = z.output<typeof options>;

/**
 * Airtable: the records of one table of a base (`object` = the table's ID `tbl…` or its name),
 * upserted with `performUpsert` on the match field, fields from the base schema.
 * docs/destinations/airtable.md
 * https://airtable.com/developers/web/api/introduction
 */
export const airtableDestinationManifest = defineDestinationManifest({
  type: 'airtable',
  title: 'Airtable',
  optionsSchema: options,
  secretKeys: ['access_token'],
  modes: ['upsert', 'update', 'insert', 'mirror'],
  limits: airtableLimits,
  // Any table of the base, by ID or name: no fixed list of objects.
  /**
   * Cell values are JSON: numbers, booleans, ISO 8601 dates and date-times, arrays for multiple
   * selects and links. https://airtable.com/developers/web/api/field-model
   */
  formats: {},
});
