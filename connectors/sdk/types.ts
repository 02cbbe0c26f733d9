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
  /**
   * The lane's pace, when the connection writes for a lane: every HTTP request takes its slot here
   * first (`connectors/sdk/http.ts` does it for the connector). Absent for `check`, `fields` and
   * the CLI's one-off calls.
   */
  readonly pace?: RequestPace;
  /**
   * What the connection is for: `write` when it delivers a lane's batches (the export function,
   * the local runtime's exporters), `discover` for `check`, `fields`, `validate` and `preview`. A
   * connector may degrade gracefully on a write connection where discovery is refused (a key
   * without a read scope), and must report the refusal on a discover one.
   */
  readonly purpose?: 'write' | 'discover';
}

/**
 * The lane's shared request budget, seen from one connection. Every request a connector makes
 * to its vendor — writes, lookups, job polls — takes a slot first, so the lane never exceeds the
 * vendor's documented rate, whichever exporter sends it.
 */
export interface RequestPace {
  /**
   * Waits for the lane's next free slot. When the lane is booked further ahead than one request
   * may wait, throws a `RateLimitedError` with `paced: true` and the wait: the connector keeps
   * what it did and gives back the rest (`keepProgress` in destination.ts).
   */
  take(): Promise<void>;
  /** The vendor answered with its rate limit: the lane slows down (once per second at most). */
  throttled(): Promise<void>;
}
