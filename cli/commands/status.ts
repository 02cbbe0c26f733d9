import { DynamoStateStore } from '#core/aws/dynamo-state-store';
import type { Config, ResolvedSync } from '#core/config/load';
import type { RunRecord, StateStore } from '#core/ports';
import { type CommandContext, flag, intOption, pick, positionals, stackFlag } from '../context.ts';
import type { Style } from '../io.ts';
import { openLocalState } from '../local-state.ts';
import { renderTable } from '../table.ts';

export interface LaneStatus {
  readonly destination: string;
  /** Waiting to be delivered. */
  readonly queued: number;
  readonly inFlight: number;
  readonly delayed: number;
  /** Messages in the dead-letter queue: `backflow redrive <destination>`. */
  readonly deadLetters: number;
}

export interface SyncStatus {
  readonly syncId: string;
  readonly model: string;
  readonly destination: string;
  readonly object: string;
  readonly mode: string;
  readonly enabled: boolean;
  readonly schedule?: string | undefined;
  /** Newest first. */
  readonly runs: readonly RunRecord[];
  readonly lastError?: { readonly runId: string; readonly error: string } | undefined;
}

/** `backflow status [sync]`: recent runs, lanes and dead letters, locally or on the stack. */
export async function status(ctx: CommandContext): Promise<number> {
  const [name] = positionals(ctx, 0, 1, '');
  const config = await ctx.config();
  const syncs = name ? [pick('sync', name, config.syncs)] : Object.values(config.syncs);
  const limit = intOption(ctx, 'limit', 5);
  const remote = flag(ctx, 'remote');
  const destinations = [...new Set(syncs.map((s) => s.destination))];

  let state: StateStore;
  let stop = async () => {};
  let lanes: LaneStatus[];
  let where: string;
  if (remote) {
    const { awsProblem, laneOf, queueCounts, stackResources } = await import('../remote.ts');
    const clients = await ctx.remote();
    const stack = await stackResources(clients, ctx.remoteOptions.stack);
    state = new DynamoStateStore(clients.dynamodb, stack.stateTable);
    where = `stack ${stack.stack}`;
    lanes = await Promise.all(
      destinations.map(async (destination): Promise<LaneStatus> => {
        const urls = laneOf(stack, destination);
        try {
          const [lane, dlq] = await Promise.all([
            queueCounts(clients.sqs, urls.queueUrl),
            queueCounts(clients.sqs, urls.deadLetterUrl),
          ]);
          return {
            destination,
            queued: lane.visible,
            inFlight: lane.inFlight,
            delayed: lane.delayed,
            deadLetters: dlq.visible + dlq.inFlight + dlq.delayed,
          };
        } catch (error) {
          throw awsProblem(`cannot read the queues of lane ${destination}`, error);
        }
      }),
    );
  } else {
    const local = await openLocalState(config);
    state = local.state;
    stop = local.stop;
    where = 'local';
    // Between runs a local lane is empty unless a run was cut short; dead letters wait for a redrive.
    lanes = destinations.map((destination) => ({ destination, ...local.laneDepth(destination) }));
  }
  let statuses: SyncStatus[];
  try {
    statuses = await Promise.all(syncs.map((sync) => syncStatus(state, sync, limit)));
  } catch (error) {
    throw remote ? (await import('../remote.ts')).awsProblem('cannot read the state table', error) : error;
  } finally {
    await stop();
  }
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ where, syncs: statuses, lanes }, null, 2));
  } else {
    ctx.io.out(formatStatus(config, statuses, lanes, where, ctx));
  }
  return 0;
}

async function syncStatus(state: StateStore, sync: ResolvedSync, limit: number): Promise<SyncStatus> {
  const runs = await state.listRuns(sync.id, limit);
  // The error of a run that has since succeeded (healed by a redrive) is history, not news.
  const failed = runs.find((r) => r.error !== undefined && r.error !== '' && r.status !== 'succeeded');
  return {
    syncId: sync.id,
    model: sync.model,
    destination: sync.destination,
    object: sync.object,
    mode: sync.mode,
    enabled: sync.enabled,
    schedule: sync.schedule,
    runs,
    lastError: failed ? { runId: failed.runId, error: failed.error! } : undefined,
  };
}

/** `2026-05-01T10:00:01.123Z` → `2026-05-01 10:00:01Z`. */
export function shortTime(iso: string | undefined): string {
  if (!iso) return '';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function paintStatus(status: string, style: Style): string {
  if (status === 'succeeded') return style.green(status);
  if (status === 'failed' || status === 'interrupted') return style.red(status);
  if (status === 'stopped') return style.yellow(status);
  return style.cyan(status);
}

function formatStatus(
  _config: Config,
  statuses: readonly SyncStatus[],
  lanes: readonly LaneStatus[],
  where: string,
  ctx: CommandContext,
): string {
  const { style } = ctx;
  const remote = where !== 'local';
  const lines: string[] = [];
  for (const s of statuses) {
    if (lines.length > 0) lines.push('');
    lines.push(
      `${style.bold(s.syncId)}  ${s.model} → ${s.destination}.${s.object} · ${s.mode}${s.schedule ? ` · ${s.schedule}` : ''}${s.enabled ? '' : style.yellow(' · disabled')} ${style.dim(`(${where})`)}`,
    );
    if (s.runs.length === 0) {
      lines.push(
        style.dim(
          `  no runs yet: backflow ${remote ? `trigger ${s.syncId} --remote${stackFlag(ctx)}` : `run ${s.syncId}`}`,
        ),
      );
      continue;
    }
    const numeric = ['extracted', 'invalid', 'queued', 'created', 'updated', 'deleted', 'rejected', 'dead-lettered'];
    lines.push(
      renderTable(
        ['run', 'status', 'started', 'read', ...numeric.map((header) => ({ header, align: 'right' as const }))],
        s.runs.map((r) => [
          r.runId,
          paintStatus(r.status, style),
          shortTime(r.startedAt),
          r.full ? 'full' : 'incremental',
          r.counters.extracted,
          r.counters.invalid,
          r.counters.queued + r.counters.deletesQueued,
          r.counters.created,
          r.counters.updated,
          r.counters.deleted,
          r.counters.rejected,
          r.counters.deadLettered,
        ]),
        { indent: '  ', style },
      ),
    );
    if (s.lastError) lines.push(style.red(`  last error (run ${s.lastError.runId}): ${s.lastError.error}`));
    const rejected = s.runs[0]?.counters.rejected ?? 0;
    if (rejected > 0)
      lines.push(style.dim(`  refused records: backflow rejections ${s.syncId}${remote ? ' --remote' : ''}`));
  }
  lines.push(
    '',
    style.bold('Lanes') +
      style.dim(
        remote
          ? ''
          : ' (local lanes are empty between runs unless one was cut short; dead letters stay until redriven)',
      ),
    renderTable(
      [
        'destination',
        { header: 'queued', align: 'right' },
        { header: 'in flight', align: 'right' },
        { header: 'delayed', align: 'right' },
        { header: 'dead letters', align: 'right' },
        'to do',
      ],
      lanes.map((l) => [
        l.destination,
        l.queued,
        l.inFlight,
        l.delayed,
        l.deadLetters > 0 ? style.red(String(l.deadLetters)) : 0,
        l.deadLetters > 0 ? `backflow redrive ${l.destination}${remote ? ` --remote${stackFlag(ctx)}` : ''}` : '',
      ]),
      { indent: '  ', style },
    ),
  );
  return lines.join('\n');
}
