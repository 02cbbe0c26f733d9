import { catalogue } from '#connectors/registry';
import type { SourceConnection } from '#connectors/sdk/source';
import type { Config, ResolvedSync } from '#core/config/load';
import { connectSource, requestsPerSecondOf } from '#core/connect';
import { localSecrets } from '../connections.ts';
import { type CommandContext, flag, pick, positionals } from '../context.ts';
import { type DryRunResult, dryRunPlan } from '../dry-run.ts';
import { formatCount as n, type Style } from '../io.ts';
import { openLocalState } from '../local-state.ts';
import { formatInvalidRows } from '../output.ts';
import type { Progress } from '../progress.ts';
import { renderPairs } from '../table.ts';

/** The destination calls a plan implies, and the time the destination's limits give them. */
export interface RequestEstimate {
  /** Lane messages: one destination call each. */
  readonly requests: number;
  readonly batchSize: number;
  readonly requestsPerSecond?: number | undefined;
  /** Where the pace comes from: the lane override, or the connector's documented limit. */
  readonly rateFrom?: 'lane.requests_per_second' | 'connector' | undefined;
  readonly rateDoc?: string | undefined;
  readonly concurrency?: number | undefined;
  /** requests / requests per second; absent when the destination documents no pace. */
  readonly seconds?: number | undefined;
  readonly dailyQuota?: number | undefined;
}

export function estimateRequests(
  config: Config,
  sync: ResolvedSync,
  requests: number,
  batchSize: number,
): RequestEstimate {
  const destination = config.destinations[sync.destination]!;
  const limits = catalogue.destinations.get(destination.type)?.limits;
  const lane = destination.lane.requests_per_second;
  const rate = requestsPerSecondOf(catalogue, config, sync.destination);
  return {
    requests,
    batchSize,
    requestsPerSecond: rate,
    rateFrom: lane !== undefined ? 'lane.requests_per_second' : rate !== undefined ? 'connector' : undefined,
    rateDoc: lane === undefined ? limits?.requestsPerSecond?.doc : undefined,
    concurrency: destination.lane.concurrency ?? limits?.concurrency?.value,
    seconds: rate ? requests / rate : undefined,
    dailyQuota: limits?.dailyQuota?.value,
  };
}

/** `backflow plan <sync> [--full]`: a dry run against the local state; writes nothing. */
export async function plan(ctx: CommandContext): Promise<number> {
  const [name] = positionals(ctx, 1, 1, 'the sync to plan');
  const config = await ctx.config();
  const sync = pick('sync', name!, config.syncs);
  const model = config.models[sync.model]!;
  const local = await openLocalState(config);
  let source: SourceConnection | undefined;
  try {
    // As `backflow run` does: a run after one that did not finish re-reads everything.
    const [last] = await local.state.listRuns(sync.id, 1);
    const healing = last !== undefined && ['planning', 'exporting', 'failed'].includes(last.status);
    source = await connectSource(catalogue, config, model.source, localSecrets(config), `backflow:${sync.id}:plan`);
    const result = await dryRunPlan(config, sync.id, {
      state: local.state,
      source: counting(source, ctx.progress, `reading model ${sync.model}:`),
      full: flag(ctx, 'full') || healing,
    });
    ctx.progress.done();
    const estimate = estimateRequests(config, sync, result.counters?.messages ?? 0, result.batchSize);
    if (ctx.json) {
      ctx.io.out(JSON.stringify({ dryRun: true, ...result, healing, estimate }, null, 2));
    } else {
      ctx.io.out(formatPlan(config, sync, result, estimate, healing, ctx.style));
    }
    return result.verdict.status === 'stop' ? 1 : 0;
  } finally {
    ctx.progress.done();
    await source?.close().catch(() => {});
    await local.stop();
  }
}

/** Counts rows as the planner reads them, for the progress line. */
function counting(source: SourceConnection, progress: Progress, label: string): SourceConnection {
  let rows = 0;
  const wrapped = Object.create(source) as SourceConnection;
  wrapped.read = async function* (request) {
    for await (const page of source.read(request)) {
      rows += page.rows.length;
      progress.update(label, rows);
      yield page;
    }
  };
  wrapped.readKeys = async function* (sql, primaryKey, pageSize) {
    let keys = 0;
    for await (const page of source.readKeys(sql, primaryKey, pageSize)) {
      keys += page.length;
      progress.update('reading the model keys (mirror deletes):', keys);
      yield page;
    }
  };
  return wrapped;
}

export function formatDuration(seconds: number): string {
  if (seconds < 1) return 'under a second';
  if (seconds < 90) return `${Math.ceil(seconds)}s`;
  if (seconds < 90 * 60) return `${Math.ceil(seconds / 60)} min`;
  const hours = Math.floor(seconds / 3600);
  return `${hours} h ${Math.ceil((seconds - hours * 3600) / 60)} min`;
}

