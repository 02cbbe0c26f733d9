import path from 'node:path';
import { type CommandContext, flag, positionals, stringOption, UsageError } from '../context.ts';

/**
 * `backflow ui [--port N] [--remote] [--allow-actions]`: the project's web app on 127.0.0.1,
 * behind a one-time token in the printed address. Runs until interrupted.
 */
export async function ui(ctx: CommandContext): Promise<number> {
  positionals(ctx, 0, 0, '');
  const rawPort = stringOption(ctx, 'port') ?? '0';
  const port = Number(rawPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port expects a port number (0 or none: a free one), got "${rawPort}"`, ctx.usage);
  }
  const remote = flag(ctx, 'remote');
  const allowActions = flag(ctx, 'allow-actions');
  if (allowActions && !remote)
    throw new UsageError('--allow-actions goes with --remote (local actions are always allowed)');
  const config = await ctx.config();
  const { frontEnd } = await import('../ui/bundle.ts');
  const { startUiServer } = await import('../ui/server.ts');
  ctx.progress.update('building the front end…');
  const built = await frontEnd(path.join(config.projectDir, '.backflow', 'ui'));
  ctx.progress.done();
  const remoteArgs = [
    '--stack',
    ctx.remoteOptions.stack,
    ...(ctx.remoteOptions.region ? ['--region', ctx.remoteOptions.region] : []),
    ...(ctx.remoteOptions.profile ? ['--profile', ctx.remoteOptions.profile] : []),
  ];
  const server = await startUiServer({
    configFile: ctx.configFile,
    cwd: ctx.io.cwd,
    port,
    remote,
    allowActions,
    remoteArgs,
    assets: async () => built,
    // Read afresh on every request: the file is the source of truth, and the editor changes it.
    loadConfig: async () => {
      const [{ loadConfig }, { catalogue }] = await Promise.all([
        import('#core/config/load'),
        import('#connectors/registry'),
      ]);
      return loadConfig(ctx.configFile, catalogue);
    },
  });
  if (ctx.json) ctx.io.out(JSON.stringify({ url: server.url, port: server.port }));
  else {
    ctx.io.out(`${ctx.style.green('✔')} Backflow UI: ${ctx.style.bold(server.url)}`);
    ctx.io.out(
      ctx.style.dim(
        `  127.0.0.1 only; the token in the address is the key (new on every start)${remote ? `; reading stack ${ctx.remoteOptions.stack}${allowActions ? ', actions allowed' : ', read-only'}` : ''}. Ctrl-C stops it.`,
      ),
    );
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
