import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import type { Config } from '#core/config/load';
import { decodeMessage } from '#core/lane-message';
import { emptyCounters, type RunCounters } from '#core/ports';
import { type CommandContext, flag, pick, positionals, stackFlag } from '../context.ts';
import { formatCount as n } from '../io.ts';
import { queueDepth } from '../local-aws.ts';
import { savedDeadLetters } from '../local-state.ts';

/** `backflow redrive <destination>`: dead letters back onto the lane. */
export async function redrive(ctx: CommandContext): Promise<number> {
  const [name] = positionals(ctx, 1, 1, 'the destination whose dead letters to redrive');
  const config = await ctx.config();
  const destination = pick('destination', name!, config.destinations);
  return flag(ctx, 'remote') ? redriveRemote(ctx, destination.name) : redriveLocal(ctx, config, destination.name);
}

const COUNTERS = ['created', 'updated', 'deleted', 'rejected', 'retried', 'deadLettered', 'stale'] as const;

/**
 * Locally: the saved dead letters go back to the lane, the local runtime delivers them, and the
 * counters the export added to their runs say what happened.
 */
async function redriveLocal(ctx: CommandContext, config: Config, lane: string): Promise<number> {
  const saved = savedDeadLetters(config, lane);
  if (saved.length === 0) {
    if (ctx.json) ctx.io.out(JSON.stringify({ destination: lane, moved: 0, deadLettered: 0, delta: {} }, null, 2));
    else ctx.io.out(`${ctx.style.green('✔')} nothing to redrive: the dead-letter queue of ${lane} is empty`);
    return 0;
  }
  let delivered = 0;
  let total = 0;
  const { LocalRuntime } = await import('../local-runtime.ts');
  const runtime = await LocalRuntime.start({
    config,
    onProgress: (event) => {
      if (event.type !== 'export' || event.lane !== lane) return;
      delivered += event.messages - event.failed;
      ctx.progress.update(`redriving ${lane}`, Math.min(delivered, total), total);
    },
  });
  try {
    const urls = runtime.lanes.get(lane)!;
    const bodies = await moveAll(runtime.aws.sqs, urls.deadLetterUrl, urls.queueUrl);
    total = bodies.length;
    const runs = new Map<string, { syncId: string; runId: string; records: number }>();
    for (const body of bodies) {
      try {
        const message = decodeMessage(body);
        const id = `${message.syncId}/${message.runId}`;
        const entry = runs.get(id) ?? { syncId: message.syncId, runId: message.runId, records: 0 };
        entry.records += message.records.length;
        runs.set(id, entry);
      } catch {
        // Not a Backflow message: the export handler will report it.
      }
    }
    const before = new Map<string, RunCounters>();
    for (const [id, r] of runs)
      before.set(id, (await runtime.state.getRun(r.syncId, r.runId))?.counters ?? emptyCounters());
    await runtime.drain();
    ctx.progress.done();
    const deadLettered = (await queueDepth(runtime.aws.sqs, urls.deadLetterUrl)).total;
    const delta: Record<(typeof COUNTERS)[number], number> = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as never;
    for (const [id, r] of runs) {
      const after = (await runtime.state.getRun(r.syncId, r.runId))?.counters ?? emptyCounters();
      for (const c of COUNTERS) delta[c] += after[c] - before.get(id)![c];
    }
    const records = [...runs.values()].reduce((sum, r) => sum + r.records, 0);
    if (ctx.json) {
      ctx.io.out(
        JSON.stringify(
          { destination: lane, moved: bodies.length, records, runs: [...runs.values()], deadLettered, delta },
          null,
          2,
        ),
      );
    } else {
      const { style } = ctx;
      ctx.io.out(
        `${deadLettered === 0 ? style.green('✔') : style.red('✘')} redrove ${n(bodies.length)} message(s) (${n(records)} record(s)) from the dead-letter queue of ${lane}`,
      );
      ctx.io.out(
        `  created ${n(delta.created)} · updated ${n(delta.updated)} · deleted ${n(delta.deleted)} · rejected ${n(delta.rejected)} · already delivered ${n(delta.stale)}`,
      );
      for (const r of runs.values())
        ctx.io.out(style.dim(`  run ${r.runId} of ${r.syncId}: ${n(r.records)} record(s)`));
      if (deadLettered > 0) {
        ctx.io.out(style.red(`  ${n(deadLettered)} message(s) failed again and are back in the dead-letter queue`));
      }
      if (delta.rejected > 0) ctx.io.out(style.dim(`  refused records: backflow rejections <sync>`));
    }
    return deadLettered === 0 ? 0 : 1;
  } finally {
    ctx.progress.done();
    await runtime.stop();
  }
}

/** Receives every message of `from`, sends it to `to`, then deletes it from `from`. */
async function moveAll(sqs: SQSClient, from: string, to: string): Promise<string[]> {
  const moved: string[] = [];
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: from, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) return moved;
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: to,
        Entries: messages.map((m, i) => ({ Id: String(i), MessageBody: m.Body! })),
      }),
    );
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: from,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
    moved.push(...messages.map((m) => m.Body!));
  }
}

/** On AWS: an SQS message move task from the lane's DLQ back to the lane. */
async function redriveRemote(ctx: CommandContext, lane: string): Promise<number> {
  const { awsProblem, laneOf, queueArn, queueCounts, stackResources } = await import('../remote.ts');
  const clients = await ctx.remote();
  const stack = await stackResources(clients, ctx.remoteOptions.stack);
  const urls = laneOf(stack, lane);
  let depth: number;
  let taskHandle: string | undefined;
  try {
    const dlq = await queueCounts(clients.sqs, urls.deadLetterUrl);
    depth = dlq.visible + dlq.inFlight + dlq.delayed;
    if (depth === 0) {
      if (ctx.json) ctx.io.out(JSON.stringify({ destination: lane, stack: stack.stack, moving: 0 }, null, 2));
      else ctx.io.out(`${ctx.style.green('✔')} nothing to redrive: the dead-letter queue of ${lane} is empty`);
      return 0;
    }
    const [sourceArn, destinationArn] = await Promise.all([
      queueArn(clients.sqs, urls.deadLetterUrl),
      queueArn(clients.sqs, urls.queueUrl),
    ]);
    const out = await clients.sqs.send(
      new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn }),
    );
    taskHandle = out.TaskHandle;
  } catch (error) {
    const problem = awsProblem(`cannot redrive the dead-letter queue of ${lane}`, error);
    if (/already.*(running|active)|running task/i.test(problem.message)) {
      problem.message += ' (a redrive of this queue is already in progress: wait for it to finish)';
    }
    throw problem;
  }
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ destination: lane, stack: stack.stack, moving: depth, taskHandle }, null, 2));
  } else {
    ctx.io.out(
      `${ctx.style.green('✔')} moving ~${n(depth)} message(s) from the dead-letter queue of ${lane} back to its lane (stack ${stack.stack})`,
    );
    ctx.io.out(
      ctx.style.dim(
        `  the export function delivers them as they arrive; follow with backflow status --remote${stackFlag(ctx)}${taskHandle ? `\n  task ${taskHandle}` : ''}`,
      ),
    );
  }
  return 0;
}
