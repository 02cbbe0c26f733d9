import {
  type AttributeValue,
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { Checkpoint } from '#connectors/sdk/source';
import type { JsonValue } from '#connectors/sdk/types';
import {
  type ClaimResult,
  emptyCounters,
  type LockResult,
  type PlanProgress,
  type RecordState,
  type RecordStateWrite,
  type RunCounters,
  type RunRecord,
  type RunStatus,
  type StateStore,
} from '#core/ports';

/** Record items of one sync are spread over this many partitions (DESIGN.md §3). */
export const BUCKETS = 64;
const RUN_TTL_SECONDS = 90 * 24 * 3600;
const WRITE_CONCURRENCY = 16;

/** FNV-1a: a fast, stable spread of record keys over buckets. */
export function bucketOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % BUCKETS;
}

const syncPk = (syncId: string) => `sync#${syncId}`;
const recordPk = (syncId: string, key: string) => `${syncId}#${bucketOf(key)}`;
const s = (value: string): AttributeValue => ({ S: value });
const n = (value: number): AttributeValue => ({ N: String(value) });

/**
 * State in one DynamoDB table (DESIGN.md §3): single-item conditional writes and batch calls
 * only, no transactions. Item attributes are short because a sync can hold millions of records.
 */
export class DynamoStateStore implements StateStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
  ) {}

  async nextSequence(syncId: string): Promise<number> {
    const out = await this.client.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { pk: s(syncPk(syncId)), sk: s('seq') },
        UpdateExpression: 'ADD n :one',
        ExpressionAttributeValues: { ':one': n(1) },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return Number(out.Attributes?.n?.N);
  }

  async acquireLock(syncId: string, owner: string, ttlMs: number, force = false): Promise<LockResult> {
    const now = Date.now();
    const key = { pk: s(syncPk(syncId)), sk: s('lock') };
    try {
      const out = await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: {
            ...key,
            owner: s(owner),
            until: n(now + ttlMs),
            expiresAt: n(Math.ceil((now + ttlMs) / 1000) + 3600),
          },
          ...(force
            ? {}
            : {
                ConditionExpression: 'attribute_not_exists(pk) OR #until < :now OR #owner = :owner',
                ExpressionAttributeNames: { '#until': 'until', '#owner': 'owner' },
                ExpressionAttributeValues: { ':now': n(now), ':owner': s(owner) },
              }),
          ReturnValues: 'ALL_OLD',
        }),
      );
      const previous = out.Attributes?.owner?.S;
      return {
        acquired: true,
        previous:
          previous !== undefined && previous !== owner
            ? { owner: previous, until: Number(out.Attributes?.until?.N ?? 0) }
            : undefined,
      };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const held = await this.client.send(
        new GetItemCommand({ TableName: this.table, Key: key, ConsistentRead: true }),
      );
      return {
        acquired: false,
        previous: held.Item ? { owner: held.Item.owner?.S ?? '', until: Number(held.Item.until?.N ?? 0) } : undefined,
      };
    }
  }

  async releaseLock(syncId: string, owner: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: { pk: s(syncPk(syncId)), sk: s('lock') },
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': s(owner) },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  private async getJson<T>(syncId: string, sk: string): Promise<T | undefined> {
    const out = await this.client.send(
      new GetItemCommand({ TableName: this.table, Key: { pk: s(syncPk(syncId)), sk: s(sk) }, ConsistentRead: true }),
    );
    const body = out.Item?.body?.S;
    return body === undefined ? undefined : (JSON.parse(body) as T);
  }

  private async putJson(syncId: string, sk: string, value: unknown): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.table,
        Item: { pk: s(syncPk(syncId)), sk: s(sk), body: s(JSON.stringify(value)) },
      }),
    );
  }

  private async delete(syncId: string, sk: string): Promise<void> {
    await this.client.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: s(syncPk(syncId)), sk: s(sk) } }));
  }

  getCursor(syncId: string): Promise<Checkpoint | undefined> {
    return this.getJson<Checkpoint>(syncId, 'cursor');
  }
  putCursor(syncId: string, cursor: Checkpoint): Promise<void> {
    return this.putJson(syncId, 'cursor', cursor);
  }
  getModelSchema(syncId: string): Promise<Record<string, string> | undefined> {
    return this.getJson<Record<string, string>>(syncId, 'schema');
  }
  putModelSchema(syncId: string, schema: Record<string, string>): Promise<void> {
    return this.putJson(syncId, 'schema', schema);
  }
  getProgress(syncId: string): Promise<PlanProgress | undefined> {
    return this.getJson<PlanProgress>(syncId, 'progress');
  }
  putProgress(syncId: string, progress: PlanProgress): Promise<void> {
    return this.putJson(syncId, 'progress', progress);
  }
  clearProgress(syncId: string): Promise<void> {
    return this.delete(syncId, 'progress');
  }

  async getRecords(syncId: string, keys: readonly string[]): Promise<Map<string, RecordState>> {
    const found = new Map<string, RecordState>();
    const unique = [...new Set(keys)];
    for (let i = 0; i < unique.length; i += 100) {
      let request: Record<string, AttributeValue>[] = unique
        .slice(i, i + 100)
        .map((key) => ({ pk: s(recordPk(syncId, key)), sk: s(key) }));
      // BatchGetItem may return part of the keys as unprocessed under load: ask again with backoff.
      for (let attempt = 0; request.length > 0; attempt++) {
        const out = await this.client.send(
          new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys: request, ConsistentRead: true } } }),
        );
        for (const item of out.Responses?.[this.table] ?? []) {
          const state = toRecordState(item);
          found.set(state.key, state);
        }
        request = out.UnprocessedKeys?.[this.table]?.Keys ?? [];
        if (request.length > 0) await sleep(Math.min(1000, 50 * 2 ** attempt));
      }
    }
    return found;
  }

  async claimRecords(
    syncId: string,
    keys: readonly string[],
    version: number,
    now: number,
    until: number,
  ): Promise<ClaimResult> {
    const result: ClaimResult = { claimed: [], stale: [], busy: [] };
    await forEachLimited([...new Set(keys)], WRITE_CONCURRENCY, async (key) => {
      const Key = { pk: s(recordPk(syncId, key)), sk: s(key) };
      try {
        await this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key,
            UpdateExpression: 'SET c = :v, cu = :until',
            ConditionExpression:
              '(attribute_not_exists(#v) OR #v <= :v) AND (attribute_not_exists(c) OR c = :v OR cu < :now)',
            ExpressionAttributeNames: { '#v': 'v' },
            ExpressionAttributeValues: { ':v': n(version), ':until': n(until), ':now': n(now) },
          }),
        );
        result.claimed.push(key);
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key, ConsistentRead: true }));
        const stored = Number(out.Item?.v?.N ?? 0);
        if (stored > version) result.stale.push(key);
        else result.busy.push({ key, until: Number(out.Item?.cu?.N ?? now) });
      }
    });
    return result;
  }

  async releaseClaims(syncId: string, keys: readonly string[], version: number): Promise<void> {
    await this.updateEach(syncId, keys, { UpdateExpression: 'REMOVE c, cu', ConditionExpression: 'c = :v' }, version);
  }

  async markDeadLettered(
    syncId: string,
    keys: readonly string[],
    version: number,
    matches?: ReadonlyMap<string, JsonValue>,
  ): Promise<void> {
    await this.updateEach(
      syncId,
      keys,
      {
        UpdateExpression: 'SET p = :v',
        ConditionExpression: 'attribute_exists(#v) AND (attribute_not_exists(p) OR p < :v)',
        ExpressionAttributeNames: { '#v': 'v' },
      },
      version,
    );
    // Never delivered: a placeholder (status deleted at version 0) a mirror run can delete if the
    // key leaves the model. Written only where no state exists; a state written since wins.
    const now = new Date().toISOString();
    await forEachLimited(
      [...new Set(keys)].filter((key) => matches?.has(key)),
      WRITE_CONCURRENCY,
      async (key) => {
        try {
          await this.client.send(
            new PutItemCommand({
              TableName: this.table,
              Item: {
                pk: s(recordPk(syncId, key)),
                sk: s(key),
                v: n(0),
                s: s('deleted'),
                u: s(now),
                m: s(JSON.stringify(matches!.get(key))),
                p: n(version),
              },
              ConditionExpression: 'attribute_not_exists(pk)',
            }),
          );
        } catch (error) {
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
        }
      },
    );
  }

  /** One conditional update per record key (`:v` = version); a condition that fails is no error. */
  private async updateEach(
    syncId: string,
    keys: readonly string[],
    update: {
      UpdateExpression: string;
      ConditionExpression: string;
      ExpressionAttributeNames?: Record<string, string>;
    },
    version: number,
  ): Promise<void> {
    await forEachLimited([...new Set(keys)], WRITE_CONCURRENCY, async (key) => {
      try {
        await this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: { pk: s(recordPk(syncId, key)), sk: s(key) },
            ...update,
            ExpressionAttributeValues: { ':v': n(version) },
          }),
        );
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    });
  }

  async putRecords(
    syncId: string,
    states: readonly RecordStateWrite[],
    now = Date.now(),
  ): Promise<{ superseded: string[] }> {
    const superseded: string[] = [];
    await forEachLimited(states, WRITE_CONCURRENCY, async (state) => {
      const Key = { pk: s(recordPk(syncId, state.key)), sk: s(state.key) };
      const names: Record<string, string> = { '#v': 'v', '#s': 's', '#u': 'u' };
      const values: Record<string, AttributeValue> = {
        ':v': n(state.version),
        ':s': s(state.status),
        ':u': s(state.updatedAt),
        ':now': n(now),
      };
      const set = ['#v = :v', '#s = :s', '#u = :u'];
      const remove = ['c', 'cu'];
      const optional: [string, string | undefined][] = [
        ['h', state.hash],
        ['r', state.reason],
        ['d', state.destinationId],
        ['m', state.match === undefined ? undefined : JSON.stringify(state.match)],
      ];
      for (const [attribute, value] of optional) {
        if (value === undefined) remove.push(attribute);
        else {
          names[`#${attribute}`] = attribute;
          values[`:${attribute}`] = s(value);
          set.push(`#${attribute} = :${attribute}`);
        }
      }
      // Newer versions win; a claim held by another version means its delivery may be racing
      // ours (our claim outlived its lease), so ours must not be recorded as what the destination holds.
      const ordered = '(attribute_not_exists(#v) OR #v <= :v) AND (attribute_not_exists(c) OR c = :v OR cu < :now)';
      const write = (clearDirty: boolean) =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key,
            UpdateExpression: `SET ${set.join(', ')} REMOVE ${[...remove, ...(clearDirty ? ['x'] : [])].join(', ')}`,
            ConditionExpression: clearDirty ? ordered : `${ordered} AND attribute_not_exists(x)`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        );
      try {
        await write(state.clearsDirty === true);
        return;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
      const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key, ConsistentRead: true }));
      const item = out.Item ?? {};
      const newer = Number(item.v?.N ?? 0) > state.version;
      const claimedByOther =
        item.c?.N !== undefined && Number(item.c.N) !== state.version && Number(item.cu?.N ?? 0) >= now;
      if (!newer && !claimedByOther && item.x?.BOOL === true) {
        // Flagged dirty while this delivery was under way: record it, keep the flag.
        try {
          await this.client.send(
            new UpdateItemCommand({
              TableName: this.table,
              Key,
              UpdateExpression: `SET ${set.join(', ')} REMOVE ${remove.join(', ')}`,
              ConditionExpression: ordered,
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: values,
            }),
          );
          return;
        } catch (error) {
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
        }
      }
      // A newer run's write landed between our read and this write, or another delivery of the
      // key ran beside ours, so the destination may now hold this older payload: flag the record
      // so the next run sends it again.
      superseded.push(state.key);
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key,
          UpdateExpression: 'SET x = :true',
          ExpressionAttributeValues: { ':true': { BOOL: true } },
        }),
      );
    });
    return { superseded };
  }

  async *listRecords(syncId: string): AsyncIterable<RecordState> {
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      let start: Record<string, AttributeValue> | undefined;
      do {
        const out = await this.client.send(
          new QueryCommand({
            TableName: this.table,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': s(`${syncId}#${bucket}`) },
            ExclusiveStartKey: start,
          }),
        );
        for (const item of out.Items ?? []) yield toRecordState(item);
        start = out.LastEvaluatedKey;
      } while (start);
    }
  }

  async putRun(run: RunRecord): Promise<void> {
    const item: Record<string, AttributeValue> = {
      pk: s(syncPk(run.syncId)),
      sk: s(`run#${run.runId}`),
      runId: s(run.runId),
      seq: n(run.sequence),
      status: s(run.status),
      full: { BOOL: run.full },
      startedAt: s(run.startedAt),
      invalid_samples: { L: [] },
      expiresAt: n(Math.floor(Date.now() / 1000) + RUN_TTL_SECONDS),
    };
    if (run.error) item.error = s(run.error);
    for (const [name, value] of Object.entries(run.counters)) item[`c_${name}`] = n(value);
    await this.client.send(new PutItemCommand({ TableName: this.table, Item: item }));
  }

  async addToRun(syncId: string, runId: string, counters: Partial<RunCounters>): Promise<RunRecord | undefined> {
    const entries = Object.entries(counters).filter(([, v]) => typeof v === 'number' && v !== 0);
    if (entries.length === 0) return this.getRun(syncId, runId);
    // ALL_NEW hands back the run as the addition left it: the exporter can tell whether the run is
    // done without reading it again.
    const out = await this.client.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { pk: s(syncPk(syncId)), sk: s(`run#${runId}`) },
        UpdateExpression: `ADD ${entries.map(([k]) => `c_${k} :${k}`).join(', ')}`,
        ExpressionAttributeValues: Object.fromEntries(entries.map(([k, v]) => [`:${k}`, n(v as number)])),
        ReturnValues: 'ALL_NEW',
      }),
    );
    return out.Attributes ? toRunRecord(syncId, out.Attributes) : undefined;
  }

  async updateRun(
    syncId: string,
    runId: string,
    fields: { status?: RunStatus; error?: string | null; plannedAt?: string; finishedAt?: string | null },
  ): Promise<void> {
    const entries = Object.entries(fields).filter(([, v]) => v !== undefined && v !== null);
    const removes = Object.entries(fields)
      .filter(([, v]) => v === null)
      .map(([k]) => k);
    if (entries.length === 0 && removes.length === 0) return;
    const expression = [
      ...(entries.length > 0 ? [`SET ${entries.map(([k]) => `#${k} = :${k}`).join(', ')}`] : []),
      ...(removes.length > 0 ? [`REMOVE ${removes.map((k) => `#${k}`).join(', ')}`] : []),
    ].join(' ');
    await this.client.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { pk: s(syncPk(syncId)), sk: s(`run#${runId}`) },
        UpdateExpression: expression,
        ExpressionAttributeNames: Object.fromEntries([...entries.map(([k]) => k), ...removes].map((k) => [`#${k}`, k])),
        ...(entries.length > 0
          ? { ExpressionAttributeValues: Object.fromEntries(entries.map(([k, v]) => [`:${k}`, s(String(v))])) }
          : {}),
      }),
    );
  }

  async addInvalidSamples(
    syncId: string,
    runId: string,
    samples: readonly { key: string; reason: string }[],
  ): Promise<void> {
    if (samples.length === 0) return;
    await this.client.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { pk: s(syncPk(syncId)), sk: s(`run#${runId}`) },
        UpdateExpression: 'SET invalid_samples = list_append(if_not_exists(invalid_samples, :empty), :samples)',
        ExpressionAttributeValues: {
          ':empty': { L: [] },
          ':samples': { L: samples.map((sample) => ({ M: marshall(sample) })) },
        },
      }),
    );
  }

  async getRun(syncId: string, runId: string): Promise<RunRecord | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { pk: s(syncPk(syncId)), sk: s(`run#${runId}`) },
        ConsistentRead: true,
      }),
    );
    return out.Item ? toRunRecord(syncId, out.Item) : undefined;
  }

  async listRuns(syncId: string, limit: number): Promise<RunRecord[]> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :run)',
        ExpressionAttributeValues: { ':pk': s(syncPk(syncId)), ':run': s('run#') },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map((item) => toRunRecord(syncId, item));
  }
}

