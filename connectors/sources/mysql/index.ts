import type { Connection as CoreConnection } from 'mysql2';
import mysql, { type FieldPacket, type PoolConnection } from 'mysql2/promise';
import { driverErrorCode, NETWORK_ERROR_CODES } from '#connectors/sdk/driver-errors';
import { AuthError, BackflowError, ConnectorConfigError, errorMessage, TransientError } from '#connectors/sdk/errors';
import { toJson } from '#connectors/sdk/json';
import {
  duplicateKeys,
  expandedComparison,
  type KeysetColumn,
  type KeysetDialect,
  readKeyset,
  readKeysetKeys,
} from '#connectors/sdk/keyset-reader';
import { type ColumnInfo, defineSource } from '#connectors/sdk/source';
import { exactInteger, exactNumber, isoTimestamp, quoteBacktick } from '#connectors/sdk/sql';
import type { FieldType, JsonValue, Row } from '#connectors/sdk/types';
import { mysqlSourceManifest } from './manifest.ts';

/** Small: a plan reads one page at a time, and a second connection serves describe/watermark meanwhile. */
const POOL_SIZE = 2;
const CONNECT_TIMEOUT_MS = 10_000;
/** Client-side margin over the server's own statement limit, for when the network (not the server) hangs. */
const CLIENT_TIMEOUT_MARGIN_MS = 30_000;

/** Column types of the MySQL protocol (`mysql2`'s `Types`). */
const T = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  VECTOR: 242,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

const UNSIGNED_FLAG = 32;
const ENUM_FLAG = 256;
const SET_FLAG = 2048;
const BINARY_CHARSET = 63;

/** A model column: its normalized type, how its values convert, and how a checkpoint binds back. */
interface MyColumn extends ColumnInfo {
  readonly convert: (value: unknown) => JsonValue;
  /**
   * A normalized value (a checkpoint's) as SQL in the column's type, e.g. `cast('42' as signed)`.
   * Values are written into the statement, checked and quoted here, rather than sent as `?`
   * parameters: the driver would also replace a `?` inside the model's own string literals.
   */
  readonly literal: (value: JsonValue) => string;
}

const NETWORK_CODES = new Set([
  ...NETWORK_ERROR_CODES,
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_TOO_MANY_USER_CONNECTIONS',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_QUERY_INTERRUPTED',
  'ER_QUERY_TIMEOUT',
  'ER_STATEMENT_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ER_NET_READ_ERROR',
  'ER_NET_READ_INTERRUPTED',
  'ER_NET_WRITE_INTERRUPTED',
  'ER_NET_ERROR_ON_WRITE',
  'ER_OUT_OF_RESOURCES',
  'ER_CLIENT_INTERACTION_TIMEOUT',
]);

/** Server errors about privileges: the user needs a GRANT, not another password. */
const GRANT_CODES = new Set([
  'ER_DBACCESS_DENIED_ERROR',
  'ER_TABLEACCESS_DENIED_ERROR',
  'ER_COLUMNACCESS_DENIED_ERROR',
  'ER_SPECIFIC_ACCESS_DENIED_ERROR',
  'ER_PROCACCESS_DENIED_ERROR',
]);

/**
 * Reads models from MySQL 8 and MariaDB: one streamed statement per read, cut into keyset pages.
 * Values arrive as the server's text (dates and big numbers as strings) and are normalized by each
 * column's protocol type.
 */
