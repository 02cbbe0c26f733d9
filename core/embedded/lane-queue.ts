import { randomBytes } from 'node:crypto';
import type { Database } from 'lmdb';
import { encodeMessage, type LaneMessage, MAX_MESSAGE_BYTES } from '#core/lane-message';
import type { LaneQueue } from '#core/ports';

/** A message as stored: SQS's view of it. */
interface StoredMessage {
  readonly id: string;
  readonly body: string;
  readonly sentAt: number;
  /** When it may be received (a delay, or the visibility timeout of its last receive). */
  visibleAt: number;
  receives: number;
  firstReceiveAt?: number;
  /** Whether a receive handed it out and no delete or timeout ended that yet. */
  inFlight?: boolean;
}

export interface ReceivedMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly receiveCount: number;
  readonly sentAt: number;
  readonly firstReceiveAt: number;
}

export interface LaneSettings {
  /** Receives after which a message moves to the dead-letter queue (SQS's `maxReceiveCount`). */
  readonly maxReceives: number;
  readonly visibilityTimeoutSeconds: number;
}

export interface QueueDepth {
  readonly visible: number;
  readonly inFlight: number;
  readonly delayed: number;
  readonly total: number;
}

const SEP = '\u0001';
const deadLetterQueue = (lane: string) => `${lane}${SEP}dlq`;

/**
 * The lanes on the embedded store, with the SQS semantics the local runtime relies on: delays,
 * a visibility timeout per receive, receive counts, a message received more than `maxReceives`
 * times moved to the lane's dead-letter queue on its next receive (SQS's redrive policy),
 * `retryLater` (ChangeMessageVisibility), deletes by receipt handle, and the move of dead letters
 * back onto the lane (a redrive). Messages persist in the `queue` sub-database; the index of each
 * queue is kept in memory (loaded when the queue is first used), since one process owns the store.
 */
export class EmbeddedLaneQueue implements LaneQueue {
  private readonly queues = new Map<string, Map<string, StoredMessage>>();
  private readonly settings = new Map<string, LaneSettings>();
  private counter = 0;
  private readonly prefix = randomBytes(3).toString('hex');

  constructor(
    private readonly db: Database,
    private readonly now: () => number = Date.now,
  ) {}

  /** Declares a lane (as CreateQueue with its redrive policy). */
  ensureLane(lane: string, settings: LaneSettings): void {
    this.settings.set(lane, settings);
  }

  lanes(): string[] {
    return [...this.settings.keys()];
  }

  private lane(lane: string): LaneSettings {
    const settings = this.settings.get(lane);
    if (!settings) throw new Error(`no local lane for destination ${lane}`);
    return settings;
  }