function formatPlan(
  config: Config,
  sync: ResolvedSync,
  result: DryRunResult,
  estimate: RequestEstimate,
  healing: boolean,
  style: Style,
): string {
  const destination = config.destinations[sync.destination]!;
  const lines = [
    `${style.bold(`Plan for ${sync.id}`)} ${style.dim('(dry run: nothing was written or sent)')}`,
    `  ${sync.model} → ${sync.destination}.${sync.object} · ${sync.mode} · ${result.full ? `full read${healing ? ' (the last run did not finish)' : ''}` : 'incremental read'} · next run ${result.runId}`,
    '',
  ];
  const c = result.counters;
  const t = result.tally;
  if (result.verdict.status === 'stop') {
    lines.push(`  ${style.yellow('■ a run would stop before sending anything:')}`, `    ${result.verdict.reason}`);
    lines.push(
      c ? style.dim('    the counts below are what `--force` would do') : style.dim('    even --force cannot plan it'),
      '',
    );
  }
  if (c && t) {
    const sample = (keys: string[], total: number) =>
      keys.length > 0 ? style.dim(`  e.g. ${keys.join(', ')}${total > keys.length ? ', …' : ''}`) : '';
    // A membership sync (a segment in mirror mode): creates are members entering, deletes leaving.
    const membership = sync.segment !== undefined && sync.mode === 'mirror';
    const counts: [string, number, string][] = [
      [membership ? 'entering' : 'create', t.creates, sample(t.samples.create, t.creates)],
      ['update', t.updates, sample(t.samples.update, t.updates)],
      [membership ? 'leaving' : 'delete', t.deletes, sample(t.samples.delete, t.deletes)],
      ['unchanged', c.unchanged, ''],
      ['invalid', c.invalid, ''],
      ['rows read', c.extracted, ''],
    ];
    const width = Math.max(...counts.map(([, v]) => n(v).length));
    lines.push(
      renderPairs(
        counts.map(([k, v, extra]) => [k, `${n(v).padStart(width)}${extra}`]),
        { indent: '  ', style },
      ),
      '',
    );
  }
  const verdict: [string, string][] = [];
  if (result.verdict.status === 'pass') {
    if (sync.mode === 'mirror') {
      const synced = result.synced ?? 0;
      const ratio = synced === 0 ? 0 : (t?.deletes ?? 0) / synced;
      verdict.push([
        'guardrail',
        `${style.green('✔ pass')}: ${sync.segment ? 'removes' : 'deletes'} ${n(t?.deletes ?? 0)} of ${n(synced)} synced (${(ratio * 100).toFixed(1)}%), limit ${(sync.guardrails.max_delete_ratio * 100).toFixed(0)}%`,
      ]);
    } else {
      verdict.push(['guardrail', `${style.green('✔ pass')} ${style.dim(`(${sync.mode} never deletes)`)}`]);
    }
    verdict.push(['schema', `${style.green('✔ pass')} ${style.dim('(mapped columns present, types unchanged)')}`]);
  } else if (result.verdict.kind === 'guardrail' && t && result.synced !== undefined) {
    const ratio = result.synced === 0 ? 0 : t.deletes / result.synced;
    verdict.push([
      'guardrail',
      `${style.yellow('■ stop')}: ${sync.segment ? 'removes' : 'deletes'} ${n(t.deletes)} of ${n(result.synced)} synced (${(ratio * 100).toFixed(1)}%), above the limit of ${(sync.guardrails.max_delete_ratio * 100).toFixed(0)}% ${style.dim(`(backflow run ${sync.id} --force overrides)`)}`,
    ]);
  } else {
    const kind = result.verdict.kind === 'schema_drift' ? 'schema' : 'guardrail';
    verdict.push([kind, `${style.yellow('■ stop')} ${style.dim('(see above)')}`]);
  }
  if (c) {
    verdict.push([
      'requests',
      `${n(estimate.requests)} destination call(s) of up to ${n(estimate.batchSize)} record(s)${estimate.concurrency ? `, ${estimate.concurrency} at once at most` : ''}`,
    ]);
    if (estimate.seconds !== undefined) {
      const from =
        estimate.rateFrom === 'lane.requests_per_second'
          ? `destinations.${sync.destination}.lane.requests_per_second`
          : `${destination.type}'s documented limit${estimate.rateDoc ? `, ${estimate.rateDoc}` : ''}`;
      verdict.push([
        'time',
        `≈ ${formatDuration(estimate.seconds)} at ${estimate.requestsPerSecond} request(s)/s ${style.dim(`(${from})`)}`,
      ]);
    } else {
      verdict.push([
        'time',
        `${destination.type} documents no request rate: as fast as it writes ${style.dim(`(set destinations.${sync.destination}.lane.requests_per_second to pace it)`)}`,
      ]);
    }
    if (estimate.dailyQuota !== undefined && estimate.requests > estimate.dailyQuota) {
      verdict.push([
        'quota',
        style.yellow(
          `${n(estimate.requests)} calls exceed the daily quota of ${n(estimate.dailyQuota)}: the run spans days`,
        ),
      ]);
    }
  }
  lines.push(renderPairs(verdict, { indent: '  ', style }));
  const invalidRows = formatInvalidRows(c?.invalid ?? 0, result.invalidSamples, style);
  if (invalidRows.length > 0) lines.push('', ...invalidRows);
  if (c && t && t.creates + t.updates + t.deletes === 0 && result.verdict.status === 'pass') {
    lines.push('', style.dim('  nothing to send: a run now would not call the destination'));
  } else if (c) {
    lines.push('', style.dim(`  inspect records first: backflow preview ${sync.id} --key <key>`));
  }
  return lines.join('\n');
}
