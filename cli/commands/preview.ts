import { catalogue } from '#connectors/registry';
import type { ColumnInfo, SourceConnection } from '#connectors/sdk/source';
import { quoteIdent } from '#connectors/sdk/sql';
import type { JsonValue, Row, SyncMode } from '#connectors/sdk/types';
import { classifyRecord, destinationFieldTypes, duplicateReason, operationFor, repeatedKeys } from '#core/classify';
import type { Config, ResolvedSync } from '#core/config/load';
import type { ModelConfig } from '#core/config/schema';
import { batchSizeOf, connectSource } from '#core/connect';
import { BackflowError } from '#core/errors';
import { type LaneMessage, MessagePacker, type QueuedRecord } from '#core/lane-message';
import { compileMapping, type Mapping, mapRow, recordHash } from '#core/mapping';
import { runIdOf } from '#core/planner';
import { emptyCounters, type RecordState, type StateStore } from '#core/ports';
import { localSecrets } from '../connections.ts';
import { type CommandContext, flag, intOption, listOption, pick, positionals, UsageError } from '../context.ts';
import { formatCount as n, type Style, visibleLength } from '../io.ts';
import type { LocalRuntime } from '../local-runtime.ts';
import { openLocalState } from '../local-state.ts';

export type PreviewAction = 'create' | 'update' | 'unchanged' | 'invalid';

export interface PreviewRecord {
  readonly key: string;
  readonly action: PreviewAction;
  /** Why invalid, or what else to know (update mode, last rejection…). */
  readonly reason?: string | undefined;
  readonly row: Row;
  readonly payload?:
    | { readonly match: Record<string, JsonValue>; readonly fields: Record<string, JsonValue> }
    | undefined;
  readonly previous?: Pick<RecordState, 'status' | 'version' | 'updatedAt' | 'reason'> | undefined;
  /** The queued form (for --send). */
  readonly queued?: QueuedRecord | undefined;
}

export interface SendOutcome {
  readonly key: string;
  readonly status: 'ok' | 'rejected' | 'not delivered';
  readonly reason?: string | undefined;
}

const SEND_MAX_DELAY_SECONDS = 2;

/**
 * `backflow preview <sync>`: a few model rows, their mapped payload and what a run would do with
 * each, by comparing with the state; `--send` delivers exactly those records.
 */
export async function preview(ctx: CommandContext): Promise<number> {
  const [name] = positionals(ctx, 1, 1, 'the sync to preview');
  const config = await ctx.config();
  const sync = pick('sync', name!, config.syncs);
  const model = config.models[sync.model]!;
  const keys = [...new Set(listOption(ctx, 'key'))];
  const limit = intOption(ctx, 'limit', 5);
  const send = flag(ctx, 'send');

  const source = await connectSource(
    catalogue,
    config,
    model.source,
    localSecrets(config),
    `backflow:${sync.id}:preview`,
  );
  let runtime: LocalRuntime | undefined;
  let stopState: (() => Promise<void>) | undefined;
  try {
    const mapping = compileMapping(sync);
    const columns = await source.describe(model.sql);
    requireColumns(sync, model, mapping, columns);
    ctx.progress.update(
      `reading ${keys.length > 0 ? `${keys.length} key(s)` : `${limit} row(s)`} of model ${sync.model}…`,
    );
    const rows = await readSample(source, model, columns, keys, limit);
    let state: StateStore;
    if (send) {
      const { LocalRuntime } = await import('../local-runtime.ts');
      runtime = await LocalRuntime.start({ config, maxDelaySeconds: SEND_MAX_DELAY_SECONDS });
      state = runtime.state;
    } else {
      const local = await openLocalState(config);
      state = local.state;
      stopState = () => local.stop();
    }
    const records = await classify(sync, model, mapping, rows, state);
    const found = new Set(records.map((r) => r.key));
    const missing = keys.filter((k) => !found.has(k));
    let sent: { runId: string; outcomes: SendOutcome[]; counters: Record<string, number> } | undefined;
    if (runtime) {
      const sendable = records.filter((r) => (r.action === 'create' || r.action === 'update') && r.queued);
      if (sendable.length > 0) {
        ctx.progress.update(`sending ${sendable.length} record(s) to ${sync.destination}…`);
        sent = await sendRecords(runtime, config, sync, mapping, columns, sendable);
      }
    }
    ctx.progress.done();
    if (ctx.json) {
      ctx.io.out(
        JSON.stringify(
          {
            sync: sync.id,
            model: sync.model,
            destination: sync.destination,
            object: sync.object,
            mode: sync.mode,
            records: records.map(({ queued: _queued, ...r }) => r),
            missing,
            ...(send ? { sent: sent ?? { runId: null, outcomes: [], counters: {} } } : {}),
          },
          null,
          2,
        ),
      );
    } else {
      const jsonColumns = new Set(columns.filter((c) => c.type === 'json').map((c) => c.name));
      ctx.io.out(formatPreview(sync, mapping, records, missing, jsonColumns, ctx.style));
      if (send) ctx.io.out(formatSent(sync, sent, ctx.style));
    }
    return sent?.outcomes.some((o) => o.status !== 'ok') ? 1 : 0;
  } finally {
    ctx.progress.done();
    await source.close().catch(() => {});
    await runtime?.stop();
    await stopState?.();
  }
}

