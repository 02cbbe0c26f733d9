import path from 'node:path';
import { parseArgs } from 'node:util';

export const SCENARIOS = ['plan', 'delivery', 'memory', 'cost', 'bundles', 'peer'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Sizes and switches of one bench run: flags first, then BENCH_* environment variables, then defaults. */
export interface BenchOptions {
  readonly only: ReadonlySet<Scenario>;
  /** Plan throughput: rows of the model. */
  readonly rows: number;
  /** Plan throughput: share of rows changed between runs. */
  readonly changed: number;
  /** Plan throughput against dynalite (smaller, labelled); 0 skips it. */
  readonly dynaliteRows: number;
  /** Delivery: changed records sent through the local runtime. */
  readonly records: number;
  /** Delivery: the receiver's enforced limit and the lane's pace, requests per second. */
  readonly rate: number;
  /** Delivery: records per request (lane batch_size and the receiver's maximum). */
  readonly batch: number;
  /** Delivery: exporters per lane (`exportConcurrency`), one run each. */
  readonly concurrency: readonly number[];
  /** Delivery: one more run with record state in memory, to show what the emulator costs. */
  readonly ablation: boolean;
  /** Plan and delivery: sample the CPU and break it down by component (and function). */
  readonly profile: boolean;
  /** Memory: rows of the model planned in a child process. */
  readonly memoryRows: number;
  /** Memory: page sizes to plan with (besides the model's default page_size). */
  readonly memoryPageSizes: readonly number[];
  /** The model's page_size in the plan and delivery scenarios; undefined: the engine's default. */
  readonly pageSize: number | undefined;
  /** Bundles: fresh `node` processes importing each function bundle. */
  readonly importRuns: number;
  /** Bundles: an earlier commit's `cdk synth -o` directory of the same config, measured in turn. */
  readonly bundlesBaseline: string | undefined;
  /** Where the JSON report goes. */
  readonly out: string;
  /** Rewrite the results block of docs/performance.md. */
  readonly updateDocs: boolean;
}

export const DEFAULTS = {
  rows: 200_000,
  changed: 0.01,
  dynaliteRows: 10_000,
  records: 50_000,
  rate: 20,
  batch: 100,
  concurrency: [1, 4],
  memoryRows: 1_000_000,
  memoryPageSizes: [5_000],
  importRuns: 7,
} as const;

const USAGE = `npm run bench -- [options]

  --only <list>          plan, delivery, memory, cost, bundles, peer (comma-separated; default: all)
  --rows <n>             plan throughput: model rows (default ${DEFAULTS.rows}; env BENCH_ROWS)
  --changed <share>      plan throughput: share changed for the "changed" runs (default ${DEFAULTS.changed})
  --dynalite-rows <n>    plan rows/s against dynalite, smaller (default ${DEFAULTS.dynaliteRows}; 0 skips; env BENCH_DYNALITE_ROWS)
  --records <n>          delivery: changed records (default ${DEFAULTS.records}; env BENCH_RECORDS)
  --rate <n>             delivery: enforced requests/s (default ${DEFAULTS.rate}; env BENCH_RATE)
  --batch <n>            delivery: records per request (default ${DEFAULTS.batch}; env BENCH_BATCH)
  --concurrency <list>   delivery: exporters per lane, one run each (default ${DEFAULTS.concurrency.join(',')}; env BENCH_CONCURRENCY)
  --no-ablation          delivery: skip the run with record state in memory
  --no-profile           plan and delivery: skip the CPU profiles (by component and function)
  --memory-rows <n>      memory: model rows planned in a child process (default ${DEFAULTS.memoryRows}; env BENCH_MEMORY_ROWS)
  --memory-page-sizes <list>  memory: page sizes measured besides the default (default ${DEFAULTS.memoryPageSizes.join(',')}; 0 for none)
  --page-size <n>        plan and delivery: the model's page_size (default: the engine's)
  --import-runs <n>      bundles: fresh node processes importing each bundle (default ${DEFAULTS.importRuns}; env BENCH_IMPORT_RUNS)
  --bundles-baseline <dir>  bundles: an earlier commit's cdk synth -o <dir> of bench/bundles/backflow.yml, measured in turn
  --out <file>           JSON report (default bench/results/latest.json)
  --update-docs          rewrite the results block of docs/performance.md
  --help`;

function positive(name: string, text: string | undefined, fallback: number, allowZero = false): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text.replaceAll('_', ''));
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero)) {
    throw new Error(`${name}: expected a ${allowZero ? 'non-negative' : 'positive'} number, got "${text}"`);
  }
  return value;
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv, root: string): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      only: { type: 'string' },
      rows: { type: 'string' },
      changed: { type: 'string' },
      'dynalite-rows': { type: 'string' },
      records: { type: 'string' },
      rate: { type: 'string' },
      batch: { type: 'string' },
      concurrency: { type: 'string' },
      'no-ablation': { type: 'boolean' },
      'no-profile': { type: 'boolean' },
      'memory-rows': { type: 'string' },
      'memory-page-sizes': { type: 'string' },
      'page-size': { type: 'string' },
      'import-runs': { type: 'string' },
      'bundles-baseline': { type: 'string' },
      out: { type: 'string' },
      'update-docs': { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const onlyText = values.only ?? env.BENCH_ONLY;
  const only = new Set<Scenario>();
  for (const name of (onlyText ?? SCENARIOS.join(',')).split(',').map((s) => s.trim())) {
    if (!(SCENARIOS as readonly string[]).includes(name)) {
      throw new Error(`--only: unknown scenario "${name}" (expected ${SCENARIOS.join(', ')})`);
    }
    only.add(name as Scenario);
  }
  const concurrencyText = values.concurrency ?? env.BENCH_CONCURRENCY;
  const concurrency = concurrencyText
    ? concurrencyText.split(',').map((c) => Math.floor(positive('--concurrency', c.trim(), 1)))
    : [...DEFAULTS.concurrency];
  const pageSizesText = values['memory-page-sizes'] ?? env.BENCH_MEMORY_PAGE_SIZES;
  const memoryPageSizes = pageSizesText
    ? pageSizesText
        .split(',')
        .map((c) => Math.floor(positive('--memory-page-sizes', c.trim(), 0, true)))
        .filter((n) => n > 0)
    : [...DEFAULTS.memoryPageSizes];
  const pageSizeText = values['page-size'] ?? env.BENCH_PAGE_SIZE;
  const changed = positive('--changed', values.changed ?? env.BENCH_CHANGED, DEFAULTS.changed);
  if (changed > 0.5) throw new Error('--changed: expected a share up to 0.5, e.g. 0.01 for 1%');
  return {
    only,
    rows: Math.floor(positive('--rows', values.rows ?? env.BENCH_ROWS, DEFAULTS.rows)),
    changed,
    dynaliteRows: Math.floor(
      positive('--dynalite-rows', values['dynalite-rows'] ?? env.BENCH_DYNALITE_ROWS, DEFAULTS.dynaliteRows, true),
    ),
    records: Math.floor(positive('--records', values.records ?? env.BENCH_RECORDS, DEFAULTS.records)),
    rate: positive('--rate', values.rate ?? env.BENCH_RATE, DEFAULTS.rate),
    batch: Math.floor(positive('--batch', values.batch ?? env.BENCH_BATCH, DEFAULTS.batch)),
    concurrency,
    ablation: values['no-ablation'] !== true && env.BENCH_ABLATION !== '0',
    profile: values['no-profile'] !== true && env.BENCH_PROFILE !== '0',
    memoryRows: Math.floor(
      positive('--memory-rows', values['memory-rows'] ?? env.BENCH_MEMORY_ROWS, DEFAULTS.memoryRows),
    ),
    memoryPageSizes,
    pageSize: pageSizeText === undefined ? undefined : Math.floor(positive('--page-size', pageSizeText, 1)),
    importRuns: Math.floor(
      positive('--import-runs', values['import-runs'] ?? env.BENCH_IMPORT_RUNS, DEFAULTS.importRuns),
    ),
    bundlesBaseline: values['bundles-baseline'] === undefined ? undefined : path.resolve(values['bundles-baseline']),
    out: path.resolve(root, values.out ?? env.BENCH_OUT ?? 'bench/results/latest.json'),
    updateDocs: values['update-docs'] === true,
  };
}
