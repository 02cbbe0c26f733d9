import type { DestinationConnection, OutboundRecord } from './destination.ts';
import type { FieldType, JsonValue } from './types.ts';

/**
 * How a destination wants values it disagrees with others about. Declared once per connector
 * (`formats` in defineDestination) and applied by the SDK before `write`, from the fields' types.
 * Inputs are Backflow's normalized values: dates `YYYY-MM-DD`, timestamps ISO 8601 UTC, `json`
 * fields as JSON text (parsed here first: vendors' APIs take JSON values).
 */
export interface ValueFormats {
  /** `iso` (default) keeps `YYYY-MM-DD`; `epoch-ms-midnight` is midnight UTC in ms (HubSpot date properties). */
  readonly date?: 'iso' | 'epoch-ms-midnight';
  /** `iso` (default), `epoch-ms` or `epoch-s`. */
  readonly timestamp?: 'iso' | 'epoch-ms' | 'epoch-s';
  /** `boolean` (default) or `string` ("true"/"false"). */
  readonly boolean?: 'boolean' | 'string';
  /** Arrays: `json` (default) keeps them, `semicolon`/`comma` join them (multi-select properties). */
  readonly array?: 'json' | 'semicolon' | 'comma';
  /** Objects: `json` (default) keeps them, `string` sends JSON text. */
  readonly object?: 'json' | 'string';
  /** Fields named like phone or mobile: `e164` strips spaces and punctuation, `00` becomes `+`. */
  readonly phone?: 'e164';
  /** Numbers: `number` (default) or `string` (APIs that take every property as text). */
  readonly number?: 'number' | 'string';
}

const PHONE_FIELD = /phone|mobile|fax/i;

export function e164(value: string): string {
  const trimmed = value.trim();
  const digits = trimmed.replace(/[^\d+]/g, '');
  if (digits.startsWith('00')) return `+${digits.slice(2)}`;
  return digits;
}

export function formatValue(
  value: JsonValue,
  type: FieldType | undefined,
  formats: ValueFormats,
  field = '',
): JsonValue {
  if (value === null) return null;
  // JSON text becomes the value it spells; numbers beyond a double's precision round here, as
  // the vendors' JSON parsers would round them anyway.
  if (type === 'json' && typeof value === 'string') return formatValue(parseJson(value), undefined, formats, field);
  if (Array.isArray(value)) {
    if (formats.array === 'semicolon') return value.map(String).join(';');
    if (formats.array === 'comma') return value.map(String).join(',');
    return value;
  }
  if (typeof value === 'object') return formats.object === 'string' ? JSON.stringify(value) : value;
  if (typeof value === 'boolean') return formats.boolean === 'string' ? String(value) : value;
  if (typeof value === 'number') return formats.number === 'string' ? String(value) : value;
  if (type === 'date' && formats.date === 'epoch-ms-midnight' && /^\d{4}-\d\d-\d\d$/.test(value)) {
    return Date.parse(`${value}T00:00:00Z`);
  }
  if (type === 'timestamp' && (formats.timestamp === 'epoch-ms' || formats.timestamp === 'epoch-s')) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return formats.timestamp === 'epoch-ms' ? ms : Math.floor(ms / 1000);
  }
  if (formats.phone === 'e164' && PHONE_FIELD.test(field)) return e164(value);
  return value;
}

/**
 * JSON text parsed. A string that is no JSON text stays as it is: a JSON string value queued by an
 * earlier Backflow version, which parsed JSON columns at the source.
 */
function parseJson(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

export function formatRecord(
  record: OutboundRecord,
  fieldTypes: Readonly<Record<string, FieldType>>,
  formats: ValueFormats,
): OutboundRecord {
  const fields: Record<string, JsonValue> = {};
  for (const [name, value] of Object.entries(record.fields))
    fields[name] = formatValue(value, fieldTypes[name], formats, name);
  return { ...record, fields };
}

/** Wraps a connection so every batch is formatted as the connector declared. */
export function withFormats(
  connection: DestinationConnection,
  formats: ValueFormats | undefined,
): DestinationConnection {
  if (!formats) return connection;
  return {
    ...connection,
    write: (batch) =>
      connection.write({ ...batch, records: batch.records.map((r) => formatRecord(r, batch.fieldTypes, formats)) }),
  };
}
