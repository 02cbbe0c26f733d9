import { suggest } from '#core/config/suggest';
import { type ConnectionCheck, checkDestination, checkSource, formatChecks, localSecrets } from '../connections.ts';
import { type CommandContext, UsageError } from '../context.ts';

/** `backflow check [name...]`: one connection test per source and destination. */
export async function check(ctx: CommandContext): Promise<number> {
  const config = await ctx.config();
  const secrets = localSecrets(config);
  const targets: { kind: 'source' | 'destination'; name: string }[] = [];
  const names = ctx.positionals.length > 0 ? ctx.positionals : [];
  if (names.length === 0) {
    for (const name of Object.keys(config.sources)) targets.push({ kind: 'source', name });
    for (const name of Object.keys(config.destinations)) targets.push({ kind: 'destination', name });
  }
  for (const name of names) {
    const before = targets.length;
    if (name in config.sources) targets.push({ kind: 'source', name });
    if (name in config.destinations) targets.push({ kind: 'destination', name });
    if (targets.length === before) {
      const all = [...Object.keys(config.sources), ...Object.keys(config.destinations)];
      const hint = suggest(name, all);
      throw new UsageError(
        `no source or destination named "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; there are ${all.join(', ')}`,
      );
    }
  }
  ctx.progress.update(`checking ${targets.length} connection(s)…`);
  const checks: ConnectionCheck[] = await Promise.all(
    targets.map(async ({ kind, name }) => {
      const { check: result, connection } =
        kind === 'source' ? await checkSource(config, name, secrets) : await checkDestination(config, name, secrets);
      await connection?.close().catch(() => {});
      return result;
    }),
  );
  ctx.progress.done();
  const failed = checks.filter((c) => !c.ok).length;
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ ok: failed === 0, checks }, null, 2));
  } else {
    for (const line of formatChecks(checks, ctx.style)) ctx.io.out(line);
    if (failed > 0) ctx.io.out(ctx.style.red(`${failed} of ${checks.length} connection(s) failed`));
  }
  return failed === 0 ? 0 : 1;
}
