import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MB, round } from '../lib/measure.ts';
import type { Table } from '../lib/table.ts';

const run = promisify(execFile);

/** Packages worth naming when a bundle holds them: the vendor drivers and their heaviest dependencies. */
export const HEAVY_PACKAGES = [
  'snowflake-sdk',
  'mysql2',
  'pg',
  '@azure/storage-blob',
  'moment-timezone',
  '@aws-sdk/client-s3',
  '@duckdb/node-api',
] as const;

/** The deployment synthesized: a Snowflake source and a HubSpot lane. */
export const BUNDLES_CONFIG = 'bench/bundles/backflow.yml';

export interface BundleMeasure {
  /** `plan` or `export <lane>`. */
  readonly function: string;
  readonly bundleBytes: number;
  readonly sourceMapBytes: number;
  /** Which of HEAVY_PACKAGES the bundle holds (from its source map). */
  readonly heavyPackages: readonly string[];
  /** `import('./index.mjs')` in a fresh `node` process, each run its own process. */
  readonly importMs: { readonly median: number; readonly min: number; readonly max: number };
}

export interface BundleResults {
  readonly measuredAt: string;
  readonly importRuns: number;
  readonly synthMs: number;
  /** A bare `node` start with an empty import, for reference: what no bundle can go below. */
  readonly emptyImportMs: number;
  readonly functions: readonly BundleMeasure[];
  /** The bundles of `--bundles-baseline` (an earlier commit's synth), imported in turn with these. */
  readonly baseline?: { readonly dir: string; readonly functions: readonly BundleMeasure[] };
}

interface FunctionAsset {
  readonly name: string;
  readonly dir: string;
  /** The function's NODE_OPTIONS (`--enable-source-maps`: Node then reads the source map at import). */
  readonly nodeOptions: string | undefined;
}

/**
 * Synthesizes BUNDLES_CONFIG with `cdk synth` (the real bundling of each function) and measures
 * each function's `index.mjs`: its size, which heavy packages it holds, and how long a fresh Node
 * process takes to import it — the part of a Lambda cold start the bundle decides. With
 * `baseline` (the cloud assembly of an earlier commit's synth of the same config), its bundles
 * are imported in turn with these, so both see the same load on a shared machine.
 */
