import type { Config } from '#core/config/load';
import { type CommandContext, flag, pick } from '../context.ts';
import { LocalRuntime, type ProgressEvent } from '../local-runtime.ts';
import { formatSummary } from '../output.ts';

/** `backflow run [sync...]`: every named sync (or every enabled one) on the local runtime. */
export async function run(ctx: CommandContext): Promise<number> {
  const config = await ctx.config();
  for (const name of ctx.positionals) pick('sync', name, config.syncs);
  const syncIds =
    ctx.positionals.length > 0
      ? [...ctx.positionals]
      : Object.values(config.syncs)
          .filter((s) => s.enabled)
          .map((s) => s.id);
  return runLocally(ctx, config, syncIds);
}

/** Runs syncs to the end on the local runtime and prints their summaries; 1 if one failed or stopped. */
export async function runLocally(ctx: CommandContext, config: Config, syncIds: readonly string[]): Promise<number> {
  const runtime = await LocalRuntime.start({ config, onProgress: ctx.json ? undefined : progress(ctx) });
  try {
    const summaries = await runtime.run(syncIds, { full: flag(ctx, 'full'), force: flag(ctx, 'force') });
    ctx.progress.done();
    if (ctx.json) ctx.io.out(JSON.stringify(summaries, null, 2));
    else for (const summary of summaries) ctx.io.out(formatSummary(summary, ctx.style));
    return summaries.every((s) => s.status === 'succeeded') ? 0 : 1;
  } finally {
    ctx.progress.done();
    await runtime.stop();
  }
}

/** Progress on stderr: one rewritten line on a terminal, a line per plan otherwise. */
function progress(ctx: CommandContext): (event: ProgressEvent) => void {
  let exported = 0;
  return (event) => {
    if (event.type === 'plan') {
      const c = event.result.counters;
      const line = `${event.result.syncId}: ${event.result.status}${c ? ` — ${c.extracted} read, ${c.queued + c.deletesQueued} queued` : ''}`;
      if (ctx.progress.active) ctx.progress.update(line);
      else ctx.io.err(ctx.errStyle.dim(line));
    } else {
      exported += event.messages - event.failed;
      ctx.progress.update(`exporting ${event.lane}: ${exported} message(s) delivered, ${event.pending} pending`);
    }
  };
}
