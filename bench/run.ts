/**
 * Backflow's benchmarks: `npm run bench` (or `tsx bench/run.ts`). Prints the tables and writes
 * bench/results/latest.json; `--only plan|delivery|memory|cost|bundles` and size flags, see `--help`.
 * Benchmarks never run inside `npm test`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchOptions, DEFAULTS, parseOptions } from './lib/args.ts';
import { renderMarkdown, renderText, type Table } from './lib/table.ts';
import { type BundleResults, bundlesScenario, bundleTables } from './scenarios/bundles.ts';
import { type CostResults, costScenario, costTables } from './scenarios/cost.ts';
import { type DeliveryResults, deliveryScenario, deliveryTables } from './scenarios/delivery.ts';
import { type MemoryResults, memoryScenario, memoryTables } from './scenarios/memory.ts';
import { type PeerResults, peerScenario, peerTables } from './scenarios/peer.ts';
import { type PlanResults, planScenario, planTables } from './scenarios/plan.ts';
import { type TargetCheck, targetChecks, targetTable } from './targets.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** bench/results/latest.json: each section says when and at which sizes it was measured. */
export interface BenchReport {
  readonly version: 1;
  readonly updatedAt: string;
  readonly machine: {
    readonly node: string;
    readonly platform: string;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly memoryGb: number;
    /** 1-minute load average when the run started: other work on the machine skews timings. */
    readonly loadAverage: number;
  };
  readonly options: Omit<BenchOptions, 'only' | 'out'> & { readonly only: string[] };
  plan?: PlanResults;
  delivery?: DeliveryResults;
  memory?: MemoryResults;
  cost?: CostResults;
  bundles?: BundleResults;
  peer?: PeerResults;
  targets?: TargetCheck[];
}

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function readPrevious(file: string): Partial<BenchReport> {
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Partial<BenchReport>;
  } catch {
    return {};
  }
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.POWERTOOLS_DEV ??= 'true';
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2), process.env, root);
  } catch (error) {
    console.error(`${(error as Error).message} (see npm run bench -- --help)`);
    process.exit(2);
  }
  const previous = readPrevious(options.out);
  const cpus = os.cpus();
  const report: BenchReport = {
    version: 1,
    updatedAt: new Date().toISOString(),
    machine: {
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? 'unknown',
      memoryGb: Math.round(os.totalmem() / 1024 ** 3),
      loadAverage: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
    },
    options: {
      rows: options.rows,
      changed: options.changed,
      dynaliteRows: options.dynaliteRows,
      records: options.records,
      rate: options.rate,
      batch: options.batch,
      concurrency: options.concurrency,
      ablation: options.ablation,
      profile: options.profile,
      memoryRows: options.memoryRows,
      memoryPageSizes: options.memoryPageSizes,
      pageSize: options.pageSize,
      importRuns: options.importRuns,
      bundlesBaseline: options.bundlesBaseline,
      updateDocs: options.updateDocs,
      only: [...options.only],
    },
    // Sections not measured this time are kept from the previous report (with their own dates).
    ...(previous.plan && { plan: previous.plan }),
    ...(previous.delivery && { delivery: previous.delivery }),
    ...(previous.memory && { memory: previous.memory }),
    ...(previous.cost && { cost: previous.cost }),
    ...(previous.bundles && { bundles: previous.bundles }),
    ...(previous.peer && { peer: previous.peer }),
  };
  const tables: Table[] = [];
  log(`machine: ${report.machine.cpus} × ${report.machine.cpuModel}, load ${report.machine.loadAverage}`);

  if (options.only.has('plan')) {
    report.plan = await planScenario({
      rows: options.rows,
      changed: options.changed,
      dynaliteRows: options.dynaliteRows,
      pageSize: options.pageSize,
      profile: options.profile,
      log,
    });
    tables.push(...planTables(report.plan));
  }
  if (options.only.has('memory')) {
    report.memory = await memoryScenario({ rows: options.memoryRows, pageSizes: options.memoryPageSizes, root, log });
    tables.push(...memoryTables(report.memory));
  }
  if (options.only.has('delivery')) {
    report.delivery = await deliveryScenario({
      records: options.records,
      rate: options.rate,
      batch: options.batch,
      concurrency: options.concurrency,
      ablation: options.ablation,
      pageSize: options.pageSize,
      profile: options.profile,
      log,
    });
    tables.push(...deliveryTables(report.delivery));
  }
  if (options.only.has('cost')) {
    // Cost is derived from measured counts: from this run, else from the last report, else measured now.
    if (!report.plan) {
      log('cost: no plan results yet, measuring them');
      report.plan = await planScenario({
        rows: options.rows,
        changed: options.changed,
        dynaliteRows: 0,
        pageSize: options.pageSize,
        profile: false,
        log,
      });
    }
    if (!report.delivery) {
      log('cost: no delivery results yet, measuring them');
      report.delivery = await deliveryScenario({
        records: options.records,
        rate: options.rate,
        batch: options.batch,
        concurrency: options.concurrency,
        ablation: false,
        pageSize: options.pageSize,
        profile: false,
        log,
      });
    }
    report.cost = costScenario(report.plan, report.delivery);
    tables.push(...costTables(report.cost));
  }
  if (options.only.has('bundles')) {
    report.bundles = await bundlesScenario({
      root,
      importRuns: options.importRuns,
      baseline: options.bundlesBaseline,
      log,
    });
    tables.push(...bundleTables(report.bundles));
  }
  if (options.only.has('peer')) {
    report.peer = await peerScenario({ root, rows: PEER_ROWS, log });
    tables.push(...peerTables(report.peer));
  }
  report.targets = targetChecks(report);
  tables.push(targetTable(report.targets));

  mkdirSync(path.dirname(options.out), { recursive: true });
  writeFileSync(options.out, `${JSON.stringify(report, null, 2)}\n`);
  // The markdown holds every section of the JSON, those kept from earlier runs included.
  const all = [
    ...(report.plan ? planTables(report.plan) : []),
    ...(report.memory ? memoryTables(report.memory) : []),
    ...(report.delivery ? deliveryTables(report.delivery) : []),
    ...(report.cost ? costTables(report.cost) : []),
    ...(report.bundles ? bundleTables(report.bundles) : []),
    ...(report.peer ? peerTables(report.peer) : []),
    targetTable(report.targets),
  ];
  writeFileSync(options.out.replace(/\.json$/, '.md'), `${all.map(renderMarkdown).join('\n\n')}\n`);
  if (options.updateDocs) updateDocs(report, tables);

  console.log('');
  console.log(tables.map(renderText).join('\n\n'));
  console.log('');
  console.log(
    `report: ${path.relative(process.cwd(), options.out)} (markdown: ${path.relative(process.cwd(), options.out.replace(/\.json$/, '.md'))})`,
  );
}

