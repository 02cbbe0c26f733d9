import type * as z from 'zod';
import { RateLimitedError } from './errors.ts';
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
  | {
      readonly key: string;
      readonly status: 'retry';
      readonly reason: string;
      readonly afterMs?: number;
      /**
       * Not sent because of a rate limit — the vendor's answer (`rate-limit`) or the lane's own
       * pace (`pace`): the record goes back on the lane without spending its retry budget.
       */
      readonly throttled?: 'rate-limit' | 'pace';
    };

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
  /**
   * What mirror mode does with a record that left the model: `remove` for a membership object (a
   * list, a tag, an audience): the member leaves it and the record itself stays.
   */
  readonly onDelete?: 'delete' | 'archive' | 'unsubscribe' | 'remove';
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

/**
 * Outcomes for records a failure stopped before they were written: a rate limit (the vendor's or
 * the lane's pace) gives them back without spending their retry budget; anything else asks to
 * retry them with the error as the reason.
 */
export function unfinished(keys: Iterable<string>, error: unknown): RecordOutcome[] {
  const out: RecordOutcome[] = [];
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  for (const key of keys) {
    if (error instanceof RateLimitedError) {
      const throttled = error.paced ? 'pace' : 'rate-limit';
      out.push({ key, status: 'retry', reason, throttled, afterMs: error.retryAfterMs });
    } else out.push({ key, status: 'retry', reason });
  }
  return out;
}

/**
 * Runs a batch's parts in order and keeps what was done when a part fails as a whole: the records
 * of that part and the following ones come back `retry` (throttled for a rate limit), while the
 * outcomes of the parts already written stand. A failure of the first part is the whole batch's
 * and is thrown, for the engine to handle.
 */
export async function keepProgress<T>(
  parts: readonly T[],
  keysOf: (part: T) => readonly string[],
  run: (part: T) => Promise<readonly RecordOutcome[]>,
): Promise<RecordOutcome[]> {
  const outcomes: RecordOutcome[] = [];
  for (let i = 0; i < parts.length; i++) {
    try {
      outcomes.push(...(await run(parts[i]!)));
    } catch (error) {
      if (i === 0) throw error;
      for (const rest of parts.slice(i)) outcomes.push(...unfinished(keysOf(rest), error));
      return outcomes;
    }
  }
  return outcomes;
}
