import type { FieldInfo } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import type { FieldType } from '#connectors/sdk/types';
import type { AirtableField, AirtableTable } from './client.ts';

/**
 * Field discovery from the base schema, and the Backflow type of each Airtable field type.
 * https://airtable.com/developers/web/api/get-base-schema
 * https://airtable.com/developers/web/api/field-model
 */

/** Computed fields: Airtable sets them, a write naming them is refused. */
const COMPUTED = new Set([
  'formula',
  'rollup',
  'count',
  'lookup',
  'multipleLookupValues',
  'autoNumber',
  'createdTime',
  'lastModifiedTime',
  'createdBy',
  'lastModifiedBy',
  'button',
  'externalSyncSource',
  'aiText',
]);

/**
 * The normalized type of a field (the SDK formats each value for it, so it must be exact):
 * `number`, `currency`, `percent` and `duration` (seconds) take numbers, integers when their
 * precision is 0; `rating` takes an integer; `checkbox` a boolean; `date` an ISO date; `dateTime`
 * an ISO 8601 timestamp; multiple selects, links, attachments and collaborators take arrays or
 * objects (`json`); the text fields, single selects, barcodes' text… take text.
 */
export function fieldTypeOf(field: Pick<AirtableField, 'type' | 'options'>): FieldType {
  switch (field.type) {
    case 'number':
    case 'currency':
    case 'percent':
      return field.options?.precision === 0 ? 'integer' : 'number';
    case 'duration':
      return 'number';
    case 'rating':
      return 'integer';
    case 'checkbox':
      return 'boolean';
    case 'date':
      return 'date';
    case 'dateTime':
      return 'timestamp';
    case 'multipleSelects':
    case 'multipleRecordLinks':
    case 'multipleAttachments':
    case 'multipleCollaborators':
    case 'singleCollaborator':
    case 'barcode':
      return 'json';
    default:
      return 'string';
  }
}

/**
 * Whether a field can be merged on (`fieldsToMergeOn`) and looked up with `filterByFormula`
 * (`{field}="value"` or `{field}=123`): a text or number field. Inferred: Airtable documents the
 * merge fields as "field names or IDs"; arrays, objects and checkboxes cannot identify a record,
 * and a date compared with text in a formula is not documented to match.
 */
export function isMatchable(field: AirtableField): boolean {
  const type = fieldTypeOf(field);
  return type === 'string' || type === 'integer' || type === 'number';
}

/** The table named `object`, by ID (`tbl…`) or by name. */
export function tableOf(tables: readonly AirtableTable[], object: string): AirtableTable {
  const table = tables.find((t) => t.id === object) ?? tables.find((t) => t.name === object);
  if (!table) {
    const names = tables.map((t) => t.name).join(', ');
    throw new ConnectorConfigError(`Airtable base has no table "${object}" (tables: ${names || 'none'})`);
  }
  return table;
}

/** The writable fields of a table; Airtable requires none of them. */
export function tableFields(table: AirtableTable): FieldInfo[] {
  return table.fields
    .filter((f) => !COMPUTED.has(f.type))
    .map(
      (field): FieldInfo => ({
        name: field.name,
        type: fieldTypeOf(field),
        required: false,
        kind: 'custom',
        matchable: isMatchable(field),
      }),
    );
}
