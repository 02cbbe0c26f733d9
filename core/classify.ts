import type { FieldType, JsonValue, SyncMode } from '#connectors/sdk/types';
import type { QueuedRecord } from './lane-message.ts';
import type { Mapping } from './mapping.ts';
import type { RecordState } from './ports.ts';

/**
 * What a run does with one valid record, given what the state holds for it: one rule, shared by
 * the planner, `backflow preview` and `backflow plan`, so what they show is what a run does.
 */
export type RecordAction = 'create' | 'update' | 'unchanged';

export function classifyRecord(
  mode: SyncMode,
  record: QueuedRecord,
  previous: RecordState | undefined,
): { action: RecordAction; queued: QueuedRecord } {
  const known = previous !== undefined && previous.status !== 'deleted';
  // The destination's own id from the last delivery travels with updates too (deletes carry it
  // already): a connector may address the record by it, and the webhook sends it as `id`.
  const queued: QueuedRecord = !known
    ? { ...record, isNew: true }
    : previous.destinationId
      ? { ...record, destinationId: previous.destinationId }
      : record;
  // A newer version waits in the dead-letter queue: even an unchanged payload is sent again, so
  // a redrive of that version is skipped as stale rather than overwriting the model's value.
  const redrivable = previous?.pending !== undefined && previous.pending > previous.version;
  if (known && !previous.dirty && !redrivable) {
    // Insert mode creates once and never updates what it created.
    const same =
      mode === 'insert' ? previous.status === 'ok' || previous.hash === record.hash : previous.hash === record.hash;
    if (same) return { action: 'unchanged', queued };
  }
  return { action: known || mode === 'update' ? 'update' : 'create', queued };
}

/** The operation a mode queues for a record present in the model. */
export function operationFor(mode: SyncMode): QueuedRecord['op'] {
  return mode === 'mirror' ? 'upsert' : mode;
}

/** Keys that occur more than once among `keys`, with how many times each does. */
export function repeatedKeys(keys: readonly (string | undefined)[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1);
  for (const [key, count] of counts) if (count < 2) counts.delete(key);
  return counts;
}

/** Why every copy of a repeated key is invalid (planner and preview say it alike). */
export function duplicateReason(primaryKey: string, key: string, copies: number): string {
  return `duplicate primary key "${primaryKey}" = ${key}${copies > 1 ? ` (${copies} rows)` : ''}: no copy is sent, and the destination keeps what was last delivered for this key until the model has one row for it`;
}

/** Types of the destination fields a mapping writes, from the model's column types. */
export function destinationFieldTypes(
  mapping: Mapping,
  columnType: (column: string) => FieldType | undefined,
): Record<string, FieldType> {
  const types: Record<string, FieldType> = { [mapping.matchField]: columnType(mapping.matchColumn) ?? 'string' };
  for (const rule of mapping.rules) {
    types[rule.field] =
      rule.column !== undefined ? (columnType(rule.column) ?? 'string') : valueType(rule.value ?? null);
  }
  return types;
}

function valueType(value: JsonValue): FieldType {
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return 'string';
}
