import path from 'node:path';
import type * as DuckDb from '@duckdb/node-api';
import type { DuckDBConnection, DuckDBInstance, DuckDBType } from '@duckdb/node-api';
import { exactNumber, fieldTypeOf, isoTimestamp } from '#connectors/sdk/sql';
import type { ConnectorContext, FieldType, JsonValue, Row } from '#connectors/sdk/types';
import { ConnectorConfigError } from '#core/errors';

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
  readonly convert: (json: unknown, js: unknown) => JsonValue;
}

/** How a DuckDB column's values become Backflow's normalized values. */
function duckColumn(name: string, type: DuckDBType, ids: typeof DuckDb.DuckDBTypeId): DuckColumn {
  const nativeType = type.toString();
  const alias = (type as { alias?: string }).alias;
  const passthrough = (json: unknown) => json as JsonValue;
  if (alias === 'JSON') {
    return {
      name,
      nativeType: 'JSON',
      type: 'json',
      convert: (json) => (json === null ? null : (JSON.parse(String(json)) as JsonValue)),
    };
  }
  switch (type.typeId) {
    case ids.BIGINT:
    case ids.HUGEINT:
    case ids.UBIGINT:
    case ids.UHUGEINT:
    case ids.DECIMAL:
      return {
        name,
        nativeType,
        type: fieldTypeOf(nativeType),
        convert: (json) => (json === null ? null : exactNumber(String(json))),
      };
    case ids.FLOAT:
    case ids.DOUBLE:
      return {
        name,
        nativeType,
        type: 'number',
        convert: (json) => (typeof json === 'string' ? (Number(json) as JsonValue) : (json as JsonValue)),
      };
    case ids.TIMESTAMP:
    case ids.TIMESTAMP_S:
    case ids.TIMESTAMP_MS:
    case ids.TIMESTAMP_NS:
    case ids.TIMESTAMP_TZ:
      return {
        name,
        nativeType,
        type: 'timestamp',
        convert: (json) => (json === null ? null : isoTimestamp(String(json))),
      };
    case ids.BLOB:
      return {
        name,
        nativeType,
        type: 'binary',
        convert: (_json, js) => (js === null ? null : Buffer.from(js as Uint8Array).toString('base64')),
      };
    default:
      return { name, nativeType, type: fieldTypeOf(nativeType), convert: passthrough };
  }
}

/** Runs a query and returns rows normalized column by column. */
export async function queryRows(
  connection: DuckDBConnection,
  sql: string,
  params: (string | null)[] = [],
): Promise<{ columns: DuckColumn[]; rows: Row[] }> {
  const { DuckDBTypeId } = await loadDuckDb();
  const reader = await connection.runAndReadAll(sql, params);
  const names = reader.columnNames();
  const columns = reader.columnTypes().map((t, i) => duckColumn(names[i]!, t, DuckDBTypeId));
  const json = reader.getRowsJson();
  const js = columns.some((c) => c.type === 'binary') ? reader.getRowsJS() : undefined;
  return { columns, rows: normalizedRows(columns, json, js) };
}

/**
 * Runs a query and streams its rows, normalized, in lists of at most `size`: DuckDB hands over one
 * chunk (2,048 rows) at a time. The connection must run nothing else until the stream ends.
 */
export async function* streamRows(connection: DuckDBConnection, sql: string, size: number): AsyncGenerator<Row[]> {
  const { DuckDBTypeId, JsonDuckDBValueConverter, JSDuckDBValueConverter } = await loadDuckDb();
  const result = await connection.stream(sql);
  const names = result.columnNames();
  const columns = result.columnTypes().map((t, i) => duckColumn(names[i]!, t, DuckDBTypeId));
  const needsJs = columns.some((c) => c.type === 'binary');
  let rows: Row[] = [];
  for await (const chunk of result) {
    const json = chunk.convertRows(JsonDuckDBValueConverter);
    const js = needsJs ? chunk.convertRows(JSDuckDBValueConverter) : undefined;
    rows.push(...normalizedRows(columns, json, js));
    while (rows.length >= size) {
      yield rows.slice(0, size);
      rows = rows.slice(size);
    }
  }
  if (rows.length > 0) yield rows;
}

function normalizedRows(columns: readonly DuckColumn[], json: unknown[][], js: unknown[][] | undefined): Row[] {
  return json.map((values, r) => {
    const row: Row = {};
    for (const [i, column] of columns.entries()) row[column.name] = column.convert(values[i], js?.[r]?.[i]);
    return row;
  });
}
