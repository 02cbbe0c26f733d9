import pg from 'pg';
import {
  defineDestination,
  type FieldInfo,
  type OutboundRecord,
  type RecordOutcome,
  type WriteBatch,
} from '#connectors/sdk/destination';
import { driverErrorCode, NETWORK_ERROR_CODES } from '#connectors/sdk/driver-errors';
import { AuthError, BackflowError, ConnectorConfigError, errorMessage, TransientError } from '#connectors/sdk/errors';
import { jsonText, unstorableJson, unstorableText } from '#connectors/sdk/json';
import { fieldTypeOf, quoteIdent } from '#connectors/sdk/sql';
import { groupStatements, type StatementGroup } from '#connectors/sdk/statement-groups';
import type { FieldType, JsonValue } from '#connectors/sdk/types';
import { postgresDestinationManifest } from './manifest.ts';

/** Small: lanes already run in parallel, and every lane holds its own pool. */
const POOL_SIZE = 4;
/** Server-side cap per statement, so a lock wait cannot hold a lane (or a Lambda) forever. */
const STATEMENT_TIMEOUT_MS = 60_000;
/** Client-side cap, for when the network (not the server) hangs. */
const QUERY_TIMEOUT_MS = 90_000;
const CONNECT_TIMEOUT_MS = 10_000;

/** Column types of the tables Backflow creates; numeric (not double) keeps money and big ids exact. */
const PG_TYPES: Record<FieldType, string> = {
  string: 'text',
  integer: 'bigint',
  number: 'numeric',
  boolean: 'boolean',
  date: 'date',
  timestamp: 'timestamptz',
  json: 'jsonb',
  binary: 'bytea',
};

/** Ordinal of a record inside one statement's JSON parameter; a name no user column should take. */
const ORD = quoteIdent('__backflow_n');
const RETURNED_MATCH = quoteIdent('__backflow_match');
const INSERTED = quoteIdent('__backflow_inserted');

interface Column {
  readonly name: string;
  readonly nativeType: string;
  readonly required: boolean;
  readonly matchable: boolean;
}

interface Target {
  readonly schema: string;
  readonly name: string;
  /** `"schema"."table"`. */
  readonly ref: string;
  /** `schema.table`, for messages and cache keys. */
  readonly display: string;
}

interface Table extends Target {
  readonly columns: ReadonlyMap<string, Column>;
}

/** A record ready for the JSON parameter. */
interface Row {
  readonly record: OutboundRecord;
  /**
   * Each field's JSON text, spliced into the statement's JSON parameter as it is (JSON text from
   * the source is never re-serialized). A SQL NULL of a json/jsonb column is left out.
   */
  readonly values: readonly (readonly [field: string, json: string])[];
}

type Queryable = Pick<pg.PoolClient, 'query'>;

/**
 * Writes into PostgreSQL tables with multi-row `INSERT … ON CONFLICT` statements, creating the
 * table (and missing columns) from the model's types on first write.
 */
