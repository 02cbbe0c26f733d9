import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { type Pacer, type Reservation, rateAt, type Schedule, SLOW_DOWN_EVERY_MS, slowedDown } from '#core/pacing';

const n = (value: number): AttributeValue => ({ N: String(value) });

function scheduleOf(item: Record<string, AttributeValue> | undefined): Schedule | undefined {
  if (!item?.tat?.N) return undefined;
  return {
    tat: Number(item.tat.N),
    rate: item.rate?.N === undefined ? undefined : Number(item.rate.N),
    slowedAt: item.slowed?.N === undefined ? undefined : Number(item.slowed.N),
  };
}

/**
 * The lane's request schedule as one DynamoDB item (`pk = lane#<destination>`, `sk = pace`):
 * `tat` (when the next free slot begins), and after a 429 `rate` and `slowed` (when it was
 * halved). A reservation is one atomic UpdateItem (`tat = tat + cost`, on condition that the
 * lane is busy but not booked beyond the horizon); an idle lane takes a second one to restart the
 * schedule from now. Concurrent exporters never get the same slot, and a group of requests
 * costs one write, not a read and a write per token.
 */
export class DynamoPacer implements Pacer {
  /** The last schedule this process saw per lane: its rate prices the next reservation. */
  private readonly seen = new Map<string, Schedule>();

  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
    private readonly now: () => number = Date.now,
  ) {}

  private key(lane: string) {
    return { pk: { S: `lane#${lane}` }, sk: { S: 'pace' } };
  }

  private async read(lane: string): Promise<Schedule | undefined> {
    const out = await this.client.send(
      new GetItemCommand({ TableName: this.table, Key: this.key(lane), ConsistentRead: true }),
    );
    const schedule = scheduleOf(out.Item);
    if (schedule) this.seen.set(lane, schedule);
    return schedule;
  }

  /** Runs a conditional update; the new schedule, or undefined when the condition failed. */
  private async update(
    lane: string,
    expression: string,
    condition: string,
    values: Record<string, AttributeValue>,
  ): Promise<Schedule | undefined> {
    try {
      const out = await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: this.key(lane),
          UpdateExpression: expression,
          ConditionExpression: condition,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      const schedule = scheduleOf(out.Attributes);
      if (schedule) this.seen.set(lane, schedule);
      return schedule;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    }
  }

  async reserve(lane: string, limit: number, count: number, horizonMs: number): Promise<Reservation> {
    // A process's first reservation reads the schedule: its rate may be slowed.
    if (!this.seen.has(lane)) await this.read(lane);
    for (let attempt = 0; attempt < 6; attempt++) {
      const now = this.now();
      const seen = this.seen.get(lane);
      const interval = 1000 / rateAt(seen, limit, now);
      const cost = count * interval;
      const slots = (start: number) => Array.from({ length: count }, (_, i) => start + i * interval);
      const idle = seen === undefined || seen.tat < now;
      if (!idle || attempt > 0) {
        // Busy lane: book the next `count` slots after those already booked.
        const next = await this.update(lane, 'SET tat = tat + :cost', 'tat BETWEEN :now AND :horizon', {
          ':cost': n(cost),
          ':now': n(now),
          ':horizon': n(now + horizonMs),
        });
        if (next) return { granted: true, slots: slots(next.tat - cost) };
        const current = await this.read(lane);
        if (current && current.tat > now + horizonMs) {
          return { granted: false, waitMs: Math.ceil(current.tat - now - horizonMs / 2) };
        }
      }
      // Idle lane (or no schedule yet): start it again from now.
      const started = await this.update(lane, 'SET tat = :tat', 'attribute_not_exists(tat) OR tat < :now', {
        ':tat': n(now + cost),
        ':now': n(now),
      });
      if (started) return { granted: true, slots: slots(now) };
    }
    // Heavy contention: other exporters are booking the slots; come back shortly.
    return { granted: false, waitMs: Math.ceil(1000 / limit) };
  }

  /**
   * Halves the lane's rate and pushes its schedule back by one slot at the new rate — unless
   * another exporter already did within the last second, which the condition on `slowed` sees:
   * a storm of concurrent 429s halves the rate once.
   */
  async slowDown(lane: string, limit: number): Promise<void> {
    const now = this.now();
    const current = await this.read(lane);
    if (current?.slowedAt !== undefined && now - current.slowedAt < SLOW_DOWN_EVERY_MS) return;
    const slowed = slowedDown(current, limit, now);
    await this.update(
      lane,
      'SET rate = :rate, slowed = :now, tat = if_not_exists(tat, :now) + :pause',
      'attribute_not_exists(slowed) OR slowed < :recent',
      {
        ':rate': n(slowed.rate!),
        ':now': n(now),
        ':pause': n(1000 / slowed.rate!),
        ':recent': n(now - SLOW_DOWN_EVERY_MS),
      },
    );
  }
}
