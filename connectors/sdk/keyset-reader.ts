import { ConnectorConfigError } from './errors.ts';
import type { Checkpoint, ReadRequest, RowPage } from './source.ts';
import type { JsonValue, Row } from './types.ts';

/**
 * The keyset reads every SQL source shares: `read`, `readKeys` and `duplicateKeys` of
 * {@link SourceConnection}, written once over a small {@link KeysetDialect} per warehouse.
 */

/** A model column as keyset reads order and compare it. */
export interface KeysetColumn {
  /**
   * The column in `order by`, comparisons and `group by`: its quoted name, or an expression of it
   * under which two values are equal exactly when their normalized values are (MySQL text: its
   * UTF-8 bytes, not a case-insensitive collation). Pages are cut where normalized values differ,
   * and the next page starts strictly after: two values equal in SQL but not once normalized
   * could lose the second.
   */
  readonly sql: string;
  /**
   * A checkpoint value (a normalized value this column yielded) as SQL comparable with `sql`: a
   * placeholder cast to the column's type whose parameter is appended to `params`, or a checked
   * literal. Called once per occurrence in the statement.
   */
  bind(value: JsonValue, params: (string | null)[]): string;
}

/** What a warehouse tells the keyset reader: how to name, bind, compare and run. */
export interface KeysetDialect {
  /** A quoted identifier. */
  quote(name: string): string;
  /** The model's column `name`; throws a ConnectorConfigError naming it when absent or unorderable. */
  column(sql: string, name: string, role: 'primary key' | 'cursor'): Promise<KeysetColumn>;
  /**
   * `(cursor, pk) > (x, y)` as the warehouse's planner uses an index on `(cursor, pk)` best
   * ({@link rowComparison} or {@link expandedComparison}); `x()` and `y()` give a bound value per
   * call, in the order they appear in the statement.
   */
  after(cursor: string, x: () => string, pk: string, y: () => string): string | Promise<string>;
  /** Runs one statement and returns its rows, normalized. */
  rows(sql: string, params: readonly (string | null)[]): Promise<Row[]>;
  /**
   * Runs one statement and streams its rows, normalized, in lists of at most `size`: each row
   * exactly once, holding about one list at a time, cleaning up when the consumer stops early.
   */
  stream(sql: string, size: number): AsyncGenerator<Row[]>;
}

/** `(c, k) > (x, y)` as a row comparison (PostgreSQL, DuckDB). */
export function rowComparison(cursor: string, x: () => string, pk: string, y: () => string): string {
  return `(${cursor}, ${pk}) > (${x()}, ${y()})`;
}

/** `(c, k) > (x, y)` spelled out, for engines without row comparison or that index it badly. */
export function expandedComparison(cursor: string, x: () => string, pk: string, y: () => string): string {
  return `(${cursor} > ${x()} or (${cursor} = ${x()} and ${pk} > ${y()}))`;
}

function positive(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ConnectorConfigError(`${what} must be a positive integer, got ${value}`);
  }
  return value;
}

/**
 * Streams a model in keyset pages, keeping the contract of {@link SourceConnection.read}: all
 * rows sharing a position (the primary key; `(cursor, pk)` on incremental reads) come in one
 * page, and each checkpoint follows a complete group.
 *
 * Each page asks for one row more than it holds: when that row continues the page's last
 * position, the trailing rows of that position are held back and the next page starts after the
 * last complete position, so it reads them again with the rest of their group. A position with
 * more rows than a page is read with a larger limit (doubled until the group fits).
 */
