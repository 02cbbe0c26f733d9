import { performance } from 'node:perf_hooks';
import { startLocalDynamo } from '#cli/local-aws';
import { openDuckDb } from '#connectors/duckdb/database';
import { manifests } from '#connectors/manifests';
import type { SourceConnection } from '#connectors/sdk/source';
import type { Row } from '#connectors/sdk/types';
import { duckdbSource } from '#connectors/sources/duckdb/index';
import { DynamoStateStore } from '#core/aws/dynamo-state-store';
import type { Config } from '#core/config/load';
import { batchSizeOf } from '#core/connect';
import { compileMapping, mapRow, recordHash } from '#core/mapping';
import { planSync } from '#core/planner';
import { noMetrics, type RecordStateWrite, type StateStore, systemClock } from '#core/ports';
import { MemoryStateStore } from '#test/fakes/memory-ports';
import { AwsMeter, opsBetween } from '../lib/aws-meter.ts';
import {
  CountingLaneQueue,
  countDuckDbModelStatements,
  deliveredState,
  instrument,
  type ModelStatements,
  OpTimer,
  stateItems,
} from '../lib/counting.ts';
import { MB, perSecond, RssSampler, round, Stopwatch } from '../lib/measure.ts';
import { CpuProfile, type CpuShares } from '../lib/profile.ts';
import { createProject, SYNC_ID, touchSql } from '../lib/project.ts';
import type { Table } from '../lib/table.ts';

export interface PlanPhase {
  readonly name: string;
  readonly full: boolean;
  readonly extracted: number;
  readonly invalid: number;
  readonly unchanged: number;
  readonly queued: number;
  readonly messages: number;
  readonly wallMs: number;
  /** CPU of the whole process (DuckDB's threads and GC included). */
  readonly cpuMs: number;
  readonly rowsPerSecond: number | undefined;
  /** Record keys read from state, per row read from the model. */
  readonly stateReadsPerRow: number | undefined;
  /** getRecords calls (each one BatchGetItem of up to 100 keys on DynamoDB). */
  readonly stateReadCalls: number;
  /** Every other state call of the run (lock, cursor, schema, run item…). */
  readonly otherStateCalls: number;
  readonly queuedBytes: number;
  readonly maxMessageBytes: number;
  /** SendMessageBatch calls the SQS lane would make, and the requests SQS would bill (64 KB chunks). */
  readonly sqsBatches: number;
  readonly sqsBilled: number;
  readonly rss: { startMb: number; peakMb: number; endMb: number };
  /**
   * Statements that ran the model during the phase, counted at the DuckDB driver: `reads` is the
   * figure of "one execution per read" (goal: 1 per invocation); the others are the watermark of a
   * full read of a cursor model and the repeated-key query of an incremental run.
   */
  readonly modelStatements?: ModelStatements;
  /** Sampled CPU of the run (with --profile), by component and top functions. */
  readonly cpuProfile?: CpuShares;
}

export interface MapHashResult {
  readonly rows: number;
  readonly passes: number;
  /** rows/s of the best and the median pass, and µs per row of the best. */
  readonly mapAndHash: { best: number; median: number; usPerRow: number };
  readonly mapOnly: { best: number; median: number; usPerRow: number };
  readonly hashOnly: { best: number; median: number; usPerRow: number };
}

export interface DynalitePlanResult {
  readonly rows: number;
  readonly phases: readonly PlanPhase[];
  /** The simulated export's conditional state writes (the exporter's putRecords) on dynalite. */
  readonly stateWrites: { records: number; wallMs: number; perSecond: number | undefined };
  readonly dynamodb: Record<string, { calls: number; items: number; ms: number }>;
}

export interface PlanResults {
  readonly measuredAt: string;
  readonly rows: number;
  readonly changedShare: number;
  readonly batchSize: number;
  readonly pageSize: number;
  readonly phases: readonly PlanPhase[];
  readonly mapHash: MapHashResult;
  readonly dynalite?: DynalitePlanResult;
}

