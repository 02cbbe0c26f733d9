import { performance } from 'node:perf_hooks';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { type OpStats, OpTimer, sqsBilled } from './counting.ts';

/** Requests SQS would bill (64 KB chunks), kept next to the call counts. */
export interface SqsBilling {
  [command: string]: number;
}

interface CommandContext {
  readonly commandName?: string;
}

type Input = Record<string, unknown>;
type Output = Record<string, unknown>;

/**
 * Counts and times every AWS SDK command a client sends, through a middleware: calls, failures,
 * items (keys of a BatchGetItem, entries of a SendMessageBatch, messages received) and, for SQS,
 * the requests AWS would bill (every 64 KB of payload is one request). It also times each export
 * invocation of the local runtime, from the receive of its messages to the delete of the done ones.
 */
export class AwsMeter {
  readonly timer = new OpTimer();
  readonly billed: SqsBilling = {};
  /** Durations of export invocations (receive → delete), in ms. */
  readonly invocations: number[] = [];
  private readonly receivedAt = new Map<string, number>();

  attach(client: DynamoDBClient | SQSClient, service: 'dynamodb' | 'sqs'): void {
    const stack = client.middlewareStack as unknown as {
      add(
        middleware: (
          next: (args: { input: Input }) => Promise<{ output: Output }>,
          context: CommandContext,
        ) => (args: { input: Input }) => Promise<{ output: Output }>,
        options: { step: 'initialize'; name: string },
      ): void;
    };
    stack.add(
      (next, context) => async (args) => {
        const command = context.commandName?.replace(/Command$/, '') ?? 'unknown';
        const started = performance.now();
        if (command === 'DeleteMessageBatch') this.endInvocation(args.input, started);
        try {
          const result = await next(args);
          this.record(service, command, args.input, result.output, performance.now() - started, false);
          return result;
        } catch (error) {
          const name = (error as { name?: string }).name ?? 'Error';
          this.record(service, `${command}!${name}`, args.input, undefined, performance.now() - started, true);
          throw error;
        }
      },
      { step: 'initialize', name: 'backflowBenchMeter' },
    );
  }

  private record(
    service: string,
    command: string,
    input: Input,
    output: Output | undefined,
    ms: number,
    failed: boolean,
  ): void {
    let items = 1;
    let name = `${service}.${command}`;
    if (command === 'BatchGetItem') {
      const requests = Object.values((input.RequestItems ?? {}) as Record<string, { Keys?: unknown[] }>);
      items = requests.reduce((n, r) => n + (r.Keys?.length ?? 0), 0);
    } else if (command === 'SendMessageBatch' || command === 'DeleteMessageBatch') {
      const entries = (input.Entries ?? []) as { MessageBody?: string }[];
      items = entries.length;
      const bytes = entries.reduce((n, e) => n + Buffer.byteLength(e.MessageBody ?? ''), 0);
      this.bill(name, command === 'SendMessageBatch' ? sqsBilled(bytes) : 1);
    } else if (command === 'ReceiveMessage') {
      const messages = (output?.Messages ?? []) as { Body?: string; ReceiptHandle?: string }[];
      items = messages.length;
      if (messages.length === 0) name = `${name}(empty)`;
      const bytes = messages.reduce((n, m) => n + Buffer.byteLength(m.Body ?? ''), 0);
      this.bill(name, sqsBilled(bytes));
      const at = performance.now();
      for (const m of messages) if (m.ReceiptHandle) this.receivedAt.set(m.ReceiptHandle, at);
    } else if (service === 'sqs') {
      this.bill(name, 1);
    }
    this.timer.add(name, ms, items, failed);
  }

  private bill(name: string, requests: number): void {
    this.billed[name] = (this.billed[name] ?? 0) + requests;
  }

  private endInvocation(input: Input, at: number): void {
    const handles = ((input.Entries ?? []) as { ReceiptHandle?: string }[]).map((e) => e.ReceiptHandle ?? '');
    const starts = handles.map((h) => this.receivedAt.get(h)).filter((t): t is number => t !== undefined);
    for (const h of handles) this.receivedAt.delete(h);
    if (starts.length > 0) this.invocations.push(at - Math.min(...starts));
  }

  snapshot(): { ops: Record<string, OpStats>; billed: SqsBilling } {
    return { ops: this.timer.snapshot(), billed: { ...this.billed } };
  }
}

/** What happened between two snapshots. */
export function opsBetween(before: Record<string, OpStats>, after: Record<string, OpStats>): Record<string, OpStats> {
  const out: Record<string, OpStats> = {};
  for (const [name, a] of Object.entries(after)) {
    const b = before[name] ?? { calls: 0, errors: 0, ms: 0, maxMs: 0, items: 0 };
    if (a.calls === b.calls) continue;
    out[name] = {
      calls: a.calls - b.calls,
      errors: a.errors - b.errors,
      ms: a.ms - b.ms,
      maxMs: a.maxMs,
      items: a.items - b.items,
    };
  }
  return out;
}

export function billedBetween(before: SqsBilling, after: SqsBilling): SqsBilling {
  const out: SqsBilling = {};
  for (const [name, n] of Object.entries(after)) {
    const delta = n - (before[name] ?? 0);
    if (delta > 0) out[name] = delta;
  }
  return out;
}
