import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { resourcesOf, type Template } from './template.ts';

const run = promisify(execFile);

export const ROOT = path.resolve(import.meta.dirname, '../..');

/** A real `cdk synth` of the repository's CDK app takes about a minute on this machine's two cores. */
export const SYNTH_TIMEOUT_MS = 240_000;

export interface Synthesized {
  readonly stackName: string;
  readonly template: Template;
  /** Function logical id → its deployment package, copied where no node_modules can be found. */
  readonly packages: ReadonlyMap<string, string>;
  /** Removes the synth output and the copied packages. */
  cleanup(): void;
}

/**
 * `cdk synth` of a config, exactly as `npx cdk synth -c config=…` (offline, local esbuild), into a
 * temporary directory. Each function's asset folder (its `index.mjs` and the bundled
 * `backflow.yml`) is then copied into a fresh directory outside the repository, as Lambda unpacks
 * a package into /var/task: nothing above it holds a node_modules, so a bundle that still needs a
 * module from the repository's install fails here as it would on AWS.
 */
export async function synthesize(configFile: string, stackName: string): Promise<Synthesized> {
  const out = mkdtempSync(path.join(os.tmpdir(), 'backflow-deployed-synth-'));
  const packagesDir = mkdtempSync(path.join(os.tmpdir(), 'backflow-deployed-task-'));
  const cleanup = () => {
    rmSync(out, { recursive: true, force: true });
    rmSync(packagesDir, { recursive: true, force: true });
  };
  try {
    await run(
      'npx',
      ['cdk', 'synth', '-c', `config=${configFile}`, '-c', `stackName=${stackName}`, '--quiet', '-o', out],
      {
        cwd: ROOT,
        env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' },
        timeout: SYNTH_TIMEOUT_MS,
        maxBuffer: 64 * 1024 * 1024,
      },
    ).catch((error: { stderr?: string; message: string }) => {
      throw new Error(`cdk synth of ${configFile} failed: ${error.stderr || error.message}`);
    });
    const template = JSON.parse(readFileSync(path.join(out, `${stackName}.template.json`), 'utf8')) as Template;
    assertNoNodeModulesAbove(packagesDir);
    const packages = new Map<string, string>();
    for (const [logicalId, fn] of resourcesOf(template, 'AWS::Lambda::Function')) {
      const asset = fn.Metadata?.['aws:asset:path'];
      if (typeof asset !== 'string') throw new Error(`function ${logicalId} has no asset in the synthesized template`);
      const target = path.join(packagesDir, logicalId);
      cpSync(path.join(out, asset), target, { recursive: true });
      packages.set(logicalId, target);
    }
    return { stackName, template, packages, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}

function assertNoNodeModulesAbove(dir: string): void {
  for (let at = dir; ; at = path.dirname(at)) {
    if (existsSync(path.join(at, 'node_modules'))) {
      throw new Error(
        `${path.join(at, 'node_modules')} exists: a bundle copied under ${dir} could resolve modules from it, which Lambda never can. Remove it or set TMPDIR elsewhere.`,
      );
    }
    if (path.dirname(at) === at) return;
  }
}
