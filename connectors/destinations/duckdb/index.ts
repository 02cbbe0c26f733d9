import type { DuckDBConnection } from '@duckdb/node-api';
import { loadDuckDb, openDuckDb } from '#connectors/duckdb/database';
import {
  defineDestination,
  type FieldInfo,
  type OutboundRecord,
  type RecordOutcome,
  type WriteBatch,
} from '#connectors/sdk/destination';
import { BackflowError, ConnectorConfigError, errorMessage, TransientError } from '#connectors/sdk/errors';
import { jsonText, toJson, unstorableJson, unstorableText } from '#connectors/sdk/json';
import { fieldTypeOf, quoteIdent } from '#connectors/sdk/sql';
import { groupStatements, type StatementGroup } from '#connectors/sdk/statement-groups';
import type { FieldType, JsonValue } from '#connectors/sdk/types';
import { duckdbDestinationManifest } from './manifest.ts';

/** Column types of the tables Backflow creates. */
const DUCK_TYPES: Record<FieldType, string> = {
  string: 'VARCHAR',
  integer: 'BIGINT',
  number: 'DOUBLE',
  boolean: 'BOOLEAN',
  date: 'DATE',
  timestamp: 'TIMESTAMPTZ',
  json: 'JSON',
  binary: 'BLOB',
};

/** Ordinal of a record inside one statement's parameters; a name no user column should take. */
const ORD = quoteIdent('__backflow_n');

interface Column {
  readonly name: string;
  readonly nativeType: string;
  readonly required: boolean;
  readonly matchable: boolean;
}

interface Target {
  readonly schema: string;
  readonly name: string;
  readonly ref: string;
  readonly display: string;
}

interface Table extends Target {
  readonly columns: ReadonlyMap<string, Column>;
}

/**
 * Writes into tables of a DuckDB file, creating the table (and missing columns) from the model's
 * types on first write. Statements take one VARCHAR list per column, unnested and cast to the
 * column's type in SQL, so exact decimals sent as strings stay exact.
 */
