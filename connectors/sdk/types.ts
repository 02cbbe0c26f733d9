/** Values as they travel through Backflow: what sources yield after normalization, and what is mapped. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A model row after the source normalized its types (see docs/config.md, "Types"). */
export type Row = Record<string, JsonValue>;

/** Normalized field types shared by sources (columns) and destinations (fields). */
export type FieldType = 'string' | 'integer' | 'number' | 'boolean' | 'date' | 'timestamp' | 'json' | 'binary';

/** `upsert` creates or updates; `update` never creates; `insert` never updates; `mirror` upserts and deletes. */
export type SyncMode = 'upsert' | 'update' | 'insert' | 'mirror';
export const SYNC_MODES: readonly SyncMode[] = ['upsert', 'update', 'insert', 'mirror'];

/** Context handed to connectors: where relative paths resolve, and who is asking (for query tags). */
export interface ConnectorContext {
  /** Directory of the config file: relative paths in options resolve against it. */
  readonly projectDir: string;
  /** e.g. `backflow:customers-to-crm:run-12`, for warehouse query tags and request headers. */
  readonly tag?: string;
}