interface PlanEnvironment {
  readonly config: Config;
  readonly source: SourceConnection;
  /** The store planSync sees (counted); record states land in it through `deliver`. */
  readonly state: StateStore;
  /** Plays the exporter: writes the states of the queued records. */
  deliver(states: readonly RecordStateWrite[]): Promise<void>;
}

/**
 * One planSync over the real DuckDB source with counting ports. The queue keeps no message: it
 * keeps the state the exporter would write for each queued record, and `deliver` writes it once
 * the plan is done ("exported").
 */
async function planPhase(name: string, full: boolean, env: PlanEnvironment, profile = false): Promise<PlanPhase> {
  const { config } = env;
  const sync = config.syncs[SYNC_ID]!;
  const model = config.models[sync.model]!;
  const delivered: RecordStateWrite[] = [];
  const at = new Date().toISOString();
  const queue = new CountingLaneQueue((message) => {
    for (const state of deliveredState(message, at)) delivered.push(state);
  });
  const timer = new OpTimer();
  const state = instrument(env.state, 'state', timer, stateItems);
  const statements = await countDuckDbModelStatements(model.sql);
  const profiler = profile ? new CpuProfile() : undefined;
  profiler?.start();
  const rss = new RssSampler();
  const watch = new Stopwatch();
  const outcome = await planSync(
    { sync, model, lane: sync.destination, batchSize: batchSizeOf(manifests, config, sync.destination), full },
    { state, queue, clock: systemClock, metrics: noMetrics, source: env.source },
  ).finally(() => statements.stop());
  const time = watch.stop();
  const memory = rss.stop();
  const cpuProfile = await profiler?.stop();
  if (outcome.status !== 'planned') throw new Error(`plan ${name} did not finish: ${outcome.status}`);
  await env.deliver(delivered);
  const counters = outcome.run.counters;
  const reads = timer.get('state.getRecords');
  const otherCalls = [...timer.ops].filter(([op]) => op !== 'state.getRecords').reduce((n, [, s]) => n + s.calls, 0);
  return {
    name,
    full,
    extracted: counters.extracted,
    invalid: counters.invalid,
    unchanged: counters.unchanged,
    queued: counters.queued,
    messages: counters.messages,
    wallMs: time.wallMs,
    cpuMs: time.cpuMs,
    rowsPerSecond: perSecond(counters.extracted, time.wallMs),
    stateReadsPerRow: counters.extracted > 0 ? round(reads.items / counters.extracted, 3) : undefined,
    stateReadCalls: reads.calls,
    otherStateCalls: otherCalls,
    queuedBytes: queue.bytes,
    maxMessageBytes: queue.maxMessageBytes,
    sqsBatches: queue.sqsBatches,
    sqsBilled: queue.sqsBilled,
    rss: memory,
    modelStatements: { ...statements.counts },
    ...(cpuProfile && { cpuProfile }),
  };
}