export const postgresDestination = defineDestination(postgresDestinationManifest, {
  async connect(opts) {
    const { host, port, database, user, password, ssl } = opts.connection;
    const where = `${host}:${port}/${database}`;
    const pool = new pg.Pool({
      host,
      port,
      database,
      user,
      password,
      ssl: typeof ssl === 'object' ? { ...ssl } : ssl,
      max: POOL_SIZE,
      application_name: 'backflow',
      statement_timeout: STATEMENT_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
    });
    // An idle client losing its server must not crash the process: the next checkout reconnects.
    pool.on('error', () => {});
    let closed = false;

    const fail = (error: unknown): Error => batchError(error, where, password);
    const shapes = new Map<string, Table>();
    const migrations = new Map<string, Promise<Table>>();

    const target = (object: string): Target => {
      const dot = object.indexOf('.');
      const schema = dot > 0 ? object.slice(0, dot) : opts.schema;
      const name = dot > 0 ? object.slice(dot + 1) : object;
      if (!name) throw new ConnectorConfigError(`PostgreSQL ${where}: "${object}" is not a table name`);
      return { schema, name, ref: `${quoteIdent(schema)}.${quoteIdent(name)}`, display: `${schema}.${name}` };
    };

    const checkout = async (): Promise<pg.PoolClient> => {
      try {
        return await pool.connect();
      } catch (error) {
        throw fail(error);
      }
    };

    /**
     * Runs `work` in a transaction; a client that failed is discarded, not reused. A checked-out
     * client has no error listener of the pool's: without ours, a dropped connection would surface
     * as an uncaught 'error' event and end the process.
     */
    const transaction = async <T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
      const client = await checkout();
      let broken = false;
      const onError = () => {
        broken = true;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw error;
      } finally {
        client.removeListener('error', onError);
        client.release(broken);
      }
    };

    /** Creates the table or adds columns under an advisory lock, so concurrent lanes do not race. */
    const migrate = (t: Target, needed: ReadonlyMap<string, FieldType>, matchField: string): Promise<Table> =>
      transaction(async (client) => {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`backflow:${t.display}`]);
        let columns = await loadColumns(client, t);
        if (columns.size === 0) {
          const defs = [...needed].map(
            ([name, type]) => `${quoteIdent(name)} ${PG_TYPES[type]}${name === matchField ? ' PRIMARY KEY' : ''}`,
          );
          await client.query(`CREATE TABLE IF NOT EXISTS ${t.ref} (${defs.join(', ')})`);
        } else {
          if (!columns.has(matchField)) {
            throw new ConnectorConfigError(`PostgreSQL table ${t.display} has no column "${matchField}" to match on`);
          }
          for (const [name, type] of needed) {
            if (columns.has(name)) continue;
            await client.query(`ALTER TABLE ${t.ref} ADD COLUMN IF NOT EXISTS ${quoteIdent(name)} ${PG_TYPES[type]}`);
          }
        }
        columns = await loadColumns(client, t);
        const table: Table = { ...t, columns };
        shapes.set(t.display, table);
        return table;
      });

    /** The table's known shape, from the cache unless the batch brings a column it lacks. */
    const ensureTable = async (t: Target, batch: WriteBatch, groups: readonly StatementGroup[]): Promise<Table> => {
      const needed = new Map<string, FieldType>([[batch.matchField, batch.fieldTypes[batch.matchField] ?? 'string']]);
      for (const [name, type] of Object.entries(batch.fieldTypes)) needed.set(name, type);
      for (const group of groups) for (const name of group.fields) if (!needed.has(name)) needed.set(name, 'string');
      for (;;) {
        const cached = shapes.get(t.display);
        if (cached && [...needed.keys()].every((name) => cached.columns.has(name))) return cached;
        const running = migrations.get(t.display);
        if (running) {
          await running.catch(() => {});
          continue;
        }
        const job = migrate(t, needed, batch.matchField).finally(() => migrations.delete(t.display));
        migrations.set(t.display, job);
        return await job;
      }
    };

    const writeGroups = (
      table: Table,
      batch: WriteBatch,
      groups: readonly StatementGroup[],
    ): Promise<RecordOutcome[]> =>
      transaction(async (client) => {
        const outcomes: RecordOutcome[] = [];
        for (const group of groups) outcomes.push(...(await writeGroup(client, table, batch, group)));
        return outcomes;
      });

    return {
      async check() {
        try {
          await pool.query('SELECT 1');
        } catch (error) {
          throw fail(error);
        }
      },

      async fields(object) {
        const t = target(object);
        let columns: Map<string, Column>;
        try {
          columns = await loadColumns(pool, t);
        } catch (error) {
          throw fail(error);
        }
        if (columns.size > 0) shapes.set(t.display, { ...t, columns });
        return [...columns.values()].map(
          (c): FieldInfo => ({
            name: c.name,
            type: fieldTypeOf(c.nativeType),
            required: c.required,
            kind: 'known',
            matchable: c.matchable,
          }),
        );
      },

      async write(batch) {
        const t = target(batch.object);
        const { rejected, groups } = groupStatements(batch);
        if (groups.length === 0) return rejected;
        for (let attempt = 0; ; attempt++) {
          try {
            const table = await ensureTable(t, batch, groups);
            return [...rejected, ...(await writeGroups(table, batch, groups))];
          } catch (error) {
            // The table changed behind the cache (dropped, column removed): learn it again once.
            if (attempt === 0 && isStaleShape(error)) {
              shapes.delete(t.display);
              continue;
            }
            throw fail(error);
          }
        }
      },

      async close() {
        if (closed) return;
        closed = true;
        await pool.end();
      },
    };
  },
});

