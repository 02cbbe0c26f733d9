/**
 * The typed JSON API of `backflow ui` (/api/…). Endpoints that wrap a CLI command return exactly
 * that command's `--json` document (the types below name them); the rest are the UI's own.
 * Imported by the server and by the front end (types only: nothing here runs in the browser).
 */
import type { FieldInfo } from '#connectors/sdk/destination';
import type { ColumnInfo } from '#connectors/sdk/source';
import type { FieldType, JsonValue, Row } from '#connectors/sdk/types';
import type { ConfigIssue } from '#core/errors';
import type { RunRecord } from '#core/ports';
import type { SyncSummary } from '../local-runtime.ts';

/** Every error: a message, and the config problems with line:column when there are some. */
export interface ApiError {
  readonly error: string;
  readonly issues?: readonly ConfigIssue[];
}

export interface Project {
  readonly file: string;
  readonly remote: boolean;
  readonly allowActions: boolean;
  readonly stack?: string | undefined;
  readonly models: readonly { name: string; source: string; primaryKey: string; segment?: string }[];
  readonly segments: readonly string[];
  readonly destinations: readonly { name: string; type: string }[];
  readonly syncs: readonly SyncInfo[];
}

export interface SyncInfo {
  readonly id: string;
  readonly model: string;
  readonly segment?: string | undefined;
  readonly destination: string;
  readonly object: string;
  readonly mode: string;
  readonly match: { readonly field: string; readonly column: string };
  readonly mappings: Readonly<Record<string, unknown>>;
  readonly schedule?: string | undefined;
  readonly guardrails?: Readonly<Record<string, unknown>> | undefined;
  readonly enabled: boolean;
}

export interface ColumnStats {
  readonly name: string;
  readonly type: FieldType;
  readonly nativeType: string;
  /** Share of null values in the rows read (0..1). */
  readonly nullShare: number;
  readonly distinct: number;
  readonly min?: JsonValue;
  readonly max?: JsonValue;
}

/** GET /api/models/:name (?key=K…: the rows with those primary keys). */
export interface ModelReport {
  readonly model: string;
  readonly primaryKey: string;
  /** Rows the statistics were computed over (the first ones in primary key order, capped). */
  readonly rowsRead: number;
  readonly capped: boolean;
  readonly columns: readonly ColumnStats[];
  readonly sample: readonly Row[];
}

/** GET /api/destinations/:name/:object: `backflow fields --json`, plus the model columns that could feed each field. */
export interface DestinationFields {
  readonly destination: string;
  readonly type: string;
  readonly objects: readonly {
    readonly object: string;
    readonly fields: readonly (FieldInfo & {
      readonly mappedBy: readonly string[];
      /** model → columns whose type fits the field (lossy pairings carry a note). */
      readonly feeds?: readonly { model: string; column: string; type: FieldType; note?: string }[];
    })[];
    readonly unknownMapped: readonly { field: string; syncs: string[] }[];
  }[];
}

/** POST /api/syncs/:id/edit: what changes in backflow.yml. */
export interface SyncEdit {
  readonly model?: string;
  readonly segment?: string;
  readonly object?: string;
  readonly mode?: string;
  readonly match?: { readonly field: string; readonly column: string };
  /** field → a column, `{ column, nulls }`, `{ value }`; null removes the mapping. */
  readonly mappings?: Readonly<Record<string, unknown>>;
  /** null removes the schedule. */
  readonly schedule?: string | null;
  readonly guardrails?: Readonly<Record<string, number | null>>;
  /** False (default): only the diff and the verdict; true: write when valid. */
  readonly save?: boolean;
}

export interface SyncEditResult {
  readonly ok: boolean;
  readonly saved: boolean;
  /** Unified diff of backflow.yml. */
  readonly diff: string;
  readonly issues: readonly ConfigIssue[];
}

/** GET /api/deadletters: per lane, the depth and (locally) the messages' records. */
export interface DeadLetters {
  readonly where: string;
  readonly lanes: readonly {
    readonly destination: string;
    readonly count: number;
    readonly messages: readonly { syncId?: string; runId?: string; records: number; keys: string[] }[];
  }[];
}

/** Server-Sent Events of POST /api/runs → GET /api/runs/:id/events. */
export type RunEvent =
  | {
      readonly type: 'plan';
      readonly syncId: string;
      readonly status: string;
      readonly extracted?: number;
      readonly queued?: number;
    }
  | { readonly type: 'export'; readonly lane: string; readonly delivered: number; readonly pending: number }
  | { readonly type: 'done'; readonly summaries: readonly SyncSummary[] }
  | { readonly type: 'error'; readonly error: string };

export type { ColumnInfo, RunRecord };
