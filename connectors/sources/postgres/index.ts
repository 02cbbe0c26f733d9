import pg from 'pg';
import { driverErrorCode, NETWORK_ERROR_CODES } from '#connectors/sdk/driver-errors';
import { AuthError, BackflowError, ConnectorConfigError, errorMessage, TransientError } from '#connectors/sdk/errors';
import { isJsonNumber, toJson } from '#connectors/sdk/json';
import {
  duplicateKeys,
  expandedComparison,
  type KeysetDialect,
  readKeyset,
  readKeysetKeys,
  rowComparison,
} from '#connectors/sdk/keyset-reader';
import { type ColumnInfo, defineSource } from '#connectors/sdk/source';
import { exactInteger, exactNumber, isoTimestamp, quoteIdent } from '#connectors/sdk/sql';
import type { FieldType, JsonValue, Row } from '#connectors/sdk/types';
import { postgresSourceManifest } from './manifest.ts';

/** Small: a plan reads one page at a time, and a second client serves describe/watermark meanwhile. */
const POOL_SIZE = 2;
const CONNECT_TIMEOUT_MS = 10_000;
/** Client-side margin over the server's statement_timeout, for when the network (not the server) hangs. */
const CLIENT_TIMEOUT_MARGIN_MS = 30_000;

/** Values arrive as the server's text: every column is normalized here, by its type OID. */
const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };
/** The `text[]` parser (OID 1009) splits any array's text into nested arrays of element texts. */
const parseArray = (pg.types.getTypeParser as (oid: number) => (text: string) => unknown)(1009);
const parseBytea = pg.types.getTypeParser(17) as (text: string) => Buffer;

interface Scalar {
  readonly type: FieldType;
  readonly convert: (text: string) => JsonValue;
}

const text: Scalar = { type: 'string', convert: (t) => t };
const int: Scalar = { type: 'integer', convert: exactInteger };
const float: Scalar = { type: 'number', convert: Number };
const timestamp: Scalar = { type: 'timestamp', convert: isoTimestamp };
/** JSON as the server's text, never parsed: numbers stay exactly as stored (no double rounding). */
const json: Scalar = { type: 'json', convert: (t) => t };

/** Built-in type OIDs (the same on every PostgreSQL version, and on Redshift); others are text. */
const SCALARS = new Map<number, Scalar>([
  [16, { type: 'boolean', convert: (t) => t === 't' || t === 'true' }],
  [17, { type: 'binary', convert: (t) => parseBytea(t).toString('base64') }],
  [20, int],
  [21, int],
  [23, int],
  [26, int],
  [700, float],
  [701, float],
  [1700, { type: 'number', convert: exactNumber }],
  [1082, { type: 'date', convert: (t) => t }],
  [1114, timestamp],
  [1184, timestamp],
  [114, json],
  [3802, json],
]);

/** What the catalog says about a type OID. */
interface PgType {
  /** Element type of an array type, else 0. */
  readonly elem: number;
  /** The type's own name for casts (`timestamptz`, `bpchar`, `public.mood`): never truncating like `character`. */
  readonly castName: string;
}

/** A model column: its normalized type, and how its values convert and bind back. */
interface PgColumn extends ColumnInfo {
  readonly oid: number;
  /** `cast($1 as …)` of a checkpoint value compared against this column. */
  readonly bind: (placeholder: string) => string;
}

type Converter = (text: string) => JsonValue;

/**
 * How an array element's text becomes JSON text: numbers exactly as the server printed them
 * (NaN and infinities, which JSON has no numbers for, become strings, as PostgreSQL's to_json
 * writes them), JSON elements as they are, anything else as its normalized value.
 */
function elementJson(scalar: Scalar): (text: string) => string {
  if (scalar.type === 'json') return (t) => t;
  if (scalar.type === 'integer' || scalar.type === 'number') return (t) => (isJsonNumber(t) ? t : JSON.stringify(t));
  return (t) => toJson(scalar.convert(t));
}

/**
 * Reads models from PostgreSQL (and Redshift): one server-side cursor per read, cut into keyset
 * pages, normalizing every value from the server's text output by its type OID.
 */