export async function* readKeyset(dialect: KeysetDialect, request: ReadRequest): AsyncGenerator<RowPage> {
  const pageSize = positive(request.pageSize, 'page size');
  const pk = await dialect.column(request.sql, request.primaryKey, 'primary key');
  const cursor = request.cursor === undefined ? undefined : await dialect.column(request.sql, request.cursor, 'cursor');
  const model = `select * from (${request.sql}) as model`;
  const positionOf = (row: Row): Checkpoint =>
    request.cursor === undefined
      ? { pk: row[request.primaryKey] ?? null }
      : { cursor: row[request.cursor] ?? null, pk: row[request.primaryKey] ?? null };
  const same = (a: Checkpoint, b: Checkpoint) => JSON.stringify(a) === JSON.stringify(b);

  if (!cursor && !request.after) {
    // Keyset pages cannot reach rows whose primary key is null: they come first, from one
    // streaming statement that reads each exactly once.
    for await (const rows of dialect.stream(`${model} where ${pk.sql} is null`, pageSize)) yield { rows };
  }

  const condition = async (after: Checkpoint | undefined, params: (string | null)[]): Promise<string> => {
    if (!cursor) return after ? `${pk.sql} > ${pk.bind(after.pk, params)}` : `${pk.sql} is not null`;
    // Rows without a key have no (cursor, pk) position: full reads report them.
    const keyed = `${pk.sql} is not null and ${cursor.sql} is not null`;
    if (!after) return keyed;
    const x = () => cursor.bind(after.cursor ?? null, params);
    if (after.pk === null || after.pk === undefined) {
      // A position without a key, stored by versions that read such rows incrementally: rows at its
      // cursor value are read again rather than risk skipping one.
      return `${keyed} and ${cursor.sql} >= ${x()}`;
    }
    return `${keyed} and ${await dialect.after(cursor.sql, x, pk.sql, () => pk.bind(after.pk ?? null, params))}`;
  };
  const order = cursor ? `${cursor.sql}, ${pk.sql}` : pk.sql;

  let after = request.after;
  let size = pageSize;
  for (;;) {
    const params: (string | null)[] = [];
    const where = await condition(after, params);
    const rows = await dialect.rows(`${model} where ${where} order by ${order} limit ${size + 1}`, params);
    if (rows.length <= size) {
      if (rows.length > 0) yield { rows, checkpoint: positionOf(rows.at(-1)!) };
      return;
    }
    const next = positionOf(rows[size]!);
    let end = size;
    while (end > 0 && same(positionOf(rows[end - 1]!), next)) end--;
    if (end === 0) {
      size *= 2;
      continue;
    }
    rows.length = end;
    after = positionOf(rows[end - 1]!);
    yield { rows, checkpoint: after };
    size = pageSize;
  }
}

/** Streams the model's non-null primary key values in key order, in pages of at most `pageSize`. */
export async function* readKeysetKeys(
  dialect: KeysetDialect,
  sql: string,
  primaryKey: string,
  pageSize: number,
): AsyncGenerator<unknown[]> {
  const size = positive(pageSize, 'page size');
  const pk = await dialect.column(sql, primaryKey, 'primary key');
  let last: JsonValue | undefined;
  for (;;) {
    const params: (string | null)[] = [];
    const condition = last === undefined ? `${pk.sql} is not null` : `${pk.sql} > ${pk.bind(last, params)}`;
    // A repeated key may come twice within a page but only once across a boundary: callers use
    // the keys as a set (which destination records to keep).
    const rows = await dialect.rows(
      `select ${dialect.quote(primaryKey)} from (${sql}) as model where ${condition} order by ${pk.sql} limit ${size}`,
      params,
    );
    const keys = rows.map((row) => row[primaryKey] ?? null);
    if (keys.length === 0) return;
    yield keys;
    last = keys.at(-1);
    if (keys.length < size) return;
  }
}

/**
 * Non-null primary key values that occur more than once in the model, at most `limit` of them, in
 * key order, as `read` yields them. Grouped by the expression keyset pages order by (MySQL text:
 * by its bytes), so 'a' and 'A' are two keys here as they are in `read`.
 */
export async function duplicateKeys(
  dialect: KeysetDialect,
  sql: string,
  primaryKey: string,
  limit: number,
): Promise<unknown[]> {
  const max = positive(limit, 'limit');
  const pk = await dialect.column(sql, primaryKey, 'primary key');
  const name = dialect.quote(primaryKey);
  // The column itself is grouped by as well, so that it may be selected where `sql` is an expression.
  const groups = pk.sql === name ? name : `${pk.sql}, ${name}`;
  const rows = await dialect.rows(
    `select ${name} from (${sql}) as model where ${name} is not null group by ${groups} having count(*) > 1 order by ${pk.sql} limit ${max}`,
    [],
  );
  return rows.map((row) => row[primaryKey] ?? null);
}
