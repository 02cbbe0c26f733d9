import { type CommandContext, flag, pick, positionals, stackFlag } from '../context.ts';

/**
 * `backflow trigger <sync>`: locally, a run of that sync (as `backflow run <sync>`); with
 * `--remote`, an asynchronous invocation of the deployed plan function.
 */
export async function trigger(ctx: CommandContext): Promise<number> {
  const [syncId] = positionals(ctx, 1, 1, 'the sync to trigger');
  const config = await ctx.config();
  const sync = pick('sync', syncId!, config.syncs);
  if (!flag(ctx, 'remote')) {
    const { runLocally } = await import('./run.ts');
    return runLocally(ctx, config, [sync.id]);
  }
  const [{ InvokeCommand }, { awsProblem, RemoteError, stackResources }] = await Promise.all([
    import('@aws-sdk/client-lambda'),
    import('../remote.ts'),
  ]);
  const clients = await ctx.remote();
  const stack = await stackResources(clients, ctx.remoteOptions.stack);
  const payload = {
    syncId: sync.id,
    ...(flag(ctx, 'full') ? { full: true } : {}),
    ...(flag(ctx, 'force') ? { force: true } : {}),
  };
  let statusCode: number | undefined;
  try {
    const out = await clients.lambda.send(
      new InvokeCommand({
        FunctionName: stack.planFunction,
        InvocationType: 'Event',
        Payload: new TextEncoder().encode(JSON.stringify(payload)),
      }),
    );
    statusCode = out.StatusCode;
  } catch (error) {
    throw awsProblem(`cannot invoke ${stack.planFunction}`, error);
  }
  if (statusCode !== undefined && statusCode !== 202) {
    throw new RemoteError(`Lambda answered ${statusCode} to the asynchronous invocation of ${stack.planFunction}`);
  }
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ triggered: true, stack: stack.stack, function: stack.planFunction, payload }, null, 2));
  } else {
    const how = [payload.full ? 'full read' : '', payload.force ? 'forced' : ''].filter(Boolean).join(', ');
    ctx.io.out(
      `${ctx.style.green('✔')} triggered ${sync.id}${how ? ` (${how})` : ''} on ${stack.planFunction} (stack ${stack.stack})`,
    );
    ctx.io.out(ctx.style.dim(`  follow it: backflow status ${sync.id} --remote${stackFlag(ctx)}`));
  }
  return 0;
}
