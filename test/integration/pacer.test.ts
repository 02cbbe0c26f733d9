import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalAws, startLocalAws } from '#cli/local-aws';
import { DynamoPacer } from '#core/aws/dynamo-pacer';
import { lanePace } from '#core/pacing';

describe('the DynamoDB lane schedule shared by concurrent exporters', () => {
  let aws: LocalAws;
  beforeAll(async () => {
    aws = await startLocalAws(undefined);
  });
  afterAll(async () => aws.stop());

  it('gives each slot once: eight exporters (each its own process’s pacer) never beat the rate', async () => {
    const rate = 20;
    const sent: number[] = [];
    const deadline = Date.now() + 1500;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const pace = lanePace(new DynamoPacer(aws.dynamodb, aws.table), { lane: 'crm', requestsPerSecond: rate });
        while (Date.now() < deadline) {
          await pace.take();
          sent.push(Date.now());
        }
      }),
    );
    sent.sort((a, b) => a - b);
    let busiest = 0;
    for (let i = 0, j = 0; i < sent.length; i++) {
      while (sent[i]! - sent[j]! >= 1000) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    expect(busiest).toBeLessThanOrEqual(rate + 1);
    expect(sent.length).toBeGreaterThan(20);
  });

  it('saves when it slowed down: a storm of concurrent 429s halves the rate once', async () => {
    const pacers = Array.from({ length: 5 }, () => new DynamoPacer(aws.dynamodb, aws.table));
    await pacers[0]!.reserve('slow', 10, 1, 2000);
    await Promise.all(pacers.map((p) => p.slowDown('slow', 10)));
    const item = await aws.dynamodb.send(
      new GetItemCommand({
        TableName: aws.table,
        Key: { pk: { S: 'lane#slow' }, sk: { S: 'pace' } },
        ConsistentRead: true,
      }),
    );
    expect(Number(item.Item?.rate?.N)).toBe(5);
    expect(Number(item.Item?.slowed?.N)).toBeGreaterThan(Date.now() - 5000);
    // Half the rate: slots 200 ms apart instead of 100 ms.
    const reservation = await new DynamoPacer(aws.dynamodb, aws.table).reserve('slow', 10, 2, 5000);
    expect(reservation.granted).toBe(true);
    if (reservation.granted)
      expect(Math.round(reservation.slots[1]! - reservation.slots[0]!)).toBeGreaterThanOrEqual(190);
  });

  it('refuses a reservation beyond the horizon, with the wait', async () => {
    const pacer = new DynamoPacer(aws.dynamodb, aws.table);
    expect((await pacer.reserve('busy', 2, 10, 60_000)).granted).toBe(true);
    const refused = await pacer.reserve('busy', 2, 1, 1000);
    expect(refused.granted).toBe(false);
    if (!refused.granted) expect(refused.waitMs).toBeGreaterThan(3000);
  });
});
