import { ConnectorConfigError } from './errors.ts';
import type { Checkpoint, ReadRequest, RowPage } from './source.ts';
import type { JsonValue, Row } from './types.ts';

/**
 * The keyset reads every SQL source shares: `read`, `readKeys` and `duplicateKeys` of
 * {@link SourceConnection}, written once over a small {@link KeysetDialect} per warehouse. Each
 * call runs the model once: one ordered statement, streamed, cut into pages here (see
 * {@link readKeyset}); keyset conditions only say where a continuation starts.
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
  /**
   * `expr` in an `order by` that sorts NULL before every value: `expr nulls first`, or `expr`
   * where the warehouse sorts NULL first in ascending order anyway (MySQL, MariaDB). Default:
   * `expr nulls first`.
   */
  nullsFirst?(expr: string): string;
  /** Runs one statement and returns its rows, normalized. */
  rows(sql: string, params: readonly (string | null)[]): Promise<Row[]>;
  /**
   * Runs one statement and streams its rows, normalized, in lists of at most `size`: each row
   * exactly once, in the statement's order, from one execution (one snapshot) of it, holding
   * about one list at a time, cleaning up when the consumer stops early. `opened` is told the
   * statement's result id when the warehouse keeps results to read again ({@link resume}).
   */
  stream(
    sql: string,
    params: readonly (string | null)[],
    size: number,
    opened?: (resultId: string) => void,
  ): AsyncGenerator<Row[]>;
  /**
   * For warehouses that keep a statement's result after it ran (Snowflake: 24 hours): streams the
   * result `resultId` again from its row `start` (0-based), without running anything. Throws when
   * the result is gone or cannot be read; the reader then runs a keyset statement instead.
   */
  resume?(resultId: string, start: number, size: number): AsyncGenerator<Row[]>;
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

/** Where a read stopped within a kept result: see {@link KeysetDialect.resume}. */
interface ResumePoint {
  /** The result's id (Snowflake: the query id). */
  readonly id: string;
  /** Rows of the result before the next page. */
  readonly offset: number;
  /** The checkpoint of the page that ended at `offset`: the row at `offset - 1` stands there. */
  readonly after: Checkpoint;
}

