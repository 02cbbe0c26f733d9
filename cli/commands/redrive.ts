import { StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';
import type { Config } from '#core/config/load';
import type { RunCounters } from '#core/ports';
import { type CommandContext, flag, pick, positionals, stackFlag } from '../context.ts';
import { formatCount as n } from '../io.ts';
import { openLocalState } from '../local-state.ts';

/** `backflow redrive <destination>`: dead letters back onto the lane. */
export async function redrive(ctx: CommandContext): Promise<number> {
  const [name] = positionals(ctx, 1, 1, 'the destination whose dead letters to redrive');
  const config = await ctx.config();
  const destination = pick('destination', name!, config.destinations);
  return flag(ctx, 'remote') ? redriveRemote(ctx, destination.name) : redriveLocal(ctx, config, destination.name);
}

/**
 * Locally: the lane's dead letters (in the embedded store) go back to the lane, the local runtime delivers them, and the
 * counters the export added to their runs say what happened. Their runs reopen while they are
 * delivered and close again: `succeeded` once nothing of them is left in the dead-letter queue.
 */
async function redriveLocal(ctx: CommandContext, config: Config, lane: string): Promise<number> {
  const local = await openLocalState(config);
  const saved = local.deadLetters(lane);
  await local.stop();
  if (saved.length === 0) {
    if (ctx.json) ctx.io.out(JSON.stringify({ destination: lane, moved: 0, deadLettered: 0, delta: {} }, null, 2));
    else ctx.io.out(`${ctx.style.green('✔')} nothing to redrive: the dead-letter queue of ${lane} is empty`);
    return 0;
  }
  let delivered = 0;
  const { LocalRuntime } = await import('../local-runtime.ts');
  const runtime = await LocalRuntime.start({
    config,
    onProgress: (event) => {
      if (event.type !== 'export' || event.lane !== lane) return;
      delivered += event.messages - event.failed;
      ctx.progress.update(`redriving ${lane}`, Math.min(delivered, saved.length), saved.length);
    },
  });
  try {
    const summary = await runtime.redrive(lane);
    ctx.progress.done();
    const d = (name: keyof RunCounters) => summary.delta[name] ?? 0;
    if (ctx.json) {
      ctx.io.out(
        JSON.stringify(
          {
            destination: lane,
            moved: summary.moved,
            records: summary.records,
            runs: await Promise.all(
              summary.runs.map(async (r) => ({
                ...r,
                status: (await runtime.state.getRun(r.syncId, r.runId))?.status,
              })),
            ),
            deadLettered: summary.deadLettered,
            delta: summary.delta,
          },
          null,
          2,
        ),
      );
    } else {
      const { style } = ctx;
      ctx.io.out(
        `${summary.deadLettered === 0 ? style.green('✔') : style.red('✘')} redrove ${n(summary.moved)} message(s) (${n(summary.records)} record(s)) from the dead-letter queue of ${lane}`,
      );
      ctx.io.out(
        `  created ${n(d('created'))} · updated ${n(d('updated'))} · deleted ${n(d('deleted'))} · rejected ${n(d('rejected'))} · skipped as already delivered or superseded by a newer run ${n(d('stale'))}`,
      );
      for (const r of summary.runs) {
        const run = await runtime.state.getRun(r.syncId, r.runId);
        ctx.io.out(
          style.dim(`  run ${r.runId} of ${r.syncId}: ${n(r.records)} record(s), now ${run?.status ?? 'unknown'}`),
        );
      }
      if (summary.deadLettered > 0) {
        ctx.io.out(
          style.red(`  ${n(summary.deadLettered)} message(s) failed again and are back in the dead-letter queue`),
        );
      }
      if (d('rejected') > 0) ctx.io.out(style.dim(`  refused records: backflow rejections <sync>`));
    }
    return summary.deadLettered === 0 ? 0 : 1;
  } finally {
    ctx.progress.done();
    await runtime.stop();
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