/** Runs the plan scenario: first run, reruns, 1% changed; map + hash alone; and (smaller) on dynalite. */
export async function planScenario(options: {
  rows: number;
  changed: number;
  dynaliteRows: number;
  pageSize: number | undefined;
  profile: boolean;
  log: (line: string) => void;
}): Promise<PlanResults> {
  const { log } = options;
  const measuredAt = new Date().toISOString();
  log(`plan: seeding a ${options.rows.toLocaleString('en-US')}-row DuckDB model`);
  const project = await createProject(options.rows, { pageSize: options.pageSize });
  const source = await duckdbSource.connect(duckdbSource.optionsSchema.parse({ path: project.warehouse }), {
    projectDir: project.dir,
  });
  const warehouse = await openDuckDb(project.warehouse, { projectDir: project.dir });
  try {
    const memory = new MemoryStateStore();
    const env: PlanEnvironment = {
      config: project.config,
      source,
      state: memory,
      deliver: async (states) => {
        await memory.putRecords(SYNC_ID, states);
      },
    };
    const pct = `${round(options.changed * 100, 2)}%`;
    const phases: PlanPhase[] = [];
    const run = async (name: string, full: boolean, profile = false) => {
      log(`plan: ${name}`);
      phases.push(await planPhase(name, full, env, profile));
    };
    await run('first run (all new)', false, options.profile);
    await run('rerun, nothing changed (full re-diff)', true, options.profile);
    await run('rerun, nothing changed (incremental)', false);
    await warehouse.run(touchSql(options.changed, 7));
    await run(`${pct} changed (full re-diff)`, true);
    await warehouse.run(touchSql(options.changed, 13));
    await run(`${pct} changed (incremental)`, false);

    log('plan: the source alone');
    phases.push(await sourceOnly(source, project.config));
    log('plan: map + hash alone');
    const sync = project.config.syncs[SYNC_ID]!;
    const mapHash = await mapHashScenario(source, project.config, Math.min(options.rows, 100_000));
    const dynalite =
      options.dynaliteRows > 0
        ? await dynalitePlan(options.dynaliteRows, options.changed, options.pageSize, log)
        : undefined;
    return {
      measuredAt,
      rows: options.rows,
      changedShare: options.changed,
      batchSize: batchSizeOf(manifests, project.config, sync.destination),
      pageSize: project.config.models[sync.model]!.page_size,
      phases,
      mapHash,
      ...(dynalite && { dynalite }),
    };
  } finally {
    warehouse.closeSync();
    await source.close();
    project.cleanup();
  }
}

/** Reads every page of the model and does nothing else: what the source alone costs. */
async function sourceOnly(source: SourceConnection, config: Config): Promise<PlanPhase> {
  const model = config.models[config.syncs[SYNC_ID]!.model]!;
  const statements = await countDuckDbModelStatements(model.sql);
  const rss = new RssSampler();
  const watch = new Stopwatch();
  let extracted = 0;
  try {
    for await (const page of source.read({
      sql: model.sql,
      primaryKey: model.primary_key,
      pageSize: model.page_size,
    })) {
      extracted += page.rows.length;
    }
  } finally {
    statements.stop();
  }
  const time = watch.stop();
  return {
    name: 'reference: the source alone (read every page, no planning)',
    full: true,
    extracted,
    invalid: 0,
    unchanged: 0,
    queued: 0,
    messages: 0,
    wallMs: time.wallMs,
    cpuMs: time.cpuMs,
    rowsPerSecond: perSecond(extracted, time.wallMs),
    stateReadsPerRow: undefined,
    stateReadCalls: 0,
    otherStateCalls: 0,
    queuedBytes: 0,
    maxMessageBytes: 0,
    sqsBatches: 0,
    sqsBilled: 0,
    rss: rss.stop(),
    modelStatements: { ...statements.counts },
  };
}

