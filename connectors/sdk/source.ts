import type * as z from 'zod';
import type { ConnectorContext, FieldType, JsonValue, Row } from './types.ts';

/** A column of a model or table, with its normalized type and the warehouse's own type name. */
export interface ColumnInfo {
  readonly name: string;
  readonly type: FieldType;
  readonly nativeType: string;
}

/**
 * Where a keyset read stopped: the last row's cursor and primary key values, in the source's own
 * serialization. Opaque to the engine; stored as the sync's cursor and handed back as `after`.
 */
export interface Checkpoint {
  readonly cursor?: JsonValue;
  readonly pk: JsonValue;
}

export interface ReadRequest {
  readonly sql: string;
  readonly primaryKey: string;
  /**
   * Incremental read on this column: rows with a cursor and a primary key, ordered by
   * `(cursor, pk)`. Without it the whole model is read, ordered by primary key.
   */
  readonly cursor?: string | undefined;
  /**
   * Read strictly after this position (a checkpoint of an earlier page): `(cursor, pk) > (?, ?)`,
   * or `pk > ?` without a cursor.
   */
  readonly after?: Checkpoint | undefined;
  readonly pageSize: number;
  /**
   * The `resume` of the page whose checkpoint is `after`, from a read in an earlier invocation:
   * where the warehouse still keeps that read's result (Snowflake), the read goes on in it from
   * the row after `after` instead of running the model again. Ignored where it does not apply;
   * without it, or when the result is gone, the read runs a keyset statement from `after`.
   */
  readonly resume?: string | undefined;
}

export interface RowPage {
  readonly rows: Row[];
  /**
   * Position of the last row of this page. Absent for pages of rows without a primary key: they
   * cannot be placed in key order, are reported invalid, and come first in a full read.
   */
  readonly checkpoint?: Checkpoint;
  /**
   * Opaque, on pages with a checkpoint from sources that keep results (Snowflake's query id and
   * row offset): handed back as `resume` with `after: checkpoint`, a continuation reads the same
   * result on rather than running the model again. Kept only for a continuation, never as the
   * sync's cursor (the next run must see the model anew).
   */
  readonly resume?: string;
}

export interface SourceConnection {
  /** Tests the connection; throws an error saying what to fix. */
  check(): Promise<void>;
  /** Columns of a model query, without reading its rows. */
  describe(sql: string): Promise<ColumnInfo[]>;
  /**
   * Streams the model in keyset pages from ONE execution of the model per call (an ordered,
   * streamed statement: see docs/performance.md, "One execution per read"); never holds more
   * than one page.
   *
   * Guarantee the engine relies on: all rows that share a primary key value (on incremental
   * reads, a `(cursor, pk)` pair) are yielded in the same page, and a page's `checkpoint` is the
   * position of its last row, placed after a complete group. A read continuing `after` any
   * checkpoint therefore never skips a copy of a repeated key nor reads a row twice, and rows of
   * a repeated key are adjacent in a full read. A page holds at most `pageSize` rows, unless one
   * key alone has more (that page holds its whole group).
   *
   * A full read without `after` first yields the rows whose primary key is null, each once, in
   * pages without checkpoint; then the keyed rows in primary key order. An incremental read
   * yields the rows whose cursor and primary key are both non-null, ordered by `(cursor, pk)`.
   */
  read(request: ReadRequest): AsyncGenerator<RowPage>;
  /**
   * The highest `(cursor, pk)` of the model now: a full read stores it as the cursor, so the
   * next incremental read starts after everything the full read saw.
   */
  watermark(sql: string, cursor: string, primaryKey: string): Promise<Checkpoint | undefined>;
  /** Streams only the primary key values of a model (mirror delete detection), in pages. */
  readKeys(sql: string, primaryKey: string, pageSize: number): AsyncGenerator<unknown[]>;
  /**
   * Primary key values (as `read` yields them) that occur more than once in the model, non-null
   * only, at most `limit` of them. Two values are one key here exactly when `read` groups them
   * (MySQL: text compared by its bytes). An incremental read sees only changed rows: this finds the
   * repeated keys it cannot see.
   */
  duplicateKeys(sql: string, primaryKey: string, limit: number): Promise<unknown[]>;
  listTables(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * What Backflow knows about a source without loading its driver: type, options and secret keys.
 * Zod and plain data only, so the config loader and `cdk synth` read it cheaply.
 */
export interface SourceManifest<Schema extends z.ZodObject = z.ZodObject> {
  readonly type: string;
  /** Options as written in backflow.yml, merged with the secret's JSON. */
  readonly optionsSchema: Schema;
  /** Keys that must come from a secret, never from the config file. */
  readonly secretKeys: readonly string[];
}

export function defineSourceManifest<Schema extends z.ZodObject>(
  manifest: SourceManifest<Schema>,
): SourceManifest<Schema> {
  return manifest;
}

/** A source's runtime: its manifest, and the code that connects (the warehouse driver). */
export interface SourceRuntime<Schema extends z.ZodObject = z.ZodObject> extends SourceManifest<Schema> {
  connect(options: z.output<Schema>, context: ConnectorContext): Promise<SourceConnection>;
}

/** The runtime of a manifest: `connect` receives the options its `optionsSchema` parsed. */
export function defineSource<Schema extends z.ZodObject>(
  manifest: SourceManifest<Schema>,
  runtime: Pick<SourceRuntime<Schema>, 'connect'>,
): SourceRuntime<Schema> {
  return { ...manifest, connect: runtime.connect };
}