function parseResume(text: string | undefined): ResumePoint | undefined {
  if (text === undefined) return undefined;
  try {
    const point = JSON.parse(text) as ResumePoint;
    return typeof point.id === 'string' && Number.isInteger(point.offset) && point.offset > 0 && point.after
      ? point
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Streams a model with ONE statement per call, keeping the contract of
 * {@link SourceConnection.read}: all rows sharing a position (the primary key; `(cursor, pk)` on
 * incremental reads) come in one page, and each checkpoint follows a complete group.
 *
 * The statement orders the whole model (`order by pk`, nulls first; `order by cursor, pk` on
 * incremental reads) and is streamed: the warehouse runs the model once, however many pages it
 * has. Pages are cut from the ordered stream: a page ends where the position changes, before
 * the group that would take it past `pageSize` (a group larger than a page is one page), so no
 * group is ever split and the checkpoint is the last complete position. Rows without a primary
 * key sort first and come in pages without checkpoint, each once.
 *
 * A read `after` a checkpoint (a continuation in a fresh invocation) is one keyset statement
 * (`where pk > ? order by pk`), or, where the warehouse keeps results ({@link KeysetDialect.resume})
 * and `request.resume` names one, no statement at all: the kept result is read on from the row
 * after the checkpoint, once its row before is checked to stand at the checkpoint; a result gone
 * (or not matching) falls back to the keyset statement.
 */
export async function* readKeyset(dialect: KeysetDialect, request: ReadRequest): AsyncGenerator<RowPage> {
  const pageSize = positive(request.pageSize, 'page size');
  const pk = await dialect.column(request.sql, request.primaryKey, 'primary key');
  const cursor = request.cursor === undefined ? undefined : await dialect.column(request.sql, request.cursor, 'cursor');
  const positionOf = (row: Row): Checkpoint =>
    request.cursor === undefined
      ? { pk: row[request.primaryKey] ?? null }
      : { cursor: row[request.cursor] ?? null, pk: row[request.primaryKey] ?? null };
  const key = (position: Checkpoint) => JSON.stringify(position);
  const after = request.after;

  const condition = async (params: (string | null)[]): Promise<string | undefined> => {
    if (!cursor) return after ? `${pk.sql} > ${pk.bind(after.pk, params)}` : undefined;
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
  // Only a full read from the start meets rows without a key: they sort first.
  const order = cursor
    ? `${cursor.sql}, ${pk.sql}`
    : after
      ? pk.sql
      : (dialect.nullsFirst?.(pk.sql) ?? `${pk.sql} nulls first`);

  /** The result rows: the kept result read on, or one new statement. */
  let resultId: string | undefined;
  let offset = 0;
  const open = async function* (): AsyncGenerator<Row[]> {
    const point = parseResume(request.resume);
    if (point && dialect.resume && after && key(point.after) === key(after)) {
      const kept = dialect.resume(point.id, point.offset - 1, pageSize);
      let checked = false;
      try {
        // The driver fetches the chunks from `start` on only.
        const first = await kept.next();
        const rows = first.done ? [] : first.value;
        // The row before the next page must stand at the checkpoint: anything else is another result.
        if (rows.length > 0 && key(positionOf(rows[0]!)) === key(after)) {
          checked = true;
          resultId = point.id;
          offset = point.offset;
          // That row was read by the invocation before: the rest follows it.
          yield rows.slice(1);
          yield* kept;
          return;
        }
      } catch (error) {
        if (checked) throw error;
      } finally {
        await kept.return(undefined).catch(() => undefined);
      }
    }
    const params: (string | null)[] = [];
    const where = await condition(params);
    const sql = `select * from (${request.sql}) as model${where ? ` where ${where}` : ''} order by ${order}`;
    yield* dialect.stream(sql, params, pageSize, (id) => {
      resultId = id;
    });
  };

  let page: Row[] = [];
  let group: Row[] = [];
  let groupKey = '';
  let unkeyed: Row[] = [];
  /** The page so far, with a checkpoint (its last row's position) and the resume point after it. */
  const pageOut = (rows: Row[]): RowPage => {
    const checkpoint = positionOf(rows.at(-1)!);
    offset += rows.length;
    return resultId === undefined
      ? { rows, checkpoint }
      : { rows, checkpoint, resume: JSON.stringify({ id: resultId, offset, after: checkpoint }) };
  };
  for await (const rows of open()) {
    for (const row of rows) {
      if (!cursor && (row[request.primaryKey] ?? null) === null) {
        unkeyed.push(row);
        if (unkeyed.length >= pageSize) {
          offset += unkeyed.length;
          yield { rows: unkeyed };
          unkeyed = [];
        }
        continue;
      }
      if (unkeyed.length > 0) {
        offset += unkeyed.length;
        yield { rows: unkeyed };
        unkeyed = [];
      }
      const position = key(positionOf(row));
      if (group.length > 0 && position === groupKey) {
        group.push(row);
        continue;
      }
      // `group` is complete: it joins the page, or the page goes out first.
      if (group.length > 0) {
        if (page.length > 0 && page.length + group.length > pageSize) {
          yield pageOut(page);
          page = [];
        }
        page.push(...group);
        if (page.length >= pageSize) {
          yield pageOut(page);
          page = [];
        }
      }
      group = [row];
      groupKey = position;
    }
  }
  if (unkeyed.length > 0) {
    offset += unkeyed.length;
    yield { rows: unkeyed };
  }
  if (page.length > 0 && page.length + group.length > pageSize) {
    yield pageOut(page);
    page = [];
  }
  page.push(...group);
  if (page.length > 0) yield pageOut(page);
}

/**
 * Streams the model's non-null primary key values in key order, in pages of at most `pageSize`,
 * from one streamed statement. A repeated key comes once per row: callers use the keys as a set
 * (which destination records to keep).
 */
export async function* readKeysetKeys(
  dialect: KeysetDialect,
  sql: string,
  primaryKey: string,
  pageSize: number,
): AsyncGenerator<unknown[]> {
  const size = positive(pageSize, 'page size');
  const pk = await dialect.column(sql, primaryKey, 'primary key');
  const name = dialect.quote(primaryKey);
  for await (const rows of dialect.stream(
    `select ${name} from (${sql}) as model where ${pk.sql} is not null order by ${pk.sql}`,
    [],
    size,
  )) {
    yield rows.map((row) => row[primaryKey] ?? null);
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