export const mysqlSource = defineSource(mysqlSourceManifest, {
  async connect(opts) {
    const { host, port, database, user, password, ssl } = opts.connection;
    const where = `${host}:${port}/${database}`;
    const timeout = opts.query_timeout_ms;
    const pool = mysql.createPool({
      host,
      port,
      database,
      user,
      password,
      ssl: ssl === true ? {} : typeof ssl === 'object' ? { ...ssl } : undefined,
      connectionLimit: POOL_SIZE,
      maxIdle: POOL_SIZE,
      idleTimeout: 30_000,
      connectTimeout: CONNECT_TIMEOUT_MS,
      enableKeepAlive: true,
      charset: 'utf8mb4',
      // Dates and DATETIMEs as the server's text: never through a JS Date and its local time zone.
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      decimalNumbers: false,
      // JSON columns as the server's text: JSON.parse would round numbers beyond a double.
      jsonStrings: true,
      rowsAsArray: true,
      multipleStatements: false,
    });
    // An idle connection losing its server must not crash the process: the next checkout reconnects.
    pool.on('connection', (connection) => {
      connection.on('error', () => {});
    });
    const ready = new WeakSet<object>();
    let closed = false;

    const fail = (error: unknown, doing?: string): Error => sourceError(error, where, password, doing);

    const checkout = async (): Promise<PoolConnection> => {
      let connection: PoolConnection;
      try {
        connection = await pool.getConnection();
      } catch (error) {
        throw fail(error);
      }
      if (!ready.has(connection.connection)) {
        try {
          // TIMESTAMP columns are shown in the session time zone: UTC, like DATETIME is read. A read
          // streams one result while the plan works through each page: the server waits up to
          // net_write_timeout (default 60 s) for the client to take more rows, so allow 15 minutes.
          await connection.query("SET time_zone = '+00:00', net_write_timeout = 900");
          if (timeout > 0) {
            const [[version]] = (await connection.query('select version()')) as unknown as [[[string]]];
            await connection.query(
              /mariadb/i.test(version[0])
                ? `SET SESSION max_statement_time = ${timeout / 1000}`
                : `SET SESSION max_execution_time = ${timeout}`,
            );
          }
          ready.add(connection.connection);
        } catch (error) {
          connection.destroy();
          throw fail(error);
        }
      }
      return connection;
    };

    /** Runs one statement; rows come back as arrays (column names may repeat). */
    const query = async (sql: string, doing?: string): Promise<{ rows: unknown[][]; fields: FieldPacket[] }> => {
      const connection = await checkout();
      try {
        const [rows, fields] = await connection.query({
          sql,
          rowsAsArray: true,
          timeout: timeout > 0 ? timeout + CLIENT_TIMEOUT_MARGIN_MS : undefined,
        });
        connection.release();
        return { rows: rows as unknown[][], fields: fields ?? [] };
      } catch (error) {
        // A server error leaves the connection usable; anything else (timeout, lost socket) may not.
        if (isServerError(error)) connection.release();
        else connection.destroy();
        throw fail(error, doing);
      }
    };

    const toRows = (result: { rows: unknown[][]; fields: FieldPacket[] }, names?: readonly string[]): Row[] => {
      const columns = result.fields.map(columnOfField);
      return result.rows.map((values) => {
        const row: Row = {};
        for (const [i, column] of columns.entries()) {
          const value = values[i];
          row[names?.[i] ?? column.name] = value === null || value === undefined ? null : column.convert(value);
        }
        return row;
      });
    };

    const described = new Map<string, MyColumn[]>();
    const describe = async (sql: string): Promise<MyColumn[]> => {
      const { fields } = await query(`select * from (${sql}) as model limit 0`, 'the model SQL');
      const columns = fields.map(columnOfField);
      described.set(sql, columns);
      return columns;
    };

    const columnsOf = async (sql: string): Promise<MyColumn[]> => described.get(sql) ?? (await describe(sql));

    const columnOf = async (sql: string, name: string): Promise<MyColumn> => {
      const columns = await columnsOf(sql);
      const found = columns.find((c) => c.name === name);
      if (!found) {
        throw new ConnectorConfigError(
          `MySQL ${where}: the model has no column "${name}" (it has ${columns.map((c) => c.name).join(', ')})`,
        );
      }
      return found;
    };

    /**
     * A statement's rows streamed from the server, `size` at a time: one execution, each row
     * exactly once (one statement is one consistent read in InnoDB). The socket is paused while a
     * page is out, so a reader that stops early leaves the connection mid-result: it is closed
     * rather than reused. Checkpoint values are written into the statement as checked literals:
     * `params` is always empty here.
     */
    async function* stream(sql: string, _params: readonly (string | null)[], size: number): AsyncGenerator<Row[]> {
      const connection = await checkout();
      let done = false;
      try {
        // The promise wrapper has no streaming: the driver's own connection streams.
        const core = connection.connection as unknown as CoreConnection;
        const statement = core.query({
          sql,
          rowsAsArray: true,
          timeout: timeout > 0 ? timeout + CLIENT_TIMEOUT_MARGIN_MS : undefined,
        });
        let fields: FieldPacket[] = [];
        statement.on('fields', (received: unknown) => {
          fields = received as FieldPacket[];
        });
        let rows: unknown[][] = [];
        for await (const values of statement.stream({ highWaterMark: size })) {
          rows.push(values as unknown[]);
          if (rows.length >= size) {
            yield toRows({ rows, fields });
            rows = [];
          }
        }
        if (rows.length > 0) yield toRows({ rows, fields });
        done = true;
      } catch (error) {
        throw fail(error, 'the model SQL');
      } finally {
        if (done) connection.release();
        else connection.destroy();
      }
    }

    const dialect: KeysetDialect = {
      quote: quoteBacktick,
      column: async (sql, name) => keysetColumn(await columnOf(sql, name), quoteBacktick(name)),
      // The expanded form of `(cursor, pk) > (?, ?)`: MariaDB uses an index on (cursor, pk) for it.
      after: expandedComparison,
      // Ascending order puts NULL first in MySQL and MariaDB (and they have no `nulls first`).
      nullsFirst: (expr) => expr,
      // Checkpoint values are written into the statement as checked literals: no parameters.
      rows: async (sql) => toRows(await query(sql, 'the model SQL')),
      stream,
    };

    return {
      async check() {
        await query('select 1');
      },

      async describe(sql) {
        const columns = await describe(sql);
        return columns.map(({ name, type, nativeType }) => ({ name, type, nativeType }));
      },

      read: (request) => readKeyset(dialect, request),

      async watermark(sql, cursorColumn, primaryKey) {
        // In the order incremental reads page by (text by its bytes), so they start right after it.
        const cursor = await dialect.column(sql, cursorColumn, 'cursor');
        const pk = await dialect.column(sql, primaryKey, 'primary key');
        const result = await query(
          `select ${quoteBacktick(cursorColumn)}, ${quoteBacktick(primaryKey)} from (${sql}) as model where ${cursor.sql} is not null order by ${cursor.sql} desc, ${pk.sql} desc limit 1`,
          'the model SQL',
        );
        const top = toRows(result, ['c', 'k'])[0];
        return top ? { cursor: top.c ?? null, pk: top.k ?? null } : undefined;
      },

      readKeys: (sql, primaryKey, pageSize) => readKeysetKeys(dialect, sql, primaryKey, pageSize),

      duplicateKeys: (sql, primaryKey, limit) => duplicateKeys(dialect, sql, primaryKey, limit),

      async listTables() {
        const { rows } = await query(
          `select concat(table_schema, '.', table_name) from information_schema.tables
           where table_schema not in ('mysql', 'information_schema', 'performance_schema', 'sys')
           order by table_schema, table_name`,
        );
        return rows.map((r) => String(r[0]));
      },

      async close() {
        if (closed) return;
        closed = true;
        await pool.end();
      },
    };
  },
});

