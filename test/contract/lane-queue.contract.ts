import { afterAll, describe, expect, it } from 'vitest';
import { decodeMessage, type LaneMessage } from '#core/lane-message';
import type { LaneQueue } from '#core/ports';

export interface Received {
  readonly receiptHandle: string;
  readonly body: string;
  readonly receiveCount: number;
}

/** A lane as a test drives it: the LaneQueue port plus the receiving side (Lambda's poller on AWS). */
export interface LaneHarness {
  readonly queue: LaneQueue;
  receive(max: number, visibilitySeconds?: number): Promise<Received[]>;
  delete(receiptHandles: readonly string[]): Promise<void>;
  depth(): Promise<number>;
  deadLetterDepth(): Promise<number>;
  /** Moves dead letters back onto the lane; resolves how many. */
  redrive(): Promise<number>;
}

export const laneMessage = (i: number, size = 10): LaneMessage => ({
  v: 1,
  syncId: 's',
  runId: '1',
  version: 1,
  object: 'o',
  matchField: 'id',
  fieldTypes: {},
  attempt: 0,
  records: [{ key: String(i), op: 'upsert', match: i, fields: { pad: 'x'.repeat(size) } }],
});

const keyOf = (r: Received) => decodeMessage(r.body).records[0]!.key;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The LaneQueue port's contract with the SQS semantics the local runtime relies on. `lane` makes a
 * fresh lane (name unique per call) with a max receive count and a visibility timeout in seconds.
 */
export function laneQueueContract(
  name: string,
  setup: () => Promise<{
    lane(name: string, maxReceives: number, visibilitySeconds: number): Promise<LaneHarness>;
    close(): Promise<void>;
  }>,
) {
  describe(`LaneQueue contract: ${name}`, () => {
    let env: Awaited<ReturnType<typeof setup>>;
    const lane = async (id: string, maxReceives: number, visibilitySeconds: number) => {
      env ??= await setup();
      return env.lane(id, maxReceives, visibilitySeconds);
    };
    afterAll(async () => env?.close());

    it('sends many messages, large ones included, and they all arrive intact, each once', async () => {
      const l = await lane('many', 5, 30);
      const sent = [
        ...Array.from({ length: 23 }, (_, i) => laneMessage(i)),
        laneMessage(100, 600_000),
        laneMessage(101, 600_000),
      ];
      await l.queue.send('many', sent);
      expect(await l.depth()).toBe(25);
      const seen: string[] = [];
      for (;;) {
        const got = await l.receive(10);
        if (got.length === 0) break;
        expect(got.length).toBeLessThanOrEqual(10);
        seen.push(...got.map(keyOf));
      }
      expect(seen.sort()).toEqual(sent.map((m) => m.records[0]!.key).sort());
      // Received and not deleted: in flight, still counted.
      expect(await l.depth()).toBe(25);
    });

    it('carries any text a warehouse holds, -0 included', async () => {
      const l = await lane('text', 5, 30);
      const nasty = 'thumbs 👍 \uFFFE\uFFFF lone \uD800 rtl \u202Eabc ctl \u0000\u0001\u001F\u007F é 漢字';
      await l.queue.send('text', [
        { ...laneMessage(1), records: [{ key: 'k👍', op: 'upsert', match: nasty, fields: { t: nasty, z: -0 } }] },
      ]);
      const [got] = await l.receive(1);
      const record = decodeMessage(got!.body).records[0]!;
      expect(record).toMatchObject({ key: 'k👍', match: nasty, fields: { t: nasty } });
      expect(Object.is(record.fields.z, -0)).toBe(true);
    });

    it('holds a delayed message back until its delay has passed', async () => {
      const l = await lane('delayed', 5, 30);
      await l.queue.send('delayed', [laneMessage(1)], 1);
      expect(await l.receive(10)).toEqual([]);
      expect(await l.depth()).toBe(1);
      await sleep(1100);
      expect((await l.receive(10)).map(keyOf)).toEqual(['1']);
    });

    it('hides a received message for the visibility timeout, then hands it out again with its receive count', async () => {
      const l = await lane('visibility', 5, 1);
      await l.queue.send('visibility', [laneMessage(1)]);
      const [first] = await l.receive(1);
      expect(first!.receiveCount).toBe(1);
      expect(await l.receive(1)).toEqual([]);
      await sleep(1100);
      const [second] = await l.receive(1);
      expect(second!.receiveCount).toBe(2);
      await l.delete([second!.receiptHandle]);
      expect(await l.depth()).toBe(0);
    });

    it('deletes by receipt handle, and retryLater makes a message visible again after the delay asked for', async () => {
      const l = await lane('retry', 5, 30);
      await l.queue.send('retry', [laneMessage(1), laneMessage(2)]);
      const got = await l.receive(10);
      expect(got).toHaveLength(2);
      await l.delete([got[0]!.receiptHandle]);
      await l.queue.retryLater('retry', got[1]!.receiptHandle, 0);
      const again = await l.receive(10);
      expect(again.map(keyOf)).toEqual([keyOf(got[1]!)]);
      await l.queue.retryLater('retry', again[0]!.receiptHandle, 1);
      expect(await l.receive(10)).toEqual([]);
      await sleep(1100);
      expect((await l.receive(10)).map((r) => r.receiveCount)).toEqual([3]);
    });

    it('dead-letters a message after the lane maximum of receives, and a redrive puts it back', async () => {
      const l = await lane('flaky', 2, 1);
      await l.queue.send('flaky', [laneMessage(1)]);
      for (let receive = 0; receive < 2; receive++) {
        const got = await l.receive(1);
        expect(got).toHaveLength(1);
        await l.queue.retryLater('flaky', got[0]!.receiptHandle, 0);
      }
      expect(await l.receive(1)).toEqual([]);
      expect(await l.deadLetterDepth()).toBe(1);
      expect(await l.depth()).toBe(0);
      expect(await l.redrive()).toBe(1);
      expect(await l.deadLetterDepth()).toBe(0);
      const [back] = await l.receive(1);
      expect(keyOf(back!)).toBe('1');
    });

    it('puts messages straight on the dead-letter queue', async () => {
      const l = await lane('direct', 5, 30);
      await l.queue.sendToDeadLetter('direct', [laneMessage(1), laneMessage(2)]);
      expect(await l.deadLetterDepth()).toBe(2);
      expect(await l.depth()).toBe(0);
    });
  });
}
