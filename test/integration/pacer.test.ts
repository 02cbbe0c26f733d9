import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalAws, startLocalAws } from '#cli/local-aws';
import { DynamoPacer } from '#core/aws/dynamo-pacer';

describe('the DynamoDB token bucket shared by concurrent exporters', () => {
  let aws: LocalAws;
  beforeAll(async () => {
    aws = await startLocalAws(undefined);
  });
  afterAll(async () => aws.stop());

  it('grants each token once: eight concurrent takers never beat the rate', async () => {
    const pacer = new DynamoPacer(aws.dynamodb, aws.table);
    const rate = 20;
    const grants: number[] = [];
    const deadline = Date.now() + 1500;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (Date.now() < deadline) {
          const wait = await pacer.take('crm', rate);
          if (wait === 0) grants.push(Date.now());
          else await new Promise((r) => setTimeout(r, wait));
        }
      }),
    );
    grants.sort((a, b) => a - b);
    let busiest = 0;
    for (let i = 0, j = 0; i < grants.length; i++) {
      while (grants[i]! - grants[j]! >= 1000) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    expect(busiest).toBeLessThanOrEqual(rate + 1);
    expect(grants.length).toBeGreaterThan(10);
  });

  it('slows a lane down after a 429', async () => {
    const pacer = new DynamoPacer(aws.dynamodb, aws.table);
    expect(await pacer.take('slow', 10)).toBe(0);
    await pacer.slowDown('slow', 10);
    // Half the rate: the next token is up to 200 ms away instead of 100 ms.
    const wait = await pacer.take('slow', 10);
    expect(wait).toBeGreaterThan(100);
    expect(wait).toBeLessThanOrEqual(200);
  });
});
