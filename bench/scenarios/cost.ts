import type { OpStats } from '../lib/counting.ts';
import { round } from '../lib/measure.ts';
import type { Table } from '../lib/table.ts';
import { FUNCTION_GB, PLAN_INVOCATION_SECONDS, PRICES } from '../prices.ts';
import type { AwsCounts, DeliveryResults, DeliveryRun } from './delivery.ts';
import type { PlanResults } from './plan.ts';

/** One line of the cost table: units per million records and what they cost. */
export interface CostLine {
  readonly item: string;
  readonly unit: string;
  readonly changed: number;
  readonly changedUsd: number;
  readonly unchanged: number;
  readonly unchangedUsd: number;
}

export interface CostResults {
  readonly measuredAt: string;
  readonly prices: typeof PRICES;
  /** Which measurements the counts come from. */
  readonly basis: {
    readonly deliveryRun: string;
    readonly deliveryRecords: number;
    readonly deliveryMeasuredAt: string;
    readonly rerunRows: number;
    readonly planMeasuredAt: string;
    readonly planRowsPerSecond: { readonly firstRun: number; readonly fullRediff: number };
  };
  readonly lines: readonly CostLine[];
  readonly totalChangedUsd: number;
  readonly totalUnchangedUsd: number;
}

const MILLION = 1_000_000;

/** DynamoDB read and write units and SQS billed requests of a set of AWS calls (local-only calls left out). */
function units(counts: AwsCounts): { reads: number; writes: number; sqs: number } {
  let reads = 0;
  let writes = 0;
  for (const [name, stats] of Object.entries(counts.ops)) {
    const command = name.split('!')[0]!;
    // Strongly consistent reads under 4 KB: one unit per key, found or not; Query (run list) ≤ 1 unit.
    if (command === 'dynamodb.BatchGetItem') reads += stats.items;
    else if (command === 'dynamodb.GetItem' || command === 'dynamodb.Query') reads += stats.calls;
    // Items under 1 KB: one unit per write, a failed conditional write included.
    else if (['dynamodb.UpdateItem', 'dynamodb.PutItem', 'dynamodb.DeleteItem'].includes(command))
      writes += stats.calls;
  }
  let sqs = 0;
  for (const [name, billed] of Object.entries(counts.billed)) {
    // GetQueueAttributes and empty receives are the local runtime's polling: Lambda's pollers do
    // their own (long) polling, a fixed cost per lane (docs/deploy.md), not per record.
    if (name.includes('GetQueueAttributes') || name.includes('(empty)') || name.includes('CreateQueue')) continue;
    sqs += billed;
  }
  return { reads, writes, sqs };
}

function recordStateWrites(run: DeliveryRun): number {
  return (run.exportOps['state.putRecords'] as OpStats | undefined)?.items ?? 0;
}