  /** The messages of one queue, in the order they were sent, loaded from the store on first use. */
  private queue(name: string): Map<string, StoredMessage> {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Map();
      const prefix = `${name}${SEP}${SEP}`;
      for (const { value } of this.db.getRange({ start: prefix, end: `${name}${SEP}\u0002` })) {
        const message = value as StoredMessage;
        queue.set(message.id, { ...message });
      }
      this.queues.set(name, queue);
    }
    return queue;
  }

  private store(name: string, message: StoredMessage): Promise<boolean> {
    return this.db.put(`${name}${SEP}${SEP}${message.id}`, message);
  }
  private unstore(name: string, id: string): Promise<boolean> {
    return this.db.remove(`${name}${SEP}${SEP}${id}`);
  }

  /** Ids sort in sending order, across processes too. */
  private nextId(): string {
    return `${this.now().toString(36).padStart(10, '0')}-${(this.counter++).toString(36).padStart(6, '0')}-${this.prefix}`;
  }

  private async put(name: string, bodies: readonly string[], delaySeconds = 0): Promise<void> {
    const now = this.now();
    const queue = this.queue(name);
    const writes: Promise<boolean>[] = [];
    for (const body of bodies) {
      const message: StoredMessage = {
        id: this.nextId(),
        body,
        sentAt: now,
        visibleAt: now + Math.max(0, delaySeconds) * 1000,
        receives: 0,
      };
      queue.set(message.id, message);
      writes.push(this.store(name, message));
    }
    await Promise.all(writes);
  }

  async send(lane: string, messages: readonly LaneMessage[], delaySeconds?: number): Promise<void> {
    this.lane(lane);
    await this.put(lane, encodeAll(messages), Math.min(900, delaySeconds ?? 0));
  }

  async sendToDeadLetter(lane: string, messages: readonly LaneMessage[]): Promise<void> {
    this.lane(lane);
    await this.put(deadLetterQueue(lane), encodeAll(messages));
  }

  /** Puts raw bodies on the lane's dead-letter queue (dead letters saved by an older version). */
  async sendBodiesToDeadLetter(lane: string, bodies: readonly string[]): Promise<void> {
    await this.put(deadLetterQueue(lane), bodies);
  }

  async retryLater(lane: string, receiptHandle: string, seconds: number): Promise<void> {
    const message = this.byReceipt(lane, receiptHandle);
    if (!message) return;
    message.visibleAt = this.now() + Math.max(0, Math.min(43_200, Math.round(seconds))) * 1000;
    await this.store(lane, message);
  }

  private byReceipt(lane: string, receiptHandle: string): StoredMessage | undefined {
    const [id, receives] = receiptHandle.split('#');
    const message = this.queue(lane).get(id ?? '');
    return message?.inFlight && String(message.receives) === receives ? message : undefined;
  }

  /**
   * Receives up to `max` visible messages, hiding each for the lane's visibility timeout. A message
   * already received `maxReceives` times goes to the dead-letter queue instead, as SQS moves it.
   */
  async receive(lane: string, max = 10, visibilityTimeoutSeconds?: number): Promise<ReceivedMessage[]> {
    const settings = this.lane(lane);
    const now = this.now();
    const visibility = (visibilityTimeoutSeconds ?? settings.visibilityTimeoutSeconds) * 1000;
    const received: ReceivedMessage[] = [];
    const writes: Promise<boolean>[] = [];
    const queue = this.queue(lane);
    for (const message of queue.values()) {
      if (received.length >= max) break;
      if (message.visibleAt > now) continue;
      if (message.receives >= settings.maxReceives) {
        queue.delete(message.id);
        writes.push(this.unstore(lane, message.id));
        const dead: StoredMessage = { ...message, inFlight: false, visibleAt: now };
        this.queue(deadLetterQueue(lane)).set(dead.id, dead);
        writes.push(this.store(deadLetterQueue(lane), dead));
        continue;
      }
      message.receives++;
      message.firstReceiveAt ??= now;
      message.visibleAt = now + visibility;
      message.inFlight = true;
      writes.push(this.store(lane, message));
      received.push({
        messageId: message.id,
        receiptHandle: `${message.id}#${message.receives}`,
        body: message.body,
        receiveCount: message.receives,
        sentAt: message.sentAt,
        firstReceiveAt: message.firstReceiveAt,
      });
    }
    await Promise.all(writes);
    return received;
  }

  /** Deletes received messages by their receipt handles (a stale handle deletes nothing). */
  async delete(lane: string, receiptHandles: readonly string[]): Promise<void> {
    const writes: Promise<boolean>[] = [];
    for (const handle of receiptHandles) {
      const message = this.byReceipt(lane, handle);
      if (!message) continue;
      this.queue(lane).delete(message.id);
      writes.push(this.unstore(lane, message.id));
    }
    await Promise.all(writes);
  }

  depth(lane: string): QueueDepth {
    return depthOf(this.queue(lane).values(), this.now());
  }

  deadLetterDepth(lane: string): QueueDepth {
    return depthOf(this.queue(deadLetterQueue(lane)).values(), this.now());
  }

  /** The bodies on the lane's dead-letter queue (they stay there). */
  deadLetters(lane: string): string[] {
    return [...this.queue(deadLetterQueue(lane)).values()].map((m) => m.body);
  }

  /** Moves every dead letter back onto the lane as a new message (a redrive); resolves their bodies. */
  async redrive(lane: string): Promise<string[]> {
    const dead = this.queue(deadLetterQueue(lane));
    const bodies = [...dead.values()].map((m) => m.body);
    await this.put(lane, bodies);
    await Promise.all([...dead.keys()].map((id) => this.unstore(deadLetterQueue(lane), id)));
    dead.clear();
    return bodies;
  }

  /**
   * Makes every in-flight message visible again: the process that received them is gone (the store
   * has one owner, and it just opened it), so no invocation holds them any more. Receive counts stay.
   */
  async releaseInFlight(lane: string): Promise<number> {
    const now = this.now();
    const writes: Promise<boolean>[] = [];
    for (const message of this.queue(lane).values()) {
      if (!message.inFlight) continue;
      message.inFlight = false;
      message.visibleAt = Math.min(message.visibleAt, now);
      writes.push(this.store(lane, message));
    }
    await Promise.all(writes);
    return writes.length;
  }
}

function depthOf(messages: Iterable<StoredMessage>, now: number): QueueDepth {
  let visible = 0;
  let inFlight = 0;
  let delayed = 0;
  for (const message of messages) {
    if (message.visibleAt <= now) visible++;
    else if (message.inFlight) inFlight++;
    else delayed++;
  }
  return { visible, inFlight, delayed, total: visible + inFlight + delayed };
}

function encodeAll(messages: readonly LaneMessage[]): string[] {
  return messages.map((message) => {
    const body = encodeMessage(message);
    const size = Buffer.byteLength(body);
    if (size > MAX_MESSAGE_BYTES) throw new Error(`a lane message of ${size} bytes exceeds the SQS limit of 1 MiB`);
    return body;
  });
}
