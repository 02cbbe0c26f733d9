import path from 'node:path';
import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import { LocalRuntime } from '#cli/local-runtime';
import type { WriteBatch } from '#connectors/sdk/destination';
import type { RunCounters, StateStore } from '#core/ports';
import { LocalSecrets } from '#core/secrets';
import { MemoryStateStore } from '#test/fakes/memory-ports';
import { startWebhookReceiver } from '#test/fakes/webhook-receiver';
import { AwsMeter, billedBetween, opsBetween, type SqsBilling } from '../lib/aws-meter.ts';
import { instrument, type OpStats, OpTimer, stateItems } from '../lib/counting.ts';
import { round } from '../lib/measure.ts';
import { CpuProfile, type CpuShares } from '../lib/profile.ts';
import { createProject, SYNC_ID } from '../lib/project.ts';
import type { Table } from '../lib/table.ts';

const SIGNING_SECRET = 'bench-signing-secret';
const CHECK_OBJECT = '__backflow_check__';

export interface AwsCounts {
  /** Per command (`dynamodb.UpdateItem`, `sqs.ReceiveMessage(empty)`, `…!ConditionalCheckFailedException`). */
  readonly ops: Record<string, OpStats>;
  /** Requests SQS would bill, per command (64 KB chunks). */
  readonly billed: SqsBilling;
}

export interface DeliveryRun {
  readonly label: string;
  readonly concurrency: number;
  /**
   * `embedded`: the local runtime as it runs by default (state, lanes and pacing in process).
   * `emulators`: on dynalite and fauxqs behind the AWS SDK ("AWS-like": the AWS adapters, with the
   * calls AWS would bill counted).
   */
  readonly backend: 'embedded' | 'emulators';
  /** Ablation: record states in memory instead of dynalite (the pacer and run items stay on dynalite). */
  readonly stateInMemory: boolean;
  readonly status: string;
  readonly records: number;
  readonly delivered: number;
  /** Records the receiver holds at the end, compared with the model (every one must be there). */
  readonly receiverStored: number;
  readonly receiverMismatches: number;
  /** requests/s × batch size. */
  readonly limitRecordsPerSecond: number;
  readonly idealMs: number;
  readonly planMs: number;
  /** From the first destination request to the end of the last accepted one's slot (1/rate). */
  readonly exportWindowMs: number;
  readonly wallMs: number;
  readonly recordsPerSecond: number;
  /** recordsPerSecond ÷ the limit. */
  readonly ofLimit: number;
  readonly endToEndRecordsPerSecond: number;
  readonly requests: { total: number; ok: number; status429: number; other: number; pct429: number };
  readonly counters: RunCounters;
  /** Share of the export window the event loop was busy (emulators, receiver and runtime share it). */
  readonly eventLoopUtilization: number;
  /** CPU cores this process used on average during the export window. */
  readonly cpuCores: number;
  /** Export phase: state, destination and pacer calls as the handlers made them. */
  readonly exportOps: Record<string, OpStats>;
  readonly aws: { readonly plan: AwsCounts; readonly export: AwsCounts };
  /** Sampled CPU of this process during the export, by component (with --profile). */
  readonly cpuProfile?: CpuShares;
  /** Export invocations (one poll of up to 10 messages), receive → delete. */
  readonly invocations: { count: number; meanMs: number; p95Ms: number; totalMs: number };
  /** Only on the first run: a full re-diff with nothing changed. */
  readonly rerun?: {
    readonly destinationRequests: number;
    readonly extracted: number;
    readonly unchanged: number;
    readonly queued: number;
    readonly wallMs: number;
    readonly aws: AwsCounts;
  };
}

export interface DeliveryResults {
  readonly measuredAt: string;
  readonly records: number;
  readonly rate: number;
  readonly batch: number;
  readonly runs: readonly DeliveryRun[];
}