/** The peer scenario's size is Grouparoo's reference data: fixed, so the ratio means something. */
const PEER_ROWS = 100_000;

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';

/** Replaces the results block of docs/performance.md with the tables of this run. */
function updateDocs(report: BenchReport, tables: readonly Table[]): void {
  const file = path.join(root, 'docs', 'performance.md');
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/performance.md has no ${START} … ${END} block`);
  const m = report.machine;
  const o = report.options;
  const defaults =
    o.rows === DEFAULTS.rows && o.records === DEFAULTS.records && o.memoryRows === DEFAULTS.memoryRows
      ? 'the default sizes'
      : `**smaller than the default sizes** (${DEFAULTS.rows.toLocaleString('en-US')} / ${DEFAULTS.records.toLocaleString('en-US')} / ${DEFAULTS.memoryRows.toLocaleString('en-US')}): a development run, not the reference figures`;
  const header = [
    `Measured ${report.updatedAt.slice(0, 10)} on ${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, Node ${m.node}, load average ${m.loadAverage} at the start, with \`${commandLine()}\`.`,
    `Sizes: plan ${o.rows.toLocaleString('en-US')} rows, delivery ${o.records.toLocaleString('en-US')} records, memory ${o.memoryRows.toLocaleString('en-US')} rows — ${defaults}.`,
  ].join('\n');
  const block = `${START}\n${header}\n\n${tables.map(renderMarkdown).join('\n\n')}\n${END}`;
  writeFileSync(file, text.slice(0, start) + block + text.slice(end + END.length));
  log('docs/performance.md updated');
}

function commandLine(): string {
  const args = process.argv.slice(2).filter((a) => a !== '--update-docs');
  return `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