/** As the planner's schema check: a mapped column missing from the model stops everything. */
function requireColumns(
  sync: ResolvedSync,
  model: ModelConfig,
  mapping: Mapping,
  columns: readonly ColumnInfo[],
): void {
  const names = new Set(columns.map((c) => c.name));
  const missing = [...new Set([model.primary_key, ...mapping.columns])].filter((c) => !names.has(c));
  if (missing.length > 0) {
    throw new BackflowError(
      `model ${sync.model} has no column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')} (it has ${[...names].join(', ')}): fix the model SQL or the mappings of ${sync.id}`,
    );
  }
}

/** A primary key value as a SQL literal of the key column's type. */
function keyLiteral(key: string, column: ColumnInfo): string {
  if (column.type === 'integer' || column.type === 'number') {
    if (!/^-?\d+(\.\d+)?$/.test(key)) {
      throw new UsageError(`--key ${JSON.stringify(key)}: the primary key "${column.name}" is a number`);
    }
    return key;
  }
  return `'${key.replaceAll("'", "''")}'`;
}

/**
 * Rows of the model: the ones with the given primary keys (one query with a WHERE on the key,
 * so the warehouse reads only those), or the first `limit` in primary key order.
 */
export async function readSample(
  source: SourceConnection,
  model: ModelConfig,
  columns: readonly ColumnInfo[],
  keys: readonly string[],
  limit: number,
): Promise<Row[]> {
  const rows: Row[] = [];
  if (keys.length > 0) {
    const pk = columns.find((c) => c.name === model.primary_key)!;
    const sql = `select * from (${model.sql}) as backflow_preview where ${quoteIdent(pk.name)} in (${keys.map((k) => keyLiteral(k, pk)).join(', ')})`;
    for await (const page of source.read({ sql, primaryKey: model.primary_key, pageSize: 1000 }))
      rows.push(...page.rows);
    return rows;
  }
  for await (const page of source.read({ sql: model.sql, primaryKey: model.primary_key, pageSize: limit })) {
    rows.push(...page.rows.slice(0, limit - rows.length));
    if (rows.length >= limit) break;
  }
  return rows;
}

/** What a run would do with each record: the planner's own rule (core/classify.ts). */
async function classify(
  sync: ResolvedSync,
  model: ModelConfig,
  mapping: Mapping,
  rows: readonly Row[],
  state: StateStore,
): Promise<PreviewRecord[]> {
  const mapped = rows.map((row) => ({ row, result: mapRow(row, model.primary_key, mapping) }));
  const repeated = repeatedKeys(mapped.map((m) => (m.result.ok ? m.result.record.key : undefined)));
  const stored = await state.getRecords(
    sync.id,
    mapped.flatMap((m) => (m.result.ok ? [m.result.record.key] : [])),
  );
  const mode = sync.mode as SyncMode;
  return mapped.map(({ row, result }): PreviewRecord => {
    if (!result.ok) return { key: result.key, action: 'invalid', reason: result.reason, row };
    const { record } = result;
    const payload = { match: { [mapping.matchField]: record.match }, fields: { ...record.fields } };
    const copies = repeated.get(record.key);
    if (copies !== undefined) {
      return {
        key: record.key,
        action: 'invalid',
        reason: duplicateReason(model.primary_key, record.key, copies),
        row,
        payload,
      };
    }
    const hash = recordHash(record, mapping.version);
    const previous = stored.get(record.key);
    const prev = previous && {
      status: previous.status,
      version: previous.version,
      updatedAt: previous.updatedAt,
      reason: previous.reason,
    };
    const { action, queued } = classifyRecord(mode, { ...record, op: operationFor(mode), hash }, previous);
    const unchanged = action === 'unchanged';
    const notes: string[] = [];
    if (previous?.status === 'rejected') {
      notes.push(
        unchanged
          ? `rejected last time (${previous.reason ?? 'no reason'}); not sent again until its payload changes`
          : `rejected last time (${previous.reason ?? 'no reason'})`,
      );
    }
    if (previous?.dirty) notes.push('flagged for re-sending (an older write may have landed last)');
    if (queued.isNew && mode === 'update')
      notes.push('update mode never creates: refused if the destination has no match');
    if (unchanged && mode === 'insert' && previous?.hash !== hash) notes.push('insert mode never updates');
    return {
      key: record.key,
      action,
      reason: notes.length > 0 ? notes.join('; ') : undefined,
      row,
      payload,
      previous: prev,
      queued,
    };
  });
}

