import type { FieldType } from './types.ts';

/** Double-quoted SQL identifier (PostgreSQL, DuckDB, Snowflake). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A decimal's text as a number when the number is exact, else the text itself: money and
 * ids beyond 2^53 must not be silently rounded.
 */
export function exactNumber(text: string): number | string {
  const value = Number(text);
  if (!Number.isFinite(value)) return text;
  const trimmed = text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
  const canonical = trimmed.replace(/^(-?)0+(?=\d)/, '$1');
  return String(value) === canonical || (canonical === '-0' && value === 0) ? value : text;
}

/** `2024-02-03 04:05:06.123456[+00]` in UTC → `2024-02-03T04:05:06.123456Z`. */
export function isoTimestamp(text: string): string {
  const match = /^(\d{4,}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d(?:\.\d+)?)(?:([+-]\d\d)(?::?(\d\d))?)?$/.exec(text);
  if (!match) return text;
  const [, date, time, offsetHours, offsetMinutes] = match;
  if (!offsetHours || (Number(offsetHours) === 0 && Number(offsetMinutes ?? 0) === 0)) return `${date}T${time}Z`;
  const fraction = /\.(\d+)$/.exec(time!)?.[1];
  const utc = new Date(`${date}T${time!.replace(/\.\d+$/, '')}${offsetHours}:${offsetMinutes ?? '00'}`);
  return `${utc.toISOString().slice(0, 19)}${fraction ? `.${fraction}` : ''}Z`;
}

/** Normalized type of a SQL type name (DuckDB, PostgreSQL and MySQL spellings). */
export function fieldTypeOf(nativeType: string): FieldType {
  const t = nativeType.toUpperCase();
  if (/\[\d*\]$|^(JSON|STRUCT|MAP|UNION)/.test(t)) return 'json';
  if (
    /^(TINYINT|SMALLINT|INTEGER|INT\d*|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|SERIAL|BIGSERIAL)\b/.test(
      t,
    )
  )
    return 'integer';
  if (/^(DECIMAL|NUMERIC|NUMBER|DOUBLE|FLOAT|REAL)/.test(t)) return 'number';
  if (/^BOOL/.test(t)) return 'boolean';
  if (t === 'DATE') return 'date';
  if (/^TIMESTAMP|^DATETIME/.test(t)) return 'timestamp';
  if (/^(BLOB|BYTEA|BINARY|VARBINARY)/.test(t)) return 'binary';
  return 'string';
}

/**
 * An integer's text as a number when it is a safe integer (within ±(2^53 − 1)), else the text
 * itself: ids beyond that must not be silently rounded.
 */
export function exactInteger(text: string): number | string {
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : text;
}

/** Backquoted SQL identifier (MySQL, MariaDB). */
export function quoteBacktick(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}