/** Columns of a table (empty when it does not exist), with NOT NULL and single-column uniqueness. */
async function loadColumns(db: Queryable, t: Target): Promise<Map<string, Column>> {
  const { rows } = await db.query<{ name: string; type: string; required: boolean; matchable: boolean }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            (a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '') AS required,
            EXISTS (SELECT 1 FROM pg_index i
                     WHERE i.indrelid = c.oid AND i.indisunique AND i.indpred IS NULL
                       AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum) AS matchable
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'f')
        AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [t.schema, t.name],
  );
  return new Map(
    rows.map((r) => [r.name, { name: r.name, nativeType: r.type, required: r.required, matchable: r.matchable }]),
  );
}

/** Writes one group with one statement; on a data error, record by record so only bad ones fail. */
async function writeGroup(
  client: pg.PoolClient,
  table: Table,
  batch: WriteBatch,
  group: StatementGroup,
): Promise<RecordOutcome[]> {
  const { matchField } = batch;
  const outcomes: RecordOutcome[] = [];
  const rows: Row[] = [];
  for (const record of group.records) {
    const row = toRow(table, batch, group.fields, record);
    if ('status' in row) outcomes.push(row);
    else rows.push(row);
  }
  if (rows.length === 0) return outcomes;
  await client.query('SAVEPOINT backflow_group');
  try {
    outcomes.push(...(await runStatement(client, table, matchField, group, rows)));
    await client.query('RELEASE SAVEPOINT backflow_group');
    return outcomes;
  } catch (error) {
    if (!isDataError(error)) throw error;
    await client.query('ROLLBACK TO SAVEPOINT backflow_group');
    if (rows.length === 1) return [...outcomes, await refusal(client, table, rows[0]!, error)];
  }
  for (const row of rows) {
    await client.query('SAVEPOINT backflow_record');
    try {
      outcomes.push(...(await runStatement(client, table, matchField, group, [row])));
      await client.query('RELEASE SAVEPOINT backflow_record');
    } catch (error) {
      if (!isDataError(error)) throw error;
      await client.query('ROLLBACK TO SAVEPOINT backflow_record');
      outcomes.push(await refusal(client, table, row, error));
    }
  }
  await client.query('RELEASE SAVEPOINT backflow_group');
  return outcomes;
}

const isJsonColumn = (nativeType: string | undefined): boolean => nativeType === 'json' || nativeType === 'jsonb';

/**
 * The JSON object `jsonb_populate_record` turns into a typed row: each value goes through its
 * column's input function, so exact decimals sent as strings stay exact and a bad value fails as
 * a data error. JSON text (a `json` field) is spliced in as it is, so its numbers reach numeric
 * and jsonb exactly. A negative zero goes as the text "-0", which float8's input keeps (a JSON -0
 * would pass through numeric, which has no sign of zero). Binary arrives as base64, which bytea's
 * input does not read: it becomes `\x` hex. Values PostgreSQL cannot hold at all (NUL, unpaired
 * surrogates) are refused here, naming the field, as PostgreSQL's own message would not.
 */
function toRow(
  table: Table,
  batch: WriteBatch,
  fields: readonly string[],
  record: OutboundRecord,
): Row | RecordOutcome {
  const values: [string, string][] = [];
  for (const name of [batch.matchField, ...fields]) {
    const value = name === batch.matchField ? record.match : (record.fields[name] ?? null);
    const encoded = encodeValue(value, batch.fieldTypes[name], table.columns.get(name)?.nativeType);
    if (typeof encoded === 'object') {
      return { key: record.key, status: 'rejected', reason: encoded.problem, field: name };
    }
    if (encoded !== undefined) values.push([name, encoded]);
  }
  return { record, values };
}

