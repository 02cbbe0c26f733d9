import { DynamoStateStore } from '#core/aws/dynamo-state-store';
import { runIdOf } from '#core/planner';
import type { RecordState, StateStore } from '#core/ports';
import { type CommandContext, flag, intOption, pick, positionals } from '../context.ts';
import { formatCount as n } from '../io.ts';
import { openLocalState } from '../local-state.ts';
import { renderTable } from '../table.ts';
import { shortTime } from './status.ts';

export interface Rejection {
  readonly key: string;
  readonly reason: string;
  readonly rejectedAt: string;
  readonly runId: string;
  readonly match?: unknown;
}

/** `backflow rejections <sync>`: records the destination refused, newest first. */
export async function rejections(ctx: CommandContext): Promise<number> {
  const [name] = positionals(ctx, 1, 1, 'the sync');
  const config = await ctx.config();
  const sync = pick('sync', name!, config.syncs);
  const limit = intOption(ctx, 'limit', 50);
  const remote = flag(ctx, 'remote');
  let state: StateStore;
  let stop = async () => {};
  if (remote) {
    const { stackResources } = await import('../remote.ts');
    const clients = await ctx.remote();
    const stack = await stackResources(clients, ctx.remoteOptions.stack);
    state = new DynamoStateStore(clients.dynamodb, stack.stateTable);
  } else {
    const local = await openLocalState(config);
    state = local.state;
    stop = local.stop;
  }
  let total = 0;
  let scanned = 0;
  let newest: RecordState[] = [];
  const newestFirst = (a: RecordState, b: RecordState) =>
    b.updatedAt.localeCompare(a.updatedAt) ||
    b.version - a.version ||
    a.key.localeCompare(b.key, 'en', { numeric: true });
  try {
    for await (const record of state.listRecords(sync.id)) {
      scanned++;
      if (scanned % 1000 === 0) ctx.progress.update(`reading the record states of ${sync.id}:`, scanned);
      if (record.status !== 'rejected') continue;
      total++;
      newest.push(record);
      // Keep only the newest `limit`: a sync may hold millions of records.
      if (newest.length >= limit * 2) newest = newest.sort(newestFirst).slice(0, limit);
    }
  } catch (error) {
    throw remote ? (await import('../remote.ts')).awsProblem('cannot read the state table', error) : error;
  } finally {
    ctx.progress.done();
    await stop();
  }
  const shown: Rejection[] = newest
    .sort(newestFirst)
    .slice(0, limit)
    .map((r) => ({
      key: r.key,
      reason: r.reason ?? '(no reason given)',
      rejectedAt: r.updatedAt,
      runId: runIdOf(r.version),
      ...(r.match !== undefined ? { match: r.match } : {}),
    }));
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ sync: sync.id, total, records: scanned, rejections: shown }, null, 2));
    return 0;
  }
  const { style } = ctx;
  if (total === 0) {
    ctx.io.out(
      `${style.green('✔')} ${sync.id}: no rejected records ${style.dim(`(${n(scanned)} record state(s) read)`)}`,
    );
    return 0;
  }
  ctx.io.out(
    `${style.bold(sync.id)}: ${n(total)} rejected record(s) of ${n(scanned)}, newest first${total > shown.length ? ` (showing ${shown.length}; --limit N for more)` : ''}`,
  );
  ctx.io.out(
    renderTable(
      ['key', 'rejected at', 'run', 'reason'],
      shown.map((r) => [r.key, shortTime(r.rejectedAt), r.runId, r.reason]),
      { indent: '  ', style },
    ),
  );
  ctx.io.out(
    style.dim(
      '  a refused record is sent again when its payload changes: fix the data in the model, or the mapping (a mapping change re-sends every record)',
    ),
  );
  return 0;
}
