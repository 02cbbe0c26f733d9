import type * as z from 'zod';
import type { ValueFormats } from './formats.ts';
import type { ConnectorContext, FieldType, JsonValue, SyncMode } from './types.ts';

/** A documented limit of a destination, with the vendor page it comes from. */
export interface Limit {
  readonly value: number;
  readonly doc: string;
}

/** What the vendor allows; lanes and batching are sized from these numbers. */
export interface DestinationLimits {
  /** Records per write call. */
  readonly batchSize: Limit;
  readonly requestsPerSecond?: Limit;
  readonly concurrency?: Limit;
  readonly dailyQuota?: Limit;
  /** Largest request body the vendor accepts, in bytes. */
  readonly maxRequestBytes?: Limit;
}

export interface FieldInfo {
  readonly name: string;
  readonly type: FieldType;
  readonly required: boolean;
  readonly kind: 'known' | 'custom';
  /** True where the field can serve as a match key. */
  readonly matchable: boolean;
}

/** The operation the engine wants for one record. */
export type RecordOperation = 'upsert' | 'update' | 'insert' | 'delete';

export interface OutboundRecord {
  /** The model's primary key value, as text. */
  readonly key: string;
  readonly op: RecordOperation;
  /** Value of the destination's match field. */
  readonly match: JsonValue;
  /** Mapped fields; a field left out is left untouched, a null clears it. */
  readonly fields: Readonly<Record<string, JsonValue>>;
  /** The destination's own id from the last delivery, when known (deletes carry it). */
  readonly destinationId?: string;
}

export interface WriteBatch {
  readonly object: string;
  readonly matchField: string;
  /** Normalized types of the match field and the mapped fields, from the model's columns. */
  readonly fieldTypes: Readonly<Record<string, FieldType>>;
  readonly records: readonly OutboundRecord[];
}

/** One outcome per record: a connector never throws for one bad record. */
export type RecordOutcome =
  | {
      readonly key: string;
      readonly status: 'ok';
      readonly action?: 'created' | 'updated' | 'deleted';
      readonly destinationId?: string;
    }
  | { readonly key: string; readonly status: 'rejected'; readonly reason: string; readonly field?: string }
  | { readonly key: string; readonly status: 'retry'; readonly reason: string; readonly afterMs?: number };

export interface DestinationConnection {
  check(): Promise<void>;
  /** Field discovery for one object. */
  fields(object: string): Promise<FieldInfo[]>;
  /**
   * Writes one batch. Returns one outcome per record. Throws only for whole-batch failures:
   * AuthError, RateLimitedError, TransientError, ConnectorConfigError.
   */
  write(batch: WriteBatch): Promise<RecordOutcome[]>;
  close(): Promise<void>;
}

/** An object a destination writes (HubSpot `contacts`, Salesforce `Lead`, a table…). */
export interface DestinationObject {
  readonly name: string;
  readonly description?: string;
  /** Fields a sync may match on; `['*unique']` when any unique field will do (discovered). */
  readonly matchKeys: readonly string[];
  /** What mirror mode does with a record that left the model. */
  readonly onDelete?: 'delete' | 'archive' | 'unsubscribe';
}

/**
 * What Backflow knows about a destination without loading its code: type, options, secrets,
 * modes, limits, objects and value formats. Zod and plain data only, never a vendor driver, so
 * the config loader, the planner, the CLI and `cdk synth` can read every manifest cheaply.
 */
export interface DestinationManifest<Schema extends z.ZodObject = z.ZodObject> {
  readonly type: string;
  /** Name shown to people: "HubSpot". */
  readonly title?: string;
  readonly optionsSchema: Schema;
  readonly secretKeys: readonly string[];
  readonly modes: readonly SyncMode[];
  readonly limits: DestinationLimits;
  /** Objects it writes; absent when any name is accepted (database tables, webhooks). */
  readonly objects?: readonly DestinationObject[];
  /** Custom objects by name are accepted besides `objects` (HubSpot custom objects, Salesforce `__c`). */
  readonly customObjects?: boolean;
  /** Value formats the vendor needs, applied by the SDK before `write`. */
  readonly formats?: ValueFormats;
}

export function defineDestinationManifest<Schema extends z.ZodObject>(
  manifest: DestinationManifest<Schema>,
): DestinationManifest<Schema> {
  return manifest;
}

/** A destination's runtime: its manifest, and the code that connects (the vendor calls, the driver). */
export interface DestinationRuntime<Schema extends z.ZodObject = z.ZodObject> extends DestinationManifest<Schema> {
  connect(options: z.output<Schema>, context: ConnectorContext): Promise<DestinationConnection>;
}

/** The runtime of a manifest: `connect` receives the options its `optionsSchema` parsed. */
export function defineDestination<Schema extends z.ZodObject>(
  manifest: DestinationManifest<Schema>,
  runtime: Pick<DestinationRuntime<Schema>, 'connect'>,
): DestinationRuntime<Schema> {
  return { ...manifest, connect: runtime.connect };
}