export function toRecordState(item: Record<string, AttributeValue>): RecordState {
  return {
    key: item.sk!.S!,
    hash: item.h?.S,
    version: Number(item.v?.N ?? 0),
    status: (item.s?.S ?? 'ok') as RecordState['status'],
    reason: item.r?.S,
    destinationId: item.d?.S,
    match: item.m?.S === undefined ? undefined : (JSON.parse(item.m.S) as JsonValue),
    updatedAt: item.u?.S ?? '',
    dirty: item.x?.BOOL === true ? true : undefined,
    pending: item.p?.N === undefined ? undefined : Number(item.p.N),
  };
}

export function toRunRecord(syncId: string, item: Record<string, AttributeValue>): RunRecord {
  const plain = unmarshall(item) as Record<string, unknown>;
  const counters = emptyCounters();
  for (const name of Object.keys(counters) as (keyof RunCounters)[]) {
    counters[name] = Number(plain[`c_${name}`] ?? 0);
  }
  return {
    syncId,
    runId: String(plain.runId),
    sequence: Number(plain.seq),
    status: plain.status as RunStatus,
    full: plain.full === true,
    startedAt: String(plain.startedAt),
    plannedAt: plain.plannedAt as string | undefined,
    finishedAt: plain.finishedAt as string | undefined,
    error: plain.error as string | undefined,
    invalidSamples: (plain.invalid_samples as { key: string; reason: string }[] | undefined) ?? [],
    counters,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `task` over items with at most `limit` in flight. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await task(item);
    }
  });
  await Promise.all(workers);
}
