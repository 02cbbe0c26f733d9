import * as duckdb from '@duckdb/node-api';
import {
  type DuckDBBlobValue,
  type DuckDBDateValue,
  type DuckDBDecimalValue,
  type DuckDBTimestampMillisecondsValue,
  type DuckDBTimestampNanosecondsValue,
  type DuckDBTimestampSecondsValue,
  type DuckDBTimestampTZValue,
  type DuckDBTimestampValue,
  type DuckDBTimeValue,
  type DuckDBType,
  DuckDBTypeId,
  type DuckDBValue,
} from '@duckdb/node-api';
import { duckJsonText } from '#connectors/duckdb/database';

/**
 * How the fake Snowflake describes DuckDB result columns and encodes their values, the way
 * Snowflake's JSON result format does (see docs/testing.md, "The Snowflake fake"):
 *
 * | DuckDB                              | Snowflake rowtype        | value text                         |
 * | ----------------------------------- | ------------------------ | ---------------------------------- |
 * | TINYINT … BIGINT, HUGEINT, unsigned | fixed(38,0)              | decimal digits                     |
 * | DECIMAL(p,s)                        | fixed(p,s)               | exact decimal, `s` fraction digits |
 * | FLOAT, DOUBLE                       | real                     | JS number text, `NaN`, `inf`       |
 * | VARCHAR, UUID, ENUM, others         | text                     | as is                              |
 * | BOOLEAN                             | boolean                  | `1` / `0`                          |
 * | DATE                                | date                     | days since 1970-01-01              |
 * | TIME                                | time(9)                  | seconds since midnight, 9 digits   |
 * | TIMESTAMP, TIMESTAMP_S, TIMESTAMP_NS | timestamp_ntz(9)        | epoch seconds, 9 fraction digits   |
 * | TIMESTAMP_MS                        | timestamp_ltz(9)         | epoch seconds, 9 fraction digits   |
 * | TIMESTAMPTZ                         | timestamp_tz(9)          | epoch seconds, then ` 1440` (UTC)  |
 * | JSON                                | variant                  | JSON text                          |
 * | STRUCT, MAP                         | object                   | JSON text                          |
 * | LIST, ARRAY                         | array                    | JSON text                          |
 * | BLOB                                | binary                   | upper-case hex                     |
 *
 * DuckDB has no TIMESTAMP_LTZ: `TIMESTAMP_MS` columns stand in for it, so tests can cover it.
 */

export interface RowTypeEntry {
  readonly name: string;
  readonly type: string;
  readonly precision: number | null;
  readonly scale: number | null;
  readonly length: number | null;
  readonly byteLength: number | null;
  readonly nullable: boolean;
  readonly database: string;
  readonly schema: string;
  readonly table: string;
  readonly collation: null;
}

export interface ColumnEncoder {
  readonly rowtype: RowTypeEntry;
  encode(value: DuckDBValue): string | null;
}

const TEXT_LENGTH = 16_777_216;
const BINARY_LENGTH = 8_388_608;

function entry(name: string, type: string, extra: Partial<RowTypeEntry> = {}): RowTypeEntry {
  return {
    name,
    type,
    precision: null,
    scale: null,
    length: null,
    byteLength: null,
    nullable: true,
    database: '',
    schema: '',
    table: '',
    collation: null,
    ...extra,
  };
}

/** `value / 10^scale` as exact decimal text with `scale` fraction digits (`-0.500000000`). */
export function scaledDecimal(value: bigint, scale: number): string {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const fraction = scale > 0 ? `.${digits.slice(digits.length - scale)}` : '';
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

const simple = (rowtype: RowTypeEntry, encode: (value: DuckDBValue) => string): ColumnEncoder => ({
  rowtype,
  encode: (value) => (value === null ? null : encode(value)),
});

export function columnEncoder(name: string, type: DuckDBType): ColumnEncoder {
  const alias = (type as { alias?: string }).alias;
  if (alias === 'JSON') return simple(entry(name, 'variant'), (v) => String(v));
  switch (type.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return simple(entry(name, 'boolean'), (v) => (v ? '1' : '0'));
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.UHUGEINT:
      return simple(entry(name, 'fixed', { precision: 38, scale: 0 }), (v) => String(v));
    case DuckDBTypeId.DECIMAL: {
      const { width, scale } = type as unknown as { width: number; scale: number };
      return simple(entry(name, 'fixed', { precision: width, scale }), (v) => {
        const decimal = v as DuckDBDecimalValue;
        return scaledDecimal(decimal.value, decimal.scale);
      });
    }
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE:
      return simple(entry(name, 'real'), (v) => {
        const n = Number(v);
        if (Number.isNaN(n)) return 'NaN';
        if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
        // Snowflake's FLOAT keeps the sign of zero: String(-0) would say "0".
        return Object.is(n, -0) ? '-0' : String(n);
      });
    case DuckDBTypeId.DATE:
      return simple(entry(name, 'date'), (v) => String((v as DuckDBDateValue).days));
    case DuckDBTypeId.TIME:
      return simple(entry(name, 'time', { scale: 9 }), (v) => scaledDecimal((v as DuckDBTimeValue).micros * 1000n, 9));
    case DuckDBTypeId.TIMESTAMP:
      return simple(entry(name, 'timestamp_ntz', { scale: 9 }), (v) =>
        scaledDecimal((v as DuckDBTimestampValue).micros * 1000n, 9),
      );
    case DuckDBTypeId.TIMESTAMP_S:
      return simple(entry(name, 'timestamp_ntz', { scale: 9 }), (v) =>
        scaledDecimal((v as DuckDBTimestampSecondsValue).seconds * 1_000_000_000n, 9),
      );
    case DuckDBTypeId.TIMESTAMP_NS:
      return simple(entry(name, 'timestamp_ntz', { scale: 9 }), (v) =>
        scaledDecimal((v as DuckDBTimestampNanosecondsValue).nanos, 9),
      );
    case DuckDBTypeId.TIMESTAMP_MS:
      return simple(entry(name, 'timestamp_ltz', { scale: 9 }), (v) =>
        scaledDecimal((v as DuckDBTimestampMillisecondsValue).millis * 1_000_000n, 9),
      );
    case DuckDBTypeId.TIMESTAMP_TZ:
      // Result format version 1: "<epoch seconds> <1440 + offset minutes>"; DuckDB keeps UTC instants.
      return simple(
        entry(name, 'timestamp_tz', { scale: 9 }),
        (v) => `${scaledDecimal((v as DuckDBTimestampTZValue).micros * 1000n, 9)} 1440`,
      );
    case DuckDBTypeId.BLOB:
      return simple(entry(name, 'binary', { length: BINARY_LENGTH, byteLength: BINARY_LENGTH }), (v) =>
        Buffer.from((v as DuckDBBlobValue).bytes)
          .toString('hex')
          .toUpperCase(),
      );
    case DuckDBTypeId.STRUCT:
    case DuckDBTypeId.MAP:
    case DuckDBTypeId.LIST:
    case DuckDBTypeId.ARRAY: {
      const kind = type.typeId === DuckDBTypeId.STRUCT || type.typeId === DuckDBTypeId.MAP ? 'object' : 'array';
      // Snowflake prints semi-structured values with exact numbers: BIGINTs and DECIMALs as numbers.
      return simple(entry(name, kind), (v) => duckJsonText(v, type, duckdb));
    }
    default:
      return simple(entry(name, 'text', { length: TEXT_LENGTH, byteLength: TEXT_LENGTH }), (v) => String(v));
  }
}
