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

const NUMERIC_TEXT = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;
const ISO_DATE = /^\d{4}-\d\d-\d\d$/;

/**
 * A value of a model column of type `from` made fit for a destination field of type `to` (as the
 * connector discovers it), before the vendor's formats apply. A timestamp into a date field keeps
 * its UTC day; a date into a timestamp field is its midnight UTC; a date or timestamp into a text
 * field stays ISO 8601 text (never epoch milliseconds); numbers and booleans into a text field
 * become their text; numeric text into a number field becomes the number. Anything else is left
 * for the vendor to judge, per record.
 */
export function convertValue(
  value: JsonValue,
  from: FieldType | undefined,
  to: FieldType | undefined,
  formats: ValueFormats = {},
): { value: JsonValue; type: FieldType | undefined } {
  if (value === null || to === undefined || from === to) return { value, type: to ?? from };
  if (to === 'date' && from === 'timestamp' && typeof value === 'string') {
    const ms = Date.parse(value);
    return { value: Number.isNaN(ms) ? value : new Date(ms).toISOString().slice(0, 10), type: 'date' };
  }
  if (to === 'timestamp' && from === 'date' && typeof value === 'string' && ISO_DATE.test(value)) {
    return { value: `${value}T00:00:00.000Z`, type: 'timestamp' };
  }
  if (to === 'string') {
    if (typeof value === 'number' || typeof value === 'boolean') return { value: String(value), type: 'string' };
    if (typeof value === 'string') return { value, type: 'string' };
    // A list into a text field: joined as the vendor joins lists (a multi-select picklist takes
    // `a;b`), else its JSON text; an object is its JSON text.
    if (Array.isArray(value)) {
      if (formats.array === 'semicolon') return { value: value.map(String).join(';'), type: 'string' };
      if (formats.array === 'comma') return { value: value.map(String).join(','), type: 'string' };
    }
    return { value: JSON.stringify(value), type: 'string' };
  }
  if ((to === 'number' || to === 'integer') && typeof value === 'string' && NUMERIC_TEXT.test(value)) {
    // A vendor that takes every value as text keeps the exact digits.
    return { value: formats.number === 'string' ? value : Number(value), type: to };
  }
  return { value, type: from === 'json' ? 'json' : to };
}

/**
 * Pairings of a model column's type and a destination field's type that lose information on the
 * way (validate --remote warns about them), with what is lost.
 */
export function lossyPairing(from: FieldType, to: FieldType): string | undefined {
  if (from === to) return undefined;
  if (from === 'timestamp' && to === 'date') return 'the time of day is dropped (the UTC date is sent)';
  if (from === 'number' && to === 'integer') return 'a fractional value will be refused by the destination';
  if ((from === 'string' || from === 'json') && (to === 'number' || to === 'integer'))
    return 'text that is not a number will be refused by the destination';
  if (from === 'string' && (to === 'date' || to === 'timestamp'))
    return 'text that is not an ISO 8601 date will be refused by the destination';
  if (from === 'string' && to === 'boolean') return 'text other than true/false will be refused by the destination';
  if ((from === 'date' || from === 'timestamp') && (to === 'number' || to === 'integer' || to === 'boolean'))
    return `a ${from} cannot be written to a ${to} field`;
  return undefined;
}

export function formatValue(
  value: JsonValue,
  type: FieldType | undefined,
  formats: ValueFormats,
  field = '',
  /** The destination field's type, when the connector discovered it: it decides the format. */
  destinationType?: FieldType,
): JsonValue {
  if (value === null) return null;
  if (destinationType !== undefined) {
    // A JSON column's text is the value it spells, converted for the field like any other value.
    if (type === 'json' && typeof value === 'string') {
      const parsed = parseJson(value);
      if (destinationType === 'json') return formatValue(parsed, undefined, formats, field);
      return formatValue(parsed, jsonType(parsed), formats, field, destinationType);
    }
    const converted = convertValue(value, type, destinationType, formats);
    if (converted.type !== 'json' || typeof converted.value !== 'string')
      return formatValue(converted.value, converted.type, formats, field);
  }
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

/** The Backflow type of a parsed JSON value (objects and lists stay `json`). */
function jsonType(value: JsonValue): FieldType {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return 'json';
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
  destinationTypes: ReadonlyMap<string, FieldType> = new Map(),
): OutboundRecord {
  const fields: Record<string, JsonValue> = {};
  for (const [name, value] of Object.entries(record.fields))
    fields[name] = formatValue(value, fieldTypes[name], formats, name, destinationTypes.get(name));
  return { ...record, fields };
}

/**
 * Wraps a connection so every batch is formatted as the connector declared, from the types of
 * the destination's fields: discovered once per object and connection (one `fields()` call,
 * paced like any request), and the model column's type where the field is unknown.
 */
export function withFormats(
  connection: DestinationConnection,
  formats: ValueFormats | undefined,
): DestinationConnection {
  if (!formats) return connection;
  const discovered = new Map<string, Promise<ReadonlyMap<string, FieldType>>>();
  const typesOf = (object: string) => {
    let types = discovered.get(object);
    if (!types) {
      types = connection.fields(object).then((fields) => new Map(fields.map((f) => [f.name, f.type])));
      // A failed discovery is the batch's failure (the same vendor refuses the write too); the
      // next batch asks again.
      types.catch(() => discovered.delete(object));
      discovered.set(object, types);
    }
    return types;
  };
  return {
    ...connection,
    async write(batch) {
      const types = await typesOf(batch.object);
      return connection.write({
        ...batch,
        records: batch.records.map((r) => formatRecord(r, batch.fieldTypes, formats, types)),
      });
    },
  };
}