const asText = (value: JsonValue): string => (typeof value === 'string' ? value : JSON.stringify(value));

/** Text as SQL whatever the sql_mode (no escapes to get wrong); the introducer lets the column's collation apply. */
function textLiteral(value: JsonValue): string {
  return value === null ? 'NULL' : `_utf8mb4 X'${Buffer.from(asText(value), 'utf8').toString('hex')}'`;
}

/**
 * A column as keyset reads order and compare it. Values bound back as text (strings, enums,
 * sets, MariaDB's uuid…) are compared by their UTF-8 bytes: under the usual case-insensitive,
 * PAD SPACE collations 'a', 'A' and 'a ' are equal, and a page boundary compared by the collation
 * would skip rows that Backflow reads as different keys. Other types compare exactly as they are.
 */
function keysetColumn(column: MyColumn, quoted: string): KeysetColumn {
  if (column.literal !== textLiteral) return { sql: quoted, bind: column.literal };
  return {
    sql: `cast(convert(${quoted} using utf8mb4) as binary)`,
    bind: (value) => (value === null ? 'NULL' : `X'${Buffer.from(asText(value), 'utf8').toString('hex')}'`),
  };
}

/** A value checked against `pattern`, then quoted inside `template` (where `?` stands for it). */
function checkedLiteral(
  column: string,
  pattern: RegExp,
  template: string,
  prepare: (value: JsonValue) => string = asText,
): (value: JsonValue) => string {
  return (value) => {
    if (value === null) return 'NULL';
    const text = prepare(value);
    if (!pattern.test(text)) {
      throw new ConnectorConfigError(
        `the stored position ${JSON.stringify(value)} does not fit column "${column}" (${template.replace('?', '…')}): did the model's column type change? Run the sync with --full`,
      );
    }
    return template.replace('?', `'${text}'`);
  };
}