/**
 * Sends records through the real export path: a run of their own (a fresh sequence from the
 * state, so no newer state is overwritten and later runs see them as delivered), queued on the
 * local lane and delivered by the export handler.
 */
async function sendRecords(
  runtime: LocalRuntime,
  config: Config,
  sync: ResolvedSync,
  mapping: Mapping,
  columns: readonly ColumnInfo[],
  records: readonly PreviewRecord[],
): Promise<{ runId: string; outcomes: SendOutcome[]; counters: Record<string, number> }> {
  const { state } = runtime;
  const sequence = await state.nextSequence(sync.id);
  const runId = runIdOf(sequence);
  const header = {
    v: 1,
    syncId: sync.id,
    runId,
    version: sequence,
    object: sync.object,
    matchField: mapping.matchField,
    fieldTypes: destinationFieldTypes(mapping, (column) => columns.find((c) => c.name === column)?.type),
    attempt: 0,
  } as const;
  const packer = new MessagePacker(header, batchSizeOf(catalogue, config, sync.destination));
  const messages: LaneMessage[] = [];
  for (const record of records) {
    const full = packer.add(record.queued!);
    if (full) messages.push(full);
  }
  const last = packer.flush();
  if (last) messages.push(last);
  const now = new Date().toISOString();
  await state.putRun({
    syncId: sync.id,
    runId,
    sequence,
    status: 'exporting',
    full: false,
    startedAt: now,
    plannedAt: now,
    invalidSamples: [],
    counters: { ...emptyCounters(), extracted: records.length, queued: records.length, messages: messages.length },
  });
  const deadBefore = await runtime.deadLetterDepth(sync.destination);
  await runtime.enqueue(sync.destination, messages);
  await runtime.drain();
  const deadLettered = (await runtime.deadLetterDepth(sync.destination)) - deadBefore;
  // The exporter closed the run as it handled the last message (core/runs.ts).
  const run = await state.getRun(sync.id, runId);
  const after = await state.getRecords(
    sync.id,
    records.map((r) => r.key),
  );
  const outcomes = records.map((r): SendOutcome => {
    const s = after.get(r.key);
    if (s && s.version === sequence && s.status === 'ok') return { key: r.key, status: 'ok' };
    if (s && s.version === sequence && s.status === 'rejected')
      return { key: r.key, status: 'rejected', reason: s.reason };
    return {
      key: r.key,
      status: 'not delivered',
      reason:
        deadLettered > 0 || (run?.counters.deadLettered ?? 0) > 0
          ? `dead-lettered: see backflow status, then backflow redrive ${sync.destination}`
          : 'no outcome recorded',
    };
  });
  const c = run?.counters ?? emptyCounters();
  return {
    runId,
    outcomes,
    counters: {
      created: c.created,
      updated: c.updated,
      rejected: c.rejected,
      deadLettered: c.deadLettered + deadLettered,
    },
  };
}

const MAX_VALUE = 60;

