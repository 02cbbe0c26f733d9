import { createPrivateKey } from 'node:crypto';
import type { Binds, ConnectionOptions, RowStatement } from 'snowflake-sdk';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import { duplicateKeys, type KeysetDialect, readKeyset } from '#connectors/sdk/keyset-reader';
import { type ColumnInfo, defineSource } from '#connectors/sdk/source';
import { quoteIdent } from '#connectors/sdk/sql';
import type { ConnectorContext, JsonValue, Row } from '#connectors/sdk/types';
import { openSession, type SnowflakeSession } from './connection.ts';
import { type SnowflakeOptions, snowflakeSourceManifest } from './manifest.ts';
import { bindText, type SnowflakeColumn, snowflakeColumn } from './types.ts';

/**
 * A PEM key from a secret, checked before any login: literal `\n` sequences (env vars) become
 * newlines, base64 of a PEM is decoded, and an encrypted key must open with the passphrase.
 */
function pemKey(text: string, passphrase: string | undefined): string {
  const trimmed = text.trim().replaceAll('\\n', '\n');
  const decoded = Buffer.from(trimmed, 'base64').toString('utf8').trim();
  const pem = trimmed.startsWith('-----BEGIN') ? trimmed : decoded.startsWith('-----BEGIN') ? decoded : undefined;
  if (!pem) {
    throw new ConnectorConfigError(
      'the Snowflake private_key secret is not a PEM key: it must start with "-----BEGIN PRIVATE KEY-----" (or "-----BEGIN ENCRYPTED PRIVATE KEY-----")',
    );
  }
  try {
    createPrivateKey({ key: pem, format: 'pem', ...(passphrase !== undefined && { passphrase }) });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const problem =
      code === 'ERR_OSSL_CRYPTO_INTERRUPTED_OR_CANCELLED' || code === 'ERR_MISSING_PASSPHRASE'
        ? 'it is encrypted: add private_key_passphrase to the secret'
        : code === 'ERR_OSSL_BAD_DECRYPT'
          ? 'private_key_passphrase does not decrypt it'
          : `it is not a valid PEM private key (${(error as Error).message})`;
    throw new ConnectorConfigError(`the Snowflake private_key secret cannot be read: ${problem}`);
  }
  return `${pem}\n`;
}

function connectionOptions(opts: SnowflakeOptions, context: ConnectorContext): ConnectionOptions {
  const authenticator = opts.authenticator ?? (opts.private_key ? 'SNOWFLAKE_JWT' : 'SNOWFLAKE');
  const who = `user "${opts.username}" on account "${opts.account}"`;
  const base: ConnectionOptions = {
    account: opts.account,
    username: opts.username,
    ...(opts.warehouse && { warehouse: opts.warehouse }),
    ...(opts.role && { role: opts.role }),
    ...(opts.database && { database: opts.database }),
    ...(opts.schema && { schema: opts.schema }),
    ...(opts.access_url && { accessUrl: opts.access_url.replace(/\/+$/, '') }),
    timeout: opts.timeout_ms,
    sfRetryMaxLoginRetries: opts.login_retries,
    queryTag: (context.tag ?? 'backflow').slice(0, 2000),
    clientSessionKeepAlive: false,
    // With fetchAsString the driver would otherwise turn SQL NULL into the text "NULL".
    representNullAsStringNull: false,
    application: 'Backflow',
  };
  if (authenticator === 'SNOWFLAKE_JWT') {
    if (!opts.private_key) {
      throw new ConnectorConfigError(
        `Snowflake key-pair login of ${who} needs "private_key" in the source's secret (authenticator SNOWFLAKE_JWT)`,
      );
    }
    return {
      ...base,
      authenticator: 'SNOWFLAKE_JWT',
      privateKey: pemKey(opts.private_key, opts.private_key_passphrase),
      ...(opts.private_key_passphrase && { privateKeyPass: opts.private_key_passphrase }),
    };
  }
  if (!opts.password) {
    throw new ConnectorConfigError(
      `Snowflake login of ${who} needs "password" or "private_key" in the source's secret`,
    );
  }
  return { ...base, authenticator: 'SNOWFLAKE', password: opts.password };
}