export async function deliveryScenario(options: {
  records: number;
  rate: number;
  batch: number;
  concurrency: readonly number[];
  ablation: boolean;
  pageSize: number | undefined;
  profile: boolean;
  log: (line: string) => void;
}): Promise<DeliveryResults> {
  const measuredAt = new Date().toISOString();
  const runs: DeliveryRun[] = [];
  for (const [i, concurrency] of options.concurrency.entries()) {
    runs.push(
      await deliveryRun({ ...options, concurrency, backend: 'embedded', stateInMemory: false, rerun: i === 0 }),
    );
  }
  for (const [i, concurrency] of options.concurrency.entries()) {
    runs.push(
      await deliveryRun({ ...options, concurrency, backend: 'emulators', stateInMemory: false, rerun: i === 0 }),
    );
  }
  if (options.ablation) {
    const concurrency = Math.max(...options.concurrency);
    runs.push(await deliveryRun({ ...options, concurrency, backend: 'emulators', stateInMemory: true, rerun: false }));
  }
  return { measuredAt, records: options.records, rate: options.rate, batch: options.batch, runs };
}

/** Record states (getRecords, putRecords, listRecords) in memory; everything else on the given store. */
function recordsInMemory(state: StateStore): StateStore {
  const memory = new MemoryStateStore();
  const own: Partial<Record<PropertyKey, unknown>> = {
    getRecords: memory.getRecords.bind(memory),
    putRecords: memory.putRecords.bind(memory),
    listRecords: memory.listRecords.bind(memory),
  };
  return new Proxy(state, {
    get(target, property) {
      if (property in own) return own[property];
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function deliveryRun(options: {
  records: number;
  rate: number;
  batch: number;
  concurrency: number;
  backend: 'embedded' | 'emulators';
  stateInMemory: boolean;
  rerun: boolean;
  pageSize: number | undefined;
  profile: boolean;
  log: (line: string) => void;
}): Promise<DeliveryRun> {
  const label = `${options.backend === 'embedded' ? 'embedded' : 'AWS-like'}, ${options.concurrency} exporter${options.concurrency > 1 ? 's' : ''}${options.stateInMemory ? ', record state in memory (ablation)' : ''}`;
  options.log(`delivery: ${options.records.toLocaleString('en-US')} records, ${label}`);
  const receiver = await startWebhookReceiver({
    signingSecret: SIGNING_SECRET,
    rateLimit: options.rate,
    maxBatch: options.batch,
  });
  const project = await createProject(options.records, {
    destination: `    type: webhook\n    url: ${receiver.url}\n    secret: hook`,
    lane: `requests_per_second: ${options.rate}, batch_size: ${options.batch}`,
    pageSize: options.pageSize,
  });
  const secrets = new LocalSecrets(path.join(project.dir, 'no-secrets.json'), {
    BACKFLOW_SECRET_HOOK: JSON.stringify({ signing_secret: SIGNING_SECRET }),
  });
  const timer = new OpTimer();
  const meter = new AwsMeter();
  let planEnd:
    | {
        at: number;
        aws: ReturnType<AwsMeter['snapshot']>;
        ops: Record<string, OpStats>;
        elu: EventLoopUtilization;
        cpu: NodeJS.CpuUsage;
      }
    | undefined;
  let runtime: LocalRuntime | undefined;
  let exported = false;
  const profiler = options.profile ? new CpuProfile() : undefined;
  try {
    runtime = await LocalRuntime.start({
      config: project.config,
      stateDir: false,
      backend: options.backend,
      secrets,
      exportConcurrency: options.concurrency,
      wrapState: (state) =>
        instrument(options.stateInMemory ? recordsInMemory(state) : state, 'state', timer, stateItems),
      wrapDestination: (_lane, connection) =>
        instrument(connection, 'destination', timer, (method, args) =>
          method === 'write' ? (args[0] as WriteBatch).records.length : 0,
        ),
      onProgress: (event) => {
        // The first run's plan only: a rerun plans again.
        if (event.type !== 'plan' || exported) return;
        planEnd = {
          at: performance.now(),
          aws: meter.snapshot(),
          ops: timer.snapshot(),
          elu: performance.eventLoopUtilization(),
          cpu: process.cpuUsage(),
        };
        profiler?.start();
      },
    });
    if (runtime.aws) {
      meter.attach(runtime.aws.dynamodb, 'dynamodb');
      meter.attach(runtime.aws.sqs, 'sqs');
    }
    const pacer = runtime.environment.pacer;
    const reserve = pacer.reserve.bind(pacer);
    pacer.reserve = async (lane, limit, count, horizonMs) => {
      const started = performance.now();
      const reservation = await reserve(lane, limit, count, horizonMs);
      timer.add(
        reservation.granted ? 'pacer.reserve(granted)' : 'pacer.reserve(refused)',
        performance.now() - started,
        reservation.granted ? reservation.slots.length : reservation.waitMs,
      );
      return reservation;
    };
    const slowDown = pacer.slowDown.bind(pacer);
    pacer.slowDown = async (lane, limit) => {
      const started = performance.now();
      await slowDown(lane, limit);
      timer.add('pacer.slowDown', performance.now() - started);
    };

    const requestsBefore = receiver.requests.length;
    const started = performance.now();
    const awsStart = meter.snapshot();
    const [summary] = await runtime.run([SYNC_ID]);
    const ended = performance.now();
    exported = true;
    const cpuProfile = await profiler?.stop();
    const awsEnd = meter.snapshot();
    const opsEnd = timer.snapshot();
    if (!summary?.run || !planEnd) throw new Error('the delivery run did not plan');
    const cpu = process.cpuUsage(planEnd.cpu);
    const elu = performance.eventLoopUtilization(planEnd.elu);

    const data = receiver.requests.slice(requestsBefore).filter((r) => !r.rawBody.includes(CHECK_OBJECT));
    const ok = data.filter((r) => r.status >= 200 && r.status < 300);
    const status429 = data.filter((r) => r.status === 429).length;
    const first = data[0]?.at ?? ended;
    const last = ok[ok.length - 1]?.at ?? ended;
    const slotMs = 1000 / options.rate;
    const exportWindowMs = last - first + slotMs;
    const counters = summary.run.counters;
    const delivered = counters.created + counters.updated;
    const limit = options.rate * options.batch;
    const recordsPerSecond = (delivered * 1000) / exportWindowMs;
    const planMs = planEnd.at - started;
    const invocations = [...meter.invocations].sort((a, b) => a - b);
    const totalInvocationMs = invocations.reduce((n, ms) => n + ms, 0);

    // Nothing lost: every valid model row is in the receiver, with the model's values.
    const stored = receiver.store.get('contacts') ?? new Map();
    let mismatches = 0;
    for (const row of await project.sql('select id, email, plan from customers where id is not null and id <> 42')) {
      const fields = stored.get(String(row.id));
      if (!fields || fields.email !== row.email || fields.plan !== row.plan) mismatches++;
    }

    let rerun: DeliveryRun['rerun'];
    if (options.rerun) {
      options.log('delivery: rerun with nothing changed (full re-diff)');
      const before = receiver.requests.length;
      const snapshot = meter.snapshot();
      const rerunStarted = performance.now();
      const [again] = await runtime.run([SYNC_ID], { full: true });
      const after = meter.snapshot();
      const c = again?.run?.counters;
      rerun = {
        destinationRequests: receiver.requests.length - before,
        extracted: c?.extracted ?? 0,
        unchanged: c?.unchanged ?? 0,
        queued: c?.queued ?? 0,
        wallMs: round(performance.now() - rerunStarted),
        aws: { ops: opsBetween(snapshot.ops, after.ops), billed: billedBetween(snapshot.billed, after.billed) },
      };
    }
    return {
      label,
      concurrency: options.concurrency,
      backend: options.backend,
      stateInMemory: options.stateInMemory,
      status: summary.status,
      records: counters.queued,
      delivered,
      receiverStored: stored.size,
      receiverMismatches: mismatches,
      limitRecordsPerSecond: limit,
      idealMs: round((counters.queued * 1000) / limit),
      planMs: round(planMs),
      exportWindowMs: round(exportWindowMs),
      wallMs: round(ended - started),
      recordsPerSecond: Math.round(recordsPerSecond),
      ofLimit: round(recordsPerSecond / limit, 3),
      endToEndRecordsPerSecond: Math.round((delivered * 1000) / (ended - started)),
      requests: {
        total: data.length,
        ok: ok.length,
        status429,
        other: data.length - ok.length - status429,
        pct429: data.length > 0 ? round((status429 * 100) / data.length, 2) : 0,
      },
      counters,
      eventLoopUtilization: round(elu.utilization, 3),
      cpuCores: round((cpu.user + cpu.system) / 1000 / (ended - planEnd.at), 2),
      exportOps: opsBetween(planEnd.ops, opsEnd),
      aws: {
        plan: {
          ops: opsBetween(awsStart.ops, planEnd.aws.ops),
          billed: billedBetween(awsStart.billed, planEnd.aws.billed),
        },
        export: {
          ops: opsBetween(planEnd.aws.ops, awsEnd.ops),
          billed: billedBetween(planEnd.aws.billed, awsEnd.billed),
        },
      },
      invocations: {
        count: invocations.length,
        meanMs: invocations.length > 0 ? round(totalInvocationMs / invocations.length) : 0,
        p95Ms: round(invocations[Math.floor(invocations.length * 0.95)] ?? 0),
        totalMs: round(totalInvocationMs),
      },
      ...(cpuProfile && { cpuProfile }),
      ...(rerun && { rerun }),
    };
  } finally {
    await profiler?.stop().catch(() => undefined);
    await runtime?.stop();
    await receiver.stop();
    project.cleanup();
  }
}

const mean = (ops: Record<string, OpStats>, ...names: string[]): number | undefined => {
  const found = names.map((n) => ops[n]).filter((s): s is OpStats => s !== undefined && s.calls > 0);
  if (found.length === 0) return undefined;
  return round(found.reduce((n, s) => n + s.ms, 0) / found.reduce((n, s) => n + s.calls, 0), 1);
};
const calls = (ops: Record<string, OpStats>, ...names: string[]): number =>
  names.reduce((n, name) => n + (ops[name]?.calls ?? 0), 0);

export function deliveryTables(result: DeliveryResults): Table[] {
  const limit = result.rate * result.batch;
  const ideal = round(result.records / limit, 1);
  const first = result.runs[0];
  const rerun = first?.rerun;
  const notes = [
    `Limit: ${result.rate} requests/s × ${result.batch} records = ${limit.toLocaleString('en-US')} records/s, enforced by the webhook receiver fake (token bucket, 429 + Retry-After); ${result.records.toLocaleString('en-US')} changed records need ${ideal} s at the limit.`,
    'Real plan and export handlers in the local runtime, all in this one Node process with the receiver: embedded = state, lanes and pacing on the embedded store (LMDB); AWS-like = dynalite + fauxqs behind the AWS SDK, paced by the DynamoDB schedule. Each exporter polls up to 10 messages (of one request each) and handles them in parallel.',
    "records/s is measured over the export window: from the first destination request to the end of the last accepted request's slot. Plan and export overlap, as on AWS: plan s is when the last plan invocation ended.",
  ];
  if (rerun) {
    notes.push(
      `Unchanged rerun (full re-diff of ${rerun.extracted.toLocaleString('en-US')} rows): ${rerun.unchanged.toLocaleString('en-US')} unchanged, ${rerun.queued} queued, ${rerun.destinationRequests} destination requests, ${round(rerun.wallMs / 1000, 1)} s.`,
    );
  }
  return [
    {
      title: `Delivery against the limit — ${result.records.toLocaleString('en-US')} changed records, ${result.rate} requests/s × ${result.batch} records`,
      headers: [
        'exporters',
        'records/s',
        'of limit',
        '429s',
        '429 % of requests',
        'requests',
        'paced back',
        'export s',
        'plan s',
        'wall s',
        'ideal s',
      ],
      rows: result.runs.map((r) => [
        r.label,
        r.recordsPerSecond,
        `${round(r.ofLimit * 100, 1)}%`,
        r.requests.status429,
        `${r.requests.pct429}%`,
        r.requests.total,
        r.counters.paced,
        round(r.exportWindowMs / 1000, 1),
        round(r.planMs / 1000, 1),
        round(r.wallMs / 1000, 1),
        round(r.idealMs / 1000, 1),
      ]),
      notes,
    },
    {
      title: 'Where the export time went — mean ms per call (one call per message unless said otherwise)',
      headers: ['step', ...result.runs.map((r) => r.label)],
      rows: [
        ['invocation: receive → delete (10 messages)', ...result.runs.map((r) => r.invocations.meanMs)],
        ['invocations', ...result.runs.map((r) => r.invocations.count)],
        ['state read (getRecords)', ...result.runs.map((r) => mean(r.exportOps, 'state.getRecords'))],
        [
          'pace: token granted (GetItem + PutItem)',
          ...result.runs.map((r) => mean(r.exportOps, 'pacer.take(granted)')),
        ],
        ['pace: calls told to wait', ...result.runs.map((r) => calls(r.exportOps, 'pacer.take(wait)'))],
        ['destination write (HTTP)', ...result.runs.map((r) => mean(r.exportOps, 'destination.write'))],
        [
          'state write (putRecords: 100 conditional updates)',
          ...result.runs.map((r) => mean(r.exportOps, 'state.putRecords')),
        ],
        [
          'run counters (addToRun + getRun)',
          ...result.runs.map((r) => mean(r.exportOps, 'state.addToRun', 'state.getRun')),
        ],
        ['DynamoDB UpdateItem (any)', ...result.runs.map((r) => mean(r.aws.export.ops, 'dynamodb.UpdateItem'))],
        ['event loop busy', ...result.runs.map((r) => `${round(r.eventLoopUtilization * 100)}%`)],
        ['CPU cores used', ...result.runs.map((r) => r.cpuCores)],
      ],
      notes: [
        'The emulators, the receiver and the runtime share one Node event loop: when it is busy near 100%, every step waits for it, and more exporters cannot help.',
        "The ablation keeps record states in memory (the pacer and run items stay on dynalite): the gap between it and the other runs is what the emulator's state reads and writes cost.",
      ],
    },
    ...profileTables(result),
  ];
}

function profileTables(result: DeliveryResults): Table[] {
  const profiled = result.runs.filter((r) => r.cpuProfile);
  if (profiled.length === 0) return [];
  const names = [...new Set(profiled.flatMap((r) => r.cpuProfile!.components.map((c) => c.name)))];
  const shareOf = (run: DeliveryRun, name: string) =>
    run.cpuProfile!.components.find((c) => c.name === name)?.share ?? 0;
  names.sort((a, b) => shareOf(profiled[0]!, b) - shareOf(profiled[0]!, a));
  return [
    {
      title: 'CPU of the bench process during the export, by component (sampled, self time, share of busy time)',
      headers: ['component', ...profiled.map((r) => r.label)],
      rows: [
        ...names.map((name) => [name, ...profiled.map((r) => `${round(shareOf(r, name) * 100, 1)}%`)]),
        ['busy CPU seconds sampled', ...profiled.map((r) => round(r.cpuProfile!.busyMs / 1000, 1))],
      ],
      notes: [
        'Everything the local run needs shares this process: what is not "Backflow" is the emulators, the fake and the SDK.',
      ],
    },
  ];
}