export async function bundlesScenario(options: {
  root: string;
  importRuns: number;
  baseline: string | undefined;
  log: (line: string) => void;
}): Promise<BundleResults> {
  const measuredAt = new Date().toISOString();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-bench-bundles-'));
  try {
    const out = path.join(dir, 'cdk.out');
    options.log(`bundles: cdk synth of ${BUNDLES_CONFIG}`);
    const started = performance.now();
    await run('npx', ['cdk', 'synth', '-c', `config=${BUNDLES_CONFIG}`, '--quiet', '-o', out], {
      cwd: options.root,
      env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' },
      maxBuffer: 64 * MB,
    });
    const synthMs = round(performance.now() - started);
    const current = functionAssets(out);
    const baseline = options.baseline ? functionAssets(options.baseline) : [];
    const all = [...current, ...baseline];
    const times = new Map<FunctionAsset, number[]>(all.map((f) => [f, []]));
    const empty: number[] = [];
    options.log(`bundles: importing ${all.length} bundles in turn, ${options.importRuns} times each`);
    for (let i = 0; i < options.importRuns; i++) {
      empty.push(await importTime(dir, "'node:path'", undefined));
      for (const f of all) times.get(f)!.push(await importTime(f.dir, "'./index.mjs'", f.nodeOptions));
    }
    const measure = (f: FunctionAsset): BundleMeasure => {
      const ms = times.get(f)!;
      return {
        function: f.name,
        bundleBytes: statSync(path.join(f.dir, 'index.mjs')).size,
        sourceMapBytes: statSync(path.join(f.dir, 'index.mjs.map')).size,
        heavyPackages: heavyPackagesOf(path.join(f.dir, 'index.mjs.map')),
        importMs: { median: median(ms), min: Math.min(...ms), max: Math.max(...ms) },
      };
    };
    return {
      measuredAt,
      importRuns: options.importRuns,
      synthMs,
      emptyImportMs: median(empty),
      functions: current.map(measure),
      ...(options.baseline && { baseline: { dir: options.baseline, functions: baseline.map(measure) } }),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The Lambda functions of a cloud assembly (`cdk synth -o <dir>`), named `plan` or `export <lane>`. */
function functionAssets(out: string): FunctionAsset[] {
  const template = JSON.parse(readFileSync(path.join(out, 'Backflow.template.json'), 'utf8')) as {
    Resources: Record<
      string,
      {
        Type: string;
        Properties?: { Description?: string; Environment?: { Variables?: Record<string, unknown> } };
        Metadata?: Record<string, string>;
      }
    >;
  };
  return Object.values(template.Resources)
    .filter((r) => r.Type === 'AWS::Lambda::Function')
    .map((r) => {
      const lane = /delivers lane (\S+)/.exec(r.Properties?.Description ?? '')?.[1];
      const nodeOptions = r.Properties?.Environment?.Variables?.NODE_OPTIONS;
      return {
        name: lane ? `export ${lane}` : 'plan',
        dir: path.join(out, r.Metadata?.['aws:asset:path'] ?? ''),
        nodeOptions: typeof nodeOptions === 'string' ? nodeOptions : undefined,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Milliseconds of `await import(specifier)` in a fresh `node` process started in `cwd`. */
async function importTime(cwd: string, specifier: string, nodeOptions: string | undefined): Promise<number> {
  const script = `const t = performance.now(); await import(${specifier}); console.log(performance.now() - t);`;
  // The bundle runs as on Lambda: no node_modules beside it, a region for the AWS SDK clients.
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd,
    env: {
      PATH: process.env.PATH,
      AWS_REGION: 'us-east-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...(nodeOptions !== undefined && { NODE_OPTIONS: nodeOptions }),
    },
  });
  return round(Number(stdout.trim().split('\n').at(-1)), 1);
}

function heavyPackagesOf(sourceMapFile: string): string[] {
  const { sources } = JSON.parse(readFileSync(sourceMapFile, 'utf8')) as { sources: string[] };
  return HEAVY_PACKAGES.filter((name) => sources.some((s) => s.includes(`node_modules/${name}/`)));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : round((sorted[middle - 1]! + sorted[middle]!) / 2, 1);
}

export function bundleTables(result: BundleResults): Table[] {
  const row = (label: string, f: BundleMeasure) => [
    label,
    round(f.bundleBytes / MB, 2),
    round(f.sourceMapBytes / MB, 2),
    f.importMs.median,
    f.importMs.min,
    f.importMs.max,
    f.heavyPackages.join(', ') || 'none',
  ];
  return [
    {
      title: `Function bundles — ${BUNDLES_CONFIG} (a Snowflake source, a HubSpot lane), as \`cdk synth\` builds them`,
      headers: [
        'function',
        'index.mjs MB',
        'source map MB',
        'import ms (median)',
        'min',
        'max',
        'heavy packages inside',
      ],
      rows: [
        ...result.functions.map((f) => row(f.function, f)),
        ...(result.baseline?.functions ?? []).map((f) => row(`baseline: ${f.function}`, f)),
      ],
      notes: [
        `Import: \`await import('./index.mjs')\` in a fresh \`node\` process in the asset directory (no node_modules there, as on Lambda) with the function's NODE_OPTIONS (\`--enable-source-maps\`: the source map is read too), ${result.importRuns} processes per bundle, the bundles in turn; a bare \`node\` importing \`node:path\` takes ${result.emptyImportMs} ms.`,
        ...(result.baseline
          ? [
              `Baseline: the bundles of ${result.baseline.dir} (--bundles-baseline), imported in turn with this synth's.`,
            ]
          : []),
        `Heavy packages: which of ${HEAVY_PACKAGES.join(', ')} the bundle's source map lists.`,
        `cdk synth (bundling every function, cdk-nag) took ${round(result.synthMs / 1000, 1)} s.`,
      ],
    },
  ];
}
