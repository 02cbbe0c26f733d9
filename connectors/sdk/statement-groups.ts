import type { OutboundRecord, RecordOperation, RecordOutcome, WriteBatch } from './destination.ts';

/** Records sharing an operation and a field set: one SQL statement writes them all. */
export interface StatementGroup {
  readonly op: RecordOperation;
  readonly fields: readonly string[];
  readonly records: OutboundRecord[];
}

/**
 * Splits a batch into statements for a database destination. Records are grouped by operation and
 * field set (a field absent from a record must stay untouched, so records with different fields
 * need different SETs), and a match value seen again goes to a later round: one statement never
 * touches a row twice, and repeats apply in order, so the last one wins.
 */
export function groupStatements(batch: WriteBatch): { rejected: RecordOutcome[]; groups: StatementGroup[] } {
  const rejected: RecordOutcome[] = [];
  const rounds: Map<string, StatementGroup>[] = [];
  const seen = new Map<string, number>();
  for (const record of batch.records) {
    if (record.match === null || record.match === undefined) {
      rejected.push({
        key: record.key,
        status: 'rejected',
        reason: 'the match field is empty',
        field: batch.matchField,
      });
      continue;
    }
    const id = typeof record.match === 'object' ? JSON.stringify(record.match) : String(record.match);
    const round = seen.get(id) ?? 0;
    seen.set(id, round + 1);
    const fields = record.op === 'delete' ? [] : Object.keys(record.fields).filter((f) => f !== batch.matchField);
    fields.sort();
    const signature = `${record.op}\u0000${fields.join('\u0000')}`;
    rounds[round] ??= new Map();
    const groups = rounds[round];
    let group = groups.get(signature);
    if (!group) {
      group = { op: record.op, fields, records: [] };
      groups.set(signature, group);
    }
    group.records.push(record);
  }
  return { rejected, groups: rounds.flatMap((groups) => [...groups.values()]) };
}
