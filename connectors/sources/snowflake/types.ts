import type { Column } from 'snowflake-sdk';
import { toJson } from '#connectors/sdk/json';
import { exactNumber } from '#connectors/sdk/sql';
import type { FieldType, JsonValue } from '#connectors/sdk/types';

/**
 * How Snowflake result columns become Backflow's normalized values. Statements run with
 * `fetchAsString: ['Number', 'JSON', 'Object', 'Array']`, so NUMBER/FLOAT arrive as the server's
 * exact text and VARIANT, OBJECT and ARRAY as JSON text; dates and timestamps arrive as the driver's date objects, whose epoch seconds and
 * nanoseconds are exact (the formatted text depends on the session's output formats: not used).
 */
export interface SnowflakeColumn {
  readonly name: string;
  readonly type: FieldType;
  /** Snowflake's type name: `NUMBER(38,0)`, `VARCHAR`, `TIMESTAMP_TZ`… */
  readonly nativeType: string;
  /**
   * Type to cast a bound text value to, for keyset positions: spelled so Snowflake and the test
   * double's DuckDB both read it. Undefined for types that cannot order a keyset.
   */
  readonly castType: string | undefined;
  readonly convert: (value: unknown) => JsonValue;
}

/** The driver's DATE/TIMESTAMP value: a JS Date carrying Snowflake's exact epoch seconds and nanoseconds. */
interface SfDate {
  getEpochSeconds(): number;
  getNanoSeconds(): number;
}

const isSfDate = (value: unknown): value is SfDate =>
  typeof (value as SfDate | null)?.getEpochSeconds === 'function' &&
  typeof (value as SfDate | null)?.getNanoSeconds === 'function';

/** Epoch seconds + nanoseconds → `2024-02-03T04:05:06.123456789Z` (fraction without trailing zeros). */
export function isoFromEpoch(epochSeconds: number, nanoSeconds: number): string {
  const base = new Date(epochSeconds * 1000).toISOString().slice(0, -5);
  const fraction = nanoSeconds > 0 ? `.${String(nanoSeconds).padStart(9, '0').replace(/0+$/, '')}` : '';
  return `${base}${fraction}Z`;
}

function timestampValue(value: unknown): JsonValue {
  if (isSfDate(value)) return isoFromEpoch(value.getEpochSeconds(), value.getNanoSeconds());
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

function dateValue(value: unknown): JsonValue {
  if (isSfDate(value)) return new Date(value.getEpochSeconds() * 1000).toISOString().slice(0, 10);
  if (value instanceof Date) return value.toISOString().slice(0, 10);
  return String(value);
}

function realValue(value: unknown): JsonValue {
  const text = String(value).toLowerCase();
  if (text === 'inf' || text === 'infinity') return Number.POSITIVE_INFINITY;
  if (text === '-inf' || text === '-infinity') return Number.NEGATIVE_INFINITY;
  return Number(value);
}

/**
 * JSON text of a VARIANT, OBJECT or ARRAY: the server's own text (fetched as string), never parsed,
 * so numbers stay exact. Structured MAPs (Iceberg tables) come parsed by the driver, as a `Map`.
 */
function jsonValue(value: unknown): JsonValue {
  if (typeof value === 'string') return value;
  return toJson((value instanceof Map ? Object.fromEntries(value) : value) as JsonValue);
}

function binaryValue(value: unknown): JsonValue {
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return String(value);
}

const orNull =
  (convert: (value: unknown) => JsonValue) =>
  (value: unknown): JsonValue =>
    value === null || value === undefined ? null : convert(value);

/** Normalized type, Snowflake type name, keyset cast and value conversion of a result column. */
export function snowflakeColumn(column: Column): SnowflakeColumn {
  const name = column.getName();
  const sqlType = String(column.getType()).toLowerCase();
  const scale = Number(column.getScale() ?? 0) || 0;
  const precision = Number(column.getPrecision() ?? 0) || 38;
  const make = (
    type: FieldType,
    nativeType: string,
    castType: string | undefined,
    convert: (v: unknown) => JsonValue,
  ) => ({
    name,
    type,
    nativeType,
    castType,
    convert: orNull(convert),
  });
  switch (sqlType) {
    case 'fixed':
      return make(
        scale > 0 ? 'number' : 'integer',
        `NUMBER(${precision},${scale})`,
        `DECIMAL(${precision},${scale})`,
        (v) => exactNumber(String(v)),
      );
    case 'real':
      return make('number', 'FLOAT', 'DOUBLE', realValue);
    case 'text':
      return make('string', 'VARCHAR', 'VARCHAR', (v) => String(v));
    case 'boolean':
      return make('boolean', 'BOOLEAN', 'BOOLEAN', (v) => (typeof v === 'boolean' ? v : String(v) === 'true'));
    case 'date':
      return make('date', 'DATE', 'DATE', dateValue);
    case 'time':
      // The session's TIME_OUTPUT_FORMAT is HH24:MI:SS.FF9: drop the fraction's trailing zeros.
      return make('string', 'TIME', 'TIME', (v) =>
        String(v)
          .replace(/(\.\d*?)0+$/, '$1')
          .replace(/\.$/, ''),
      );
    case 'timestamp_ntz':
      // `TIMESTAMP` is TIMESTAMP_NTZ under the default TIMESTAMP_TYPE_MAPPING; in a UTC session the
      // comparison is right under any mapping.
      return make('timestamp', 'TIMESTAMP_NTZ', 'TIMESTAMP', timestampValue);
    case 'timestamp_ltz':
      return make('timestamp', 'TIMESTAMP_LTZ', 'TIMESTAMPTZ', timestampValue);
    case 'timestamp_tz':
      return make('timestamp', 'TIMESTAMP_TZ', 'TIMESTAMPTZ', timestampValue);
    case 'variant':
    case 'object':
    case 'array':
    case 'map':
    case 'vector':
      return make('json', sqlType.toUpperCase(), undefined, jsonValue);
    case 'binary':
      return make('binary', 'BINARY', undefined, binaryValue);
    default:
      return make('string', sqlType.toUpperCase(), undefined, (v) => (typeof v === 'string' ? v : JSON.stringify(v)));
  }
}

/** A normalized key or cursor value as the text bound back into `cast(? as <type>)`. */
export function bindText(value: JsonValue | undefined): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}
