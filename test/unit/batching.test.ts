import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { groupForBatch } from '#core/aws/sqs-lane-queue';
import {
  encodeMessage,
  type LaneMessage,
  MAX_MESSAGE_BYTES,
  MessagePacker,
  type QueuedRecord,
} from '#core/lane-message';

const header: Omit<LaneMessage, 'records'> = {
  v: 1,
  syncId: 's',
  runId: '0000000001',
  version: 1,
  object: 'contacts',
  matchField: 'id',
  fieldTypes: { id: 'integer', name: 'string' },
  attempt: 0,
};

const record = (i: number, size: number): QueuedRecord => ({
  key: String(i),
  op: 'upsert',
  match: i,
  fields: { name: 'x'.repeat(size) },
  hash: 'h',
});

function pack(records: QueuedRecord[], maxRecords: number, maxBytes: number): LaneMessage[] {
  const packer = new MessagePacker(header, maxRecords, maxBytes);
  const out: LaneMessage[] = [];
  for (const r of records) {
    const full = packer.add(r);
    if (full) out.push(full);
  }
  const last = packer.flush();
  if (last) out.push(last);
  return out;
}

describe('packing records into lane messages', () => {
  it('respects the batch size and the byte limit, keeps order and loses nothing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 300 }),
        fc.integer({ min: 1, max: 120 }),
        (sizes, maxRecords) => {
          const records = sizes.map((size, i) => record(i, size));
          const messages = pack(records, maxRecords, 20_000);
          expect(messages.flatMap((m) => m.records.map((r) => r.key))).toEqual(records.map((r) => r.key));
          for (const m of messages) {
            expect(m.records.length).toBeLessThanOrEqual(maxRecords);
            expect(Buffer.byteLength(encodeMessage(m))).toBeLessThanOrEqual(20_000);
          }
        },
      ),
    );
  });

  it('reports a record too large for any message', () => {
    const packer = new MessagePacker(header, 100);
    expect(packer.fits(record(1, 1000))).toBe(true);
    expect(packer.fits(record(1, MAX_MESSAGE_BYTES))).toBe(false);
  });

  it('groups SendMessageBatch calls by 10 entries and 1 MiB in total', () => {
    const small = Array.from({ length: 25 }, () => 'x'.repeat(100));
    expect(groupForBatch(small).map((g) => g.length)).toEqual([10, 10, 5]);
    const big = Array.from({ length: 5 }, () => 'x'.repeat(400_000));
    const groups = groupForBatch(big);
    expect(groups.map((g) => g.length)).toEqual([2, 2, 1]);
    for (const g of groups) expect(g.reduce((n, b) => n + b.length, 0)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  });
});