/** A value as JSON; a JSON column's value is JSON text already, shown as it is. */
function show(value: JsonValue | undefined, json: boolean): string {
  const text = value === undefined ? '' : json && typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

function formatPreview(
  sync: ResolvedSync,
  mapping: Mapping,
  records: readonly PreviewRecord[],
  missing: readonly string[],
  jsonColumns: ReadonlySet<string>,
  style: Style,
): string {
  // A membership sync (a segment in mirror mode): a record created is a member entering.
  const membership = sync.segment !== undefined && sync.mode === 'mirror';
  const label = (action: PreviewAction) => (membership && action === 'create' ? 'enters' : action);
  const lines = [
    sync.segment !== undefined
      ? `${style.bold(`Preview of ${sync.id}`)}: ${records.length} member(s) of segment ${sync.segment} → ${sync.destination}.${sync.object} (${sync.mode})`
      : `${style.bold(`Preview of ${sync.id}`)}: ${records.length} record(s) of model ${sync.model} → ${sync.destination}.${sync.object} (${sync.mode})`,
  ];
  const paint: Record<PreviewAction, (s: string) => string> = {
    create: style.green,
    update: style.cyan,
    unchanged: style.dim,
    invalid: style.red,
  };
  for (const record of records) {
    lines.push(
      '',
      `${paint[record.action](`● ${record.key}  ${label(record.action)}`)}${record.reason ? `  ${style.dim(record.reason)}` : ''}`,
    );
    if (record.action === 'invalid' && !record.payload) {
      lines.push(
        `    ${style.dim('row')}  ${Object.entries(record.row)
          .map(([k, v]) => `${k}=${show(v, jsonColumns.has(k))}`)
          .join(' ')}`,
      );
      continue;
    }
    const used = new Set(mapping.columns);
    const table: [string, string, string][] = [
      [
        `${mapping.matchField} (match)`,
        show(record.row[mapping.matchColumn], jsonColumns.has(mapping.matchColumn)),
        mapping.matchColumn,
      ],
    ];
    for (const rule of mapping.rules) {
      const sent = record.payload && rule.field in record.payload.fields;
      const json = rule.column !== undefined && jsonColumns.has(rule.column);
      const value = sent ? show(record.payload!.fields[rule.field], json) : style.dim('(null: left untouched)');
      table.push([rule.field, value, rule.column ?? style.dim('constant')]);
    }
    const width = [0, 1].map((i) => Math.max(...table.map((r) => visibleLength(r[i]!))));
    lines.push(style.dim(`    ${'field'.padEnd(width[0]!)}  ${'value'.padEnd(width[1]!)}  from column`));
    for (const [field, value, from] of table) {
      lines.push(
        `    ${field.padEnd(width[0]!)}  ${value}${' '.repeat(width[1]! - visibleLength(value))}  ${style.dim(from)}`.trimEnd(),
      );
    }
    const other = Object.entries(record.row).filter(([k]) => !used.has(k));
    if (other.length > 0)
      lines.push(
        style.dim(`    not mapped: ${other.map(([k, v]) => `${k}=${show(v, jsonColumns.has(k))}`).join(' ')}`),
      );
    if (record.previous) {
      lines.push(
        style.dim(
          `    state: ${record.previous.status} by run ${runIdOf(record.previous.version)} at ${record.previous.updatedAt}`,
        ),
      );
    }
  }
  if (records.length === 0) lines.push('', style.dim('  the model returned no rows'));
  if (missing.length > 0) lines.push('', style.yellow(`not in the model: ${missing.join(', ')}`));
  const counts = (['create', 'update', 'unchanged', 'invalid'] as const)
    .map((a) => [a, records.filter((r) => r.action === a).length] as const)
    .filter(([, count]) => count > 0)
    .map(([a, count]) => `${label(a)} ${n(count)}`);
  if (counts.length > 0) lines.push('', `  ${counts.join(' · ')}`);
  if (membership) {
    lines.push(
      style.dim(
        `  who would leave, and the guardrail's verdict: backflow plan ${sync.id} (leaving is found by reading the whole segment)`,
      ),
    );
  }
  return lines.join('\n');
}

function formatSent(
  sync: ResolvedSync,
  sent: { runId: string; outcomes: SendOutcome[]; counters: Record<string, number> } | undefined,
  style: Style,
): string {
  if (!sent) return style.dim('\nnothing sent: no record would be created or updated');
  const lines = [
    '',
    style.bold(`Sent ${sent.outcomes.length} record(s) to ${sync.destination}.${sync.object} (run ${sent.runId})`),
  ];
  for (const o of sent.outcomes) {
    const mark = o.status === 'ok' ? style.green('✔') : style.red('✘');
    lines.push(`  ${mark} ${o.key}  ${o.status === 'ok' ? 'delivered' : o.status}${o.reason ? `: ${o.reason}` : ''}`);
  }
  const c = sent.counters;
  lines.push(
    style.dim(
      `  created ${n(c.created ?? 0)} · updated ${n(c.updated ?? 0)} · rejected ${n(c.rejected ?? 0)} · dead-lettered ${n(c.deadLettered ?? 0)}`,
    ),
  );
  return lines.join('\n');
}