const INTEGER_TEXT = /^-?\d+$/;
const NUMBER_TEXT = /^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const DATE_TEXT = /^\d{4}-\d\d-\d\d$/;
const DATETIME_TEXT = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?$/;
const TIME_TEXT = /^-?\d+:\d\d:\d\d(\.\d{1,6})?$/;
const BASE64_TEXT = /^[A-Za-z0-9+/]*={0,2}$/;

/** `2024-02-03T04:05:06.123456Z` → `2024-02-03 04:05:06.123456`, as MySQL reads a DATETIME. */
const asDatetime = (value: JsonValue): string =>
  typeof value === 'string' ? value.replace('T', ' ').replace(/Z$/, '') : asText(value);

const asFlag = (value: JsonValue): string => (value === true ? '1' : value === false ? '0' : asText(value));

const integerText = (value: unknown): JsonValue => exactInteger(String(value));

/** How a result column's values become Backflow's normalized values, from its protocol metadata. */
function columnOfField(field: FieldPacket): MyColumn {
  const code = field.columnType ?? field.type ?? T.VAR_STRING;
  const flags = typeof field.flags === 'number' ? field.flags : 0;
  const length = field.columnLength ?? field.length ?? 0;
  const unsigned = (flags & UNSIGNED_FLAG) !== 0;
  const binary = field.characterSet === BINARY_CHARSET;
  const name = field.name;
  const sign = unsigned ? ' unsigned' : '';
  const checked = (pattern: RegExp, template: string, prepare?: (value: JsonValue) => string) =>
    checkedLiteral(name, pattern, template, prepare);
  const column = (
    type: FieldType,
    nativeType: string,
    convert: (value: unknown) => JsonValue,
    literal: (value: JsonValue) => string = textLiteral,
  ): MyColumn => ({ name, type, nativeType, convert, literal });
  const integer = (nativeType: string) =>
    column(
      'integer',
      nativeType,
      integerText,
      checked(INTEGER_TEXT, unsigned ? 'cast(? as unsigned)' : 'cast(? as signed)'),
    );

  if (field.extendedFormat === 'json' || code === T.JSON) {
    // JSON columns (MariaDB's too, known from the extended metadata) arrive as text (`jsonStrings`)
    // and stay text, numbers exactly as stored.
    return column('json', 'json', (v) => String(v));
  }
  switch (code) {
    case T.TINY:
      if (length === 1) {
        return column(
          'boolean',
          'tinyint(1)',
          (v) => Number(v) !== 0,
          checked(INTEGER_TEXT, 'cast(? as signed)', asFlag),
        );
      }
      return integer(`tinyint${sign}`);
    case T.SHORT:
      return integer(`smallint${sign}`);
    case T.INT24:
      return integer(`mediumint${sign}`);
    case T.LONG:
      return integer(`int${sign}`);
    case T.LONGLONG:
      return integer(`bigint${sign}`);
    case T.YEAR:
      return integer('year');
    case T.DECIMAL:
    case T.NEWDECIMAL: {
      const scale = field.decimals;
      const precision = length - (scale > 0 ? 1 : 0) - (unsigned ? 0 : 1);
      const nativeType = `decimal(${precision},${scale})${sign}`;
      return column(
        'number',
        nativeType,
        (v) => exactNumber(String(v)),
        checked(NUMBER_TEXT, `cast(? as decimal(${precision},${scale}))`),
      );
    }
    case T.FLOAT:
    case T.DOUBLE:
      return column(
        'number',
        code === T.FLOAT ? 'float' : 'double',
        (v) => Number(v),
        checked(NUMBER_TEXT, 'cast(? as double)'),
      );
    case T.DATE:
    case T.NEWDATE:
      return column('date', 'date', (v) => String(v), checked(DATE_TEXT, 'cast(? as date)'));
    case T.DATETIME:
    case T.DATETIME2:
    case T.TIMESTAMP:
    case T.TIMESTAMP2: {
      const base = code === T.DATETIME || code === T.DATETIME2 ? 'datetime' : 'timestamp';
      const nativeType = field.decimals > 0 && field.decimals <= 6 ? `${base}(${field.decimals})` : base;
      return column(
        'timestamp',
        nativeType,
        (v) => isoTimestamp(String(v)),
        checked(DATETIME_TEXT, 'cast(? as datetime(6))', asDatetime),
      );
    }
    case T.TIME:
    case T.TIME2:
      return column('string', 'time', (v) => String(v), checked(TIME_TEXT, 'cast(? as time)'));
    case T.BIT:
      if (length === 1) {
        return column(
          'boolean',
          'bit(1)',
          (v) => bitsOf(v) !== 0n,
          checked(INTEGER_TEXT, 'cast(? as unsigned)', asFlag),
        );
      }
      return column(
        'integer',
        `bit(${length})`,
        (v) => integerText(bitsOf(v)),
        checked(INTEGER_TEXT, 'cast(? as unsigned)'),
      );
    case T.GEOMETRY:
      return column('json', 'geometry', (v) => toJson(v as JsonValue));
    case T.VECTOR:
      return column('json', 'vector', (v) =>
        toJson(ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : (v as JsonValue)),
      );
    case T.NULL:
      return column('string', 'null', (v) => String(v));
    default:
      break;
  }
  const nativeType = field.extendedTypeName ?? stringTypeName(code, flags, length, binary);
  if (binary) {
    return column(
      'binary',
      nativeType,
      (v) => (Buffer.isBuffer(v) ? v : Buffer.from(String(v))).toString('base64'),
      checked(BASE64_TEXT, 'from_base64(?)'),
    );
  }
  return column('string', nativeType, (v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
}

/** `char`, `varbinary`, `mediumtext`, `enum`… of a string or blob column. */
function stringTypeName(code: number, flags: number, length: number, binary: boolean): string {
  if (flags & ENUM_FLAG) return 'enum';
  if (flags & SET_FLAG) return 'set';
  if (code === T.STRING) return binary ? `binary(${length})` : 'char';
  if (code === T.VAR_STRING || code === T.VARCHAR) return binary ? `varbinary(${length})` : 'varchar';
  // BLOB and TEXT kinds by their byte length (TEXT lengths count up to 4 bytes per character).
  const kind = length <= 1020 ? 'tiny' : length <= 262_140 ? '' : length <= 67_108_860 ? 'medium' : 'long';
  return `${kind}${binary ? 'blob' : 'text'}`;
}

function bitsOf(value: unknown): bigint {
  if (Buffer.isBuffer(value)) return value.length === 0 ? 0n : BigInt(`0x${value.toString('hex')}`);
  return BigInt(String(value));
}

function isServerError(error: unknown): boolean {
  return typeof (error as { sqlState?: unknown } | null)?.sqlState === 'string';
}

/** An error of the driver as one of Backflow's, with what to fix; the password never shows. */
function sourceError(error: unknown, where: string, password: string | undefined, doing?: string): Error {
  if (error instanceof BackflowError) return error;
  const code = driverErrorCode(error);
  const inner = error instanceof AggregateError ? error.errors[0] : undefined;
  let detail = errorMessage(error) || (inner ? errorMessage(inner) : '') || code || 'unknown error';
  if (password) detail = detail.replaceAll(password, '***');
  const address = where.slice(0, where.lastIndexOf('/'));
  const message = `MySQL ${where}: ${detail}`;
  const cause = { cause: error };
  if (code === 'ER_ACCESS_DENIED_ERROR' || code === 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR') {
    return new AuthError(`${message} (check connection.user, and connection.password in the secret)`, cause);
  }
  if (code === 'ER_NOT_SUPPORTED_AUTH_MODE' || code === 'AUTH_SWITCH_PLUGIN_ERROR') {
    return new AuthError(
      `${message} (the user's authentication plugin is not supported: use caching_sha2_password or mysql_native_password)`,
      cause,
    );
  }
  if (code === 'ER_BAD_DB_ERROR') return new ConnectorConfigError(`${message} (check connection.database)`, cause);
  if (GRANT_CODES.has(code)) {
    return new ConnectorConfigError(`${message} (grant the user SELECT on the tables the model reads)`, cause);
  }
  if (code === 'ER_QUERY_TIMEOUT' || code === 'ER_STATEMENT_TIMEOUT' || code === 'PROTOCOL_SEQUENCE_TIMEOUT') {
    return new TransientError(
      `${message} (the query ran longer than query_timeout_ms: raise it, or index the model's cursor and primary key)`,
      cause,
    );
  }
  if (code === 'ECONNREFUSED') {
    return new TransientError(
      `MySQL ${where}: connection refused at ${address}: is the server running and listening there? Check connection.host and connection.port`,
      cause,
    );
  }
  if (code === 'ENOTFOUND') return new ConnectorConfigError(`${message} (check connection.host)`, cause);
  if (code === 'ETIMEDOUT') {
    return new TransientError(
      `${message} (no answer from ${address} in time: check that the network, firewall or security group lets this machine reach it)`,
      cause,
    );
  }
  if (NETWORK_CODES.has(code) || /^(08|40)/.test(sqlStateOf(error))) return new TransientError(message, cause);
  if (code === 'ER_SECURE_TRANSPORT_REQUIRED') {
    return new ConnectorConfigError(`${message} (the server requires TLS: set connection.ssl)`, cause);
  }
  // Any other server error is the database refusing the statement itself: retrying will not help.
  if (isServerError(error)) {
    return new ConnectorConfigError(doing ? `MySQL ${where}: ${doing} failed: ${detail}` : message, cause);
  }
  if (code.startsWith('HANDSHAKE_') || /certificate|SSL|TLS|self.signed/i.test(detail)) {
    return new ConnectorConfigError(`${message} (check connection.ssl)`, cause);
  }
  return new TransientError(message, cause);
}

function sqlStateOf(error: unknown): string {
  const state = (error as { sqlState?: unknown } | null)?.sqlState;
  return typeof state === 'string' ? state : '';
}
