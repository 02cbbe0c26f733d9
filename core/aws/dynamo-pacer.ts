import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { type Bucket, type Pacer, slowedDown, takeToken } from '#core/pacing';

const n = (value: number): AttributeValue => ({ N: String(value) });

/**
 * The lane's token bucket as one DynamoDB item (`pk = lane#<destination>`, `sk = pace`), changed
 * only with a condition on its revision, so concurrent exporters never spend the same token.
 */
export class DynamoPacer implements Pacer {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
    private readonly now: () => number = Date.now,
  ) {}

  private key(lane: string) {
    return { pk: { S: `lane#${lane}` }, sk: { S: 'pace' } };
  }

  private async read(lane: string): Promise<{ bucket: Bucket | undefined; revision: number }> {
    const out = await this.client.send(
      new GetItemCommand({ TableName: this.table, Key: this.key(lane), ConsistentRead: true }),
    );
    const item = out.Item;
    if (!item) return { bucket: undefined, revision: 0 };
    return {
      bucket: {
        tokens: Number(item.tokens?.N),
        at: Number(item.at?.N),
        rate: Number(item.rate?.N),
        slowedAt: item.slowed?.N === undefined ? undefined : Number(item.slowed.N),
      },
      revision: Number(item.rev?.N ?? 0),
    };
  }

  /** Writes the bucket if nobody else did since we read it. */
  private async write(lane: string, bucket: Bucket, revision: number): Promise<boolean> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: {
            ...this.key(lane),
            tokens: n(bucket.tokens),
            at: n(bucket.at),
            rate: n(bucket.rate),
            rev: n(revision + 1),
          },
          ConditionExpression: revision === 0 ? 'attribute_not_exists(pk)' : 'rev = :rev',
          ExpressionAttributeValues: revision === 0 ? undefined : { ':rev': n(revision) },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async take(lane: string, limit: number): Promise<number> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const { bucket, revision } = await this.read(lane);
      const step = takeToken(bucket, limit, this.now());
      if (!step.granted) return step.waitMs;
      if (await this.write(lane, step.next, revision)) return 0;
    }
    // Heavy contention: another exporter is spending the tokens; come back shortly.
    return Math.ceil(1000 / limit);
  }

  async slowDown(lane: string, limit: number): Promise<void> {
    for (let attempt = 0; attempt < 4; attempt++) {
      const { bucket, revision } = await this.read(lane);
      if (await this.write(lane, slowedDown(bucket, limit, this.now()), revision)) return;
    }
  }
}
