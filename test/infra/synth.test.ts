import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { manifests } from '#connectors/manifests';
import { loadConfig, parseConfig } from '#core/config/load';
import { ConfigFileError } from '#core/errors';
import { ROOT, writeConfig } from './stacks.ts';

const run = promisify(execFile);
const SYNTH_TIMEOUT_MS = 240_000;
const env = { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' };

/** Output directories of this file's runs, removed at the end (a synth is tens of MB). */
const outputs: string[] = [];
const outputDir = (prefix: string) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  outputs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of outputs) rmSync(dir, { recursive: true, force: true });
});

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function spawn(command: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(command, args, {
      cwd: ROOT,
      env: { ...env, ...extraEnv },
      timeout: SYNTH_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

describe('cdk synth of the quickstart', () => {
  it(
    'bundles each function as an ESM file that starts without DuckDB, with the config as backflow.yml',
    async () => {
      const out = outputDir('backflow-synth-');
      const synth = await spawn('npx', [
        'cdk',
        'synth',
        '-c',
        'config=examples/quickstart/backflow.yml',
        '--quiet',
        '-o',
        out,
      ]);
      expect(synth.code, synth.stderr).toBe(0);

      const template = JSON.parse(readFileSync(path.join(out, 'Backflow.template.json'), 'utf8')) as {
        Resources: Record<string, { Type: string; Metadata?: Record<string, string> }>;
      };
      const assets = Object.values(template.Resources)
        .filter((r) => r.Type === 'AWS::Lambda::Function')
        .map((r) => path.join(out, r.Metadata?.['aws:asset:path'] ?? 'missing'));
      expect(assets).toHaveLength(2);
      const quickstart = loadConfig(path.join(ROOT, 'examples/quickstart/backflow.yml'), manifests);
      for (const asset of assets) {
        expect(existsSync(path.join(asset, 'index.mjs')), asset).toBe(true);
        const bundled = parseConfig(
          readFileSync(path.join(asset, 'backflow.yml'), 'utf8'),
          'backflow.yml',
          manifests,
          {},
        );
        expect(bundled.syncs).toEqual(quickstart.syncs);
        // Outside the repository @duckdb/node-api cannot be resolved, as on Lambda: the handler must still load.
        const started = await run(
          process.execPath,
          ['--input-type=module', '-e', "const m = await import('./index.mjs'); console.log(typeof m.handler);"],
          { cwd: asset, env: { ...env, AWS_REGION: 'us-east-1' }, timeout: 60_000 },
        );
        expect(started.stdout.trim(), asset).toBe('function');
      }
    },
    SYNTH_TIMEOUT_MS,
  );
});

describe('the CDK app', () => {
  it(
    'refuses an invalid config with the report of `backflow validate`, and exits non-zero',
    async () => {
      const file = writeConfig(
        'version: 1\nsources: {}\nmodels: {}\ndestinations: {}\nsyncs:\n  s:\n    model: nope\n',
      );
      let expected = '';
      try {
        loadConfig(file, manifests);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigFileError);
        expected = (error as Error).message;
      }
      const app = await spawn('npx', ['tsx', 'infra/app.ts'], {
        CDK_CONTEXT_JSON: JSON.stringify({ config: file }),
        CDK_OUTDIR: outputDir('backflow-app-'),
      });
      expect(app.code).toBe(2);
      expect(expected).toMatch(/backflow\.yml:\d+:\d+/);
      expect(app.stderr).toContain(expected);
    },
    SYNTH_TIMEOUT_MS,
  );
});
