import { type AttributeValue, ScanCommand } from '@aws-sdk/client-dynamodb';
import { toRecordState, toRunRecord } from '#core/aws/dynamo-state-store';
import type { EmbeddedStateStore } from '#core/embedded/state-store';
import type { RecordState, RunRecord } from '#core/ports';
import { startLocalDynamo } from './local-aws.ts';

/**
 * Copies the state an older Backflow kept in dynalite (`.backflow/dynamodb`) into the embedded
 * store, item by item as DynamoStateStore wrote them: record states (with their dirty flag and the
 * version pending in the dead-letter queue), runs, run sequences, cursors, model schemas and plan
 * progress. Locks, claims and lane schedules are leases and pacing: they are left behind.
 */
export async function migrateDynaliteState(stateDir: string, state: EmbeddedStateStore): Promise<void> {
  const dynamo = await startLocalDynamo(stateDir);
  try {
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await dynamo.dynamodb.send(new ScanCommand({ TableName: dynamo.table, ExclusiveStartKey: start }));
      const records: { syncId: string; state: RecordState }[] = [];
      const runs: RunRecord[] = [];
      const sequences: { syncId: string; sequence: number }[] = [];
      const documents: { syncId: string; kind: 'cursor' | 'schema' | 'progress'; body: string }[] = [];
      for (const item of out.Items ?? []) {
        const pk = item.pk?.S ?? '';
        const sk = item.sk?.S ?? '';
        if (pk.startsWith('sync#')) {
          const syncId = pk.slice('sync#'.length);
          if (sk === 'seq') sequences.push({ syncId, sequence: Number(item.n?.N ?? 0) });
          else if (sk === 'cursor' || sk === 'schema' || sk === 'progress') {
            if (item.body?.S !== undefined) documents.push({ syncId, kind: sk, body: item.body.S });
          } else if (sk.startsWith('run#')) runs.push(toRunRecord(syncId, item));
        } else if (!pk.startsWith('lane#') && pk.includes('#')) {
          // A record item: pk `<syncId>#<bucket>`, sk the record key. An item holding nothing but a
          // claim (c, cu) was never delivered: it is no state.
          if (item.v === undefined && item.x === undefined) continue;
          records.push({ syncId: pk.slice(0, pk.lastIndexOf('#')), state: toRecordState(item) });
        }
      }
      await state.importState({ records, runs, sequences, documents });
      start = out.LastEvaluatedKey;
    } while (start);
  } finally {
    await dynamo.stop();
  }
}
