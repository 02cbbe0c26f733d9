import type { z } from 'zod';
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
   * Incremental read on this column: rows ordered by `(cursor, pk)`. Without it the whole model
   * is read, ordered by primary key.
   */
  readonly cursor?: string | undefined;
  /** Read strictly after this position: `(cursor, pk) > (?, ?)`, or `pk > ?` without a cursor. */
  readonly after?: Checkpoint | undefined;
  readonly pageSize: number;
}

export interface RowPage {
  readonly rows: Row[];
  /**
   * Position of the last row of this page. Absent for pages of rows without a primary key: they
   * cannot be placed in key order, are reported invalid, and come first in a full read.
   */
  readonly checkpoint?: Checkpoint;
}

export interface SourceConnection {
  /** Tests the connection; throws an error saying what to fix. */
  check(): Promise<void>;
  /** Columns of a model query, without reading its rows. */
  describe(sql: string): Promise<ColumnInfo[]>;
  /** Streams the model in keyset pages; never holds more than one page. */
  read(request: ReadRequest): AsyncGenerator<RowPage>;
  /**
   * The highest `(cursor, pk)` of the model now: a full read stores it as the cursor, so the
   * next incremental read starts after everything the full read saw.
   */
  watermark(sql: string, cursor: string, primaryKey: string): Promise<Checkpoint | undefined>;
  /** Streams only the primary key values of a model (mirror delete detection), in pages. */
  readKeys(sql: string, primaryKey: string, pageSize: number): AsyncGenerator<unknown[]>;
  listTables(): Promise<string[]>;
  close(): Promise<void>;
}

export interface SourceDefinition<Schema extends z.ZodObject = z.ZodObject> {
  readonly type: string;
  /** Options as written in backflow.yml, merged with the secret's JSON. */
  readonly optionsSchema: Schema;
  /** Keys that must come from a secret, never from the config file. */
  readonly secretKeys: readonly string[];
  connect(options: z.output<Schema>, context: ConnectorContext): Promise<SourceConnection>;
}

export function defineSource<Schema extends z.ZodObject>(
  definition: SourceDefinition<Schema>,
): SourceDefinition<Schema> {
  return definition;
}
