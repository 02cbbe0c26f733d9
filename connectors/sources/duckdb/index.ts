import { openDuckDb, queryRows, streamRows } from '#connectors/duckdb/database';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import { duplicateKeys, type KeysetDialect, readKeyset, rowComparison } from '#connectors/sdk/keyset-reader';
import { type ColumnInfo, defineSource } from '#connectors/sdk/source';
import { quoteIdent } from '#connectors/sdk/sql';
import { duckdbSourceManifest } from './manifest.ts';

const PAGE_ROWS = 5000;

/**
 * The embedded default warehouse: a DuckDB file. Models may also read Parquet or CSV through
 * DuckDB (`select * from 'data/*.parquet'`).
 */
export const duckdbSource = defineSource(duckdbSourceManifest, {
  async connect(opts, context) {
    const connection = await openDuckDb(opts.path, context);
    const types = new Map<string, Map<string, string>>();
    const describe = async (sql: string): Promise<ColumnInfo[]> => {
      try {
        const { columns } = await queryRows(connection, `select * from (${sql}) as model limit 0`);
        types.set(sql, new Map(columns.map((c) => [c.name, c.nativeType])));
        return columns.map(({ name, type, nativeType }) => ({ name, type, nativeType }));
      } catch (error) {
        throw new ConnectorConfigError(`DuckDB cannot run the model SQL: ${(error as Error).message}`, {
          cause: error,
        });
      }
    };
    const typeOf = async (sql: string, column: string): Promise<string> => {
      if (!types.has(sql)) await describe(sql);
      const found = types.get(sql)?.get(column);
      if (!found) throw new ConnectorConfigError(`the model has no column "${column}"`);
      return found;
    };
    const bind = (value: unknown): string | null =>
      value === null || value === undefined ? null : typeof value === 'string' ? value : JSON.stringify(value);
    const dialect: KeysetDialect = {
      quote: quoteIdent,
      async column(sql, name) {
        const type = await typeOf(sql, name);
        return {
          sql: quoteIdent(name),
          bind(value, params) {
            params.push(bind(value));
            return `cast(? as ${type})`;
          },
        };
      },
      after: rowComparison,
      rows: async (sql, params) => (await queryRows(connection, sql, [...params])).rows,
      async *stream(sql, params, size) {
        // On a connection of its own: a query run on the shared one meanwhile would end the stream.
        const own = await openDuckDb(opts.path, context);
        try {
          yield* streamRows(own, sql, size, params);
        } finally {
          own.closeSync();
        }
      },
    };

    return {
      async check() {
        await connection.run('select 1');
      },
      describe,
      // One ordered statement per read, streamed chunk by chunk (see readKeyset), in pages of at
      // most 5,000 rows: DuckDB already holds the sorted model (measured, 1M rows: the JS heap of
      // pages of 10,000 adds about 30 MB to the peak).
      read: (request) => readKeyset(dialect, { ...request, pageSize: Math.min(request.pageSize, PAGE_ROWS) }),
      async watermark(sql, cursorColumn, primaryKey) {
        const cursor = quoteIdent(cursorColumn);
        const pk = quoteIdent(primaryKey);
        const { rows } = await queryRows(
          connection,
          `select ${cursor} as c, ${pk} as k from (${sql}) as model where ${cursor} is not null order by ${cursor} desc, ${pk} desc limit 1`,
        );
        const top = rows[0];
        return top ? { cursor: top.c ?? null, pk: top.k ?? null } : undefined;
      },
      duplicateKeys: (sql, primaryKey, limit) => duplicateKeys(dialect, sql, primaryKey, limit),
      async *readKeys(sql, primaryKey, pageSize) {
        const result = await connection.stream(`select ${quoteIdent(primaryKey)} from (${sql}) as model`);
        let keys: unknown[] = [];
        for await (const rows of result.yieldRowsJson()) {
          for (const row of rows) keys.push(row[0]);
          if (keys.length >= pageSize) {
            yield keys;
            keys = [];
          }
        }
        if (keys.length > 0) yield keys;
      },
      async listTables() {
        const { rows } = await queryRows(
          connection,
          "select table_schema || '.' || table_name as name from information_schema.tables where table_schema not in ('information_schema', 'pg_catalog') order by 1",
        );
        return rows.map((r) => String(r.name));
      },
      async close() {
        connection.closeSync();
      },
    };
  },
});