export const duckdbDestination = defineDestination(duckdbDestinationManifest, {
  async connect(opts, context) {
    let connection: DuckDBConnection;
    try {
      connection = await openDuckDb(opts.path, context);
    } catch (error) {
      // A lock held by another process passes; a path that cannot be opened does not.
      const detail = firstLine(errorMessage(error));
      const message = `DuckDB ${opts.path}: ${detail}`;
      if (/Could not set lock|Conflicting lock/i.test(detail)) throw new TransientError(message, { cause: error });
      throw new ConnectorConfigError(message, { cause: error });
    }
    const fail = (error: unknown): Error => batchError(error, opts.path);
    const shapes = new Map<string, Table>();
    let closed = false;

    // One connection holds one transaction at a time: calls on it run one after the other.
    let queue: Promise<unknown> = Promise.resolve();
    const serial = <T>(work: () => Promise<T>): Promise<T> => {
      const next = queue.then(work);
      queue = next.catch(() => {});
      return next;
    };

    const target = (object: string): Target => {
      const dot = object.indexOf('.');
      const schema = dot > 0 ? object.slice(0, dot) : opts.schema;
      const name = dot > 0 ? object.slice(dot + 1) : object;
      if (!name) throw new ConnectorConfigError(`DuckDB ${opts.path}: "${object}" is not a table name`);
      return { schema, name, ref: `${quoteIdent(schema)}.${quoteIdent(name)}`, display: `${schema}.${name}` };
    };

    const loadColumns = async (t: Target): Promise<Map<string, Column>> => {
      const params = [t.schema, t.name];
      const filter = 'database_name = current_database() AND schema_name = $1 AND table_name = $2';
      const columns = await connection.runAndReadAll(
        `SELECT column_name, data_type, is_nullable, column_default IS NOT NULL AS has_default
           FROM duckdb_columns() WHERE ${filter} ORDER BY column_index`,
        params,
      );
      const keys = await connection.runAndReadAll(
        `SELECT constraint_column_names FROM duckdb_constraints()
          WHERE ${filter} AND constraint_type IN ('PRIMARY KEY', 'UNIQUE') AND len(constraint_column_names) = 1`,
        params,
      );
      const unique = new Set(keys.getRowsJson().map((r) => String((r[0] as string[])[0])));
      return new Map(
        columns.getRowsJson().map(([name, type, nullable, hasDefault]) => [
          String(name),
          {
            name: String(name),
            nativeType: String(type),
            required: nullable === false && hasDefault === false,
            matchable: unique.has(String(name)),
          },
        ]),
      );
    };

    /** The table's known shape, from the cache unless the batch brings a column it lacks. */
    const ensureTable = async (t: Target, batch: WriteBatch, groups: readonly StatementGroup[]): Promise<Table> => {
      const needed = new Map<string, FieldType>([[batch.matchField, batch.fieldTypes[batch.matchField] ?? 'string']]);
      for (const [name, type] of Object.entries(batch.fieldTypes)) needed.set(name, type);
      for (const group of groups) for (const name of group.fields) if (!needed.has(name)) needed.set(name, 'string');
      const cached = shapes.get(t.display);
      if (cached && [...needed.keys()].every((name) => cached.columns.has(name))) return cached;
      let columns = await loadColumns(t);
      if (columns.size === 0) {
        if (t.schema !== 'main') await connection.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(t.schema)}`);
        const defs = [...needed].map(
          ([name, type]) => `${quoteIdent(name)} ${DUCK_TYPES[type]}${name === batch.matchField ? ' PRIMARY KEY' : ''}`,
        );
        await connection.run(`CREATE TABLE IF NOT EXISTS ${t.ref} (${defs.join(', ')})`);
      } else {
        if (!columns.has(batch.matchField)) {
          throw new ConnectorConfigError(`DuckDB table ${t.display} has no column "${batch.matchField}" to match on`);
        }
        for (const [name, type] of needed) {
          if (columns.has(name)) continue;
          await connection.run(`ALTER TABLE ${t.ref} ADD COLUMN IF NOT EXISTS ${quoteIdent(name)} ${DUCK_TYPES[type]}`);
        }
      }
      columns = await loadColumns(t);
      const table: Table = { ...t, columns };
      shapes.set(t.display, table);
      return table;
    };

    const transaction = async <T>(work: () => Promise<T>): Promise<T> => {
      await connection.run('BEGIN TRANSACTION');
      try {
        const result = await work();
        await connection.run('COMMIT');
        return result;
      } catch (error) {
        // A failed COMMIT has already rolled back; then ROLLBACK only says there is no transaction.
        await connection.run('ROLLBACK').catch(() => {});
        throw error;
      }
    };

    const run = (table: Table, matchField: string, group: PreparedGroup, rows: readonly PreparedRow[]) =>
      runStatement(connection, table, matchField, group, rows);

    /**
     * Fast path: the whole batch in one transaction. DuckDB has no savepoints and a failed
     * statement aborts the transaction, so after a data error the batch is redone group by group,
     * and a failing group record by record, each in its own transaction.
     */
    const writeGroups = async (
      table: Table,
      matchField: string,
      groups: readonly PreparedGroup[],
    ): Promise<RecordOutcome[]> => {
      try {
        return await transaction(async () => {
          const outcomes: RecordOutcome[] = [];
          for (const group of groups) outcomes.push(...(await run(table, matchField, group, group.rows)));
          return outcomes;
        });
      } catch (error) {
        if (!isDataError(error)) throw error;
      }
      const outcomes: RecordOutcome[] = [];
      for (const group of groups) {
        try {
          outcomes.push(...(await transaction(() => run(table, matchField, group, group.rows))));
          continue;
        } catch (error) {
          if (!isDataError(error)) throw error;
          if (group.rows.length === 1) {
            outcomes.push(await refusal(connection, table, group, group.rows[0]!, error));
            continue;
          }
        }
        for (const row of group.rows) {
          try {
            outcomes.push(...(await transaction(() => run(table, matchField, group, [row]))));
          } catch (error) {
            if (!isDataError(error)) throw error;
            outcomes.push(await refusal(connection, table, group, row, error));
          }
        }
      }
      return outcomes;
    };

    return {
      check: () =>
        serial(async () => {
          try {
            await connection.run('SELECT 1');
          } catch (error) {
            throw fail(error);
          }
        }),

      fields: (object) =>
        serial(async () => {
          const t = target(object);
          let columns: Map<string, Column>;
          try {
            columns = await loadColumns(t);
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
        }),

      write: (batch) =>
        serial(async () => {
          const t = target(batch.object);
          const { rejected, groups } = groupStatements(batch);
          if (groups.length === 0) return rejected;
          for (let attempt = 0; ; attempt++) {
            try {
              const table = await ensureTable(t, batch, groups);
              const prepared = groups.map((group) => prepare(table, batch, group));
              const refused = prepared.flatMap((group) => group.refused);
              const writable = prepared.filter((group) => group.rows.length > 0);
              return [...rejected, ...refused, ...(await writeGroups(table, batch.matchField, writable))];
            } catch (error) {
              // The table changed behind the cache (dropped, column removed): learn it again once.
              if (attempt === 0 && /^Catalog Error/.test(errorMessage(error))) {
                shapes.delete(t.display);
                continue;
              }
              throw fail(error);
            }
          }
        }),

      close: () =>
        serial(async () => {
          if (closed) return;
          closed = true;
          connection.closeSync();
        }),
    };
  },
});

/** A group's records as the VARCHARs of its columns (match field first), and the records refused. */
interface PreparedGroup {
  readonly op: StatementGroup['op'];
  /** The match field, then the group's fields. */
  readonly names: readonly string[];
  readonly rows: PreparedRow[];
  readonly refused: RecordOutcome[];
}

interface PreparedRow {
  readonly record: OutboundRecord;
  readonly texts: readonly (string | null)[];
}

/** Each record's values as text, or its rejection for a value DuckDB cannot hold. */
function prepare(table: Table, batch: WriteBatch, group: StatementGroup): PreparedGroup {
  const names = [batch.matchField, ...group.fields];
  const prepared: PreparedGroup = { op: group.op, names, rows: [], refused: [] };
  for (const record of group.records) {
    const texts: (string | null)[] = [];
    let refused: RecordOutcome | undefined;
    for (const name of names) {
      const value = name === batch.matchField ? record.match : (record.fields[name] ?? null);
      const text = toText(value, batch.fieldTypes[name], table.columns.get(name)?.nativeType);
      if (typeof text === 'string' || text === null) texts.push(text);
      else refused ??= { key: record.key, status: 'rejected', reason: text.problem, field: name };
    }
    if (refused) prepared.refused.push(refused);
    else prepared.rows.push({ record, texts });
  }
  return prepared;
}

/**
 * A value as the VARCHAR the statement casts to the column's type: JSON text (a `json` field) as it
 * is, so numbers stay exact; a negative zero as "-0", which casts to DOUBLE -0 (`String(-0)` is "0").
 * Text with an unpaired UTF-16 surrogate is refused: Node would write U+FFFD in its place.
 */
function toText(
  value: JsonValue | undefined,
  type: FieldType | undefined,
  nativeType: string | undefined,
): string | null | { readonly problem: string } {
  if (value === null || value === undefined) return null;
  if (type === 'json' || typeof value === 'object' || nativeType === 'JSON') {
    const text = type === 'json' ? jsonText(value) : toJson(value);
    const problem = unstorableJson(text, (s) => unstorableText(s, undefined, 'JSON'));
    return problem === undefined ? text : { problem };
  }
  if (typeof value === 'string') {
    const problem = unstorableText(value);
    return problem === undefined ? value : { problem };
  }
  return typeof value === 'number' ? toJson(value) : String(value);
}

/** VARCHAR to the column's type: base64 decodes to BLOB, anything else casts. */
function castTo(expression: string, nativeType: string): string {
  if (nativeType === 'BLOB') return `from_base64(${expression})`;
  if (nativeType === 'VARCHAR') return expression;
  return `CAST(${expression} AS ${nativeType})`;
}

/**
 * One statement (two for operations that report created vs updated: which rows exist is read
 * first, in the same transaction, as DuckDB has no `xmax`).
 */
async function runStatement(
  connection: DuckDBConnection,
  table: Table,
  matchField: string,
  group: PreparedGroup,
  rows: readonly PreparedRow[],
): Promise<RecordOutcome[]> {
  const { LIST, listValue, VARCHAR } = await loadDuckDb();
  const { names } = group;
  const records = rows.map((row) => row.record);
  const params = names.map((_, i) => listValue(rows.map((row) => row.texts[i] ?? null)));
  const types = names.map(() => LIST(VARCHAR));
  const raw = names.map((_, i) => `unnest($${i + 1}) AS ${quoteIdent(`__backflow_c${i}`)}`);
  const typed = names.map(
    (name, i) =>
      `${castTo(quoteIdent(`__backflow_c${i}`), table.columns.get(name)?.nativeType ?? 'VARCHAR')} AS ${quoteIdent(name)}`,
  );
  const input = `(SELECT ${ORD}, ${typed.join(', ')} FROM (SELECT unnest(range(${records.length})) AS ${ORD}, ${raw.join(', ')}))`;
  const m = quoteIdent(matchField);
  const columns = names.map(quoteIdent);
  const sets = names.slice(1).map(quoteIdent);

  if (group.op === 'delete') {
    await connection.run(`DELETE FROM ${table.ref} WHERE ${m} IN (SELECT ${m} FROM ${input} AS i)`, params, types);
    return records.map((r) => ({ key: r.key, status: 'ok', action: 'deleted' }));
  }
  const found = await connection.runAndReadAll(
    `SELECT i.${ORD} FROM ${input} AS i WHERE EXISTS (SELECT 1 FROM ${table.ref} AS t WHERE t.${m} = i.${m})`,
    params,
    types,
  );
  const existing = new Set(found.getRowsJson().map((r) => Number(r[0])));
  switch (group.op) {
    case 'upsert':
    case 'insert': {
      const onConflict =
        group.op === 'upsert' && sets.length > 0
          ? `DO UPDATE SET ${sets.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`
          : 'DO NOTHING';
      if (group.op === 'upsert' || existing.size < records.length) {
        await connection.run(
          `INSERT INTO ${table.ref} (${columns.join(', ')}) SELECT ${columns.join(', ')} FROM ${input} AS i ON CONFLICT (${m}) ${onConflict}`,
          params,
          types,
        );
      }
      return records.map((r, i): RecordOutcome => {
        if (!existing.has(i)) return { key: r.key, status: 'ok', action: 'created' };
        return group.op === 'upsert'
          ? { key: r.key, status: 'ok', action: 'updated' }
          : { key: r.key, status: 'rejected', reason: 'already exists' };
      });
    }
    case 'update':
      if (sets.length > 0 && existing.size > 0) {
        await connection.run(
          `UPDATE ${table.ref} AS t SET ${sets.map((c) => `${c} = i.${c}`).join(', ')} FROM ${input} AS i WHERE t.${m} = i.${m}`,
          params,
          types,
        );
      }
      return records.map(
        (r, i): RecordOutcome =>
          existing.has(i)
            ? { key: r.key, status: 'ok', action: 'updated' }
            : {
                key: r.key,
                status: 'rejected',
                reason: 'no matching record in the destination (update mode never creates)',
              },
      );
  }
}

/** DuckDB's error kinds about one record's values. */
function isDataError(error: unknown): boolean {
  return /^(Conversion|Constraint|Out of Range|Invalid Input|Mismatch Type) Error/.test(errorMessage(error));
}

/** DuckDB quotes the statement after the first line; the reason keeps only the first. */
function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

/**
 * A record's rejection for a data error, naming the field: DuckDB names the column of a NOT NULL
 * constraint, not of a value its type refuses (`Could not convert string '…' to INT32`), so that
 * one is found by casting the record's values one at a time.
 */
async function refusal(
  connection: DuckDBConnection,
  table: Table,
  group: PreparedGroup,
  row: PreparedRow,
  error: unknown,
): Promise<RecordOutcome> {
  const key = row.record.key;
  const reason = firstLine(errorMessage(error));
  const column = /NOT NULL constraint failed: [^.]+\.(.+)$/.exec(reason)?.[1];
  if (column) return { key, status: 'rejected', reason, field: column };
  const { VARCHAR } = await loadDuckDb();
  for (const [i, field] of group.names.entries()) {
    const text = row.texts[i];
    if (text === null || text === undefined) continue;
    try {
      await connection.run(
        `SELECT ${castTo('$1', table.columns.get(field)?.nativeType ?? 'VARCHAR')}`,
        [text],
        [VARCHAR],
      );
    } catch (probeError) {
      if (!isDataError(probeError)) throw probeError;
      return { key, status: 'rejected', reason: firstLine(errorMessage(probeError)), field };
    }
  }
  return { key, status: 'rejected', reason };
}

/** A whole-batch failure as the typed error the engine acts on. */
function batchError(error: unknown, path: string): Error {
  if (error instanceof BackflowError) return error;
  const detail = firstLine(errorMessage(error));
  const message = `DuckDB ${path}: ${detail}`;
  // Another process holds the file, or a concurrent transaction touched the same rows.
  if (
    /^(TransactionContext|Interrupt|IO) Error|Could not set lock|write-write conflict|Transaction conflict/i.test(
      detail,
    )
  ) {
    return new TransientError(message, { cause: error });
  }
  if (/conflict target/i.test(detail)) {
    return new ConnectorConfigError(`${message} (the match field must be the table's primary key or a unique column)`, {
      cause: error,
    });
  }
  return new ConnectorConfigError(message, { cause: error });
}