/**
 * Snowflake, read with `snowflake-sdk`: one session per connection, one statement per read, rows
 * streamed from the result chunks; a continuation reads the kept result on by query id. SQL is generated in the dialect subset Snowflake
 * shares with DuckDB (the test double runs it there).
 */
export const snowflakeSource = defineSource(snowflakeSourceManifest, {
  async connect(opts, context) {
    const who = {
      account: opts.account,
      username: opts.username,
      url: opts.access_url ?? `https://${opts.account}.snowflakecomputing.com`,
    };
    const session: SnowflakeSession = await openSession({
      ...who,
      connection: connectionOptions(opts, context),
      sessionParameters: {
        // Timestamps are normalized to UTC; a UTC session makes NTZ/LTZ/TZ comparisons agree.
        TIMEZONE: 'UTC',
        TIME_OUTPUT_FORMAT: 'HH24:MI:SS.FF9',
        STRICT_JSON_OUTPUT: true,
        ...(opts.query_timeout_s !== undefined && { STATEMENT_TIMEOUT_IN_SECONDS: opts.query_timeout_s }),
      },
      deadlineMs: opts.query_timeout_s === undefined ? undefined : opts.query_timeout_s * 1000 + opts.timeout_ms,
    });

    /** Runs a statement and yields its rows, normalized, in lists of at most `size`. */
    async function* query(
      sql: string,
      binds: Binds,
      size: number,
      doing = 'read the model',
      opened?: (queryId: string) => void,
    ): AsyncGenerator<{ columns: SnowflakeColumn[]; rows: Row[] }> {
      const statement = await session.execute(sql, binds, doing);
      opened?.(statement.getQueryId());
      yield* rowsOf(statement, size);
    }

    /** A statement's rows from row `start`, normalized, in lists of at most `size`. */
    async function* rowsOf(
      statement: RowStatement,
      size: number,
      start = 0,
    ): AsyncGenerator<{ columns: SnowflakeColumn[]; rows: Row[] }> {
      const columns = (statement.getColumns() ?? []).map(snowflakeColumn);
      let rows: Row[] = [];
      for await (const values of session.rows(statement, start)) {
        const row: Row = {};
        for (const [i, column] of columns.entries()) row[column.name] = column.convert(values[i]);
        rows.push(row);
        if (rows.length >= size) {
          yield { columns, rows };
          rows = [];
        }
      }
      if (rows.length > 0) yield { columns, rows };
    }

    const all = async (sql: string, doing: string, binds: Binds = []): Promise<Row[]> => {
      const rows: Row[] = [];
      for await (const page of query(sql, binds, Number.MAX_SAFE_INTEGER, doing)) rows.push(...page.rows);
      return rows;
    };

    const described = new Map<string, Map<string, SnowflakeColumn>>();
    const describeColumns = async (sql: string): Promise<SnowflakeColumn[]> => {
      const statement = await session.execute(`select * from (${sql}) as model limit 0`, [], 'run the model SQL');
      const columns = (statement.getColumns() ?? []).map(snowflakeColumn);
      described.set(sql, new Map(columns.map((c) => [c.name, c])));
      return columns;
    };
    const columnOf = async (sql: string, name: string): Promise<SnowflakeColumn> => {
      if (!described.has(sql)) await describeColumns(sql);
      const found = described.get(sql)?.get(name);
      if (!found) {
        const names = [...(described.get(sql)?.keys() ?? [])];
        const hint = names.find((n) => n.toLowerCase() === name.toLowerCase());
        throw new ConnectorConfigError(
          `the model has no column "${name}"${hint ? `; did you mean "${hint}"? Snowflake column names are case-sensitive once quoted, and unquoted names are stored in upper case` : ''}`,
        );
      }
      return found;
    };
    const keysetCast = async (sql: string, name: string, role: string): Promise<string> => {
      const column = await columnOf(sql, name);
      if (!column.castType) {
        throw new ConnectorConfigError(
          `the ${role} column "${name}" is ${column.nativeType}, which cannot order keyset pages: use a number, text, date or timestamp column`,
        );
      }
      return column.castType;
    };

    const dialect: KeysetDialect = {
      quote: quoteIdent,
      async column(sql, name, role) {
        const type = await keysetCast(sql, name, role);
        return {
          sql: quoteIdent(name),
          bind(value, params) {
            params.push(bindText(value));
            return `cast(? as ${type})`;
          },
        };
      },
      // (cursor, pk) > (c, k), spelled out so any engine can prune on the cursor.
      after: (cursor, x, pk, y) => `${cursor} >= ${x()} and (${cursor} > ${x()} or ${pk} > ${y()})`,
      rows: (sql, params) => all(sql, 'read the model', [...params]),
      // One statement per read; its result is streamed chunk by chunk, and kept by Snowflake for
      // 24 hours: a continuation reads it on by query id (`resume`) instead of running it again.
      async *stream(sql, params, size, opened) {
        for await (const { rows } of query(sql, [...params], size, 'read the model', opened)) yield rows;
      },
      async *resume(queryId, start, size) {
        const statement = await session.result(queryId);
        for await (const { rows } of rowsOf(statement, size, start)) yield rows;
      },
    };

    return {
      async check() {
        const statement = await session.execute('select 1 as ok', [], 'run a test query');
        const state = statement.getSessionState() as
          | {
              getCurrentWarehouse(): string | null;
              getCurrentDatabase(): string | null;
              getCurrentSchema(): string | null;
            }
          | undefined;
        if (!state) return;
        const missing = [
          opts.warehouse && !state.getCurrentWarehouse() && `warehouse "${opts.warehouse}" (GRANT USAGE ON WAREHOUSE)`,
          opts.database && !state.getCurrentDatabase() && `database "${opts.database}" (GRANT USAGE ON DATABASE)`,
          opts.schema && !state.getCurrentSchema() && `schema "${opts.schema}" (GRANT USAGE ON SCHEMA)`,
        ].filter(Boolean);
        if (missing.length > 0) {
          throw new ConnectorConfigError(
            `Snowflake logged in ${who.username} but the session has no ${missing.join(', ')}: it does not exist or the role${opts.role ? ` "${opts.role}"` : ''} may not use it`,
          );
        }
      },
      async describe(sql): Promise<ColumnInfo[]> {
        const columns = await describeColumns(sql);
        return columns.map(({ name, type, nativeType }) => ({ name, type, nativeType }));
      },
      read: (request) => readKeyset(dialect, request),
      async watermark(sql, cursorColumn, primaryKey) {
        const cursor = quoteIdent(cursorColumn);
        const pk = quoteIdent(primaryKey);
        await columnOf(sql, cursorColumn);
        await columnOf(sql, primaryKey);
        const rows = await all(
          `select ${cursor} as c, ${pk} as k from (${sql}) as model where ${cursor} is not null order by ${cursor} desc, ${pk} desc nulls last limit 1`,
          'read the watermark',
        );
        const top = rows[0];
        if (!top) return undefined;
        const values = Object.values(top);
        return { cursor: (values[0] ?? null) as JsonValue, pk: (values[1] ?? null) as JsonValue };
      },
      async *readKeys(sql, primaryKey, pageSize) {
        await columnOf(sql, primaryKey);
        for await (const { rows } of query(`select ${quoteIdent(primaryKey)} from (${sql}) as model`, [], pageSize)) {
          yield rows.map((row) => Object.values(row)[0] ?? null);
        }
      },
      duplicateKeys: (sql, primaryKey, limit) => duplicateKeys(dialect, sql, primaryKey, limit),
      async listTables() {
        const rows = await all(
          "select table_schema || '.' || table_name as name from information_schema.tables where upper(table_schema) <> 'INFORMATION_SCHEMA' order by 1",
          'list tables',
        );
        return rows.map((row) => String(Object.values(row)[0]));
      },
      async close() {
        await session.close();
      },
    };
  },
});
