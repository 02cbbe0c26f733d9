import { randomUUID } from 'node:crypto';
import type { OutboundRecord } from '#connectors/sdk/destination';
import type { FieldType } from '#connectors/sdk/types';

/** A record as queued: the outbound payload plus the hash the state will keep. */
export interface QueuedRecord extends OutboundRecord {
  readonly hash?: string | undefined;
  /** True when the destination had no state for it at plan time (counted as a create). */
  readonly isNew?: boolean;
}

/** The body of one SQS message on a lane: one destination-sized batch of one sync run. */
export interface LaneMessage {
  readonly v: 1;
  readonly syncId: string;
  readonly runId: string;
  /** The run's sequence number: stale versions are dropped, newer state is never overwritten. */
  readonly version: number;
  readonly object: string;
  readonly matchField: string;
  /** Normalized types of the destination fields, from the model's columns. */
  readonly fieldTypes: Readonly<Record<string, FieldType>>;
  /** How many times these records were given back for a retry. */
  readonly attempt: number;
  /** How many times the whole message was given back because of 429s (does not count receives). */
  readonly throttles?: number;
  /** Whole-batch failures of these records so far. */
  readonly failures?: number;
  /** When these records first failed (epoch ms): the retry budget counts from here. */
  readonly failingSince?: number;
  /** When the plan queued these records (epoch ms): the lane's record age is measured from it. */
  readonly queuedAt?: number;
  /** Set when the exporter put the message on the dead-letter queue: a redrive reopens its run. */
  readonly deadLetteredAt?: string;
  readonly records: readonly QueuedRecord[];
}

/** A stand-in JSON.stringify writes for -0, replaced by a literal `-0` afterwards. */
const NEGATIVE_ZERO = `\u0000-0:${randomUUID()}`;
const NEGATIVE_ZERO_TEXT = JSON.stringify(NEGATIVE_ZERO);

/**
 * JSON that SQS takes whatever text it holds: SQS allows only #x9, #xA, #xD, #x20–#xD7FF,
 * #xE000–#xFFFD and #x10000–#x10FFFF in a message body
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html),
 * and emulators refuse some of the allowed ones. Every character outside printable ASCII is
 * written as a `\uXXXX` escape, which JSON.parse turns back into the very same UTF-16 text —
 * emoji, U+FFFE and unpaired surrogates included. `-0` is written as `-0` (JSON.stringify
 * writes `0`).
 */
export function encodeJson(value: unknown): string {
  let negativeZero = false;
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v === 0 && Object.is(v, -0)) {
      negativeZero = true;
      return NEGATIVE_ZERO;
    }
    return v;
  }).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return negativeZero ? text.replaceAll(NEGATIVE_ZERO_TEXT, '-0') : text;
}

export function encodeMessage(message: LaneMessage): string {
  return encodeJson(message);
}

export function decodeMessage(body: string): LaneMessage {
  const parsed = JSON.parse(body) as LaneMessage;
  if (parsed?.v !== 1 || !Array.isArray(parsed.records) || typeof parsed.syncId !== 'string') {
    throw new Error('not a Backflow lane message (v1)');
  }
  return parsed;
}

/** SQS accepts 1 MiB per message and per SendMessageBatch call. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/**
 * Packs records into messages of at most `maxRecords` records and `maxBytes` bytes.
 * Streaming: `add` returns a full message when the next record would not fit.
 */
export class MessagePacker {
  private records: QueuedRecord[] = [];
  private bytes: number;
  private readonly envelopeBytes: number;

  constructor(
    private readonly header: Omit<LaneMessage, 'records'>,
    private readonly maxRecords: number,
    private readonly maxBytes: number = MAX_MESSAGE_BYTES - 1024,
  ) {
    this.envelopeBytes = encodeMessage({ ...header, records: [] }).length;
    this.bytes = this.envelopeBytes;
  }

  /** Size a record adds to a message (its JSON plus a comma). */
  static sizeOf(record: QueuedRecord): number {
    return encodeJson(record).length + 1;
  }

  /** Whether a record of this size fits in a message at all. */
  fits(record: QueuedRecord, size = MessagePacker.sizeOf(record)): boolean {
    return this.envelopeBytes + size <= this.maxBytes;
  }

  /** `size` may be passed when the caller measured it already: records are serialized once. */
  add(record: QueuedRecord, size = MessagePacker.sizeOf(record)): LaneMessage | undefined {
    let full: LaneMessage | undefined;
    if (this.records.length > 0 && (this.records.length >= this.maxRecords || this.bytes + size > this.maxBytes)) {
      full = this.flush();
    }
    this.records.push(record);
    this.bytes += size;
    return full;
  }

  flush(): LaneMessage | undefined {
    if (this.records.length === 0) return undefined;
    const message: LaneMessage = { ...this.header, records: this.records };
    this.records = [];
    this.bytes = this.envelopeBytes;
    return message;
  }
}