export const postgresSource = defineSource(postgresSourceManifest, {
  async connect(opts, context) {
    const { host, port, database, user, password, ssl } = opts.connection;
    const where = `${host}:${port}/${database}`;
    const timeout = opts.statement_timeout_ms;
    const pool = new pg.Pool({
      host,
      port,
      database,
      user,
      password,
      ssl: typeof ssl === 'object' ? { ...ssl } : ssl,
      max: POOL_SIZE,
      application_name: opts.application_name,
      query_timeout: timeout > 0 ? timeout + CLIENT_TIMEOUT_MARGIN_MS : undefined,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
    });
    // An idle client losing its server must not crash the process: the next checkout reconnects.
    pool.on('error', () => {});
    const ready = new WeakSet<pg.PoolClient>();
    // SET, not startup options: Redshift and poolers (PgBouncer) refuse unknown startup parameters.
    const session = [
      "SET TimeZone TO 'UTC'",
      "SET DateStyle TO 'ISO, YMD'",
      'SET extra_float_digits TO 3',
      `SET statement_timeout TO ${timeout}`,
      ...(context.tag
        ? [`SET application_name TO ${literal(`${opts.application_name} ${context.tag}`.slice(0, 63))}`]
        : []),
    ].join('; ');
    let closed = false;

    const fail = (error: unknown, doing?: string): Error => sourceError(error, where, password, doing);

    /** A client with the session pinned to UTC; an error listener keeps a dropped connection from crashing. */
    const checkout = async (): Promise<{ client: pg.PoolClient; release: (broken?: boolean) => void }> => {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw fail(error);
      }
      let broken = false;
      const onError = () => {
        broken = true;
      };
      client.on('error', onError);
      const release = (failed = false) => {
        client.removeListener('error', onError);
        client.release(broken || failed);
      };
      if (!ready.has(client)) {
        try {
          await client.query(session);
          ready.add(client);
        } catch (error) {
          release(true);
          throw fail(error);
        }
      }
      return { client, release };
    };

    /** Runs one statement; values come back as text, in arrays (column names may repeat). */
    const query = async (sql: string, params: (string | null)[] = [], doing?: string): Promise<pg.QueryArrayResult> => {
      const { client, release } = await checkout();
      try {
        const result = await client.query<unknown[]>({ text: sql, values: params, types: RAW_TEXT, rowMode: 'array' });
        release();
        return result;
      } catch (error) {
        // A server error leaves the client usable; anything else (timeout, lost socket) may not.
        release(!(error instanceof pg.DatabaseError));
        throw fail(error, doing);
      }
    };

    let redshift: Promise<boolean> | undefined;
    const isRedshift = (): Promise<boolean> => {
      redshift ??= query('select version()').then(({ rows }) => /redshift/i.test(String(rows[0]?.[0])));
      redshift.catch(() => {
        redshift = undefined;
      });
      return redshift;
    };

    const types = new Map<number, PgType>();
    /** Loads catalog entries of type OIDs not seen yet; returns `format_type(oid, typmod)` of each pair. */
    const lookup = async (pairs: readonly (readonly [number, number])[]): Promise<Map<string, string>> => {
      const names = new Map<string, string>();
      if (pairs.length === 0) return names;
      // UNION ALL rather than a VALUES list: Redshift has no VALUES in FROM.
      const values = pairs
        .map(([oid, typmod]) => `select ${Math.trunc(oid)}::oid as o, ${Math.trunc(typmod)}::int4 as m`)
        .join(' union all ');
      const { rows } = await query(
        `select v.o::int8, v.m, format_type(v.o, v.m), t.typelem::int8, t.typlen, t.typname,
           case when n.nspname = 'pg_catalog' then quote_ident(t.typname)
                else quote_ident(n.nspname) || '.' || quote_ident(t.typname) end
         from (${values}) as v join pg_type t on t.oid = v.o join pg_namespace n on n.oid = t.typnamespace`,
      );
      for (const [oid, typmod, native, elem, typlen, typname, castName] of rows as string[][]) {
        const isArray = Number(elem) !== 0 && Number(typlen) === -1 && String(typname).startsWith('_');
        types.set(Number(oid), { elem: isArray ? Number(elem) : 0, castName: String(castName) });
        names.set(`${oid}:${typmod}`, String(native));
      }
      return names;
    };

    const scalarOf = (oid: number): Scalar => SCALARS.get(oid) ?? text;

    const converterOf = (oid: number): Converter => {
      const scalar = SCALARS.get(oid);
      if (scalar) return scalar.convert;
      const elem = types.get(oid)?.elem ?? 0;
      if (elem === 0) return text.convert;
      // Arrays are JSON-typed: their JSON text, compact like PostgreSQL's array_to_json.
      const element = elementJson(scalarOf(elem));
      const walk = (value: unknown): string =>
        Array.isArray(value)
          ? `[${value.map(walk).join(',')}]`
          : value === null || value === undefined
            ? 'null'
            : element(String(value));
      return (t) => walk(parseArray(t));
    };

    /** Turns a result's text rows into normalized rows. */
    const toRows = async (result: pg.QueryArrayResult): Promise<Row[]> => {
      const unknown = [...new Set(result.fields.map((f) => f.dataTypeID))].filter(
        (oid) => !SCALARS.has(oid) && !types.has(oid),
      );
      if (unknown.length > 0) await lookup(unknown.map((oid) => [oid, -1] as const));
      const converters = result.fields.map((f) => converterOf(f.dataTypeID));
      return result.rows.map((values) => {
        const row: Row = {};
        for (const [i, field] of result.fields.entries()) {
          const value = values[i];
          row[field.name] = value === null || value === undefined ? null : converters[i]!(String(value));
        }
        return row;
      });
    };

    const described = new Map<string, Map<string, PgColumn>>();
    const describe = async (sql: string): Promise<PgColumn[]> => {
      const result = await query(`select * from (${sql}) as model limit 0`, [], 'the model SQL');
      const pairs = result.fields.map((f) => [f.dataTypeID, f.dataTypeModifier] as const);
      const natives = await lookup(pairs);
      const columns = result.fields.map((f): PgColumn => {
        const oid = f.dataTypeID;
        const info = types.get(oid);
        const type: FieldType = SCALARS.get(oid)?.type ?? (info && info.elem !== 0 ? 'json' : 'string');
        const castName = info?.castName ?? 'text';
        return {
          name: f.name,
          type,
          nativeType: natives.get(`${oid}:${f.dataTypeModifier}`) ?? castName,
          oid,
          bind: (placeholder) =>
            oid === 17 ? `decode(${placeholder}, 'base64')` : `cast(${placeholder} as ${castName})`,
        };
      });
      described.set(sql, new Map(columns.map((c) => [c.name, c])));
      return columns;
    };

    const columnOf = async (sql: string, name: string): Promise<PgColumn> => {
      if (!described.has(sql)) await describe(sql);
      const columns = described.get(sql)!;
      const found = columns.get(name);
      if (!found) {
        throw new ConnectorConfigError(
          `PostgreSQL ${where}: the model has no column "${name}" (it has ${[...columns.keys()].join(', ')})`,
        );
      }
      return found;
    };

    /**
     * A statement's rows through a server-side cursor, `size` at a time: one execution of the
     * statement, in one snapshot (a REPEATABLE READ READ ONLY transaction), each row exactly once,
     * on one client, with one page held at a time. The transaction stays open while the reader
     * works through the pages (each FETCH is a statement, under statement_timeout).
     */
    async function* stream(sql: string, params: readonly (string | null)[], size: number): AsyncGenerator<Row[]> {
      const { client, release } = await checkout();
      let open = false;
      let failed = false;
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        open = true;
        await client.query({ text: `DECLARE backflow_stream CURSOR FOR ${sql}`, values: [...params] });
        for (;;) {
          const result = await client.query<unknown[]>({
            text: `FETCH FORWARD ${size} FROM backflow_stream`,
            types: RAW_TEXT,
            rowMode: 'array',
          });
          if (result.rows.length > 0) yield await toRows(result);
          if (result.rows.length < size) break;
        }
        await client.query('COMMIT');
        open = false;
      } catch (error) {
        failed = !(error instanceof pg.DatabaseError);
        throw fail(error, 'the model SQL');
      } finally {
        if (open) await client.query('ROLLBACK').catch(() => (failed = true));
        release(failed);
      }
    }

    const dialect: KeysetDialect = {
      quote: quoteIdent,
      async column(sql, name) {
        const column = await columnOf(sql, name);
        return {
          sql: quoteIdent(name),
          bind(value, params) {
            params.push(bindValue(value));
            return column.bind(`$${params.length}`);
          },
        };
      },
      // A row comparison walks an index on (cursor, pk) straight to the position. Redshift (from
      // PostgreSQL 8.0) predates SQL-standard row comparison: it gets the expanded form.
      after: async (cursor, x, pk, y) => ((await isRedshift()) ? expandedComparison : rowComparison)(cursor, x, pk, y),
      rows: async (sql, params) => toRows(await query(sql, [...params], 'the model SQL')),
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
        const cursor = quoteIdent(cursorColumn);
        const pk = quoteIdent(primaryKey);
        const result = await query(
          `select ${cursor}, ${pk} from (${sql}) as model where ${cursor} is not null order by ${cursor} desc, ${pk} desc nulls last limit 1`,
          [],
          'the model SQL',
        );
        const top = (await toRows({ ...result, fields: renamed(result.fields, ['c', 'k']) }))[0];
        return top ? { cursor: top.c ?? null, pk: top.k ?? null } : undefined;
      },

      readKeys: (sql, primaryKey, pageSize) => readKeysetKeys(dialect, sql, primaryKey, pageSize),

      duplicateKeys: (sql, primaryKey, limit) => duplicateKeys(dialect, sql, primaryKey, limit),

      async listTables() {
        const { rows } = await query(
          `select table_schema || '.' || table_name from information_schema.tables
           where table_schema not in ('pg_catalog', 'information_schema') and table_schema not like 'pg\\_%'
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

/** A checkpoint value as a query parameter: text, which the cast reads back in the column's type. */
function bindValue(value: JsonValue | undefined): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The same fields under other names (a column may be selected twice: cursor and key). */
function renamed(fields: pg.FieldDef[], names: readonly string[]): pg.FieldDef[] {
  return fields.map((f, i) => ({ ...f, name: names[i] ?? f.name }));
}

function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** An error of the driver as one of Backflow's, with what to fix; the password never shows. */
function sourceError(error: unknown, where: string, password: string | undefined, doing?: string): Error {
  if (error instanceof BackflowError) return error;
  const code = driverErrorCode(error);
  const inner = error instanceof AggregateError ? error.errors[0] : undefined;
  let detail = errorMessage(error) || (inner ? errorMessage(inner) : '') || code || 'unknown error';
  if (password) detail = detail.replaceAll(password, '***');
  const address = where.slice(0, where.lastIndexOf('/'));
  const message = `PostgreSQL ${where}: ${detail}`;
  const cause = { cause: error };
  if (code === '28P01' || code === '28000') {
    return new AuthError(`${message} (check connection.user, and connection.password in the secret)`, cause);
  }
  if (/client password must be a string|SASL/.test(detail)) {
    return new AuthError(
      `PostgreSQL ${where}: the server wants a password: put connection.password in the secret`,
      cause,
    );
  }
  if (error instanceof pg.DatabaseError) {
    if (code === '3D000') return new ConnectorConfigError(`${message} (check connection.database)`, cause);
    if (code === '42501') {
      return new ConnectorConfigError(
        `${message} (grant the role USAGE on the schema and SELECT on the tables the model reads)`,
        cause,
      );
    }
    if (code === '57014') {
      return new TransientError(
        `${message} (the query ran longer than statement_timeout_ms: raise it, or index the model's cursor and primary key)`,
        cause,
      );
    }
    if (/^(08|40|53|55|57|58|XX)/.test(code)) return new TransientError(message, cause);
    // Any other SQLSTATE is the database refusing the statement itself: retrying will not help.
    return new ConnectorConfigError(doing ? `PostgreSQL ${where}: ${doing} failed: ${detail}` : message, cause);
  }
  if (code === 'ECONNREFUSED') {
    return new TransientError(
      `PostgreSQL ${where}: connection refused at ${address}: is the server running and listening there? Check connection.host and connection.port`,
      cause,
    );
  }
  if (code === 'ENOTFOUND') return new ConnectorConfigError(`${message} (check connection.host)`, cause);
  if (code === 'ETIMEDOUT' || /timeout|timed out/i.test(detail)) {
    return new TransientError(
      `${message} (no answer from ${address} in time: check that the network, firewall or security group lets this machine reach it)`,
      cause,
    );
  }
  if (NETWORK_ERROR_CODES.has(code)) return new TransientError(message, cause);
  if (/certificate|SSL|self.signed/i.test(detail)) {
    return new ConnectorConfigError(`${message} (check connection.ssl)`, cause);
  }
  return new TransientError(message, cause);
}