/** Prices per million changed and unchanged records from the counts the plan and delivery scenarios measured. */
export function costScenario(plan: PlanResults, delivery: DeliveryResults): CostResults {
  // Only the AWS-like runs count AWS calls (older results have no backend: they ran on the emulators).
  const aws = delivery.runs.filter((r) => r.backend !== 'embedded');
  const candidates = aws.filter((r) => !r.stateInMemory);
  // The most exporters: the closest to a deployed lane (and the most pacing traffic).
  const run = [...candidates].sort((a, b) => b.concurrency - a.concurrency)[0];
  const rerun = aws.find((r) => r.rerun)?.rerun;
  if (!run || !rerun) throw new Error('cost needs a delivery run with record state on dynalite and its rerun');
  const firstRun = plan.phases.find((p) => !p.full && p.queued > 0 && p.unchanged === 0);
  const fullRediff = plan.phases.find((p) => p.full && p.queued === 0 && p.name.startsWith('rerun'));
  if (!firstRun?.rowsPerSecond || !fullRediff?.rowsPerSecond) throw new Error('cost needs the plan scenario');

  const perChanged = MILLION / run.records;
  const perUnchanged = MILLION / rerun.extracted;
  const planUnits = units(run.aws.plan);
  const exportUnits = units(run.aws.export);
  const rerunUnits = units(rerun.aws);
  const stateWrites = recordStateWrites(run);

  const planSecondsChanged = MILLION / firstRun.rowsPerSecond;
  const planSecondsUnchanged = MILLION / fullRediff.rowsPerSecond;
  const planInvocations = (seconds: number) => Math.ceil(seconds / PLAN_INVOCATION_SECONDS);
  const exportInvocations = run.invocations.count * perChanged;
  const exportGbSeconds = (run.invocations.totalMs / 1000) * FUNCTION_GB.export * perChanged;

  const p = PRICES;
  const line = (item: string, unit: string, changed: number, unchanged: number, pricePerUnit: number): CostLine => ({
    item,
    unit,
    changed: Math.round(changed),
    changedUsd: round(changed * pricePerUnit, 4),
    unchanged: Math.round(unchanged),
    unchangedUsd: round(unchanged * pricePerUnit, 4),
  });
  const rru = p.dynamodb.readRequestUnits / MILLION;
  const wru = p.dynamodb.writeRequestUnits / MILLION;
  const sqs = p.sqs.requests / MILLION;
  const lines: CostLine[] = [
    line(
      'DynamoDB reads, plan (state diff)',
      'read units',
      planUnits.reads * perChanged,
      rerunUnits.reads * perUnchanged,
      rru,
    ),
    line('DynamoDB reads, export (stale check, pacing, run)', 'read units', exportUnits.reads * perChanged, 0, rru),
    line('DynamoDB writes, record states', 'write units', stateWrites * perChanged, 0, wru),
    line(
      'DynamoDB writes, pacing + run counters + lock',
      'write units',
      (planUnits.writes + exportUnits.writes - stateWrites) * perChanged,
      rerunUnits.writes * perUnchanged,
      wru,
    ),
    line(
      'SQS, plan (SendMessageBatch)',
      'billed requests',
      planUnits.sqs * perChanged,
      rerunUnits.sqs * perUnchanged,
      sqs,
    ),
    line('SQS, export (receive, delete, give-backs)', 'billed requests', exportUnits.sqs * perChanged, 0, sqs),
    line(
      'Lambda invocations (plan + export)',
      'invocations',
      planInvocations(planSecondsChanged) + exportInvocations,
      planInvocations(planSecondsUnchanged),
      p.lambda.requests / MILLION,
    ),
    line(
      'Lambda compute (plan 1 GB, export 0.5 GB)',
      'GB-seconds',
      planSecondsChanged * FUNCTION_GB.plan + exportGbSeconds,
      planSecondsUnchanged * FUNCTION_GB.plan,
      p.lambda.arm64GbSecond,
    ),
  ];
  return {
    measuredAt: new Date().toISOString(),
    prices: PRICES,
    basis: {
      deliveryRun: run.label,
      deliveryRecords: run.records,
      deliveryMeasuredAt: delivery.measuredAt,
      rerunRows: rerun.extracted,
      planMeasuredAt: plan.measuredAt,
      planRowsPerSecond: { firstRun: firstRun.rowsPerSecond, fullRediff: fullRediff.rowsPerSecond },
    },
    lines,
    totalChangedUsd: round(
      lines.reduce((n, l) => n + l.changedUsd, 0),
      3,
    ),
    totalUnchangedUsd: round(
      lines.reduce((n, l) => n + l.unchangedUsd, 0),
      3,
    ),
  };
}

export function costTables(result: CostResults): Table[] {
  const b = result.basis;
  const usd = (n: number) => (n === 0 ? '$0' : `$${n.toFixed(n >= 0.1 ? 3 : 4)}`);
  return [
    {
      title: `Cost per 1,000,000 records — AWS us-east-1 list prices of ${result.prices.takenOn}`,
      headers: ['item', 'unit', 'per 1M changed', 'cost', 'per 1M unchanged', 'cost'],
      rows: [
        ...result.lines.map((l) => [l.item, l.unit, l.changed, usd(l.changedUsd), l.unchanged, usd(l.unchangedUsd)]),
        ['total', '', undefined, usd(result.totalChangedUsd), undefined, usd(result.totalUnchangedUsd)],
      ],
      notes: [
        `Changed: the AWS requests of the delivery run "${b.deliveryRun}" (${b.deliveryRecords.toLocaleString('en-US')} records, plan + export through the real handlers), scaled to 1M. Unchanged: its full re-diff rerun of ${b.rerunRows.toLocaleString('en-US')} rows; an incremental run reads only changed rows, so unchanged rows it never reads cost nothing.`,
        `Read units: one per key of a strongly consistent BatchGetItem/GetItem (items under 4 KB, found or not). Write units: one per UpdateItem/PutItem/DeleteItem (items under 1 KB), failed conditional writes included. SQS: every 64 KB of a request's payload is billed as one request; the local runtime's queue-depth polls and empty receives are left out (Lambda's pollers long-poll each lane: a fixed cost per lane, see docs/deploy.md).`,
        `Lambda: one export invocation per poll of up to 10 messages, GB-seconds from the measured receive → delete time on the local runtime (an upper bound: dynalite is slower than DynamoDB); plan time from the plan scenario's rows/s (${b.planRowsPerSecond.firstRun.toLocaleString('en-US')} rows/s first run, ${b.planRowsPerSecond.fullRediff.toLocaleString('en-US')} rows/s full re-diff, DuckDB source).`,
        `Prices: DynamoDB on demand $${result.prices.dynamodb.writeRequestUnits}/M write units, $${result.prices.dynamodb.readRequestUnits}/M read units; SQS standard $${result.prices.sqs.requests}/M requests; Lambda arm64 $${result.prices.lambda.requests}/M invocations, $${result.prices.lambda.arm64GbSecond}/GB-s. Taken ${result.prices.takenOn}, not re-checked live; free tiers left out.`,
      ],
    },
  ];
}