/** A value's JSON text for the parameter; undefined to leave it out; or why it cannot be written. */
function encodeValue(
  value: JsonValue,
  type: FieldType | undefined,
  nativeType: string | undefined,
): string | undefined | { readonly problem: string } {
  // A json/jsonb column reads its key straight from the JSON: a JSON null stays jsonb 'null',
  // and a left-out key is SQL NULL.
  if (value === null) return isJsonColumn(nativeType) ? undefined : 'null';
  if (nativeType === 'bytea') {
    if (typeof value !== 'string' || !isBase64(value)) return { problem: 'expected base64 text for a bytea column' };
    return JSON.stringify(`\\x${Buffer.from(value, 'base64').toString('hex')}`);
  }
  if (type === 'json' || typeof value === 'object') {
    const text = jsonText(value);
    const problem = unstorableJson(text, (s) => unstorableText(s, 'PostgreSQL JSON', 'JSON'));
    return problem === undefined ? text : { problem };
  }
  if (typeof value === 'string') {
    const problem = unstorableText(value, 'PostgreSQL text');
    return problem === undefined ? JSON.stringify(value) : { problem };
  }
  if (typeof value === 'number' && Object.is(value, -0) && !isJsonColumn(nativeType)) return '"-0"';
  return JSON.stringify(value);
}

function isBase64(text: string): boolean {
  const compact = text.replace(/\s+/g, '');
  return /^[A-Za-z0-9+/_-]*={0,2}$/.test(compact) && compact.length % 4 !== 1;
}

async function runStatement(
  client: Queryable,
  table: Table,
  matchField: string,
  group: StatementGroup,
  rows: readonly Row[],
): Promise<RecordOutcome[]> {
  const m = quoteIdent(matchField);
  const names = [matchField, ...group.fields];
  const columns = names.map(quoteIdent);
  // json/jsonb columns take their key's JSON as it is (names bound as parameters): through
  // jsonb_populate_record, a JSON null would become SQL NULL.
  const params: string[] = [`[${rows.map((r) => rowJson(r)).join(',')}]`];
  const selected = names.map((name, i) => {
    const nativeType = table.columns.get(name)?.nativeType;
    if (!isJsonColumn(nativeType)) return `r.${columns[i]}`;
    params.push(name);
    return `(e.j -> $${params.length}::text)::${nativeType} AS ${columns[i]}`;
  });
  const input = `input AS (
    SELECT e.n AS ${ORD}, ${selected.join(', ')}
      FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(j, n)
      CROSS JOIN LATERAL jsonb_populate_record(NULL::${table.ref}, e.j) AS r)`;
  const sets = group.fields.map(quoteIdent);
  let sql: string;
  switch (group.op) {
    case 'upsert':
    case 'insert': {
      const onConflict =
        group.op === 'upsert' && sets.length > 0
          ? `DO UPDATE SET ${sets.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`
          : 'DO NOTHING';
      sql = `WITH ${input}, written AS (
        INSERT INTO ${table.ref} AS target (${columns.join(', ')})
        SELECT ${columns.join(', ')} FROM input
        ON CONFLICT (${m}) ${onConflict}
        RETURNING target.${m} AS ${RETURNED_MATCH}, (target.xmax = 0) AS ${INSERTED})
        SELECT input.${ORD} AS n, written.${INSERTED} AS inserted
          FROM input JOIN written ON written.${RETURNED_MATCH} = input.${m}`;
      break;
    }
    case 'update':
      sql =
        sets.length > 0
          ? `WITH ${input} UPDATE ${table.ref} AS target SET ${sets.map((c) => `${c} = input.${c}`).join(', ')}
               FROM input WHERE target.${m} = input.${m} RETURNING input.${ORD} AS n`
          : `WITH ${input} SELECT input.${ORD} AS n FROM input
               WHERE EXISTS (SELECT 1 FROM ${table.ref} AS target WHERE target.${m} = input.${m})`;
      break;
    case 'delete':
      sql = `WITH ${input} DELETE FROM ${table.ref} AS target USING input WHERE target.${m} = input.${m}`;
      break;
  }
  const result = await client.query<{ n: string; inserted?: boolean }>(sql, params);
  if (group.op === 'delete') return rows.map((r) => ({ key: r.record.key, status: 'ok', action: 'deleted' }));
  const written = new Map(result.rows.map((r) => [Number(r.n), r.inserted]));
  return rows.map((row, i): RecordOutcome => {
    const key = row.record.key;
    const hit = written.has(i + 1);
    switch (group.op) {
      case 'insert':
        return hit ? { key, status: 'ok', action: 'created' } : { key, status: 'rejected', reason: 'already exists' };
      case 'update':
        return hit
          ? { key, status: 'ok', action: 'updated' }
          : {
              key,
              status: 'rejected',
              reason: 'no matching record in the destination (update mode never creates)',
            };
      default:
        // An upsert without fields does nothing to an existing row: it was already up to date.
        if (!hit && sets.length > 0)
          return { key, status: 'rejected', reason: 'the database skipped the row (a trigger?)' };
        return { key, status: 'ok', action: hit && written.get(i + 1) ? 'created' : 'updated' };
    }
  });
}

