import path from 'node:path';
import type * as DuckDb from '@duckdb/node-api';
import type {
  DuckDBBlobValue,
  DuckDBConnection,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBListType,
  DuckDBListValue,
  DuckDBMapType,
  DuckDBMapValue,
  DuckDBStructType,
  DuckDBStructValue,
  DuckDBType,
  DuckDBUnionType,
  DuckDBUnionValue,
  DuckDBValue,
} from '@duckdb/node-api';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import { toJson } from '#connectors/sdk/json';
import { exactNumber, fieldTypeOf, isoTimestamp } from '#connectors/sdk/sql';
import type { ConnectorContext, FieldType, JsonValue, Row } from '#connectors/sdk/types';

let duckDbModule: Promise<typeof DuckDb> | undefined;

/**
 * The DuckDB driver, loaded on first use. It is a native module that only the embedded DuckDB
 * source and destination need: the Lambda bundles leave it out (infra marks it external), so a
 * static import would crash every function at start, DuckDB in use or not.
 */
export function loadDuckDb(): Promise<typeof DuckDb> {
  duckDbModule ??= import('@duckdb/node-api').catch((error: unknown) => {
    duckDbModule = undefined;
    throw new ConnectorConfigError(
      `the embedded DuckDB connector needs the @duckdb/node-api module, which cannot be loaded here (${(error as Error).message}); DuckDB sources and destinations run locally, not on AWS Lambda`,
      { cause: error },
    );
  });
  return duckDbModule;
}

/**
 * Instances stay referenced for the life of the process: DuckDB's instance cache holds them
 * weakly, and once one is collected while a connection is open, reopening the file waits forever.
 */
const instances = new Map<string, Promise<DuckDBInstance>>();

/**
 * Opens a DuckDB database file shared within the process (DuckDB allows one writer per file),
 * with the session time zone pinned to UTC so timestamps normalize the same everywhere, and
 * relative paths in model SQL (`read_csv('data/x.csv')`) read from the project directory.
 * `:memory:` is one database per project directory.
 */
export async function openDuckDb(file: string, context: ConnectorContext): Promise<DuckDBConnection> {
  const memory = file === ':memory:';
  const key = memory ? `${context.projectDir}\0:memory:` : path.resolve(context.projectDir, file);
  let instance = instances.get(key);
  if (!instance) {
    const { DuckDBInstance } = await loadDuckDb();
    instance = memory ? DuckDBInstance.create(':memory:') : DuckDBInstance.fromCache(key);
    instances.set(key, instance);
    instance.catch(() => instances.delete(key));
  }
  return connectTo(await instance, context.projectDir);
}

async function connectTo(instance: DuckDBInstance, projectDir: string): Promise<DuckDBConnection> {
  const connection = await instance.connect();
  await connection.run("SET TimeZone = 'UTC'");
  await connection.run(`SET file_search_path = '${projectDir.replaceAll("'", "''")}'`);
  return connection;
}

export interface DuckColumn {
  readonly name: string;
  readonly nativeType: string;
  readonly type: FieldType;
  /** What `convert` reads: the driver's JSON form of the value, or the DuckDB value itself. */
  readonly reads: 'json' | 'value';
  readonly convert: (value: unknown) => JsonValue;
}

/**
 * JSON text of a DuckDB value with every number exactly as DuckDB holds it: integers of any width
 * and DECIMAL digits as such, doubles with their sign (`-0`). The rest is shaped as the driver's
 * JSON form (`getRowsJson`): MAPs as `[{"key", "value"}]`, UNIONs as `{"tag", "value"}`, dates and
 * timestamps as DuckDB's text, non-finite doubles as the strings `"NaN"`, `"Infinity"`.
 */
export function duckJsonText(value: DuckDBValue, type: DuckDBType, duck: typeof DuckDb): string {
  if (value === null) return 'null';
  const ids = duck.DuckDBTypeId;
  // A JSON value holds its own text.
  if ((type as { alias?: string }).alias === 'JSON') return String(value);
  switch (type.typeId) {
    case ids.TINYINT:
    case ids.SMALLINT:
    case ids.INTEGER:
    case ids.BIGINT:
    case ids.HUGEINT:
    case ids.UTINYINT:
    case ids.USMALLINT:
    case ids.UINTEGER:
    case ids.UBIGINT:
    case ids.UHUGEINT:
      return String(value);
    case ids.DECIMAL:
      return (value as DuckDBDecimalValue).toString();
    case ids.FLOAT:
    case ids.DOUBLE:
      return Number.isFinite(value) ? toJson(value as number) : JSON.stringify(String(value));
    case ids.LIST:
    case ids.ARRAY: {
      const element = (type as DuckDBListType).valueType;
      return `[${(value as DuckDBListValue).items.map((v) => duckJsonText(v, element, duck)).join(',')}]`;
    }
    case ids.STRUCT: {
      const struct = type as DuckDBStructType;
      const entries = Object.entries((value as DuckDBStructValue).entries);
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${duckJsonText(v, struct.typeForEntry(k), duck)}`).join(',')}}`;
    }
    case ids.MAP: {
      const map = type as DuckDBMapType;
      const entries = (value as DuckDBMapValue).entries.map(
        (e) =>
          `{"key":${duckJsonText(e.key, map.keyType, duck)},"value":${duckJsonText(e.value, map.valueType, duck)}}`,
      );
      return `[${entries.join(',')}]`;
    }
    case ids.UNION: {
      const union = value as DuckDBUnionValue;
      const member = (type as DuckDBUnionType).memberTypeForTag(union.tag);
      return `{"tag":${JSON.stringify(union.tag)},"value":${duckJsonText(union.value, member, duck)}}`;
    }
    default:
      return toJson(duck.JsonDuckDBValueConverter(value, type, duck.JsonDuckDBValueConverter) as JsonValue);
  }
}

