import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/**
 * The bench's deployment: a Snowflake warehouse and a HubSpot lane, as a team starting with the
 * quickstart would deploy it. Secrets are named, never written: synth reads none.
 */
const CONFIG = `version: 1
sources:
  warehouse:
    type: snowflake
    account: myorg-myaccount
    username: BACKFLOW
    warehouse: REPORTING
    database: ANALYTICS
    secret: warehouse-snowflake
models:
  customers:
    source: warehouse
    sql: select * from customers
    primary_key: id
    cursor: updated_at
destinations:
  crm:
    type: hubspot
    secret: crm-hubspot
syncs:
  customers-to-crm:
    model: customers
    destination: crm
    object: contacts
    match: { email: email }
    mappings:
      firstname: first_name
      lastname: last_name
    schedule: rate(15 minutes)
`;

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
}

/**
 * Synthesizes the Snowflake → HubSpot deployment with `cdk synth` (the real bundling of each
 * function) and measures each function's `index.mjs`: its size, which heavy packages it holds,
 * and how long a fresh Node process takes to import it — the part of a Lambda cold start the
 * bundle decides.
 */
export async function bundlesScenario(options: {
  root: string;
  importRuns: number;
  log: (line: string) => void;
}): Promise<BundleResults> {
  const measuredAt = new Date().toISOString();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-bench-bundles-'));
  try {
    const configFile = path.join(dir, 'backflow.yml');
    writeFileSync(configFile, CONFIG);
    const out = path.join(dir, 'cdk.out');
    options.log('bundles: cdk synth of a Snowflake source and a HubSpot lane');
    const started = performance.now();
    await run('npx', ['cdk', 'synth', '-c', `config=${configFile}`, '--quiet', '-o', out], {
      cwd: options.root,
      env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' },
      maxBuffer: 64 * MB,
    });
    const synthMs = round(performance.now() - started);
    const template = JSON.parse(readFileSync(path.join(out, 'Backflow.template.json'), 'utf8')) as {
      Resources: Record<
        string,
        { Type: string; Properties?: { Description?: string }; Metadata?: Record<string, string> }
      >;
    };
    const emptyImportMs = median(await importTimes(dir, "'node:path'", options.importRuns));
    const functions: BundleMeasure[] = [];
    for (const resource of Object.values(template.Resources)) {
      if (resource.Type !== 'AWS::Lambda::Function') continue;
      const asset = path.join(out, resource.Metadata?.['aws:asset:path'] ?? '');
      const description = resource.Properties?.Description ?? '';
      const lane = /delivers lane (\S+)/.exec(description)?.[1];
      const name = lane ? `export ${lane}` : 'plan';
      options.log(`bundles: importing the ${name} bundle ${options.importRuns} times`);
      const times = await importTimes(asset, "'./index.mjs'", options.importRuns);
      functions.push({
        function: name,
        bundleBytes: statSync(path.join(asset, 'index.mjs')).size,
        sourceMapBytes: statSync(path.join(asset, 'index.mjs.map')).size,
        heavyPackages: heavyPackagesOf(path.join(asset, 'index.mjs.map')),
        importMs: { median: median(times), min: Math.min(...times), max: Math.max(...times) },
      });
    }
    functions.sort((a, b) => a.function.localeCompare(b.function));
    return { measuredAt, importRuns: options.importRuns, synthMs, emptyImportMs, functions };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Milliseconds of `await import(specifier)`, each in a fresh `node` process started in `cwd`. */
async function importTimes(cwd: string, specifier: string, runs: number): Promise<number[]> {
  const script = `const t = performance.now(); await import(${specifier}); console.log(performance.now() - t);`;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    // The bundle runs as on Lambda: no node_modules beside it, a region for the AWS SDK clients.
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd,
      env: {
        PATH: process.env.PATH,
        AWS_REGION: 'us-east-1',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    });
    times.push(round(Number(stdout.trim().split('\n').at(-1)), 1));
  }
  return times;
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
  return [
    {
      title: 'Function bundles — a Snowflake source and a HubSpot lane, as `cdk synth` builds them',
      headers: [
        'function',
        'index.mjs MB',
        'source map MB',
        'import ms (median)',
        'min',
        'max',
        'heavy packages inside',
      ],
      rows: result.functions.map((f) => [
        f.function,
        round(f.bundleBytes / MB, 2),
        round(f.sourceMapBytes / MB, 2),
        f.importMs.median,
        f.importMs.min,
        f.importMs.max,
        f.heavyPackages.join(', ') || 'none',
      ]),
      notes: [
        `Import: \`await import('./index.mjs')\` in a fresh \`node\` process in the asset directory (no node_modules there, as on Lambda), ${result.importRuns} processes per bundle; a bare \`node\` importing \`node:path\` takes ${result.emptyImportMs} ms.`,
        `Heavy packages: which of ${HEAVY_PACKAGES.join(', ')} the bundle's source map lists.`,
        `cdk synth (bundling both functions, cdk-nag) took ${round(result.synthMs / 1000, 1)} s.`,
      ],
    },
  ];
}