/** mapRow + recordHash over rows already in memory: the CPU cost per row, with the I/O left out. */
async function mapHashScenario(source: SourceConnection, config: Config, sample: number): Promise<MapHashResult> {
  const sync = config.syncs[SYNC_ID]!;
  const model = config.models[sync.model]!;
  const rows: Row[] = [];
  for await (const page of source.read({ sql: model.sql, primaryKey: model.primary_key, pageSize: model.page_size })) {
    for (const row of page.rows) rows.push(row);
    if (rows.length >= sample) break;
  }
  const mapping = compileMapping(sync);
  const pk = model.primary_key;
  const records = rows.flatMap((row) => {
    const mapped = mapRow(row, pk, mapping);
    return mapped.ok ? [mapped.record] : [];
  });
  let sink = 0;
  const bench = (work: () => void) => {
    const times: number[] = [];
    work(); // warm-up: JIT and inline caches
    for (let pass = 0; pass < 5; pass++) {
      const started = performance.now();
      work();
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const best = times[0]!;
    const median = times[Math.floor(times.length / 2)]!;
    return {
      best: Math.round((rows.length * 1000) / best),
      median: Math.round((rows.length * 1000) / median),
      usPerRow: round((best * 1000) / rows.length, 2),
    };
  };
  const mapAndHash = bench(() => {
    for (const row of rows) {
      const mapped = mapRow(row, pk, mapping);
      if (mapped.ok) sink += recordHash(mapped.record, mapping.version).length;
    }
  });
  const mapOnly = bench(() => {
    for (const row of rows) sink += mapRow(row, pk, mapping).ok ? 1 : 0;
  });
  const hashOnly = bench(() => {
    for (const record of records) sink += recordHash(record, mapping.version).length;
  });
  if (sink < 0) console.log(sink);
  return { rows: rows.length, passes: 5, mapAndHash, mapOnly, hashOnly };
}

/** The same plan against dynalite's DynamoDB (smaller: the emulator is the bottleneck), labelled as such. */
async function dynalitePlan(
  rows: number,
  changed: number,
  pageSize: number | undefined,
  log: (line: string) => void,
): Promise<DynalitePlanResult> {
  log(`plan: against dynalite, ${rows.toLocaleString('en-US')} rows`);
  const project = await createProject(rows, { pageSize });
  const dynamo = await startLocalDynamo(undefined);
  const meter = new AwsMeter();
  meter.attach(dynamo.dynamodb, 'dynamodb');
  const store = new DynamoStateStore(dynamo.dynamodb, dynamo.table);
  const source = await duckdbSource.connect(duckdbSource.optionsSchema.parse({ path: project.warehouse }), {
    projectDir: project.dir,
  });
  const warehouse = await openDuckDb(project.warehouse, { projectDir: project.dir });
  const writes = { records: 0, wallMs: 0 };
  try {
    const env: PlanEnvironment = {
      config: project.config,
      source,
      state: store,
      deliver: async (states) => {
        const started = performance.now();
        await store.putRecords(SYNC_ID, states);
        writes.records += states.length;
        writes.wallMs += performance.now() - started;
      },
    };
    const before = meter.snapshot().ops;
    const phases = [
      await planPhase('[dynalite] first run (all new)', false, env),
      await planPhase('[dynalite] rerun, nothing changed (full re-diff)', true, env),
    ];
    await warehouse.run(touchSql(changed, 7));
    phases.push(await planPhase(`[dynalite] ${round(changed * 100, 2)}% changed (full re-diff)`, true, env));
    const ops = opsBetween(before, meter.snapshot().ops);
    return {
      rows,
      phases,
      stateWrites: {
        records: writes.records,
        wallMs: round(writes.wallMs),
        perSecond: perSecond(writes.records, writes.wallMs),
      },
      dynamodb: Object.fromEntries(
        Object.entries(ops).map(([name, s]) => [name, { calls: s.calls, items: s.items, ms: round(s.ms) }]),
      ),
    };
  } finally {
    warehouse.closeSync();
    await source.close();
    await dynamo.stop();
    project.cleanup();
  }
}

export function planTables(result: PlanResults): Table[] {
  const phaseRow = (p: PlanPhase) => [
    p.name,
    p.extracted,
    p.rowsPerSecond,
    round(p.cpuMs / 1000, 2),
    p.stateReadsPerRow,
    p.queued,
    p.messages,
    round(p.queuedBytes / MB, 2),
    p.sqsBilled,
    p.rss.peakMb,
    p.modelStatements === undefined
      ? undefined
      : `${p.modelStatements.reads}${p.modelStatements.watermark + p.modelStatements.duplicates > 0 ? ` + ${p.modelStatements.watermark + p.modelStatements.duplicates}` : ''}`,
  ];
  const headers = [
    'run',
    'rows read',
    'rows/s',
    'CPU s',
    'state reads/row',
    'queued',
    'messages',
    'MB queued',
    'SQS billed',
    'peak RSS MB',
    'model runs',
  ];
  const tables: Table[] = [
    {
      title: `Plan throughput — ${result.rows.toLocaleString('en-US')}-row DuckDB model, batches of ${result.batchSize}, pages of ${result.pageSize.toLocaleString('en-US')}`,
      headers,
      rows: result.phases.map(phaseRow),
      notes: [
        'planSync over the real DuckDB source; state and queue are in-memory ports that count calls (MemoryStateStore, a queue that encodes and groups messages as the SQS lane does and keeps none).',
        'Between runs, "exported" is simulated by writing each queued record\'s state (hash, version, match) into the in-memory state: exactly what the exporter writes.',
        'Peak RSS is the whole bench process: it includes the in-memory state of every record (DynamoDB on AWS) and DuckDB. See the memory scenario for the plan alone.',
        'SQS billed = requests SQS would bill for the SendMessageBatch calls (every 64 KB of payload is one request).',
        'Model runs = statements that read the model\'s rows (goal: 1 per plan invocation, however many pages), counted at the DuckDB driver; "+ n": other statements over the model (the watermark a full read of a cursor model notes first, the repeated-key group-by of an incremental run). `limit 0` describes are left out.',
      ],
    },
    {
      title: `Map + hash per row, I/O left out (${result.mapHash.rows.toLocaleString('en-US')} rows in memory, best and median of ${result.mapHash.passes} passes, one thread)`,
      headers: ['work', 'rows/s (best)', 'rows/s (median)', 'µs/row (best)'],
      rows: [
        [
          'mapRow + recordHash',
          result.mapHash.mapAndHash.best,
          result.mapHash.mapAndHash.median,
          result.mapHash.mapAndHash.usPerRow,
        ],
        ['mapRow only', result.mapHash.mapOnly.best, result.mapHash.mapOnly.median, result.mapHash.mapOnly.usPerRow],
        [
          'recordHash only',
          result.mapHash.hashOnly.best,
          result.mapHash.hashOnly.median,
          result.mapHash.hashOnly.usPerRow,
        ],
      ],
    },
  ];
  const profiled = result.phases.filter((p) => p.cpuProfile);
  if (profiled.length > 0) {
    const names = [...new Set(profiled.flatMap((p) => p.cpuProfile!.functions.map((f) => f.name)))];
    const shareOf = (p: PlanPhase, name: string) => p.cpuProfile!.functions.find((f) => f.name === name)?.share;
    const components = [...new Set(profiled.flatMap((p) => p.cpuProfile!.components.map((c) => c.name)))];
    const componentShare = (p: PlanPhase, name: string) =>
      p.cpuProfile!.components.find((c) => c.name === name)?.share ?? 0;
    const pct = (share: number | undefined) => (share === undefined ? undefined : `${round(share * 100, 1)}%`);
    names.sort((a, b) => (shareOf(profiled[0]!, b) ?? 0) - (shareOf(profiled[0]!, a) ?? 0));
    components.sort((a, b) => componentShare(profiled[0]!, b) - componentShare(profiled[0]!, a));
    tables.push({
      title: "Where the plan's CPU goes — sampled self time, share of busy time",
      headers: ['component or function', ...profiled.map((p) => p.name)],
      rows: [
        ...components.map((name) => [name, ...profiled.map((p) => pct(componentShare(p, name)))]),
        ...names.map((name) => [`  ${name}`, ...profiled.map((p) => pct(shareOf(p, name)))]),
      ],
      notes: [
        'Components first, then the functions with the most self time (— : not among a run\'s top 12). DuckDB\'s own threads are native: its work shows as "native / unattributed" only when it runs on the main thread.',
      ],
    });
  }
  if (result.dynalite) {
    const d = result.dynalite;
    tables.push({
      title: `Plan against dynalite (local DynamoDB emulator) — ${d.rows.toLocaleString('en-US')} rows, smaller on purpose`,
      headers,
      rows: d.phases.map(phaseRow),
      notes: [
        `The simulated export's conditional state writes on dynalite: ${d.stateWrites.records.toLocaleString('en-US')} records at ${(d.stateWrites.perSecond ?? 0).toLocaleString('en-US')} writes/s.`,
        'Emulator figures: they show the engine is not what limits a local run, not what DynamoDB does.',
      ],
    });
  }
  return tables;
}
