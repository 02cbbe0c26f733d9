import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { build, type Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifests } from '#connectors/manifests';
import { loadConfig } from '#core/config/load';
import { BackflowStack } from '../../infra/BackflowStack.ts';
import { CDK_CONTEXT, ROOT, writeConfig } from './stacks.ts';

const run = promisify(execFile);
const BUNDLING_TIMEOUT_MS = 240_000;

/** A PostgreSQL warehouse, a HubSpot lane and a webhook lane. */
const CONFIG = `
version: 1
sources:
  warehouse:
    type: postgres
    connection: { host: db.example.com, database: analytics, user: backflow }
    secret: warehouse-db
  unused:
    type: snowflake
    account: myorg-myaccount
    username: BACKFLOW
models:
  customers:
    source: warehouse
    sql: select * from customers
    primary_key: id
destinations:
  crm:
    type: hubspot
    secret: crm-hubspot
  hooks:
    type: webhook
    url: https://hooks.example.com/backflow
syncs:
  customers-to-crm:
    model: customers
    destination: crm
    object: contacts
    match: { email: email }
    mappings: { firstname: first_name }
  customers-to-hooks:
    model: customers
    destination: hooks
    object: customers
    match: { id: id }
    mappings: { email: email }
`;

interface Bundle {
  readonly dir: string;
  readonly bytes: number;
  /** Every file the bundle was built from, from its source map, relative to the repository. */
  readonly sources: readonly string[];
}

let out: string;
const bundles = new Map<string, Bundle>();
/** The files of connectors/manifests.ts's import graph: in every bundle, since every bundle loads the config. */
let manifestFiles: ReadonlySet<string>;

/** A real synth, bundling included (as `cdk synth` does), of CONFIG. */
beforeAll(async () => {
  const graph = await build({
    absWorkingDir: ROOT,
    entryPoints: ['connectors/manifests.ts'],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    packages: 'external',
    outdir: 'out',
    logLevel: 'silent',
  });
  manifestFiles = new Set(Object.keys((graph.metafile as Metafile).inputs));
  out = mkdtempSync(path.join(os.tmpdir(), 'backflow-bundles-'));
  // The asset metadata names each function's asset directory, as the CDK CLI asks for it.
  const app = new App({ outdir: out, context: { ...CDK_CONTEXT, 'aws:cdk:enable-asset-metadata': true } });
  const stack = new BackflowStack(app, 'Bundles', { config: loadConfig(writeConfig(CONFIG), manifests) });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as {
    Resources: Record<
      string,
      { Type: string; Properties?: { Description?: string }; Metadata?: Record<string, string> }
    >;
  };
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const dir = path.join(out, resource.Metadata?.['aws:asset:path'] ?? 'missing');
    const lane = /delivers lane (\S+)/.exec(resource.Properties?.Description ?? '')?.[1];
    const map = JSON.parse(readFileSync(path.join(dir, 'index.mjs.map'), 'utf8')) as { sources: string[] };
    bundles.set(lane ? `export ${lane}` : 'plan', {
      dir,
      bytes: statSync(path.join(dir, 'index.mjs')).size,
      sources: map.sources.map((s) => path.relative(ROOT, path.resolve(dir, s))),
    });
  }
}, BUNDLING_TIMEOUT_MS);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

const bundle = (name: string): Bundle => {
  const found = bundles.get(name);
  if (!found) throw new Error(`no ${name} bundle; synthesized: ${[...bundles.keys()].join(', ')}`);
  return found;
};
/** The vendor packages a bundle holds. */
const packages = (b: Bundle) =>
  ['snowflake-sdk', 'mysql2', 'pg', '@azure/storage-blob', 'moment-timezone', '@duckdb/node-api'].filter((name) =>
    b.sources.some((s) => s.includes(`node_modules/${name}/`)),
  );
/** The connectors whose runtime a bundle holds (files beyond their manifests): `destinations/hubspot`… */
const runtimes = (b: Bundle) =>
  [
    ...new Set(
      b.sources.flatMap((s) => {
        const match = /^connectors\/((?:sources|destinations)\/[^/]+)\//.exec(s);
        return match && !manifestFiles.has(s) ? [match[1]!] : [];
      }),
    ),
  ].sort();

describe('a bundle per function', () => {
  it('bundles each lane with its own destination runtime and no other connector', () => {
    expect([...bundles.keys()].sort()).toEqual(['export crm', 'export hooks', 'plan']);
    expect(runtimes(bundle('export crm'))).toEqual(['destinations/hubspot']);
    expect(bundle('export crm').sources).toContain('connectors/destinations/hubspot/index.ts');
    expect(packages(bundle('export crm'))).toEqual([]);
    expect(runtimes(bundle('export hooks'))).toEqual(['destinations/webhook']);
    expect(bundle('export hooks').sources).toContain('connectors/destinations/webhook/index.ts');
    expect(packages(bundle('export hooks'))).toEqual([]);
  });

  it('bundles the plan function with the source runtimes its syncs read, and no destination runtime', () => {
    const plan = bundle('plan');
    expect(runtimes(plan)).toEqual(['sources/postgres']);
    // `unused` is a Snowflake source no sync reads: its driver stays out.
    expect(packages(plan)).toEqual(['pg']);
  });

  it('leaves the Lambda client, which continues a plan, to the plan function', () => {
    const holdsLambdaClient = (b: Bundle) => b.sources.some((s) => s.includes('node_modules/@aws-sdk/client-lambda/'));
    expect(holdsLambdaClient(bundle('plan'))).toBe(true);
    expect(holdsLambdaClient(bundle('export crm'))).toBe(false);
    expect(holdsLambdaClient(bundle('export hooks'))).toBe(false);
  });

  it('keeps a HubSpot lane within 1.5 MB', () => {
    expect(bundle('export crm').bytes).toBeLessThanOrEqual(1.5 * 1024 * 1024);
  });

  it('starts each bundle as Lambda does, and its handler loads the config beside it with the bundled manifests', async () => {
    // An invocation that reaches no AWS service: the export of an empty batch, the plan of a sync
    // the config lacks. Both load backflow.yml first, through the bundle's own catalogue.
    const invocations: Record<string, string> = {
      'export crm': '{ Records: [] }',
      'export hooks': '{ Records: [] }',
      plan: "{ syncId: 'no-such-sync' }",
    };
    for (const [name, { dir }] of bundles) {
      const script = `const { handler } = await import('./index.mjs');
const context = { functionName: 'f', awsRequestId: 'r', getRemainingTimeInMillis: () => 60_000 };
try { console.log(JSON.stringify(await handler(${invocations[name]}, context))); } catch (error) { console.log(error.name + ': ' + error.message); }`;
      const invoked = await run(process.execPath, ['--input-type=module', '-e', script], {
        cwd: dir,
        env: {
          PATH: process.env.PATH,
          AWS_REGION: 'us-east-1',
          BACKFLOW_TABLE: 'state',
          BACKFLOW_LANE: name.replace('export ', ''),
          BACKFLOW_LANES: JSON.stringify({ crm: { queueUrl: 'q', deadLetterUrl: 'd' } }),
        },
        timeout: 60_000,
      });
      const last = invoked.stdout.trim().split('\n').at(-1);
      expect(last, name).toBe(
        name === 'plan'
          ? 'ConnectorConfigError: no sync named no-such-sync in the deployed config'
          : '{"batchItemFailures":[]}',
      );
    }
  });
});