/** How a DuckDB column's values become Backflow's normalized values. */
function duckColumn(name: string, type: DuckDBType, duck: typeof DuckDb): DuckColumn {
  const ids = duck.DuckDBTypeId;
  const nativeType = type.toString();
  const alias = (type as { alias?: string }).alias;
  const passthrough = (json: unknown) => json as JsonValue;
  if (alias === 'JSON') {
    // JSON is DuckDB text: kept as it is, never parsed, so numbers stay exact.
    return {
      name,
      nativeType: 'JSON',
      type: 'json',
      reads: 'json',
      convert: (json) => (json === null ? null : String(json)),
    };
  }
  const column = (type: FieldType, reads: DuckColumn['reads'], convert: DuckColumn['convert']): DuckColumn => ({
    name,
    nativeType,
    type,
    reads,
    convert,
  });
  switch (type.typeId) {
    case ids.BIGINT:
    case ids.HUGEINT:
    case ids.UBIGINT:
    case ids.UHUGEINT:
    case ids.DECIMAL:
      return column(fieldTypeOf(nativeType), 'json', (json) => (json === null ? null : exactNumber(String(json))));
    case ids.FLOAT:
    case ids.DOUBLE:
      // Finite doubles are numbers in the JSON form (a negative zero keeps its sign); others strings.
      return column('number', 'json', (json) => (typeof json === 'string' ? Number(json) : (json as JsonValue)));
    case ids.TIMESTAMP:
    case ids.TIMESTAMP_S:
    case ids.TIMESTAMP_MS:
    case ids.TIMESTAMP_NS:
    case ids.TIMESTAMP_TZ:
      return column('timestamp', 'json', (json) => (json === null ? null : isoTimestamp(String(json))));
    case ids.BLOB:
      return column('binary', 'value', (value) =>
        value === null ? null : Buffer.from((value as DuckDBBlobValue).bytes).toString('base64'),
      );
    default: {
      const normalized = fieldTypeOf(nativeType);
      // LIST, ARRAY, STRUCT, MAP, UNION: their JSON text, numbers exact (the JSON form has BIGINTs
      // and DECIMALs as strings, and JSON.stringify would drop a negative zero's sign).
      if (normalized === 'json') {
        return column('json', 'value', (value) =>
          value === null ? null : duckJsonText(value as DuckDBValue, type, duck),
        );
      }
      return column(normalized, 'json', passthrough);
    }
  }
}

/** Runs a query and returns rows normalized column by column. */
export async function queryRows(
  connection: DuckDBConnection,
  sql: string,
  params: (string | null)[] = [],
): Promise<{ columns: DuckColumn[]; rows: Row[] }> {
  const duck = await loadDuckDb();
  const reader = await connection.runAndReadAll(sql, params);
  const names = reader.columnNames();
  const columns = reader.columnTypes().map((t, i) => duckColumn(names[i]!, t, duck));
  const json = columns.some((c) => c.reads === 'json') ? reader.getRowsJson() : undefined;
  const values = columns.some((c) => c.reads === 'value') ? reader.getRows() : undefined;
  return { columns, rows: normalizedRows(columns, reader.currentRowCount, json, values) };
}

/**
 * Runs a query and streams its rows, normalized, in lists of at most `size`: DuckDB hands over one
 * chunk (2,048 rows) at a time. The connection must run nothing else until the stream ends.
 */
export async function* streamRows(
  connection: DuckDBConnection,
  sql: string,
  size: number,
  params: readonly (string | null)[] = [],
): AsyncGenerator<Row[]> {
  const duck = await loadDuckDb();
  const result = await connection.stream(sql, [...params]);
  const names = result.columnNames();
  const columns = result.columnTypes().map((t, i) => duckColumn(names[i]!, t, duck));
  const needsJson = columns.some((c) => c.reads === 'json');
  const needsValues = columns.some((c) => c.reads === 'value');
  let rows: Row[] = [];
  for await (const chunk of result) {
    const json = needsJson ? chunk.convertRows(duck.JsonDuckDBValueConverter) : undefined;
    const values = needsValues ? chunk.getRows() : undefined;
    rows.push(...normalizedRows(columns, chunk.rowCount, json, values));
    while (rows.length >= size) {
      yield rows.slice(0, size);
      rows = rows.slice(size);
    }
  }
  if (rows.length > 0) yield rows;
}

function normalizedRows(
  columns: readonly DuckColumn[],
  count: number,
  json: readonly (readonly unknown[])[] | undefined,
  values: readonly (readonly unknown[])[] | undefined,
): Row[] {
  const rows: Row[] = [];
  for (let r = 0; r < count; r++) {
    const row: Row = {};
    for (const [i, column] of columns.entries()) {
      row[column.name] = column.convert(column.reads === 'json' ? json?.[r]?.[i] : values?.[r]?.[i]);
    }
    rows.push(row);
  }
  return rows;
}