/**
 * Errors about one record's values: data exceptions (22), constraint violations (23), a row
 * touched twice by one statement (21000, when two values differ in text but not in the column
 * type), and errors raised by triggers.
 */
function isDataError(error: unknown): boolean {
  const code = driverErrorCode(error);
  return /^2[23]/.test(code) || code === '21000' || code === 'P0001';
}

/** Undefined table, column, or row type: the table changed since its shape was cached. */
function isStaleShape(error: unknown): boolean {
  const code = driverErrorCode(error);
  return code === '42P01' || code === '42703' || code === '42704';
}

function rowJson(row: Row): string {
  return `{${row.values.map(([field, json]) => `${JSON.stringify(field)}:${json}`).join(',')}}`;
}

/**
 * A record's rejection for a data error, naming the field: PostgreSQL names the column of a
 * constraint, not of a value its type refuses (`value "…" is out of range for type integer`), so
 * that one is found by converting the record's values one at a time.
 */
async function refusal(client: pg.PoolClient, table: Table, row: Row, error: unknown): Promise<RecordOutcome> {
  const key = row.record.key;
  const reason = errorMessage(error);
  const column = (error as { column?: unknown }).column;
  if (typeof column === 'string') return { key, status: 'rejected', reason, field: column };
  if (driverErrorCode(error).startsWith('22')) {
    for (const [field, json] of row.values) {
      if (isJsonColumn(table.columns.get(field)?.nativeType)) continue;
      await client.query('SAVEPOINT backflow_probe');
      try {
        await client.query(`SELECT (jsonb_populate_record(NULL::${table.ref}, $1::jsonb)).${quoteIdent(field)}`, [
          `{${JSON.stringify(field)}:${json}}`,
        ]);
        await client.query('RELEASE SAVEPOINT backflow_probe');
      } catch (probeError) {
        if (!isDataError(probeError)) throw probeError;
        await client.query('ROLLBACK TO SAVEPOINT backflow_probe');
        return { key, status: 'rejected', reason: errorMessage(probeError), field };
      }
    }
  }
  return { key, status: 'rejected', reason };
}

/** A whole-batch failure as the typed error the engine acts on; the password is never quoted. */
function batchError(error: unknown, where: string, password: string | undefined): Error {
  if (error instanceof BackflowError) return error;
  const code = driverErrorCode(error);
  const inner = error instanceof AggregateError ? error.errors[0] : undefined;
  let detail = errorMessage(error) || (inner ? errorMessage(inner) : '') || code || 'unknown error';
  if (password) detail = detail.replaceAll(password, '***');
  const message = `PostgreSQL ${where}: ${detail}`;
  const cause = { cause: error };
  if (code === '28P01' || code === '28000') {
    return new AuthError(`${message} (check the user, and the password in the secret)`, cause);
  }
  if (/client password must be a string/.test(detail)) {
    return new AuthError(
      `PostgreSQL ${where}: the server wants a password: put connection.password in the secret`,
      cause,
    );
  }
  if (code === '3D000') return new ConnectorConfigError(`${message} (check connection.database)`, cause);
  if (code === '3F000')
    return new ConnectorConfigError(`${message} (check the schema option or the sync's object)`, cause);
  if (code === '42501') return new ConnectorConfigError(`${message} (grant the user the privileges it needs)`, cause);
  if (code === '42P10') {
    return new ConnectorConfigError(
      `${message} (the match field must be the table's primary key or a unique column)`,
      cause,
    );
  }
  if (code === 'ENOTFOUND') return new ConnectorConfigError(`${message} (check connection.host)`, cause);
  if (NETWORK_ERROR_CODES.has(code) || /^(08|40|53|55|57|58|XX)/.test(code)) return new TransientError(message, cause);
  // A SQLSTATE not listed above is the database refusing the statement itself: retrying will not help.
  if (error instanceof pg.DatabaseError) return new ConnectorConfigError(message, cause);
  if (/certificate|SSL|self.signed/i.test(detail))
    return new ConnectorConfigError(`${message} (check connection.ssl)`, cause);
  return new TransientError(message, cause);
}
